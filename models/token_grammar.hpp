// Guided decoding at the level of tokens: which tokens of a vocabulary keep a sequence inside a
// grammar. A token is allowed when all its bytes are; the vocabulary is a trie of the tokens' bytes,
// so a walk from the grammar's state visits each shared prefix once and leaves a subtree as soon as
// its first byte is refused. The tokens allowed at a state are remembered: JSON revisits the same few
// states (inside a string, between fields) at most steps.
#pragma once

#include "models/byte_trie.hpp"
#include "models/grammar.hpp"
#include "models/tokenizer.hpp"

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace chorus::models {

/// The bytes of every token of a tokenizer, in a trie. Special tokens have no bytes: a grammar never
/// allows them (a sequence's stop tokens are allowed where the grammar may end).
class TokenVocabulary {
public:
  explicit TokenVocabulary(const Tokenizer& tokenizer);

  std::int64_t size() const {
    return static_cast<std::int64_t>(bytes_.size());
  }
  /// Token `id`'s bytes ("" for a special token or an id beyond the tokenizer's).
  const std::string& bytes(std::int64_t id) const;

private:
  friend class TokenGrammar;
  std::vector<std::string> bytes_;
  ByteTrie<std::vector<std::int64_t>> trie_; // at each node, the tokens whose bytes end there
};

/// The tokens allowed at a state: one bit per token id (a set bit allows it).
using TokenMask = std::vector<std::uint64_t>;

inline bool allows(const TokenMask& mask, std::int64_t token) {
  return (mask[static_cast<std::size_t>(token) / 64] >> (static_cast<std::size_t>(token) % 64)) & 1;
}

/// A grammar over a vocabulary's tokens. Shared by the sequences that ask for the same constraint
/// (thread-safe); each sequence keeps its own GrammarMatcher.
class TokenGrammar {
public:
  TokenGrammar(Grammar grammar, std::shared_ptr<const TokenVocabulary> vocabulary);
  TokenGrammar(const TokenGrammar&) = delete; // matchers point at grammar_
  TokenGrammar& operator=(const TokenGrammar&) = delete;

  /// The state before any token.
  GrammarMatcher start() const {
    return GrammarMatcher(grammar_);
  }
  /// The tokens whose bytes may come next at `state` (stop tokens are not among them: they may come
  /// where state.accepting()).
  std::shared_ptr<const TokenMask> allowed(const GrammarMatcher& state) const;
  /// Moves `state` past token `id`'s bytes; false (state unchanged) if the grammar refuses them.
  bool advance(GrammarMatcher& state, std::int64_t id) const;

  const TokenVocabulary& vocabulary() const {
    return *vocabulary_;
  }

private:
  struct Walk;
  void walk(Walk& walk, std::uint32_t node, std::uint32_t state) const;

  Grammar grammar_;
  std::shared_ptr<const TokenVocabulary> vocabulary_;
  mutable std::mutex mutex_;
  mutable std::unordered_map<std::string, std::shared_ptr<const TokenMask>> masks_; // by state_key
};

} // namespace chorus::models
