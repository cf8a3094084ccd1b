// chorus::Json: the JSON value of configs, schemas and structured output (nlohmann::json).
#pragma once

#include <nlohmann/json.hpp>

namespace chorus {

using Json = nlohmann::json;

} // namespace chorus
