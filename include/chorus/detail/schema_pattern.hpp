// A JSON Schema "pattern" as PCRE2 reads it. Shared by the schema validator (chorus/json_schema.hpp),
// which checks strings with it, and guided decoding's schema compiler (models/json_grammar.cpp),
// which refuses a pattern the validator could not compile. Valid C++17: the models library includes
// it. Both link PCRE2.
#pragma once

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace chorus::detail {

using SchemaPattern = std::unique_ptr<pcre2_code, decltype(&pcre2_code_free)>;

inline std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof buffer);
  return reinterpret_cast<const char*>(buffer);
}

/// The compiled pattern, in ECMAScript's reading as far as PCRE2 has one: UTF-8, \uHHHH escapes,
/// "$" only at the very end, and "." and "$" knowing only \n as a line break (whatever this PCRE2
/// was built with). Null, with `error` saying why, when it does not compile.
inline SchemaPattern compile_schema_pattern(std::string_view pattern, std::string& error) {
  std::unique_ptr<pcre2_compile_context, decltype(&pcre2_compile_context_free)> context(
    pcre2_compile_context_create(nullptr), pcre2_compile_context_free);
  pcre2_set_newline(context.get(), PCRE2_NEWLINE_LF);
  int code = 0;
  PCRE2_SIZE offset = 0;
  SchemaPattern compiled(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                       PCRE2_UTF | PCRE2_ALT_BSUX | PCRE2_DOLLAR_ENDONLY, &code, &offset,
                                       context.get()),
                         pcre2_code_free);
  if (!compiled)
    error = "at byte " + std::to_string(offset) + ": " + pcre2_message(code);
  return compiled;
}

/// Whether `text` holds a match of `pattern` anywhere; nullopt, with `error` saying why, when it
/// cannot be decided (text that is not UTF-8). Matched as an automaton first, which takes time
/// polynomial in the text (backtracking can take exponential time on patterns such as (a|a)*b);
/// what the automaton cannot run (backreferences, lookbehind of some kinds) is backtracked.
inline std::optional<bool> schema_pattern_matches(const pcre2_code* pattern, std::string_view text,
                                                  std::string& error) {
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> match(pcre2_match_data_create(1, nullptr),
                                                                            pcre2_match_data_free);
  const auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  int workspace[1000];
  int found = pcre2_dfa_match(pattern, subject, text.size(), 0, PCRE2_DFA_SHORTEST, match.get(), nullptr, workspace,
                              sizeof workspace / sizeof workspace[0]);
  if (found == PCRE2_ERROR_DFA_UITEM || found == PCRE2_ERROR_DFA_UCOND || found == PCRE2_ERROR_DFA_WSSIZE
      || found == PCRE2_ERROR_DFA_RECURSE)
    found = pcre2_match(pattern, subject, text.size(), 0, 0, match.get(), nullptr);
  if (found >= 0)
    return true;
  if (found == PCRE2_ERROR_NOMATCH)
    return false;
  error = pcre2_message(found);
  return std::nullopt;
}

} // namespace chorus::detail
