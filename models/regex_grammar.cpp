// A regex tree to grammar rules. Repetition is right-recursive as in json_grammar.cpp, and a
// repeated item that may match nothing is repeated as "the item, not empty" (`(a?b?)*` as
// `(a?b?, not empty)*`): the matcher would otherwise open the repetition for ever without a byte.
#include "models/regex_grammar.hpp"

#include <chorus/json.hpp>

#include "models/regex.hpp"

#include <map>
#include <optional>
#include <stdexcept>
#include <string>

namespace chorus::models {

namespace {

using Symbol = Grammar::Symbol;
using Symbols = std::vector<Symbol>;
using RuleId = Grammar::RuleId;
using ByteRanges = std::vector<std::pair<unsigned char, unsigned char>>;

constexpr std::size_t kLongestPattern = 4096; // keeps the matcher's nesting (one level per item) shallow
constexpr std::size_t kMostSymbols = 1'000'000;

// The UTF-8 encodings of [first, last] (no surrogates) as sequences of byte ranges, each sequence
// matching exactly the encodings of one sub-range: split where the encoded length changes, then until
// every byte after the first spans a whole continuation range or lies under one common prefix.
void utf8_sequences(char32_t first, char32_t last, std::vector<ByteRanges>& out) {
  if (first > last)
    return;
  for (char32_t edge : {char32_t{0x7F}, char32_t{0x7FF}, char32_t{0xFFFF}})
    if (first <= edge && edge < last) {
      utf8_sequences(first, edge, out);
      utf8_sequences(edge + 1, last, out);
      return;
    }
  for (int k = 1; k < 4; ++k) {
    const char32_t low_bits = (char32_t{1} << (6 * k)) - 1;
    if ((first & ~low_bits) == (last & ~low_bits))
      continue;
    if ((first & low_bits) != 0) {
      utf8_sequences(first, first | low_bits, out);
      utf8_sequences((first | low_bits) + 1, last, out);
      return;
    }
    if ((last & low_bits) != low_bits) {
      utf8_sequences(first, (last & ~low_bits) - 1, out);
      utf8_sequences(last & ~low_bits, last, out);
      return;
    }
  }
  auto a = utf8_encode(first), b = utf8_encode(last);
  ByteRanges sequence;
  for (std::size_t k = 0; k < a.size(); ++k)
    sequence.emplace_back(static_cast<unsigned char>(a[k]), static_cast<unsigned char>(b[k]));
  out.push_back(std::move(sequence));
}

// How a JSON string writes `c`: as the JSON writer of the rest of chorus does ('"', '\' and control
// characters escaped, everything else as its UTF-8 bytes).
std::string json_written(char32_t c) {
  auto quoted = Json(utf8_encode(c)).dump();
  return quoted.substr(1, quoted.size() - 2);
}

class RegexCompiler {
public:
  RegexCompiler(Grammar& grammar, RegexText text) : g_(grammar), text_(text) {}

  // The texts of `node`.
  RuleId compile(const RegexNode& node) {
    if (auto known = compiled_.find(&node); known != compiled_.end())
      return known->second;
    check_size();
    RuleId rule = 0;
    switch (node.kind) {
      case RegexNode::empty: rule = rule_of({{}}); break;
      case RegexNode::characters: rule = characters(node.ranges); break;
      case RegexNode::concat: {
        Symbols sequence;
        for (const auto& item : node.items)
          sequence.push_back(Grammar::rule(compile(*item)));
        rule = rule_of({std::move(sequence)});
        break;
      }
      case RegexNode::alternation: {
        // Options that are all plain text ("red|green|blue") share a trie: one way to read the text
        // however many there are.
        std::vector<std::string> texts;
        for (const auto& item : node.items)
          if (auto text = literal_text(*item))
            texts.push_back(std::move(*text));
        if (texts.size() == node.items.size()) {
          rule = g_.add_literals(std::move(texts));
          break;
        }
        std::vector<Symbols> options;
        for (const auto& item : node.items)
          options.push_back({Grammar::rule(compile(*item))});
        rule = rule_of(std::move(options));
        break;
      }
      case RegexNode::repeat: {
        auto item = repeated_item(node);
        rule = item ? repetition(*item, node.items[0]->nullable ? 0 : node.least, node.most) : rule_of({{}});
        break;
      }
    }
    compiled_.emplace(&node, rule);
    return rule;
  }

  // The texts of `node` but the empty one; nullopt when it has no other.
  std::optional<RuleId> nonempty(const RegexNode& node) {
    if (!node.nullable)
      return compile(node);
    if (auto known = nonempty_.find(&node); known != nonempty_.end())
      return known->second;
    check_size();
    std::optional<RuleId> rule;
    switch (node.kind) {
      case RegexNode::empty:
      case RegexNode::characters: break;
      case RegexNode::concat: {
        // Every item may be empty: some item is the first that is not, and the items after it are as
        // they are. after[k] matches items k.. in order.
        const auto n = node.items.size();
        std::vector<RuleId> after(n + 1);
        after[n] = rule_of({{}});
        for (auto k = n; k-- > 0;)
          after[k] = rule_of({{Grammar::rule(compile(*node.items[k])), Grammar::rule(after[k + 1])}});
        std::vector<Symbols> options;
        for (std::size_t k = 0; k < n; ++k)
          if (auto first = nonempty(*node.items[k]))
            options.push_back({Grammar::rule(*first), Grammar::rule(after[k + 1])});
        if (!options.empty())
          rule = rule_of(std::move(options));
        break;
      }
      case RegexNode::alternation: {
        std::vector<Symbols> options;
        for (const auto& item : node.items)
          if (auto option = nonempty(*item))
            options.push_back({Grammar::rule(*option)});
        if (!options.empty())
          rule = rule_of(std::move(options));
        break;
      }
      case RegexNode::repeat: // at least one item, then up to most - 1 more
        if (auto item = repeated_item(node); item && node.most != 0)
          rule = rule_of({{*item, Grammar::rule(repetition(*item, 0, node.most < 0 ? -1 : node.most - 1))}});
        break;
    }
    nonempty_.emplace(&node, rule);
    return rule;
  }

private:
  void check_size() const {
    if (g_.symbol_count() > kMostSymbols)
      throw std::invalid_argument("the pattern makes a grammar of more than " + std::to_string(kMostSymbols)
                                  + " symbols (lower its bounds {n,m})");
  }

