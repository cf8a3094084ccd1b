// Fuzzes tokenizer.json loading and encoding. The input is a tokenizer.json, optionally followed by a
// NUL byte and a text to encode (JSON cannot hold a raw NUL); without one, a fixed text is encoded.
// A file either loads or fails with a CheckpointError; a loaded tokenizer encodes any text, and its
// ids decode without error.
#include <chorus/errors.hpp>

#include "fuzz/input_file.hpp"
#include "models/bpe_tokenizer.hpp"

#include <cstring>
#include <stdexcept>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto* nul = static_cast<const std::uint8_t*>(std::memchr(data, 0, size));
  auto json_size = nul ? static_cast<std::size_t>(nul - data) : size;
  std::string text = nul ? std::string(reinterpret_cast<const char*>(nul + 1), size - json_size - 1)
                         : std::string("Hello, world! 2026 \xc3\xbc"
                                       "n\xc3\xaf"
                                       "c\xc3\xb6"
                                       "d\xc3\xa9 \xf0\x9f\x99\x82\t\n");
  auto path = chorus::fuzz::input_file("tokenizer.json", data, json_size);
  std::unique_ptr<chorus::models::BpeTokenizer> tokenizer;
  try {
    tokenizer = chorus::models::BpeTokenizer::load(path);
  } catch (const chorus::CheckpointError&) {
    return 0;
  }
  std::vector<std::int64_t> ids;
  try {
    ids = tokenizer->encode(text);
  } catch (const chorus::Error&) {
    return 0; // e.g. text that is not UTF-8, refused with a message
  }
  for (auto id : ids)
    if (id < 0 || id >= tokenizer->vocab_size())
      throw std::logic_error("encode produced id " + std::to_string(id) + " outside the vocabulary");
  (void)tokenizer->decode(ids);
  for (auto id : ids)
    (void)tokenizer->token_text(id);
  return 0;
}
