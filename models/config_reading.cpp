// config.json's shared keys: typed readers naming the file and key, and the rotary settings.
#include "models/config_reading.hpp"

#include <chorus/errors.hpp>

#include <cmath>

namespace chorus::models::config_reading {

[[noreturn]] void fail(const std::filesystem::path& file, const std::string& key, const std::string& what) {
  throw CheckpointError(file.string() + ": key '" + key + "': " + what);
}

std::int64_t read_int(const json& object, const std::string& key, const std::filesystem::path& file,
                      std::optional<std::int64_t> fallback) {
  auto found = object.find(key);
  if (found == object.end() || found->is_null()) {
    if (fallback)
      return *fallback;
    fail(file, key, "missing (expected an integer)");
  }
  if (!found->is_number_integer())
    fail(file, key, "expected an integer, got " + found->dump());
  return found->get<std::int64_t>();
}

double read_number(const json& object, const std::string& key, const std::filesystem::path& file, double fallback) {
  auto found = object.find(key);
  if (found == object.end() || found->is_null())
    return fallback;
  if (!found->is_number())
    fail(file, key, "expected a number, got " + found->dump());
  return found->get<double>();
}

bool read_bool(const json& object, const std::string& key, const std::filesystem::path& file, bool fallback) {
  auto found = object.find(key);
  if (found == object.end() || found->is_null())
    return fallback;
  if (!found->is_boolean())
    fail(file, key, "expected true or false, got " + found->dump());
  return found->get<bool>();
}

// "rope_type", or "type" before transformers 4.45. Each kind's keys as transformers'
// modeling_rope_utils reads them.
void read_rope(const json& object, const std::filesystem::path& file, ModelConfig& config, double default_theta,
               const std::string& parameters_key) {
  config.rope_theta = read_number(object, "rope_theta", file, default_theta);
  config.partial_rotary_factor = read_number(object, "partial_rotary_factor", file, 1.0);
  std::string key = "rope_scaling";
  auto found = object.find(parameters_key);
  if (found != object.end() && !found->is_null())
    key = parameters_key;
  else
    found = object.find("rope_scaling");
  if (found == object.end() || found->is_null())
    return;
  const auto& scaling = *found;
  if (!scaling.is_object())
    fail(file, key, "expected an object, got " + scaling.dump());
  auto number = [&](const char* name) -> std::optional<double> {
    auto value = scaling.find(name);
    if (value == scaling.end() || value->is_null())
      return std::nullopt;
    if (!value->is_number())
      fail(file, key + "." + name, "expected a number, got " + value->dump());
    return value->get<double>();
  };
  auto required = [&](const char* name) {
    auto value = number(name);
    if (!value)
      fail(file, key + "." + name, "missing (rope type '" + config.rope_scaling.type + "' needs it)");
    return *value;
  };
  if (key == parameters_key) {
    config.rope_theta = number("rope_theta").value_or(config.rope_theta);
    config.partial_rotary_factor = number("partial_rotary_factor").value_or(config.partial_rotary_factor);
  }
  auto& rope = config.rope_scaling;
  auto type = scaling.find("rope_type");
  if (type == scaling.end())
    type = scaling.find("type");
  if (type != scaling.end() && !type->is_string())
    fail(file, key + ".rope_type", "expected a string, got " + type->dump());
  rope.type = type == scaling.end() ? "default" : type->get<std::string>();
  // Phi-3's first long-context checkpoints name LongRoPE "su"; Phi3Config reads "yarn" as it too.
  if (rope.type == "su" || (rope.type == "yarn" && config.model_type == "phi3"))
    rope.type = "longrope";
  if (rope.type == "default")
    return;
  if (rope.type != "linear" && rope.type != "llama3" && rope.type != "yarn" && rope.type != "longrope")
    fail(file, key + ".rope_type",
         "rope type '" + rope.type + "' is not supported (supported: default, linear, llama3, yarn, longrope)");
  if (rope.type == "longrope") {
    // The pre-training context is Phi3Config's own key, or in the rope settings (transformers 5).
    rope.original_max_position_embeddings =
      static_cast<std::int64_t>(number("original_max_position_embeddings")
                                  .value_or(static_cast<double>(read_int(object, "original_max_position_embeddings",
                                                                         file, config.max_position_embeddings))));
    if (rope.original_max_position_embeddings <= 0)
      fail(file, "original_max_position_embeddings", "must be positive");
    rope.factor = number("factor").value_or(static_cast<double>(config.max_position_embeddings)
                                            / static_cast<double>(rope.original_max_position_embeddings));
    rope.attention_factor = number("attention_factor");
    auto factors = [&](const char* name) {
      auto list = scaling.find(name);
      if (list == scaling.end() || !list->is_array() || list->empty())
        fail(file, key + "." + name, "expected a list of numbers (rope type 'longrope' needs it)");
      std::vector<double> values;
      for (const auto& value : *list) {
        if (!value.is_number() || !(value.get<double>() > 0))
          fail(file, key + "." + name, "expected positive numbers, got " + value.dump());
        values.push_back(value.get<double>());
      }
      return values;
    };
    rope.short_factor = factors("short_factor");
    rope.long_factor = factors("long_factor");
  } else if (rope.type == "yarn") {
    rope.original_max_position_embeddings =
      static_cast<std::int64_t>(number("original_max_position_embeddings").value_or(config.max_position_embeddings));
    rope.factor = number("factor").value_or(static_cast<double>(config.max_position_embeddings)
                                            / static_cast<double>(rope.original_max_position_embeddings));
    rope.attention_factor = number("attention_factor");
    rope.beta_fast = number("beta_fast").value_or(32.0);
    rope.beta_slow = number("beta_slow").value_or(1.0);
    rope.mscale = number("mscale");
    rope.mscale_all_dim = number("mscale_all_dim");
    rope.truncate = read_bool(scaling, "truncate", file, true);
  } else {
    rope.factor = required("factor");
  }
  if (rope.type == "llama3") {
    rope.low_freq_factor = required("low_freq_factor");
    rope.high_freq_factor = required("high_freq_factor");
    rope.original_max_position_embeddings = static_cast<std::int64_t>(required("original_max_position_embeddings"));
    if (rope.high_freq_factor <= rope.low_freq_factor)
      fail(file, key + ".high_freq_factor", "must be greater than low_freq_factor");
  }
  if (!(rope.factor > 0))
    fail(file, key + ".factor", "must be positive");
  if (rope.type != "linear" && rope.original_max_position_embeddings <= 0)
    fail(file, key + ".original_max_position_embeddings", "must be positive");
}

json rope_scaling_json(const ModelConfig& config) {
  const auto& rope = config.rope_scaling;
  if (rope.type == "longrope") {
    // Phi3Config's shape: the pre-training context a key of its own; factor and attention_factor
    // written only where they differ from what they default to.
    json object{{"type", rope.type}, {"short_factor", rope.short_factor}, {"long_factor", rope.long_factor}};
    auto ratio =
      static_cast<double>(config.max_position_embeddings) / static_cast<double>(rope.original_max_position_embeddings);
    if (rope.factor != ratio)
      object["factor"] = rope.factor;
    if (rope.attention_factor)
      object["attention_factor"] = *rope.attention_factor;
    if (config.model_type != "phi3") // elsewhere the context is a key of the rope settings
      object["original_max_position_embeddings"] = rope.original_max_position_embeddings;
    return object;
  }
  json object{{"rope_type", rope.type}, {"factor", rope.factor}};
  if (rope.type == "llama3" || rope.type == "yarn")
    object["original_max_position_embeddings"] = rope.original_max_position_embeddings;
  if (rope.type == "llama3") {
    object["low_freq_factor"] = rope.low_freq_factor;
    object["high_freq_factor"] = rope.high_freq_factor;
  }
  if (rope.type == "yarn") {
    object["beta_fast"] = rope.beta_fast;
    object["beta_slow"] = rope.beta_slow;
    object["truncate"] = rope.truncate;
    if (rope.attention_factor)
      object["attention_factor"] = *rope.attention_factor;
    if (rope.mscale)
      object["mscale"] = *rope.mscale;
    if (rope.mscale_all_dim)
      object["mscale_all_dim"] = *rope.mscale_all_dim;
  }
  return object;
}

} // namespace chorus::models::config_reading
