// Fuzzes guided decoding's regular expressions, which come from HTTP clients (chorus-serve's
// guided_regex): a pattern, then (after a NUL byte) bytes that steer a writer through its grammar.
// Any pattern either compiles or is refused with std::invalid_argument; the matcher either follows
// or refuses with std::length_error (too ambiguous or too costly); and every text the writer
// finishes is a whole match of the pattern as PCRE2 reads it (when PCRE2 compiles the pattern: one
// too large for PCRE2 is still a pattern here).
#include <chorus/detail/schema_pattern.hpp>

#include "models/regex_grammar.hpp"
#include "steered_writer.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto nul = input.find('\0');
  auto pattern = input.substr(0, nul);
  std::string_view steering = nul == std::string_view::npos ? std::string_view() : input.substr(nul + 1);
  try {
    auto grammar = chorus::models::regex_grammar(pattern);
    auto text = chorus::fuzz::steered_text(grammar, steering, "", 512);
    if (!text)
      return 0;
    std::string error;
    auto whole = chorus::detail::compile_schema_pattern("^(?:" + std::string(pattern) + ")$", error);
    if (!whole)
      return 0;
    auto found = chorus::detail::schema_pattern_matches(whole.get(), *text, error);
    if (!found
        && !chorus::detail::schema_pattern_matches(chorus::detail::compile_schema_pattern("", error).get(), *text,
                                                   error)) { // only text that is not UTF-8 fails there
      std::fprintf(stderr, "pattern '%.*s' let a writer finish text that is not UTF-8\n",
                   static_cast<int>(pattern.size()), pattern.data());
      std::abort();
    }
    if (found && !*found) {
      std::fprintf(stderr, "pattern '%.*s' let a writer finish '%s', which PCRE2 does not match\n",
                   static_cast<int>(pattern.size()), pattern.data(), text->c_str());
      std::abort();
    }
  } catch (const std::invalid_argument&) {
  } catch (const std::length_error&) {
  }
  return 0;
}
