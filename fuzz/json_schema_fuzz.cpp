// Fuzzes guided decoding's schema compiler and matcher, which take JSON Schemas from HTTP clients
// (chorus-serve's response_format): a schema, then (after a NUL byte) bytes that steer a writer
// through its grammar. Any schema either compiles or is refused with std::invalid_argument; the
// matcher either follows or refuses with std::length_error (too ambiguous); and every text the writer
// finishes parses as JSON and satisfies the schema as schema_violation checks it.
#include <chorus/json_schema.hpp>

#include "models/json_grammar.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string_view>

namespace {

// The bytes allowed next, those that close what is open first (so that most walks finish).
std::vector<unsigned char> choices(const std::bitset<256>& allowed) {
  static const std::string_view closing = "\"}]0,:1tfn";
  std::vector<unsigned char> bytes;
  for (char c : closing)
    if (allowed.test(static_cast<unsigned char>(c)))
      bytes.push_back(static_cast<unsigned char>(c));
  for (unsigned b = 0; b < 256; ++b)
    if (allowed.test(b) && closing.find(static_cast<char>(b)) == std::string_view::npos)
      bytes.push_back(static_cast<unsigned char>(b));
  return bytes;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto nul = input.find('\0');
  auto schema = chorus::Json::parse(input.substr(0, nul), nullptr, /*allow_exceptions=*/false);
  if (schema.is_discarded())
    return 0;
  std::string_view steering = nul == std::string_view::npos ? std::string_view() : input.substr(nul + 1);
  try {
    auto grammar = chorus::models::json_schema_grammar(schema);
    chorus::models::GrammarMatcher matcher(grammar);
    std::string text;
    for (std::size_t step = 0; step < 2048; ++step) {
      auto steer = step < steering.size() ? static_cast<unsigned char>(steering[step]) : 0;
      auto next = choices(matcher.next_bytes());
      if (next.empty() || (matcher.accepting() && (steer & 0x80)))
        break;
      auto byte = next[steer % next.size()];
      if (!matcher.advance(byte)) {
        std::fprintf(stderr, "the matcher refused a byte it offered after '%s'\n", text.c_str());
        std::abort();
      }
      text += static_cast<char>(byte);
    }
    if (!matcher.accepting())
      return 0;
    auto value = chorus::Json::parse(text, nullptr, /*allow_exceptions=*/false);
    auto problem = value.is_discarded() ? "it does not parse" : chorus::schema_violation(value, schema);
    if (!problem.empty()) {
      std::fprintf(stderr, "schema %s let a writer finish '%s': %s\n", schema.dump().c_str(), text.c_str(),
                   problem.c_str());
      std::abort();
    }
  } catch (const std::invalid_argument&) {
  } catch (const std::length_error&) {
  }
  return 0;
}
