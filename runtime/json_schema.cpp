#include <chorus/detail/json_type.hpp>
#include <chorus/detail/schema_pattern.hpp>
#include <chorus/json_schema.hpp>

#include <algorithm>
#include <cstdint>
#include <optional>

namespace chorus {

namespace {

std::size_t code_points(const std::string& text) {
  return static_cast<std::size_t>(
    std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

// A bound as a count (negative ones as 0); nullopt when it is not an integer.
std::optional<std::uint64_t> count_bound(const Json& schema, const char* keyword) {
  if (!schema.contains(keyword))
    return std::nullopt;
  const auto& value = schema[keyword];
  if (value.is_number_unsigned())
    return value.get<std::uint64_t>();
  if (value.is_number_integer())
    return static_cast<std::uint64_t>(std::max<std::int64_t>(value.get<std::int64_t>(), 0));
  return std::nullopt;
}

// A string's characters or an array's items against the schema's bounds on them.
std::string size_violation(std::size_t size, const Json& schema, const char* least, const char* most,
                           const std::string& path) {
  auto count = static_cast<std::uint64_t>(size);
  if (auto bound = count_bound(schema, least); bound && count < *bound)
    return path + ": " + std::to_string(count) + ", fewer than " + least + " " + std::to_string(*bound);
  if (auto bound = count_bound(schema, most); bound && count > *bound)
    return path + ": " + std::to_string(count) + ", more than " + most + " " + std::to_string(*bound);
  return {};
}

// Whether `text` holds a match of `pattern` ("" if so), else what is wrong.
std::string pattern_violation(const std::string& text, const Json& pattern, const std::string& path) {
  if (!pattern.is_string())
    return path + ": the pattern " + pattern.dump() + " is not a string";
  auto shown = [](const std::string& s) { return Json(s).dump(-1, ' ', false, Json::error_handler_t::replace); };
  const auto& source = pattern.get_ref<const std::string&>();
  std::string error;
  auto compiled = detail::compile_schema_pattern(source, error);
  if (!compiled)
    return path + ": the pattern " + shown(source) + " does not compile " + error;
  auto found = detail::schema_pattern_matches(compiled.get(), text, error);
  if (!found)
    return path + ": " + shown(text) + " could not be matched against the pattern " + shown(source) + ": " + error;
  return *found ? "" : path + ": " + shown(text) + " does not match the pattern " + shown(source);
}

// A number against "minimum", "maximum", "exclusiveMinimum" and "exclusiveMaximum" (numbers, as in
// JSON Schema 6 and later; integers compared exactly).
std::string bound_violation(const Json& value, const Json& schema, const std::string& path) {
  // -1, 0 or 1 as value is below, at or above bound.
  auto compare = [](const Json& a, const Json& b) {
    if (a.is_number_integer() && b.is_number_integer() && !a.is_number_unsigned() && !b.is_number_unsigned()) {
      auto x = a.get<std::int64_t>(), y = b.get<std::int64_t>();
      return (x > y) - (x < y);
    }
    auto x = a.get<long double>(), y = b.get<long double>();
    return (x > y) - (x < y);
  };
  // Each bound, the side it keeps, and whether it is exclusive: an exclusive keyword always, minimum
  // and maximum when draft 4's boolean exclusiveMinimum / exclusiveMaximum says so.
  struct Bound {
    const char* keyword;
    bool lower;
    const char* exclusive_flag; // draft 4's, for minimum and maximum
    const char* words;
    const char* exclusive_words;
  };
  static const Bound bounds[] = {
    {"minimum", true, "exclusiveMinimum", "less than minimum", "not more than exclusive minimum"},
    {"maximum", false, "exclusiveMaximum", "more than maximum", "not less than exclusive maximum"},
    {"exclusiveMinimum", true, nullptr, "not more than exclusiveMinimum", "not more than exclusiveMinimum"},
    {"exclusiveMaximum", false, nullptr, "not less than exclusiveMaximum", "not less than exclusiveMaximum"}};
  for (const auto& bound : bounds) {
    if (!schema.contains(bound.keyword) || !schema[bound.keyword].is_number())
      continue;
    const int inside = compare(value, schema[bound.keyword]) * (bound.lower ? 1 : -1); // 0: on the bound
    const bool exclusive = !bound.exclusive_flag || schema.value(bound.exclusive_flag, Json()) == true;
    if (inside < 0 || (inside == 0 && exclusive))
      return path + ": " + value.dump() + ", " + (inside == 0 ? bound.exclusive_words : bound.words) + " "
        + schema[bound.keyword].dump();
  }
  return {};
}

class Validator {
public:
  explicit Validator(const Json& root) : root_(root) {}

  // The first way `value` breaks `schema` ("" if none), `path` naming where.
  std::string violation(const Json& value, const Json& schema, const std::string& path, int depth = 0) const {
    if (!schema.is_object())
      return {};
    // A $ref cycle that makes no progress (a definition that is only a reference to itself) would
    // recurse for ever.
    if (depth > kDeepest)
      return path + ": the schema nests deeper than " + std::to_string(kDeepest) + " (a $ref cycle?)";
    if (schema.contains("$ref") && schema["$ref"].is_string())
      if (const auto* target = resolve(schema["$ref"].get<std::string>()))
        if (auto problem = violation(value, *target, path, depth + 1); !problem.empty())
          return problem;
    if (schema.contains("type") && !detail::json_has_type(value, schema["type"]))
      return path + ": expected "
        + (schema["type"].is_string() ? schema["type"].get<std::string>() : schema["type"].dump()) + ", got "
        + value.type_name();
    if (schema.contains("enum") && schema["enum"].is_array()
        && std::find(schema["enum"].begin(), schema["enum"].end(), value) == schema["enum"].end())
      return path + ": " + value.dump() + " is not one of " + schema["enum"].dump();
    if (schema.contains("const") && value != schema["const"])
      return path + ": expected " + schema["const"].dump() + ", got " + value.dump();
    if (schema.contains("anyOf") && schema["anyOf"].is_array()) {
      auto passes = [&](const Json& option) { return violation(value, option, path, depth + 1).empty(); };
      if (std::none_of(schema["anyOf"].begin(), schema["anyOf"].end(), passes))
        return path + ": " + value.dump() + " satisfies none of anyOf";
    }
    if (schema.contains("oneOf") && schema["oneOf"].is_array()) {
      auto passes = [&](const Json& option) { return violation(value, option, path, depth + 1).empty(); };
      if (std::count_if(schema["oneOf"].begin(), schema["oneOf"].end(), passes) != 1)
        return path + ": " + value.dump() + " does not satisfy exactly one of oneOf";
    }
    if (value.is_string()) {
      const auto& text = value.get_ref<const std::string&>();
      if (auto problem = size_violation(code_points(text), schema, "minLength", "maxLength", path); !problem.empty())
        return problem;
      if (schema.contains("pattern"))
        if (auto problem = pattern_violation(text, schema["pattern"], path); !problem.empty())
          return problem;
    }
    if (value.is_object()) {
      if (schema.contains("required") && schema["required"].is_array())
        for (const auto& field : schema["required"])
          if (field.is_string() && !value.contains(field.get<std::string>()))
            return path + ": missing required field '" + field.get<std::string>() + "'";
      if (schema.contains("properties") && schema["properties"].is_object())
        for (const auto& [field, sub_schema] : schema["properties"].items())
          if (value.contains(field))
            if (auto problem = violation(value[field], sub_schema, path + "." + field, depth + 1); !problem.empty())
              return problem;
      if (schema.contains("additionalProperties")) {
        const auto& extra = schema["additionalProperties"];
        auto declared = schema.value("properties", Json::object());
        for (const auto& [field, field_value] : value.items()) {
          if (declared.contains(field))
            continue;
          if (extra == false)
            return path + ": unexpected field '" + field + "'";
          if (auto problem = violation(field_value, extra, path + "." + field, depth + 1); !problem.empty())
            return problem;
        }
      }
    }
    if (value.is_number())
      if (auto problem = bound_violation(value, schema, path); !problem.empty())
        return problem;
    if (value.is_array()) {
      if (auto problem = size_violation(value.size(), schema, "minItems", "maxItems", path); !problem.empty())
        return problem;
      if (schema.contains("items"))
        for (std::size_t i = 0; i < value.size(); ++i)
          if (auto problem = violation(value[i], schema["items"], path + "[" + std::to_string(i) + "]", depth + 1);
              !problem.empty())
            return problem;
    }
    return {};
  }

private:
  // "#/$defs/name" or "#/definitions/name" at the top of the schema; null for any other reference.
  const Json* resolve(const std::string& ref) const {
    for (std::string section : {"$defs", "definitions"}) {
      auto prefix = "#/" + section + "/";
      if (ref.rfind(prefix, 0) == 0 && root_.is_object() && root_.contains(section)
          && root_[section].contains(ref.substr(prefix.size())))
        return &root_[section][ref.substr(prefix.size())];
    }
    return nullptr;
  }

  static constexpr int kDeepest = 256;
  const Json& root_;
};

} // namespace

std::string schema_violation(const Json& value, const Json& schema) {
  return Validator(schema).violation(value, schema, "$");
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
