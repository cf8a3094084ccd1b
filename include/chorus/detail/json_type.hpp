// Whether a JSON value has a JSON-Schema "type": one name or a list of them. Shared by the schema
// validator (chorus/json_schema.hpp) and guided decoding's schema compiler (models/json_grammar.cpp),
// which must agree on it. Valid C++17: the models library includes it.
#pragma once

#include <chorus/json.hpp>

#include <algorithm>
#include <string>

namespace chorus::detail {

inline bool json_has_type(const Json& value, const Json& type) {
  if (type.is_array())
    return std::any_of(type.begin(), type.end(), [&](const Json& one) { return json_has_type(value, one); });
  auto name = type.is_string() ? type.get<std::string>() : std::string();
  if (name == "object")
    return value.is_object();
  if (name == "array")
    return value.is_array();
  if (name == "string")
    return value.is_string();
  if (name == "number")
    return value.is_number();
  if (name == "integer")
    return value.is_number_integer() || value.is_number_unsigned();
  if (name == "boolean")
    return value.is_boolean();
  if (name == "null")
    return value.is_null();
  return false;
}

} // namespace chorus::detail
