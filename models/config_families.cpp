// Each family's own config.json keys, with its transformers config class's defaults.
#include "models/config_reading.hpp"

#include <algorithm>

namespace chorus::models::config_reading {

namespace {

// Gemma 3's two rotary embeddings: the full-attention layers' (rope_theta, rope_scaling) and the
// sliding layers' base (rope_local_base_freq, no scaling). transformers 5 writes both in
// rope_parameters, keyed by layer type.
void read_gemma_rope(const json& object, const std::filesystem::path& file, ModelConfig& config) {
  auto nested = object.find("rope_parameters");
  if (nested == object.end() || !nested->is_object() || !nested->contains("full_attention")) {
    read_rope(object, file, config, 1000000.0);
    config.rope_local_base_freq = read_number(object, "rope_local_base_freq", file, 10000.0);
    return;
  }
  read_rope(json{{"rope_parameters.full_attention", (*nested)["full_attention"]}}, file, config, 1000000.0,
            "rope_parameters.full_attention");
  ModelConfig local;
  const auto sliding = nested->value("sliding_attention", json::object());
  read_rope(json{{"rope_parameters.sliding_attention", sliding}}, file, local, 10000.0,
            "rope_parameters.sliding_attention");
  if (local.rope_scaling.type != "default")
    fail(file, "rope_parameters.sliding_attention.rope_type",
         "'" + local.rope_scaling.type + "': the sliding layers' rotary embedding takes no scaling here");
  config.rope_local_base_freq = local.rope_theta;
}

// Which layers attend within the window: `layer_types` ("sliding_attention" or "full_attention" per
// layer), or, in older configs, every layer but each `sliding_window_pattern`-th (Gemma 2's: 2).
std::vector<bool> read_sliding_layers(const json& object, const std::filesystem::path& file, std::int64_t layers,
                                      std::int64_t default_pattern) {
  std::vector<bool> sliding(static_cast<std::size_t>(std::max<std::int64_t>(layers, 0)));
  auto types = object.find("layer_types");
  if (types != object.end() && !types->is_null()) {
    if (!types->is_array() || static_cast<std::int64_t>(types->size()) != layers)
      fail(file, "layer_types", "expected one entry per layer (" + std::to_string(layers) + ")");
    for (std::size_t i = 0; i < sliding.size(); ++i) {
      const auto& type = (*types)[i];
      if (type != "sliding_attention" && type != "full_attention")
        fail(file, "layer_types",
             "entry " + std::to_string(i) + " is " + type.dump()
               + " (expected \"sliding_attention\" or \"full_attention\")");
      sliding[i] = type == "sliding_attention";
    }
    return sliding;
  }
  auto pattern = read_int(object, "sliding_window_pattern", file, default_pattern);
  if (pattern <= 0)
    fail(file, "sliding_window_pattern", "must be positive");
  for (std::size_t i = 0; i < sliding.size(); ++i)
    sliding[i] = (static_cast<std::int64_t>(i) + 1) % pattern != 0;
  return sliding;
}

} // namespace

// Gemma 2's and 3's own keys, with Gemma2Config's and Gemma3TextConfig's defaults.
void read_gemma(const json& object, const std::filesystem::path& file, ModelConfig& config) {
  bool gemma2 = config.model_type == "gemma2";
  if (gemma2)
    read_rope(object, file, config);
  else
    read_gemma_rope(object, file, config);
  const char* activation_key = object.contains("hidden_activation") ? "hidden_activation" : "hidden_act";
  auto activation = object.value(activation_key, json("gelu_pytorch_tanh"));
  if (activation != "gelu_pytorch_tanh")
    fail(file, activation_key,
         "activation " + activation.dump() + " is not supported (expected \"gelu_pytorch_tanh\")");
  config.hidden_activation = "gelu_pytorch_tanh";
  config.query_pre_attn_scalar = read_number(object, "query_pre_attn_scalar", file, 256.0);
  config.sliding_window = read_int(object, "sliding_window", file, 4096);
  config.sliding_layers = read_sliding_layers(object, file, config.num_hidden_layers, gemma2 ? 2 : 6);
  // Gemma 2's caps, Gemma2Config's defaults where absent (null turns one off); Gemma 3 has none.
  auto cap = [&](const char* key, double fallback) {
    auto found = object.find(key);
    if (found == object.end())
      return fallback;
    return found->is_null() ? 0.0 : read_number(object, key, file, 0.0);
  };
  config.attn_logit_softcapping = cap("attn_logit_softcapping", gemma2 ? 50.0 : 0.0);
  config.final_logit_softcapping = cap("final_logit_softcapping", gemma2 ? 30.0 : 0.0);
  if (read_bool(object, "use_bidirectional_attention", file, false))
    fail(file, "use_bidirectional_attention", "bidirectional attention (an embedding model) is not supported");
}

// OLMo 3's keys: its window over three layers of every four (Olmo3Config's defaults), and its rotary
// embedding, whose scaling (YaRN in the long-context models) applies to the full-attention layers
// only: the sliding ones turn by rope_theta unscaled.
void read_olmo3(const json& object, const std::filesystem::path& file, ModelConfig& config) {
  config.sliding_window = read_int(object, "sliding_window", file, 4096);
  config.sliding_layers = read_sliding_layers(object, file, config.num_hidden_layers, 4);
  if (config.rope_scaling.type != "default")
    config.rope_local_base_freq = config.rope_theta;
}

// SmolLM3's layers without a rotary embedding: `no_rope_layers` (1: the layer rotates, 0: it does
// not), or every no_rope_layer_interval-th layer (4) when the list is absent or empty, as
// SmolLM3Config fills it in.
void read_smollm3(const json& object, const std::filesystem::path& file, ModelConfig& config) {
  auto layers = static_cast<std::size_t>(std::max<std::int64_t>(config.num_hidden_layers, 0));
  config.nope_layers.assign(layers, false);
  auto listed = object.find("no_rope_layers");
  if (listed == object.end() || listed->is_null() || (listed->is_array() && listed->empty())) {
    auto interval = read_int(object, "no_rope_layer_interval", file, 4);
    if (interval <= 0)
      fail(file, "no_rope_layer_interval", "must be positive, got " + std::to_string(interval));
    for (std::size_t i = 0; i < layers; ++i)
      config.nope_layers[i] = (static_cast<std::int64_t>(i) + 1) % interval == 0;
    return;
  }
  if (!listed->is_array() || listed->size() != layers)
    fail(file, "no_rope_layers", "expected one entry per layer (" + std::to_string(layers) + ")");
  for (std::size_t i = 0; i < layers; ++i) {
    const auto& entry = (*listed)[i];
    if (!entry.is_number_integer() || (entry != 0 && entry != 1))
      fail(file, "no_rope_layers",
           "entry " + std::to_string(i) + " is " + entry.dump()
             + " (expected 1: the layer rotates, or 0: it does not)");
    config.nope_layers[i] = entry == 0;
  }
}

// Granite's four multipliers, GraniteConfig's defaults (1) where absent (validate checks them).
void read_granite(const json& object, const std::filesystem::path& file, ModelConfig& config) {
  config.embedding_multiplier = read_number(object, "embedding_multiplier", file, 1.0);
  config.residual_multiplier = read_number(object, "residual_multiplier", file, 1.0);
  config.attention_multiplier = read_number(object, "attention_multiplier", file, 1.0);
  config.logits_scaling = read_number(object, "logits_scaling", file, 1.0);
}

void read_window_in_every_layer(const json& object, const std::filesystem::path& file, ModelConfig& config) {
  if (!object.contains("sliding_window") || object["sliding_window"].is_null())
    return;
  auto window = read_int(object, "sliding_window", file);
  if (window < config.max_position_embeddings) {
    config.sliding_window = window;
    config.sliding_layers.assign(static_cast<std::size_t>(std::max<std::int64_t>(config.num_hidden_layers, 0)), true);
  }
}

} // namespace chorus::models::config_reading
