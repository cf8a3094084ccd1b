// What the grammar tests drive a grammar with: whole texts, and a writer that takes random bytes.
#pragma once

#include <chorus/json.hpp>

#include "models/json_grammar.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace chorus::models {

inline bool accepts(const Grammar& grammar, std::string_view text) {
  GrammarMatcher matcher(grammar);
  return matcher.advance(text) && matcher.accepting();
}

// A writer that takes random bytes the grammar allows, preferring those that close what is open, so
// that most walks end; the text once it stops where the grammar may end, or nullopt if it ran out of
// bytes.
inline std::optional<std::string> random_sentence(const Grammar& grammar, std::mt19937& random) {
  GrammarMatcher matcher(grammar);
  std::string text;
  const std::string closing = "\"}]0,1:tfn";
  std::uniform_real_distribution<double> unit;
  while (text.size() < 4000) {
    if (matcher.accepting() && unit(random) < 0.5)
      return text;
    auto next = matcher.next_bytes();
    if (next.none())
      return matcher.accepting() ? std::optional(text) : std::nullopt;
    unsigned char byte = 0;
    auto preferred =
      std::find_if(closing.begin(), closing.end(), [&](char c) { return next.test(static_cast<unsigned char>(c)); });
    if (unit(random) < 0.6 && preferred != closing.end()) {
      byte = static_cast<unsigned char>(*preferred);
    } else {
      std::vector<unsigned char> allowed;
      for (unsigned b = 0; b < 256; ++b)
        if (next.test(b))
          allowed.push_back(static_cast<unsigned char>(b));
      byte = allowed[std::uniform_int_distribution<std::size_t>(0, allowed.size() - 1)(random)];
    }
    EXPECT_TRUE(matcher.advance(byte));
    text += static_cast<char>(byte);
  }
  return std::nullopt;
}

// The values of the texts random writers finish in `walks` walks through a grammar of JSON; a text
// that does not parse fails the test and is left out.
inline std::vector<Json> written_values(const Grammar& grammar, int walks, std::mt19937& random) {
  std::vector<Json> values;
  for (int walk = 0; walk < walks; ++walk)
    if (auto text = random_sentence(grammar, random)) {
      auto value = Json::parse(*text, nullptr, /*allow_exceptions=*/false);
      EXPECT_FALSE(value.is_discarded()) << "a writer produced " << *text;
      if (!value.is_discarded())
        values.push_back(std::move(value));
    }
  return values;
}

// What json_schema_grammar says refusing `schema`, or "(accepted)".
inline std::string schema_refusal(const Json& schema) {
  try {
    json_schema_grammar(schema);
  } catch (const std::invalid_argument& error) {
    return error.what();
  }
  return "(accepted)";
}

} // namespace chorus::models
