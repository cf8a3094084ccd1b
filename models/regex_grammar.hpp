// Regular expressions as grammars: guided decoding's SamplingParams::regex (vLLM's guided_regex), and
// the "pattern" of a string in a JSON Schema (json_grammar.hpp). regex.hpp says what syntax is read.
//
//   auto grammar = regex_grammar("(yes|no), because .{1,80}");   // a whole completion
//   GrammarMatcher m(grammar);
//   m.advance("no, because");   // true; not yet accepting: ".{1,80}" needs a character
#pragma once

#include "models/grammar.hpp"

#include <string_view>

namespace chorus::models {

/// How the characters a pattern matches are written.
enum class RegexText {
  raw,         ///< as their UTF-8 bytes (a completion)
  json_string, ///< as between the quotes of a JSON string: '"', '\' and control characters escaped
               ///< (\" \\ \n \t \r \b \f, else \u00XX), everything else as its UTF-8 bytes
};

/// Adds to `grammar` a rule matching exactly the texts that `pattern` matches whole, written as
/// `text` says.
/// @throws std::invalid_argument "at byte N: ..." for what parse_regex refuses, or when the grammar
/// would pass 1,000,000 symbols.
Grammar::RuleId add_regex(Grammar& grammar, std::string_view pattern, RegexText text);

/// A finished grammar of the texts `pattern` matches whole.
/// @throws std::invalid_argument "regex: at byte N: ..." (as add_regex), or when the pattern is so
/// ambiguous that the matcher cannot begin (GrammarMatcher::kMostStacks).
Grammar regex_grammar(std::string_view pattern);

} // namespace chorus::models
