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

bool is_mixture_of_experts(const std::string& model_type) {
  return model_type == "qwen2_moe" || model_type == "qwen3_moe" || model_type == "mixtral" || model_type == "olmoe";
}

// Qwen2MoeConfig's, Qwen3MoeConfig's, MixtralConfig's and OlmoeConfig's keys and defaults. Mixtral's
// and OLMoE's experts are intermediate_size wide and every layer is sparse; Qwen's experts have their
// own width, and layers listed in mlp_only_layers or off the decoder_sparse_step keep a dense MLP of
// intermediate_size.
void read_moe(const json& object, const std::filesystem::path& file, ModelConfig& config) {
  const auto& type = config.model_type;
  bool mixtral = type == "mixtral", olmoe = type == "olmoe", qwen3 = type == "qwen3_moe";
  config.num_experts = read_int(object, mixtral ? "num_local_experts" : "num_experts", file,
                                mixtral   ? 8
                                  : olmoe ? 64
                                  : qwen3 ? 128
                                          : 60);
  if (config.num_experts <= 0)
    fail(file, mixtral ? "num_local_experts" : "num_experts",
         "must be positive, got " + std::to_string(config.num_experts));
  config.num_experts_per_tok = read_int(object, "num_experts_per_tok", file, mixtral ? 2 : olmoe || qwen3 ? 8 : 4);
  config.norm_topk_prob = mixtral || read_bool(object, "norm_topk_prob", file, false);
  config.router_aux_loss_coef = read_number(object, "router_aux_loss_coef", file, olmoe ? 0.01 : 0.001);
  config.output_router_logits = read_bool(object, "output_router_logits", file, false);
  auto layers = static_cast<std::size_t>(std::max<std::int64_t>(config.num_hidden_layers, 0));
  config.sparse_layers.assign(layers, true);
  if (mixtral || olmoe) {
    config.moe_intermediate_size = config.intermediate_size;
  } else {
    config.moe_intermediate_size = read_int(object, "moe_intermediate_size", file, qwen3 ? 768 : 1408);
    auto step = read_int(object, "decoder_sparse_step", file, 1);
    if (step <= 0)
      fail(file, "decoder_sparse_step", "must be positive, got " + std::to_string(step));
    for (std::size_t i = 0; i < layers; ++i)
      config.sparse_layers[i] = (static_cast<std::int64_t>(i) + 1) % step == 0;
    auto dense = object.find("mlp_only_layers");
    if (dense != object.end() && !dense->is_null()) {
      if (!dense->is_array())
        fail(file, "mlp_only_layers", "expected a list of layer indices, got " + dense->dump());
      for (const auto& layer : *dense) {
        if (!layer.is_number_integer() || layer.get<std::int64_t>() < 0
            || layer.get<std::int64_t>() >= config.num_hidden_layers)
          fail(file, "mlp_only_layers",
               "entry " + layer.dump() + " is not a layer index (0 to " + std::to_string(config.num_hidden_layers - 1)
                 + ")");
        config.sparse_layers[layer.get<std::size_t>()] = false;
      }
    }
  }
  if (type == "qwen2_moe")
    config.shared_expert_intermediate_size = read_int(object, "shared_expert_intermediate_size", file, 5632);
  // Training-time noise and clipping this engine does not apply: refused rather than ignored.
  if (mixtral && read_number(object, "router_jitter_noise", file, 0.0) != 0)
    fail(file, "router_jitter_noise", "the router's jitter noise is not supported (expected 0)");
  if (olmoe && object.contains("clip_qkv") && !object["clip_qkv"].is_null())
    fail(file, "clip_qkv", "clipping the queries, keys and values is not supported (expected null)");
}

void write_moe(const ModelConfig& config, json& object) {
  const auto& type = config.model_type;
  object[type == "mixtral" ? "num_local_experts" : "num_experts"] = config.num_experts;
  object["num_experts_per_tok"] = config.num_experts_per_tok;
  object["router_aux_loss_coef"] = config.router_aux_loss_coef;
  object["output_router_logits"] = config.output_router_logits;
  if (type == "mixtral")
    return; // always renormalises; its experts are intermediate_size wide
  object["norm_topk_prob"] = config.norm_topk_prob;
  if (type == "olmoe") {
    object["clip_qkv"] = nullptr;
    return;
  }
  object["moe_intermediate_size"] = config.moe_intermediate_size;
  // The dense layers listed one by one, whatever step the folder had: the same layers to transformers.
  object["decoder_sparse_step"] = 1;
  object["mlp_only_layers"] = json::array();
  for (std::int64_t i = 0; i < config.num_hidden_layers; ++i)
    if (!config.sparse(i))
      object["mlp_only_layers"].push_back(i);
  if (type == "qwen2_moe")
    object["shared_expert_intermediate_size"] = config.shared_expert_intermediate_size;
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
