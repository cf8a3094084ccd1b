// Grammars over bytes, and the matcher that guided decoding runs them with: which bytes may come next
// after a prefix, and whether the prefix is already a whole sentence. A grammar is a set of rules,
// each a list of alternatives, each a sequence of byte classes and references to rules; it must not
// be left-recursive (JSON's grammar, as json_grammar.hpp builds it, is right-recursive throughout).
//
//   Grammar g;
//   auto digits = g.add_rule();                       // digits ::= [0-9] digits | [0-9]
//   g.add_alternative(digits, {g.bytes('0', '9'), Grammar::rule(digits)});
//   g.add_alternative(digits, {g.bytes('0', '9')});
//   g.finish(digits);                                 // the start rule; no rules added after
//   GrammarMatcher m(g);
//   m.advance("42");  // true; m.accepting() is true, m.next_bytes() holds '0'-'9'
//
// The matcher is nondeterministic in the usual way for such grammars: its state is the set of parse
// stacks the prefix leaves open, each a list of positions in the rules, innermost last.
#pragma once

#include <bitset>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace chorus::models {

class Grammar {
public:
  using RuleId = std::uint32_t;

  /// One item of an alternative: a byte class or a rule.
  struct Symbol {
    bool is_rule = false;
    std::uint32_t index = 0; // into the classes or the rules
  };

  /// A new rule without alternatives (add them with add_alternative; a rule may refer to itself).
  RuleId add_rule();
  void add_alternative(RuleId rule, std::vector<Symbol> symbols);
  /// Makes `root` the start rule and lays the rules out for matching; nothing may be added after.
  /// @throws std::invalid_argument for a rule without alternatives, a reference to no rule, or left
  /// recursion (a rule that can reach itself before matching a byte).
  void finish(RuleId root);

  /// Symbols matching one byte of a class: a range, a set, or the bytes of a literal in order.
  Symbol bytes(unsigned char first, unsigned char last);
  Symbol byte_set(const std::bitset<256>& set);
  std::vector<Symbol> literal(std::string_view text);
  /// A new rule matching exactly one of `texts` (any bytes), laid out as a trie: texts that begin
  /// alike share symbols, so that the matcher follows one stack however many texts there are.
  RuleId add_literals(std::vector<std::string> texts);
  static Symbol rule(RuleId id) {
    return {true, id};
  }

  std::size_t rule_count() const {
    return rules_.size();
  }
  std::size_t symbol_count() const {
    return symbol_count_;
  }

private:
  friend class GrammarMatcher;

  std::vector<std::bitset<256>> classes_;
  std::vector<std::vector<std::vector<Symbol>>> rules_; // until finish
  std::size_t symbol_count_ = 0;
  RuleId root_ = 0;

  // The rules laid out for matching (by finish): each alternative's symbols followed by an end
  // marker, so that a parse position is one index into `elements_`.
  struct Element {
    enum Kind : std::uint8_t { byte_class, rule_ref, end } kind = end;
    std::uint32_t index = 0;
  };
  std::vector<Element> elements_;
  std::vector<std::vector<std::uint32_t>> starts_; // per rule: where each alternative begins
  bool finished_ = false;
};

/// Where a grammar's parse stands after some bytes. Copyable: guided decoding keeps one per sequence.
class GrammarMatcher {
public:
  /// At the start of `grammar` (finished, and outliving the matcher).
  explicit GrammarMatcher(const Grammar& grammar);

  /// Consumes `byte`; false (and the state unchanged) if the grammar does not allow it here.
  /// @throws std::length_error (as the constructor) past kMostStacks ways to read the text, or
  /// kMostOpenings rules opened for one byte, or kDeepestOpening inside one another.
  bool advance(unsigned char byte);
  /// Consumes `bytes` in order; false (and the state unchanged) if any is not allowed.
  bool advance(std::string_view bytes);

  /// True when the bytes so far are a whole sentence of the grammar.
  bool accepting() const;
  /// The bytes that may come next (none once the sentence is complete and nothing may follow).
  std::bitset<256> next_bytes() const;
  /// A key equal for two matchers of one grammar exactly when their states are equal.
  std::string state_key() const;

  /// The most parse stacks a state may hold (a grammar with more is refused where it gets there).
  static constexpr std::size_t kMostStacks = 1024;
  /// The most rules opened to read one byte: a grammar that needs more (long chains of rules that
  /// may match nothing, under many stacks) is refused where it gets there, rather than let each
  /// byte take milliseconds.
  static constexpr std::size_t kMostOpenings = 20'000;
  /// The most rules opened inside one another to read one byte (each is a level of recursion).
  static constexpr std::size_t kDeepestOpening = 2'000;

private:
  using Stack = std::vector<std::uint32_t>;
  // The stacks `stack` stands for once every rule at its top is opened, into `out`; `openings`
  // counts the rules opened for this byte.
  void expand(Stack stack, std::vector<Stack>& out, std::size_t& openings, std::size_t depth = 0) const;
  std::vector<Stack> advanced(unsigned char byte) const;

  const Grammar* grammar_;
  std::vector<Stack> stacks_; // sorted, unique; an empty stack means the sentence may end here
};

} // namespace chorus::models
