// Recipe configs: a plain struct, declared once with CHORUS_CONFIG, loaded from a JSON file and
// `key.path=value` overrides, checked strictly, listed by `--help` and described as a JSON Schema by
// `--schema` (the comment above a field is its description, for programs built with chorus_add_recipe).
//
//   struct SftConfig { double lr = 1e-5; int epochs = 1; Required<std::string> data; };
//   CHORUS_CONFIG(SftConfig, lr, epochs, data)
//
// Defaults are the struct's own initialisers. Every mistake is a ConfigError that names the source
// (file or `--set`), the key path and the expected type: unknown keys (with the closest known key),
// wrong types, integers out of range, and missing required fields. The field types, and how to add
// one of your own, are in chorus/config_codec.hpp.
#pragma once

#include <chorus/config_codec.hpp>
#include <chorus/detail/pp.hpp>
#include <chorus/errors.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace chorus {

// -- loading --------------------------------------------------------------------

namespace detail {

template <IsConfig T>
void assign_path(T& section, std::span<const std::string> path, std::string_view text, const ConfigLocation& at) {
  bool found = false;
  std::vector<std::string> known;
  chorus_config_visit(section, [&](const char* name, auto& field) {
    known.emplace_back(name);
    if (found || path.front() != name)
      return;
    found = true;
    using Field = std::remove_cvref_t<decltype(field)>;
    auto here = at.child(name);
    if (path.size() == 1) {
      ConfigCodec<Field>::read(ConfigCodec<Field>::parse_text(text, here), field, here);
    } else if constexpr (IsConfig<Field>) {
      assign_path(field, path.subspan(1), text, here);
    } else {
      here.fail("is a " + ConfigCodec<Field>::type_name() + ", not a section: it has no key '" + path[1] + "'");
    }
  });
  if (!found)
    at.child(path.front()).fail_unknown(known);
}

template <IsConfig T>
void check_required(const T& section, const ConfigLocation& at) {
  chorus_config_visit(section, [&](const char* name, const auto& field) {
    using Field = std::remove_cvref_t<decltype(field)>;
    if constexpr (IsConfig<Field>) {
      check_required(field, at.child(name));
    } else if constexpr (HasIsSet<Field>) {
      if (!ConfigCodec<Field>::is_set(field))
        at.child(name).fail("missing required field (expected " + ConfigCodec<Field>::type_name()
                            + "): set it in the config file or with --set " + at.child(name).key + "=...");
    }
  });
}

template <IsConfig T>
void describe_fields(const T& section, const std::string& prefix, std::vector<std::vector<std::string>>& rows) {
  chorus_config_visit(section, [&](const char* name, const auto& field) {
    using Field = std::remove_cvref_t<decltype(field)>;
    auto key = prefix + name;
    if constexpr (IsConfig<Field>) {
      describe_fields(field, key + ".", rows);
    } else {
      std::string fallback = ConfigCodec<Field>::write(field).dump();
      if constexpr (HasIsSet<Field>)
        if (!ConfigCodec<Field>::is_set(field))
          fallback = "(required)";
      rows.push_back({key, ConfigCodec<Field>::type_name(), fallback});
    }
  });
}

std::string format_table(const std::vector<std::vector<std::string>>& rows);

} // namespace detail

/// Applies one override `key.path=value` to `config`; the value is read as the field's type
/// (`--set lr=1e-5`, `--set name=run1`, `--set layers=[1,2]` or `layers=1,2`).
/// @throws ConfigError naming the override, the key path and the expected type.
template <IsConfig T>
void apply_override(T& config, std::string_view assignment) {
  auto [path, text] = detail::split_override(assignment);
  ConfigLocation at{"--set " + std::string(assignment), ""};
  detail::assign_path(config, std::span<const std::string>(path), text, at);
}

/// Loads a config: the struct's defaults, then `file` if not empty, then `overrides` in order; then
/// checks that every required field is set.
/// @throws ConfigError for any mistake, naming where it is.
template <IsConfig T>
T load_config(const std::filesystem::path& file, const std::vector<std::string>& overrides) {
  T config{};
  if (!file.empty())
    ConfigCodec<T>::read(detail::read_json_file(file), config, ConfigLocation{file.string(), ""});
  for (const auto& assignment : overrides)
    apply_override(config, assignment);
  detail::check_required(config, ConfigLocation{"config", ""});
  return config;
}

/// The config as JSON, e.g. to save the resolved config beside a run's outputs.
template <IsConfig T>
Json config_to_json(const T& config) {
  return ConfigCodec<T>::write(config);
}

/// The JSON Schema (draft 2020-12) of a config file for the recipe `recipe` with config `T`, for
/// `--schema`: a config file that loads validates against it, and one that fails validation does not
/// load. (`--set` overrides also take the shorthands of parse_text, such as `layers=1,2`.)
template <IsConfig T>
Json config_schema(std::string_view recipe) {
  Json document{{"$schema", "https://json-schema.org/draft/2020-12/schema"},
                {"title", std::string(recipe) + " config"},
                {"description",
                 "The --config file of the recipe program '" + std::string(recipe)
                   + "'; each key can also be given as --set key=value."}};
  document.update(ConfigCodec<T>::schema());
  return document;
}

/// A table of every field of `T`: key path, type and default, for `--help`.
template <IsConfig T>
std::string describe_config() {
  T defaults{};
  std::vector<std::vector<std::string>> rows{{"key", "type", "default"}};
  detail::describe_fields(defaults, "", rows);
  return detail::format_table(rows);
}

} // namespace chorus

/// Implementation helper of CHORUS_CONFIG: visits one field.
#define CHORUS_CONFIG_VISIT_FIELD(field) visit(#field, self.field);

/// Declares the fields of config struct `Type`, in order. Write it after the struct, in the same
/// namespace: `CHORUS_CONFIG(MyConfig, lr, epochs, dataset)`.
#define CHORUS_CONFIG(Type, ...)                                     \
  [[maybe_unused]] constexpr bool chorus_is_config(Type*) {          \
    return true;                                                     \
  }                                                                  \
  [[maybe_unused]] constexpr const char* chorus_config_name(Type*) { \
    return #Type;                                                    \
  }                                                                  \
  template <class Self, class Visitor>                               \
    requires std::same_as<std::remove_const_t<Self>, Type>           \
  void chorus_config_visit(Self& self, Visitor&& visit) {            \
    CHORUS_PP_FOR_EACH(CHORUS_CONFIG_VISIT_FIELD, __VA_ARGS__)       \
  }
