// Reading the values of a program's command-line options: the programs (recipes, chorus-node,
// chorus-serve) word their errors the same way.
#pragma once

#include <stdexcept>
#include <string>

namespace chorus {

/// The value of option argv[i] (argv[i + 1]); moves `i` past it.
/// @throws std::invalid_argument "option OPTION needs a value" at the end of the command line.
inline std::string option_value(int argc, char** argv, int& i) {
  if (i + 1 >= argc)
    throw std::invalid_argument("option " + std::string(argv[i]) + " needs a value");
  return argv[++i];
}

/// `text`, the value of `option`, as an integer in [low, high].
/// @throws std::invalid_argument "OPTION TEXT: expected an integer from LOW to HIGH".
inline long option_integer(const std::string& option, const std::string& text, long low, long high) {
  std::size_t used = 0;
  long value = 0;
  bool parsed = false;
  try {
    value = std::stol(text, &used);
    parsed = used == text.size();
  } catch (const std::exception&) {
  }
  if (!parsed || value < low || value > high)
    throw std::invalid_argument(option + " " + text + ": expected an integer from " + std::to_string(low) + " to "
                                + std::to_string(high));
  return value;
}

} // namespace chorus
