// The field types of recipe configs: how each is read from JSON and from a `--set` value, written
// back, named in `--help` and described in `--schema`. Built in: bool, integers (range-checked),
// floating point, std::string, std::filesystem::path, std::vector<T>, std::optional<T>, Required<T>
// (a field that must be given) and nested config structs (sections); chorus/dataset.hpp and
// chorus/model.hpp add Dataset<Kind> and ModelRef. A type of your own works once ConfigCodec is
// specialised for it. chorus/config.hpp loads whole configs with them.
#pragma once

#include <chorus/errors.hpp>
#include <chorus/json.hpp>

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace chorus {

/// Where a config value is read from, for error messages.
struct ConfigLocation {
  /// The file name, or `--set key=value` for an override.
  std::string source;
  /// The dotted key path, e.g. `sft.lr`; empty at the top level.
  std::string key;

  /// The location of field `name` inside this section.
  ConfigLocation child(std::string_view name) const;

  /// @throws ConfigError "SOURCE: key 'KEY': expected EXPECTED, got <description of got>".
  [[noreturn]] void fail(std::string_view expected, const Json& got) const;

  /// @throws ConfigError "SOURCE: key 'KEY': MESSAGE".
  [[noreturn]] void fail(std::string_view message) const;

  /// @throws ConfigError for a key that this section does not have, suggesting the closest of `known`.
  [[noreturn]] void fail_unknown(const std::vector<std::string>& known) const;
};

/// A field that the user must give: a config with it unset does not load.
template <class T>
class Required {
public:
  /// An unset field.
  Required() = default;
  /// A field set to `value`, e.g. a default that the user may override.
  Required(T value) : value_(std::move(value)) {}

  /// The value.
  /// @throws ConfigError if unset (only possible before the config was loaded).
  const T& value() const {
    if (!value_)
      throw ConfigError("a required config field was read before it was set");
    return *value_;
  }
  /// The value, as value().
  /// @throws ConfigError if unset.
  const T& operator*() const {
    return value();
  }
  /// A pointer to the value, as value().
  /// @throws ConfigError if unset.
  const T* operator->() const {
    return &value();
  }
  /// Whether the field has a value.
  bool is_set() const noexcept {
    return value_.has_value();
  }
  /// Sets the value.
  void set(T value) {
    value_ = std::move(value);
  }

private:
  std::optional<T> value_;
};

/// Reads, writes and names one config field type. Specialise it for your own types with:
/// `static std::string type_name()`, `static void read(const Json&, T&, const ConfigLocation&)`,
/// `static Json write(const T&)`, `static Json parse_text(std::string_view, const ConfigLocation&)`
/// (the value of a `--set` override as JSON), optionally `static Json schema()` (its JSON Schema; without
/// it the schema accepts any value) and, for a type that must be given, `static bool is_set(const T&)`.
template <class T>
struct ConfigCodec;

/// A struct declared with CHORUS_CONFIG.
template <class T>
concept IsConfig = requires(T* config) {
  { chorus_is_config(config) } -> std::same_as<bool>;
};

namespace detail {

std::string describe_json(const Json& value);
Json parse_json_text(std::string_view text, const ConfigLocation& at, std::string_view expected);
Json read_json_file(const std::filesystem::path& file);
/// Splits "a.b.c=value" into {"a","b","c"} and "value". @throws ConfigError on a missing '='.
std::pair<std::vector<std::string>, std::string> split_override(std::string_view assignment);

template <class T>
using codec_for = ConfigCodec<std::remove_cvref_t<T>>;

template <class T>
concept HasIsSet = requires(const T& value) {
  { ConfigCodec<T>::is_set(value) } -> std::same_as<bool>;
};

template <class T>
concept HasSchema = requires {
  { ConfigCodec<T>::schema() } -> std::same_as<Json>;
};

/// The JSON Schema of field type `T`: its codec's, or one that accepts any value.
template <class T>
Json schema_of() {
  if constexpr (HasSchema<T>)
    return ConfigCodec<T>::schema();
  else
    return Json{{"description", ConfigCodec<T>::type_name()}};
}

/// The comments above a config struct's fields, registered at start-up by the source file that
/// chorus-config-docs generates for a recipe program (chorus_add_recipe in CMake).
struct ConfigDocs {
  ConfigDocs(std::string_view type, std::initializer_list<std::pair<std::string_view, std::string_view>> fields);
};

/// The registered comment of `field` in config struct `type`; empty if there is none.
std::string config_field_doc(std::string_view type, std::string_view field);

} // namespace detail

// -- codecs for the built-in field types ----------------------------------------

/// Reads and writes bool config fields: true or false.
template <>
struct ConfigCodec<bool> {
  /// The type's name in messages and `--help`: `bool`.
  static std::string type_name() {
    return "bool";
  }
  /// Reads a JSON boolean into `out`.
  /// @throws ConfigError if `value` is not a boolean.
  static void read(const Json& value, bool& out, const ConfigLocation& at) {
    if (!value.is_boolean())
      at.fail("bool (true or false)", value);
    out = value.get<bool>();
  }
  /// The value as JSON.
  static Json write(bool value) {
    return value;
  }
  /// The JSON Schema: `{"type": "boolean"}`.
  static Json schema() {
    return {{"type", "boolean"}};
  }
  /// Reads a `--set` value: `true`, `1`, `yes`, `on`, `false`, `0`, `no` or `off`.
  /// @throws ConfigError for any other text.
  static Json parse_text(std::string_view text, const ConfigLocation& at) {
    if (text == "true" || text == "1" || text == "yes" || text == "on")
      return true;
    if (text == "false" || text == "0" || text == "no" || text == "off")
      return false;
    at.fail("bool (true or false)", Json(std::string(text)));
  }
};

/// Reads and writes integer config fields, checking that the value fits in `T`.
template <std::integral T>
  requires(!std::same_as<T, bool>)
struct ConfigCodec<T> {
  /// The type's name in messages and `--help`: `int` or `unsigned int`.
  static std::string type_name() {
    return std::is_signed_v<T> ? "int" : "unsigned int";
  }
  /// Reads a JSON whole number (a float such as `1e3` is accepted if it has no fraction) into `out`.
  /// @throws ConfigError if `value` is not a whole number or is out of the range of `T`.
  static void read(const Json& value, T& out, const ConfigLocation& at) {
    // JSON writes 1e3 as a float: accept floats that hold a whole number, reject 1.5.
    long double number;
    if (value.is_number_integer() || value.is_number_unsigned())
      number = value.is_number_unsigned() ? static_cast<long double>(value.get<std::uint64_t>())
                                          : static_cast<long double>(value.get<std::int64_t>());
    else if (value.is_number_float() && std::trunc(value.get<double>()) == value.get<double>())
      number = value.get<double>();
    else
      at.fail(type_name() + " (a whole number)", value);
    if (number < static_cast<long double>(std::numeric_limits<T>::min())
        || number > static_cast<long double>(std::numeric_limits<T>::max()))
      at.fail(type_name() + " in [" + std::to_string(std::numeric_limits<T>::min()) + ", "
                + std::to_string(std::numeric_limits<T>::max()) + "]",
              value);
    out = static_cast<T>(number);
  }
  /// The value as JSON.
  static Json write(T value) {
    return value;
  }
  /// The JSON Schema: an integer between the minimum and maximum of `T`.
  static Json schema() {
    return {
      {"type", "integer"}, {"minimum", std::numeric_limits<T>::min()}, {"maximum", std::numeric_limits<T>::max()}};
  }
  /// Reads a `--set` value as JSON.
  /// @throws ConfigError if `text` is not valid JSON.
  static Json parse_text(std::string_view text, const ConfigLocation& at) {
    return detail::parse_json_text(text, at, type_name());
  }
};

/// Reads and writes floating-point config fields.
template <std::floating_point T>
struct ConfigCodec<T> {
  /// The type's name in messages and `--help`: `float`.
  static std::string type_name() {
    return "float";
  }
  /// Reads a JSON number into `out`.
  /// @throws ConfigError if `value` is not a number.
  static void read(const Json& value, T& out, const ConfigLocation& at) {
    if (!value.is_number())
      at.fail("float", value);
    out = value.get<T>();
  }
  /// The value as JSON.
  static Json write(T value) {
    return value;
  }
  /// The JSON Schema: `{"type": "number"}`.
  static Json schema() {
    return {{"type", "number"}};
  }
  /// Reads a `--set` value as JSON.
  /// @throws ConfigError if `text` is not valid JSON.
  static Json parse_text(std::string_view text, const ConfigLocation& at) {
    return detail::parse_json_text(text, at, "float");
  }
};

/// Reads and writes string config fields.
template <>
struct ConfigCodec<std::string> {
  /// The type's name in messages and `--help`: `string`.
  static std::string type_name() {
    return "string";
  }
  /// Reads a JSON string into `out`.
  /// @throws ConfigError if `value` is not a string.
  static void read(const Json& value, std::string& out, const ConfigLocation& at) {
    if (!value.is_string())
      at.fail("string", value);
    out = value.get<std::string>();
  }
  /// The value as JSON.
  static Json write(const std::string& value) {
    return value;
  }
  /// The JSON Schema: `{"type": "string"}`.
  static Json schema() {
    return {{"type", "string"}};
  }
  /// Reads a `--set` value: the text as is, without quotes.
  static Json parse_text(std::string_view text, const ConfigLocation&) {
    return std::string(text); // --set name=hello: no quotes needed
  }
};

/// Reads and writes free-form JSON config fields (a JSON Schema a grader checks against, say): any
/// JSON value, kept as it is; null when not given.
template <>
struct ConfigCodec<Json> {
  /// The type's name in messages and `--help`: `JSON`.
  static std::string type_name() {
    return "JSON";
  }
  /// Keeps `value` as it is.
  static void read(const Json& value, Json& out, const ConfigLocation&) {
    out = value;
  }
  /// The value itself.
  static Json write(const Json& value) {
    return value;
  }
  /// Reads a `--set` value as JSON text: `--set schema='{"type": "object"}'`.
  static Json parse_text(std::string_view text, const ConfigLocation& at) {
    return detail::parse_json_text(text, at, "JSON");
  }
};

/// Reads and writes filesystem path config fields, as JSON strings.
template <>
struct ConfigCodec<std::filesystem::path> {
  /// The type's name in messages and `--help`: `path`.
  static std::string type_name() {
    return "path";
  }
  /// Reads a JSON string into `out`.
  /// @throws ConfigError if `value` is not a string.
  static void read(const Json& value, std::filesystem::path& out, const ConfigLocation& at) {
    if (!value.is_string())
      at.fail("path (a string)", value);
    out = value.get<std::string>();
  }
  /// The path as a JSON string.
  static Json write(const std::filesystem::path& value) {
    return value.string();
  }
  /// The JSON Schema: a string with format `path`.
  static Json schema() {
    return {{"type", "string"}, {"format", "path"}};
  }
  /// Reads a `--set` value: the text as is, without quotes.
  static Json parse_text(std::string_view text, const ConfigLocation&) {
    return std::string(text);
  }
};

/// Reads and writes list config fields: JSON arrays whose items are read with the codec of `T`.
template <class T>
struct ConfigCodec<std::vector<T>> {
  /// The type's name in messages and `--help`: `list of ` and the item type's name.
  static std::string type_name() {
    return "list of " + ConfigCodec<T>::type_name();
  }
  /// Reads a JSON array into `out`, each item with the codec of `T`.
  /// @throws ConfigError if `value` is not an array or an item does not read.
  static void read(const Json& value, std::vector<T>& out, const ConfigLocation& at) {
    if (!value.is_array())
      at.fail(type_name() + " (a JSON array)", value);
    std::vector<T> result(value.size());
    for (std::size_t i = 0; i < value.size(); ++i)
      ConfigCodec<T>::read(value[i], result[i], at.child("[" + std::to_string(i) + "]"));
    out = std::move(result);
  }
  /// The list as a JSON array.
  static Json write(const std::vector<T>& value) {
    auto result = Json::array();
    for (const auto& item : value)
      result.push_back(ConfigCodec<T>::write(item));
    return result;
  }
  /// The JSON Schema: an array whose items have the schema of `T`.
  static Json schema() {
    return {{"type", "array"}, {"items", detail::schema_of<T>()}};
  }
  /// `[1,2,3]` as JSON, or `1,2,3` with each item read as for a single field.
  static Json parse_text(std::string_view text, const ConfigLocation& at) {
    if (!text.empty() && text.front() == '[')
      return detail::parse_json_text(text, at, type_name());
    auto result = Json::array();
    while (!text.empty()) {
      auto comma = text.find(',');
      result.push_back(ConfigCodec<T>::parse_text(text.substr(0, comma), at));
      text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    }
    return result;
  }
};

/// Reads and writes optional config fields: the value of `T`, or null for none.
template <class T>
struct ConfigCodec<std::optional<T>> {
  /// The type's name in messages and `--help`: the name of `T` and ` or null`.
  static std::string type_name() {
    return ConfigCodec<T>::type_name() + " or null";
  }
  /// Reads null as no value, or else the value of `T` into `out`.
  /// @throws ConfigError if `value` is neither null nor a valid `T`.
  static void read(const Json& value, std::optional<T>& out, const ConfigLocation& at) {
    if (value.is_null()) {
      out.reset();
      return;
    }
    T result{};
    ConfigCodec<T>::read(value, result, at);
    out = std::move(result);
  }
  /// The value as JSON, or null if there is none.
  static Json write(const std::optional<T>& value) {
    return value ? ConfigCodec<T>::write(*value) : Json(nullptr);
  }
  /// The JSON Schema: the schema of `T` or null.
  static Json schema() {
    return {{"anyOf", {detail::schema_of<T>(), {{"type", "null"}}}}};
  }
  /// Reads a `--set` value: `null` for none, or else as for `T`.
  /// @throws ConfigError if the text does not read as `T`.
  static Json parse_text(std::string_view text, const ConfigLocation& at) {
    return text == "null" ? Json(nullptr) : ConfigCodec<T>::parse_text(text, at);
  }
};

/// Reads and writes required config fields: as `T`, and a config does not load while one is unset.
template <class T>
struct ConfigCodec<Required<T>> {
  /// The type's name in messages and `--help`: the name of `T`.
  static std::string type_name() {
    return ConfigCodec<T>::type_name();
  }
  /// Reads the value of `T` into `out` and marks it set.
  /// @throws ConfigError if `value` is not a valid `T`.
  static void read(const Json& value, Required<T>& out, const ConfigLocation& at) {
    T result{};
    ConfigCodec<T>::read(value, result, at);
    out.set(std::move(result));
  }
  /// The value as JSON, or null if unset.
  static Json write(const Required<T>& value) {
    return value.is_set() ? ConfigCodec<T>::write(*value) : Json(nullptr);
  }
  /// The JSON Schema of `T`.
  static Json schema() {
    return detail::schema_of<T>();
  }
  /// Reads a `--set` value as for `T`.
  /// @throws ConfigError if the text does not read as `T`.
  static Json parse_text(std::string_view text, const ConfigLocation& at) {
    return ConfigCodec<T>::parse_text(text, at);
  }
  /// Whether the field has a value.
  static bool is_set(const Required<T>& value) {
    return value.is_set();
  }
};

/// A nested config struct: a JSON object, keys as `outer.inner` in overrides.
template <IsConfig T>
struct ConfigCodec<T> {
  /// The type's name in messages and `--help`: `section`.
  static std::string type_name() {
    return "section";
  }
  /// Reads a JSON object into `out`, field by field; keys that are absent keep their values.
  /// @throws ConfigError if `value` is not an object, has an unknown key, or a field does not read.
  static void read(const Json& value, T& out, const ConfigLocation& at) {
    if (!value.is_object())
      at.fail("a section (JSON object)", value);
    std::vector<std::string> known;
    chorus_config_visit(out, [&](const char* name, auto&) { known.emplace_back(name); });
    for (const auto& item : value.items())
      if (std::find(known.begin(), known.end(), item.key()) == known.end())
        at.child(item.key()).fail_unknown(known);
    chorus_config_visit(out, [&](const char* name, auto& field) {
      if (auto found = value.find(name); found != value.end())
        detail::codec_for<decltype(field)>::read(*found, field, at.child(name));
    });
  }
  /// The struct as a JSON object with one key per field.
  static Json write(const T& value) {
    auto result = Json::object();
    chorus_config_visit(value, [&](const char* name, const auto& field) {
      result[name] = detail::codec_for<decltype(field)>::write(field);
    });
    return result;
  }
  /// An object with exactly the struct's fields: each with its type, its default (required fields
  /// have none and are listed as required) and the comment above it as its description.
  static Json schema() {
    T defaults{};
    const std::string type = chorus_config_name(static_cast<T*>(nullptr));
    auto properties = Json::object();
    auto required = Json::array();
    chorus_config_visit(defaults, [&](const char* name, const auto& field) {
      using Field = std::remove_cvref_t<decltype(field)>;
      Json property = detail::schema_of<Field>();
      bool has_default = !IsConfig<Field>;
      if constexpr (detail::HasIsSet<Field>)
        has_default = ConfigCodec<Field>::is_set(field);
      if (has_default)
        property["default"] = ConfigCodec<Field>::write(field);
      else if (!IsConfig<Field>)
        required.push_back(name);
      if (auto doc = detail::config_field_doc(type, name); !doc.empty())
        property["description"] = doc;
      properties[name] = std::move(property);
    });
    Json result{{"type", "object"}, {"properties", std::move(properties)}, {"additionalProperties", false}};
    if (!required.empty())
      result["required"] = std::move(required);
    return result;
  }
  /// Reads a `--set` value as a JSON object.
  /// @throws ConfigError if `text` is not valid JSON.
  static Json parse_text(std::string_view text, const ConfigLocation& at) {
    return detail::parse_json_text(text, at, "a section (JSON object)");
  }
};

} // namespace chorus
