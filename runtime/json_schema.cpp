#include <chorus/json_schema.hpp>

#include <algorithm>

namespace chorus {

namespace {

bool has_type(const Json& value, const std::string& type) {
  if (type == "object")
    return value.is_object();
  if (type == "array")
    return value.is_array();
  if (type == "string")
    return value.is_string();
  if (type == "number")
    return value.is_number();
  if (type == "integer")
    return value.is_number_integer() || value.is_number_unsigned();
  if (type == "boolean")
    return value.is_boolean();
  if (type == "null")
    return value.is_null();
  return false;
}

// The first way `value` breaks `schema` ("" if none), `path` naming where.
std::string violation(const Json& value, const Json& schema, const std::string& path) {
  if (!schema.is_object())
    return {};
  if (schema.contains("type") && schema["type"].is_string() && !has_type(value, schema["type"].get<std::string>()))
    return path + ": expected " + schema["type"].get<std::string>() + ", got " + value.type_name();
  if (schema.contains("enum") && schema["enum"].is_array()
      && std::find(schema["enum"].begin(), schema["enum"].end(), value) == schema["enum"].end())
    return path + ": " + value.dump() + " is not one of " + schema["enum"].dump();
  if (value.is_object()) {
    if (schema.contains("required") && schema["required"].is_array())
      for (const auto& field : schema["required"])
        if (field.is_string() && !value.contains(field.get<std::string>()))
          return path + ": missing required field '" + field.get<std::string>() + "'";
    if (schema.contains("properties") && schema["properties"].is_object())
      for (const auto& [field, sub_schema] : schema["properties"].items())
        if (value.contains(field))
          if (auto problem = violation(value[field], sub_schema, path + "." + field); !problem.empty())
            return problem;
    if (schema.contains("additionalProperties")) {
      const auto& extra = schema["additionalProperties"];
      auto declared = schema.value("properties", Json::object());
      for (const auto& [field, field_value] : value.items()) {
        if (declared.contains(field))
          continue;
        if (extra == false)
          return path + ": unexpected field '" + field + "'";
        if (auto problem = violation(field_value, extra, path + "." + field); !problem.empty())
          return problem;
      }
    }
  }
  if (value.is_array() && schema.contains("items"))
    for (std::size_t i = 0; i < value.size(); ++i)
      if (auto problem = violation(value[i], schema["items"], path + "[" + std::to_string(i) + "]"); !problem.empty())
        return problem;
  return {};
}

} // namespace

std::string schema_violation(const Json& value, const Json& schema) {
  return violation(value, schema, "$");
}

std::optional<Json> parse_json_reply(const std::string& reply) {
  auto parse = [](const std::string& text) -> std::optional<Json> {
    auto value = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (value.is_discarded())
      return std::nullopt;
    return value;
  };
  auto begin = reply.find_first_not_of(" \t\r\n"), end = reply.find_last_not_of(" \t\r\n");
  if (begin == std::string::npos)
    return std::nullopt;
  if (auto whole = parse(reply.substr(begin, end - begin + 1)))
    return whole;
  for (auto [open, close] : {std::pair{'{', '}'}, std::pair{'[', ']'}}) {
    auto first = reply.find(open), last = reply.rfind(close);
    if (first != std::string::npos && last != std::string::npos && last > first)
      if (auto inner = parse(reply.substr(first, last - first + 1)))
        return inner;
  }
  return std::nullopt;
}

} // namespace chorus
