// Fuzzes guided decoding's schema compiler and matcher, which take JSON Schemas from HTTP clients
// (chorus-serve's response_format): a schema, then (after a NUL byte) bytes that steer a writer
// through its grammar. Any schema either compiles or is refused with std::invalid_argument; the
// matcher either follows or refuses with std::length_error (too ambiguous or costly); and every text
// the writer finishes parses as JSON and satisfies the schema as schema_violation checks it.
#include <chorus/json_schema.hpp>

#include "models/json_grammar.hpp"
#include "steered_writer.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto nul = input.find('\0');
  auto schema = chorus::Json::parse(input.substr(0, nul), nullptr, /*allow_exceptions=*/false);
  if (schema.is_discarded())
    return 0;
  std::string_view steering = nul == std::string_view::npos ? std::string_view() : input.substr(nul + 1);
  try {
    auto grammar = chorus::models::json_schema_grammar(schema);
    // Bytes that close what is open first, so that most walks finish.
    auto text = chorus::fuzz::steered_text(grammar, steering, "\"}]0,:1tfn", 2048);
    if (!text)
      return 0;
    auto value = chorus::Json::parse(*text, nullptr, /*allow_exceptions=*/false);
    auto problem = value.is_discarded() ? "it does not parse" : chorus::schema_violation(value, schema);
    if (!problem.empty()) {
      std::fprintf(stderr, "schema %s let a writer finish '%s': %s\n", schema.dump().c_str(), text->c_str(),
                   problem.c_str());
      std::abort();
    }
  } catch (const std::invalid_argument&) {
  } catch (const std::length_error&) {
  }
  return 0;
}
