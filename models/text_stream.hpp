// TextStream: a completion's text as it grows, in pieces that never have to be taken back. Streaming
// a completion token by token must not send half of a UTF-8 character (a token may end inside one),
// nor text that a stop string will cut once its last characters arrive.
#pragma once

#include "models/tokenizer.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace chorus::models {

/// How much of `text` is final: everything before the first stop string, less a trailing partial
/// UTF-8 character and less a trailing piece that could be the start of a stop string.
std::size_t final_text_length(const std::string& text, const std::vector<std::string>& stop_strings);

class TextStream {
public:
  /// Decodes as the finished completion is decoded (special tokens left out) and cuts at
  /// `stop_strings` as it is, so that the pieces add up to a prefix of its text.
  TextStream(std::shared_ptr<const Tokenizer> tokenizer, std::vector<std::string> stop_strings);

  /// The final text that `tokens` (the whole completion so far) adds to what earlier calls returned.
  std::string advance(const std::vector<std::int64_t>& tokens);

  /// Bytes of text returned so far.
  std::size_t emitted() const noexcept {
    return emitted_;
  }

private:
  std::shared_ptr<const Tokenizer> tokenizer_;
  std::vector<std::string> stop_strings_;
  std::size_t emitted_ = 0;
};

} // namespace chorus::models
