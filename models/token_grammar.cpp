#include "models/token_grammar.hpp"

#include <algorithm>
#include <array>
#include <climits>
#include <cstdint>

namespace chorus::models {

namespace {

// The masks kept per grammar: past this many states the memory is dropped and rebuilt as needed (a
// 152k-token vocabulary's mask is 19 KB).
constexpr std::size_t kMostRememberedStates = 1024;

} // namespace

TokenVocabulary::TokenVocabulary(const Tokenizer& tokenizer) {
  const auto vocab = tokenizer.vocab_size();
  bytes_.resize(static_cast<std::size_t>(vocab));
  for (std::int64_t id = 0; id < vocab; ++id) {
    std::string text;
    try {
      text = tokenizer.token_text(id, /*skip_special=*/true);
    } catch (const std::exception&) {
      continue; // a hole in the vocabulary: never allowed
    }
    if (text.empty())
      continue;
    trie_[trie_.insert(text)].value.push_back(id);
    bytes_[static_cast<std::size_t>(id)] = std::move(text);
  }
}

const std::string& TokenVocabulary::bytes(std::int64_t id) const {
  static const std::string none;
  return id >= 0 && id < size() ? bytes_[static_cast<std::size_t>(id)] : none;
}

TokenGrammar::TokenGrammar(Grammar grammar, std::shared_ptr<const TokenVocabulary> vocabulary)
  : grammar_(std::move(grammar)), vocabulary_(std::move(vocabulary)) {}

// One walk of the trie from a state. The grammar's states met on the way are numbered and their
// transitions remembered: inside a JSON string almost every byte leads back to the same state, so
// the walk meets a handful of states, not one per trie node.
struct TokenGrammar::Walk {
  static constexpr std::uint32_t kUnknown = UINT32_MAX;
  TokenMask mask;
  std::vector<GrammarMatcher> states;
  std::vector<std::bitset<256>> next_bytes;
  std::vector<std::array<std::uint32_t, 256>> transitions; // per state and byte: the next state
  std::unordered_map<std::string, std::uint32_t> numbers;  // by state_key

  std::uint32_t number(GrammarMatcher state) {
    auto [found, added] = numbers.emplace(state.state_key(), static_cast<std::uint32_t>(states.size()));
    if (added) {
      next_bytes.push_back(state.next_bytes());
      states.push_back(std::move(state));
      transitions.emplace_back().fill(kUnknown);
    }
    return found->second;
  }

  // The state after `byte`, which next_bytes[state] allows.
  std::uint32_t after(std::uint32_t state, unsigned char byte) {
    if (auto known = transitions[state][byte]; known != kUnknown)
      return known;
    auto moved = states[state];
    moved.advance(byte);
    auto next = number(std::move(moved));
    transitions[state][byte] = next;
    return next;
  }
};

void TokenGrammar::walk(Walk& walk, std::uint32_t node, std::uint32_t state) const {
  for (const auto& [byte, child] : vocabulary_->trie_[node].children) {
    if (!walk.next_bytes[state].test(byte))
      continue;
    auto next = walk.after(state, byte);
    for (auto token : vocabulary_->trie_[child].value)
      walk.mask[static_cast<std::size_t>(token) / 64] |= std::uint64_t{1} << (static_cast<std::size_t>(token) % 64);
    this->walk(walk, child, next);
  }
}

std::shared_ptr<const TokenMask> TokenGrammar::allowed(const GrammarMatcher& state) const {
  auto key = state.state_key();
  {
    std::lock_guard lock(mutex_);
    if (auto known = masks_.find(key); known != masks_.end())
      return known->second;
  }
  Walk walk;
  walk.mask.assign((static_cast<std::size_t>(vocabulary_->size()) + 63) / 64, 0);
  this->walk(walk, ByteTrie<std::vector<std::int64_t>>::kRoot, walk.number(state));
  auto mask = std::make_shared<const TokenMask>(std::move(walk.mask));
  std::lock_guard lock(mutex_);
  if (masks_.size() >= kMostRememberedStates)
    masks_.clear();
  masks_.emplace(std::move(key), mask);
  return mask;
}

bool TokenGrammar::advance(GrammarMatcher& state, std::int64_t id) const {
  const auto& bytes = vocabulary_->bytes(id);
  return !bytes.empty() && state.advance(bytes);
}

} // namespace chorus::models
