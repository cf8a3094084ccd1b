// ByteTrie: strings as paths of bytes from a root, each node holding a value. A guided-decoding walk
// visits a vocabulary's tokens through one (token_grammar.hpp); a tokenizer finds the added tokens
// in a text through another (bpe_tokenizer.hpp).
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string_view>
#include <utility>
#include <vector>

namespace chorus::models {

template <class Value>
class ByteTrie {
public:
  struct Node {
    std::vector<std::pair<unsigned char, std::uint32_t>> children; // byte, node
    Value value{};
  };

  static constexpr std::uint32_t kRoot = 0;
  static constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();

  /// The node that `bytes` lead to from the root, made (with its path) if missing.
  std::uint32_t insert(std::string_view bytes) {
    std::uint32_t node = kRoot;
    for (unsigned char byte : bytes) {
      auto next = child(node, byte);
      if (next == kNone) {
        next = static_cast<std::uint32_t>(nodes_.size());
        nodes_[node].children.emplace_back(byte, next);
        nodes_.emplace_back();
      }
      node = next;
    }
    return node;
  }

  /// The child of `node` along `byte`, or kNone.
  std::uint32_t child(std::uint32_t node, unsigned char byte) const {
    const auto& children = nodes_[node].children;
    auto found = std::find_if(children.begin(), children.end(), [byte](const auto& c) { return c.first == byte; });
    return found == children.end() ? kNone : found->second;
  }

  Node& operator[](std::uint32_t node) {
    return nodes_[node];
  }
  const Node& operator[](std::uint32_t node) const {
    return nodes_[node];
  }

private:
  std::vector<Node> nodes_{1}; // nodes_[kRoot] is the root (no bytes)
};

} // namespace chorus::models