  // The text `node` stands for, written as `text_` says, when it is one text (single characters one
  // after the other); nullopt otherwise.
  std::optional<std::string> literal_text(const RegexNode& node) const {
    auto written = [&](const RegexNode& item) -> std::optional<std::string> {
      if (item.kind != RegexNode::characters || item.ranges.size() != 1
          || item.ranges[0].first != item.ranges[0].second)
        return std::nullopt;
      auto c = item.ranges[0].first;
      return text_ == RegexText::json_string ? json_written(c) : utf8_encode(c);
    };
    if (node.kind == RegexNode::empty)
      return std::string();
    if (node.kind != RegexNode::concat)
      return written(node);
    std::string text;
    for (const auto& item : node.items) {
      auto piece = written(*item);
      if (!piece)
        return std::nullopt;
      text += *piece;
    }
    return text;
  }

  RuleId rule_of(std::vector<Symbols> alternatives) {
    auto rule = g_.add_rule();
    for (auto& alternative : alternatives)
      g_.add_alternative(rule, std::move(alternative));
    return rule;
  }

  // What a repeat node repeats, never empty (a repeated item that may be empty repeats its other
  // texts, from 0 times: the same texts); nullopt when the item matches only the empty text.
  std::optional<Symbol> repeated_item(const RegexNode& node) {
    const auto& item = *node.items[0];
    if (!item.nullable)
      return Grammar::rule(compile(item));
    if (auto rule = nonempty(item))
      return Grammar::rule(*rule);
    return std::nullopt;
  }

  // `item` from `least` to `most` times (most < 0: no bound).
  RuleId repetition(Symbol item, int least, int most) {
    RuleId rest = 0; // after the first `least` items
    if (most < 0) {
      rest = g_.add_rule();
      g_.add_alternative(rest, {});
      g_.add_alternative(rest, {item, Grammar::rule(rest)});
    } else {
      rest = rule_of({{}});
      for (int k = least; k < most; ++k)
        rest = rule_of({{}, {item, Grammar::rule(rest)}});
    }
    Symbols sequence(static_cast<std::size_t>(least), item);
    sequence.push_back(Grammar::rule(rest));
    return rule_of({std::move(sequence)});
  }

  RuleId characters(const CodePointRanges& ranges) {
    if (auto known = characters_.find(ranges); known != characters_.end())
      return known->second;
    std::vector<Symbols> options;
    std::bitset<256> single_bytes;
    auto add = [&](char32_t first, char32_t last) {
      std::vector<ByteRanges> sequences;
      utf8_sequences(first, last, sequences);
      for (const auto& sequence : sequences) {
        if (sequence.size() == 1) { // one-byte characters share one class
          for (unsigned b = sequence[0].first; b <= sequence[0].second; ++b)
            single_bytes.set(b);
          continue;
        }
        Symbols symbols;
        for (auto [low, high] : sequence)
          symbols.push_back(g_.bytes(low, high));
        options.push_back(std::move(symbols));
      }
    };
    for (auto [first, last] : ranges) {
      if (text_ == RegexText::raw) {
        add(first, last);
        continue;
      }
      // Characters a JSON string escapes (all below '\' + 1) are written one by one; runs of the
      // others as they are.
      auto run_start = first;
      for (auto c = first; c <= last && c <= '\\'; ++c) {
        auto written = json_written(c);
        if (written == utf8_encode(c))
          continue;
        if (c > run_start)
          add(run_start, c - 1);
        options.push_back(g_.literal(written));
        run_start = c + 1;
      }
      if (run_start <= last)
        add(run_start, last);
    }
    if (single_bytes.any())
      options.push_back({g_.byte_set(single_bytes)});
    auto rule = rule_of(std::move(options));
    characters_.emplace(ranges, rule);
    return rule;
  }

  Grammar& g_;
  RegexText text_;
  std::map<const RegexNode*, RuleId> compiled_;
  std::map<const RegexNode*, std::optional<RuleId>> nonempty_;
  std::map<CodePointRanges, RuleId> characters_;
};

} // namespace

Grammar::RuleId add_regex(Grammar& grammar, std::string_view pattern, RegexText text) {
  if (pattern.size() > kLongestPattern)
    throw std::invalid_argument("at byte " + std::to_string(kLongestPattern) + ": patterns longer than "
                                + std::to_string(kLongestPattern) + " bytes are not supported in guided decoding");
  auto tree = parse_regex(pattern);
  return RegexCompiler(grammar, text).compile(*tree);
}

Grammar regex_grammar(std::string_view pattern) {
  Grammar grammar;
  try {
    grammar.finish(add_regex(grammar, pattern, RegexText::raw));
    GrammarMatcher start(grammar); // a pattern so ambiguous that the matcher cannot even begin
  } catch (const std::invalid_argument& error) {
    throw std::invalid_argument(std::string("regex: ") + error.what());
  } catch (const std::length_error& error) {
    throw std::invalid_argument(std::string("regex: ") + error.what());
  }
  return grammar;
}

} // namespace chorus::models
