#include "models/grammar.hpp"

#include <algorithm>
#include <stdexcept>

namespace chorus::models {

Grammar::RuleId Grammar::add_rule() {
  if (finished_)
    throw std::logic_error("Grammar: add_rule after finish");
  rules_.emplace_back();
  return static_cast<RuleId>(rules_.size() - 1);
}

void Grammar::add_alternative(RuleId rule, std::vector<Symbol> symbols) {
  if (finished_ || rule >= rules_.size())
    throw std::logic_error("Grammar: add_alternative to no rule, or after finish");
  symbol_count_ += symbols.size();
  rules_[rule].push_back(std::move(symbols));
}

Grammar::Symbol Grammar::byte_set(const std::bitset<256>& set) {
  auto found = std::find(classes_.begin(), classes_.end(), set);
  if (found == classes_.end())
    found = classes_.insert(classes_.end(), set);
  return {false, static_cast<std::uint32_t>(found - classes_.begin())};
}

Grammar::Symbol Grammar::bytes(unsigned char first, unsigned char last) {
  std::bitset<256> set;
  for (unsigned byte = first; byte <= last; ++byte)
    set.set(byte);
  return byte_set(set);
}

std::vector<Grammar::Symbol> Grammar::literal(std::string_view text) {
  std::vector<Symbol> symbols;
  for (char c : text)
    symbols.push_back(bytes(static_cast<unsigned char>(c), static_cast<unsigned char>(c)));
  return symbols;
}

namespace {

// The rule matching exactly texts[begin, end) from byte `offset` on (sorted, unique, sharing their
// first `offset` bytes).
Grammar::RuleId trie_node(Grammar& g, const std::vector<std::string>& texts, std::size_t begin, std::size_t end,
                          std::size_t offset) {
  auto rule = g.add_rule();
  auto i = begin;
  if (texts[i].size() == offset) // sorted: a string that ends here comes first
    g.add_alternative(rule, {}), ++i;
  while (i < end) {
    auto byte = texts[i][offset];
    auto j = i;
    while (j < end && texts[j][offset] == byte)
      ++j;
    // The bytes every string of this branch shares (the first and last differ first).
    std::size_t shared = 1;
    while (offset + shared < texts[i].size() && offset + shared < texts[j - 1].size()
           && texts[i][offset + shared] == texts[j - 1][offset + shared])
      ++shared;
    auto symbols = g.literal(std::string_view(texts[i]).substr(offset, shared));
    symbols.push_back(Grammar::rule(trie_node(g, texts, i, j, offset + shared)));
    g.add_alternative(rule, std::move(symbols));
    i = j;
  }
  return rule;
}

// Throws if a rule of `rules` can reach itself through rules that begin its alternatives (after
// rules that may match nothing): the matcher would open it for ever.
void refuse_left_recursion(const std::vector<std::vector<std::vector<Grammar::Symbol>>>& rules) {
  // Which rules can match nothing, to a fixed point.
  std::vector<bool> nullable(rules.size(), false);
  for (bool changed = true; changed;) {
    changed = false;
    for (std::size_t r = 0; r < rules.size(); ++r)
      if (!nullable[r])
        for (const auto& alternative : rules[r])
          if (std::all_of(alternative.begin(), alternative.end(),
                          [&](const Grammar::Symbol& s) { return s.is_rule && nullable[s.index]; })) {
            nullable[r] = changed = true;
            break;
          }
  }
  // The rules each rule opens before any byte, then a search for a cycle among them.
  std::vector<std::vector<std::uint32_t>> opens(rules.size());
  for (std::size_t r = 0; r < rules.size(); ++r)
    for (const auto& alternative : rules[r])
      for (const auto& symbol : alternative) {
        if (!symbol.is_rule)
          break;
        opens[r].push_back(symbol.index);
        if (!nullable[symbol.index])
          break;
      }
  enum : std::uint8_t { unseen, open, done };
  std::vector<std::uint8_t> mark(rules.size(), unseen);
  for (std::size_t start = 0; start < rules.size(); ++start) {
    if (mark[start] != unseen)
      continue;
    std::vector<std::pair<std::uint32_t, std::size_t>> path{{static_cast<std::uint32_t>(start), 0}};
    mark[start] = open;
    while (!path.empty()) {
      auto& [rule, next] = path.back();
      if (next == opens[rule].size()) {
        mark[rule] = done;
        path.pop_back();
        continue;
      }
      auto target = opens[rule][next++];
      if (mark[target] == open)
        throw std::invalid_argument("Grammar: rule " + std::to_string(target)
                                    + " can reach itself before matching any byte (left recursion)");
      if (mark[target] == unseen) {
        mark[target] = open;
        path.emplace_back(target, 0);
      }
    }
  }
}

} // namespace

Grammar::RuleId Grammar::add_literals(std::vector<std::string> texts) {
  std::sort(texts.begin(), texts.end());
  texts.erase(std::unique(texts.begin(), texts.end()), texts.end());
  if (texts.empty())
    return add_rule(); // no alternatives: finish refuses it
  return trie_node(*this, texts, 0, texts.size(), 0);
}

void Grammar::finish(RuleId root) {
  if (root >= rules_.size())
    throw std::invalid_argument("Grammar: the root is not a rule");
  root_ = root;
  starts_.assign(rules_.size(), {});
  for (std::size_t r = 0; r < rules_.size(); ++r) {
    if (rules_[r].empty())
      throw std::invalid_argument("Grammar: rule " + std::to_string(r) + " has no alternatives");
    for (const auto& alternative : rules_[r]) {
      starts_[r].push_back(static_cast<std::uint32_t>(elements_.size()));
      for (const auto& symbol : alternative) {
        if (symbol.is_rule && symbol.index >= rules_.size())
          throw std::invalid_argument("Grammar: a reference to rule " + std::to_string(symbol.index)
                                      + ", which does not exist");
        elements_.push_back({symbol.is_rule ? Element::rule_ref : Element::byte_class, symbol.index});
      }
      elements_.push_back({Element::end, 0});
    }
  }
  refuse_left_recursion(rules_);
  rules_.clear(); // matching needs only the laid-out elements
  rules_.shrink_to_fit();
  finished_ = true;
}

GrammarMatcher::GrammarMatcher(const Grammar& grammar) : grammar_(&grammar) {
  if (!grammar.finished_)
    throw std::logic_error("GrammarMatcher: the grammar is not finished");
  std::size_t openings = 0;
  for (auto start : grammar.starts_[grammar.root_])
    expand(Stack{start}, stacks_, openings);
  std::sort(stacks_.begin(), stacks_.end());
  stacks_.erase(std::unique(stacks_.begin(), stacks_.end()), stacks_.end());
}

void GrammarMatcher::expand(Stack stack, std::vector<Stack>& out, std::size_t& openings, std::size_t depth) const {
  // A grammar ambiguous enough (alternatives inside alternatives that start alike) would multiply
  // the stacks without bound, and one with long chains of rules that may match nothing would open
  // thousands of rules per stack (and recurse as deep; left recursion is refused by finish).
  if (++openings > kMostOpenings)
    throw std::length_error("the grammar is too costly to follow here: more than " + std::to_string(kMostOpenings)
                            + " rules to open to read one byte");
  if (depth > kDeepestOpening)
    throw std::length_error("the grammar is too costly to follow here: more than " + std::to_string(kDeepestOpening)
                            + " rules open inside one another to read one byte");
  if (out.size() > kMostStacks)
    throw std::length_error("the grammar is too ambiguous here: more than " + std::to_string(kMostStacks)
                            + " ways to read the text so far");
  const auto& elements = grammar_->elements_;
  while (!stack.empty()) {
    auto position = stack.back();
    const auto& element = elements[position];
    if (element.kind == Grammar::Element::byte_class) {
      out.push_back(std::move(stack));
      return;
    }
    stack.pop_back();
    if (element.kind == Grammar::Element::end)
      continue; // back to the rule that opened this one
    // Where to go on once the rule is matched; nothing, when the rule ends its alternative (a tail
    // call: repetition written as `r ::= x r | ` then keeps the stack flat).
    if (elements[position + 1].kind != Grammar::Element::end)
      stack.push_back(position + 1);
    for (auto start : grammar_->starts_[element.index]) {
      auto opened = stack;
      opened.push_back(start);
      expand(std::move(opened), out, openings, depth + 1);
    }
    return;
  }
  out.push_back(std::move(stack)); // empty: the sentence may end here
}

std::vector<GrammarMatcher::Stack> GrammarMatcher::advanced(unsigned char byte) const {
  std::vector<Stack> next;
  std::size_t openings = 0;
  const auto& elements = grammar_->elements_;
  for (const auto& stack : stacks_) {
    if (stack.empty() || !grammar_->classes_[elements[stack.back()].index].test(byte))
      continue;
    auto moved = stack;
    ++moved.back();
    expand(std::move(moved), next, openings);
  }
  std::sort(next.begin(), next.end());
  next.erase(std::unique(next.begin(), next.end()), next.end());
  return next;
}

bool GrammarMatcher::advance(unsigned char byte) {
  auto next = advanced(byte);
  if (next.empty())
    return false;
  stacks_ = std::move(next);
  return true;
}

bool GrammarMatcher::advance(std::string_view bytes) {
  auto saved = stacks_;
  for (char c : bytes)
    if (!advance(static_cast<unsigned char>(c))) {
      stacks_ = std::move(saved);
      return false;
    }
  return true;
}

bool GrammarMatcher::accepting() const {
  return !stacks_.empty() && stacks_.front().empty(); // sorted: an empty stack comes first
}

std::bitset<256> GrammarMatcher::next_bytes() const {
  std::bitset<256> bytes;
  for (const auto& stack : stacks_)
    if (!stack.empty())
      bytes |= grammar_->classes_[grammar_->elements_[stack.back()].index];
  return bytes;
}

std::string GrammarMatcher::state_key() const {
  std::string key;
  for (const auto& stack : stacks_) {
    key.append(reinterpret_cast<const char*>(stack.data()), stack.size() * sizeof(std::uint32_t));
    key.append(4, '\xff'); // no position is 0xffffffff: separates the stacks
  }
  return key;
}

} // namespace chorus::models
