// What the grammar fuzzers drive a grammar with: a writer that takes, at each step, the allowed byte
// the fuzzer's steering bytes pick (those in `preferred` first, so that most walks can close what
// they open), and stops where the grammar may end when a steering byte's top bit says so.
#pragma once

#include "models/grammar.hpp"

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chorus::fuzz {

/// The text the writer finishes, or nullopt when it stops where the grammar may not end. Aborts when
/// the matcher refuses a byte it offered. Throws what the matcher throws (std::length_error).
inline std::optional<std::string> steered_text(const models::Grammar& grammar, std::string_view steering,
                                               std::string_view preferred, std::size_t most_bytes) {
  models::GrammarMatcher matcher(grammar);
  std::string text;
  for (std::size_t step = 0; step < most_bytes; ++step) {
    auto steer = step < steering.size() ? static_cast<unsigned char>(steering[step]) : 0;
    auto allowed = matcher.next_bytes();
    std::vector<unsigned char> bytes;
    for (char c : preferred)
      if (allowed.test(static_cast<unsigned char>(c)))
        bytes.push_back(static_cast<unsigned char>(c));
    for (unsigned b = 0; b < 256; ++b)
      if (allowed.test(b) && preferred.find(static_cast<char>(b)) == std::string_view::npos)
        bytes.push_back(static_cast<unsigned char>(b));
    if (bytes.empty() || (matcher.accepting() && (steer & 0x80)))
      break;
    auto byte = bytes[steer % bytes.size()];
    if (!matcher.advance(byte)) {
      std::fprintf(stderr, "the matcher refused a byte it offered after '%s'\n", text.c_str());
      std::abort();
    }
    text += static_cast<char>(byte);
  }
  if (!matcher.accepting())
    return std::nullopt;
  return text;
}

} // namespace chorus::fuzz
