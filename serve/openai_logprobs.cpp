#include "serve/openai_logprobs.hpp"

#include <algorithm>
#include <cmath>

namespace chorus::serve {

using nlohmann::json;

namespace {

json byte_values(const std::string& text) {
  json bytes = json::array();
  for (unsigned char byte : text)
    bytes.push_back(byte);
  return bytes;
}

json token_entry(const TokenLogprob& token) {
  return {{"token", token.text}, {"logprob", token.logprob}, {"bytes", byte_values(token.text)}};
}

// Characters in `text` (UTF-8 lead bytes; a token may hold part of a character).
std::size_t characters(const std::string& text) {
  return static_cast<std::size_t>(
    std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

} // namespace

// A choice's "logprobs": chat's {"content": [...]} or the completions API's parallel lists (with
// text_offset counted from `offset` characters, advanced past the positions); null if not asked for.
json logprobs_value(const ResponseHeader& header, const std::vector<PositionLogprobs>& positions, std::size_t& offset) {
  if (!header.logprobs)
    return nullptr;
  if (header.chat) {
    json content = json::array();
    for (const auto& position : positions) {
      auto entry = token_entry(position.chosen);
      entry["top_logprobs"] = json::array();
      for (const auto& alternative : position.top)
        entry["top_logprobs"].push_back(token_entry(alternative));
      content.push_back(std::move(entry));
    }
    return {{"content", std::move(content)}, {"refusal", nullptr}};
  }
  json tokens = json::array(), values = json::array(), top = json::array(), offsets = json::array();
  for (const auto& position : positions) {
    tokens.push_back(position.chosen.text);
    if (std::isnan(position.chosen.logprob)) { // an echoed prompt's first token: nothing before it
      values.push_back(nullptr);
      top.push_back(nullptr);
    } else {
      values.push_back(position.chosen.logprob);
      json alternatives = json::object();
      for (const auto& alternative : position.top) // two ids may decode alike: the likelier one stays
        if (!alternatives.contains(alternative.text))
          alternatives[alternative.text] = alternative.logprob;
      top.push_back(std::move(alternatives));
    }
    offsets.push_back(offset);
    offset += characters(position.chosen.text);
  }
  return {{"tokens", std::move(tokens)},
          {"token_logprobs", std::move(values)},
          {"top_logprobs", std::move(top)},
          {"text_offset", std::move(offsets)}};
}

} // namespace chorus::serve
