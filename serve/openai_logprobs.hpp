// Log-probs in the OpenAI API's wire format: chat's per-token entries with their bytes and top
// alternatives, and the completions API's parallel lists with text offsets.
#pragma once

#include "serve/openai_protocol.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <vector>

namespace chorus::serve {

/// A choice's "logprobs": chat's {"content": [...]} or the completions API's parallel lists (with
/// text_offset counted from `offset` characters, advanced past the positions); null if the request
/// did not ask for them.
nlohmann::json logprobs_value(const ResponseHeader& header, const std::vector<PositionLogprobs>& positions,
                              std::size_t& offset);

} // namespace chorus::serve
