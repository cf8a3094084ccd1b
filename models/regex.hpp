// Regular expressions read into a tree, for guided decoding (regex_grammar.hpp turns the tree into a
// grammar). The syntax is what ECMAScript (JSON Schema's "pattern"), Python (vLLM's guided_regex) and
// PCRE2 (schema_violation) agree on; what they read differently, or what a grammar cannot follow, is
// refused rather than guessed.
//
//   auto tree = parse_regex("[A-Z]{3}-\\d+");   // concat(chars A-Z repeated 3 times, '-', digits 1..)
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace chorus::models {

/// Sorted, disjoint, non-adjacent ranges of Unicode scalar values (no surrogates), both ends included.
using CodePointRanges = std::vector<std::pair<char32_t, char32_t>>;

struct RegexNode;
using RegexNodePtr = std::shared_ptr<const RegexNode>;

struct RegexNode {
  enum Kind {
    empty,       ///< matches only the empty text
    characters,  ///< one character of `ranges`
    concat,      ///< `items` one after the other
    alternation, ///< any one of `items`
    repeat,      ///< `items[0]` from `least` to `most` times (most < 0: no bound)
  } kind = empty;
  CodePointRanges ranges;
  std::vector<RegexNodePtr> items;
  int least = 0, most = 0;
  bool nullable = true; ///< matches the empty text (among others)
};

/// The tree of `pattern`, a whole-text match ("^" at its start and "$" at its end change nothing).
/// Understood: literal characters (UTF-8), ".", classes ("[a-z_]", "[^,]"), "\d \w \s" and
/// "\D \W \S", escapes ("\n \t \r \f \0", "\xHH", "\uHHHH", a backslash before punctuation),
/// groups "(...)", "(?:...)", "(?<name>...)", "(?P<name>...)", "|", and the quantifiers
/// "* + ? {n} {n,} {n,m}" (lazy ones, "*?", as greedy: the same texts).
/// "." is any character but a line break (\n, \r, U+2028, U+2029); "\d" is [0-9], "\w" [A-Za-z0-9_],
/// "\s" ASCII whitespace, and "\S" (or a negated class holding "\s" or "\S") leaves out Unicode's
/// spaces too (where ECMAScript and PCRE2 differ, the texts both accept).
/// @throws std::invalid_argument "at byte N: ..." naming what is refused: lookaround, backreferences,
/// "\b", "\p{...}", "\v" (PCRE2 reads any vertical space), octal escapes, inline flags, possessive
/// quantifiers, anchors inside the pattern, a "{" that does not begin a bound, a "]", ":", "." or "="
/// first in a class or a "[" inside one (escape them), group names that repeat, begin with a digit
/// or pass 32 characters, bounds above 1,000, groups nested deeper than 64, a class that matches
/// nothing, text that is not UTF-8.
RegexNodePtr parse_regex(std::string_view pattern);

/// The ranges of every Unicode scalar value not in `ranges`.
CodePointRanges complement(const CodePointRanges& ranges);

/// The UTF-8 bytes of a code point (at most U+10FFFF).
std::string utf8_encode(char32_t code_point);

} // namespace chorus::models
