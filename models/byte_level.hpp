// The byte-level alphabet of GPT-2-style tokenizers: each byte is written as one printable
// character, so that a vocabulary of strings can hold arbitrary bytes.
#pragma once

#include <array>
#include <string>

namespace chorus::models {

/// The UTF-8 spelling of each byte's symbol: printable Latin-1 bytes stand for themselves, the
/// others for U+0100, U+0101, ... in byte order (GPT-2's bytes_to_unicode).
inline std::array<std::string, 256> byte_symbols() {
  std::array<std::string, 256> symbols;
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    char32_t code_point = printable ? static_cast<char32_t>(b) : next++;
    std::string utf8;
    if (code_point < 0x80) {
      utf8 += static_cast<char>(code_point);
    } else {
      utf8 += static_cast<char>(0xC0 | (code_point >> 6));
      utf8 += static_cast<char>(0x80 | (code_point & 0x3F));
    }
    symbols[static_cast<std::size_t>(b)] = utf8;
  }
  return symbols;
}

} // namespace chorus::models
