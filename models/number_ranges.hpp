// The integers between two bounds as a regular expression over their JSON text, for the "minimum" and
// "maximum" of an integer schema in guided decoding (json_grammar.cpp).
//
//   integer_range_pattern(-5, 120);   // "-[1-5]|[0-9]|[1-9][0-9]|1[01][0-9]|120" (in some such form)
#pragma once

#include <cstdint>
#include <string>

namespace chorus::models {

/// The largest magnitude guided decoding writes an integer with (18 digits: it parses as 64 bits).
constexpr std::int64_t kLargestWrittenInteger = 999'999'999'999'999'999;

/// A pattern matching exactly the JSON texts of the integers in [least, most] (no leading zeros, no
/// "-0"), both within ±kLargestWrittenInteger and least <= most.
/// @throws std::invalid_argument otherwise.
std::string integer_range_pattern(std::int64_t least, std::int64_t most);

} // namespace chorus::models
