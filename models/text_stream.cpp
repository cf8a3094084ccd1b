#include "models/text_stream.hpp"

#include "models/generation.hpp"

#include <algorithm>

namespace chorus::models {

namespace {

// The length of a UTF-8 sequence that starts with `lead`; 0 for a byte that cannot start one.
std::size_t sequence_length(unsigned char lead) {
  if (lead < 0x80)
    return 1;
  if (lead >= 0xC2 && lead <= 0xDF)
    return 2;
  if (lead >= 0xE0 && lead <= 0xEF)
    return 3;
  if (lead >= 0xF0 && lead <= 0xF4)
    return 4;
  return 0;
}

// `length` less a trailing sequence that is incomplete but could still become a character.
std::size_t without_partial_character(const std::string& text, std::size_t length) {
  // A partial character is at most 3 bytes: a lead byte and up to 2 continuation bytes.
  for (std::size_t back = 1; back <= 3 && back <= length; ++back) {
    auto byte = static_cast<unsigned char>(text[length - back]);
    if ((byte & 0xC0) == 0x80)
      continue; // a continuation byte: look further back for its lead
    auto needed = sequence_length(byte);
    return needed > back ? length - back : length;
  }
  return length;
}

} // namespace

std::size_t final_text_length(const std::string& text, const std::vector<std::string>& stop_strings) {
  auto length = text_before_stop(text, stop_strings).size();
  if (length == text.size()) { // no stop string yet: hold back what could begin one
    std::size_t held = 0;
    for (const auto& stop : stop_strings) {
      if (stop.empty())
        continue;
      for (std::size_t piece = std::min(stop.size() - 1, length); piece > held; --piece)
        if (text.compare(length - piece, piece, stop, 0, piece) == 0) {
          held = piece;
          break;
        }
    }
    length -= held;
  }
  return without_partial_character(text, length);
}

TextStream::TextStream(std::shared_ptr<const Tokenizer> tokenizer, std::vector<std::string> stop_strings)
  : tokenizer_(std::move(tokenizer)), stop_strings_(std::move(stop_strings)) {}

std::string TextStream::advance(const std::vector<std::int64_t>& tokens) {
  auto text = tokenizer_->decode(tokens, /*skip_special=*/true);
  auto length = final_text_length(text, stop_strings_);
  if (length <= emitted_)
    return {};
  auto piece = text.substr(emitted_, length - emitted_);
  emitted_ = length;
  return piece;
}

} // namespace chorus::models
