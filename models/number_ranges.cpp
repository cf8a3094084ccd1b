// Integer ranges as patterns, digit by digit: [lo, hi] of one length splits at its first digit into
// lo's own first digit (the rest from lo's rest up to 9s), the digits strictly between (anything
// after them), and hi's first digit (from 0s up to hi's rest).
#include "models/number_ranges.hpp"

#include <algorithm>
#include <stdexcept>

namespace chorus::models {

namespace {

// Equal-length decimal strings lo <= hi.
std::string same_length(const std::string& lo, const std::string& hi) {
  if (lo == hi)
    return lo;
  const auto rest = lo.size() - 1;
  if (lo.find_first_not_of('0') == std::string::npos && hi.find_first_not_of('9') == std::string::npos)
    return "[0-9]{" + std::to_string(lo.size()) + "}";
  if (lo[0] == hi[0])
    return lo.substr(0, 1) + "(?:" + same_length(lo.substr(1), hi.substr(1)) + ")";
  std::string options = lo.substr(0, 1) + "(?:" + same_length(lo.substr(1), std::string(rest, '9')) + ")";
  if (hi[0] - lo[0] > 1) {
    options +=
      "|[" + std::string(1, static_cast<char>(lo[0] + 1)) + "-" + std::string(1, static_cast<char>(hi[0] - 1)) + "]";
    if (rest > 0)
      options += "[0-9]{" + std::to_string(rest) + "}";
  }
  options += "|" + hi.substr(0, 1) + "(?:" + same_length(std::string(rest, '0'), hi.substr(1)) + ")";
  return options;
}

// The non-negative integers in [lo, hi], as alternatives.
std::string non_negative(std::int64_t lo, std::int64_t hi) {
  std::string options;
  std::int64_t smallest = 0, largest = 9; // of the current length
  for (int length = 1; length <= 18 && smallest <= hi; ++length) {
    if (largest >= lo) {
      auto from = std::max(lo, smallest), to = std::min(hi, largest);
      options += (options.empty() ? "" : "|") + same_length(std::to_string(from), std::to_string(to));
    }
    if (length == 18)
      break;
    smallest = largest + 1;
    largest = largest * 10 + 9;
  }
  return options;
}

} // namespace

std::string integer_range_pattern(std::int64_t least, std::int64_t most) {
  if (least > most || least < -kLargestWrittenInteger || most > kLargestWrittenInteger)
    throw std::invalid_argument("no integer of at most 18 digits lies in [" + std::to_string(least) + ", "
                                + std::to_string(most) + "]");
  std::string options;
  if (least < 0) // -1 .. -(-least), as magnitudes
    options = "-(?:" + non_negative(most < 0 ? -most : 1, -least) + ")";
  if (most >= 0)
    options += (options.empty() ? "" : "|") + non_negative(least > 0 ? least : 0, most);
  return options;
}

} // namespace chorus::models
