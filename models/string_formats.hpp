// The strings of JSON Schema's "format" keyword, as regular expressions guided decoding writes them
// with (json_grammar.cpp). Each writes only valid values, not every valid value: dates skip
// 29 February, times the leap second, IPv6 addresses are written in full, e-mail addresses and host
// names in the plain forms of letters, digits and single hyphens, ending in a label of letters.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace chorus::models {

/// The pattern of `format` ("date-time", "date", "time", "duration", "email", "hostname", "ipv4",
/// "ipv6", "uuid": the formats OpenAI's structured outputs take); nullopt for any other.
std::optional<std::string> string_format_pattern(std::string_view format);

/// The formats string_format_pattern knows, for error messages.
const char* string_format_names();

} // namespace chorus::models
