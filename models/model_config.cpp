// config.json <-> ModelConfig. Reads the keys the families of model_config.hpp use, in the spellings
// of transformers 4 and 5, and rejects what this engine would compute wrongly (other activations,
// rope types it does not know, Qwen2's partial windows) instead of ignoring it.
#include "models/model_config.hpp"

#include <chorus/errors.hpp>

#include "models/config_reading.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <utility>

namespace chorus::models {

namespace {

using nlohmann::json;
using namespace config_reading;

// The model types read here, and the list an error message gives of them.
constexpr std::array<std::string_view, 15> kModelTypes{"llama",       "mistral",   "qwen2",     "qwen3",   "gemma2",
                                                       "gemma3_text", "olmo2",     "olmo3",     "smollm3", "granite",
                                                       "phi3",        "qwen2_moe", "qwen3_moe", "mixtral", "olmoe"};

std::string expected_model_types() {
  std::string list;
  for (std::size_t i = 0; i < kModelTypes.size(); ++i)
    list += (i == 0 ? "\"" : i + 1 == kModelTypes.size() ? " or \"" : ", \"") + std::string(kModelTypes[i]) + "\"";
  return "expected " + list;
}

// 0 for a causal LM; a `...ForSequenceClassification` architecture's label count, which must be 1 (a
// scoring model). Transformers writes the labels as id2label; num_labels is accepted too.
std::int64_t read_num_labels(const json& object, const std::filesystem::path& file) {
  auto architectures = object.find("architectures");
  if (architectures == object.end() || !architectures->is_array())
    return 0;
  bool classifier = false;
  for (const auto& name : *architectures) {
    constexpr std::string_view kSuffix = "ForSequenceClassification";
    auto text = name.is_string() ? name.get<std::string>() : std::string();
    classifier = classifier
      || (text.size() > kSuffix.size() && text.compare(text.size() - kSuffix.size(), kSuffix.size(), kSuffix) == 0);
  }
  if (!classifier)
    return 0;
  std::int64_t labels = 2; // transformers' default
  if (auto id2label = object.find("id2label"); id2label != object.end() && id2label->is_object())
    labels = static_cast<std::int64_t>(id2label->size());
  if (object.contains("num_labels"))
    labels = read_int(object, "num_labels", file);
  if (labels != 1)
    fail(file, "num_labels",
         "a sequence-classification model with " + std::to_string(labels)
           + " labels is not supported (a scoring model has one: num_labels 1)");
  return 1;
}

} // namespace

std::string ModelConfig::architecture() const {
  return std::string(model_type == "qwen2"           ? "Qwen2"
                       : model_type == "qwen3"       ? "Qwen3"
                       : model_type == "mistral"     ? "Mistral"
                       : model_type == "gemma3_text" ? "Gemma3"
                       : model_type == "gemma2"      ? "Gemma2"
                       : model_type == "olmo2"       ? "Olmo2"
                       : model_type == "olmo3"       ? "Olmo3"
                       : model_type == "smollm3"     ? "SmolLM3"
                       : model_type == "granite"     ? "Granite"
                       : model_type == "phi3"        ? "Phi3"
                       : model_type == "qwen2_moe"   ? "Qwen2Moe"
                       : model_type == "qwen3_moe"   ? "Qwen3Moe"
                       : model_type == "mixtral"     ? "Mixtral"
                       : model_type == "olmoe"       ? "Olmoe"
                                                     : "Llama")
    + (num_labels > 0 ? "ForSequenceClassification" : "ForCausalLM");
}

double ModelConfig::attention_scale() const {
  if (attention_multiplier > 0) // Granite's
    return attention_multiplier;
  return 1.0 / std::sqrt(query_pre_attn_scalar > 0 ? query_pre_attn_scalar : static_cast<double>(head_dim));
}

ModelConfig ModelConfig::from_json(const json& object, const std::filesystem::path& file) {
  if (!object.is_object())
    throw CheckpointError(file.string() + ": expected a JSON object");
  ModelConfig config;
  auto type = object.find("model_type");
  if (type != object.end() && *type == "gemma3") {
    // Gemma 3's multimodal checkpoints: the language model's config is text_config, without the
    // keys where it keeps transformers' defaults, and the storage dtype and token ids are outside.
    auto text = object.value("text_config", json());
    if (!text.is_object())
      fail(file, "text_config", "missing (a \"gemma3\" checkpoint keeps its language model's config there)");
    text["model_type"] = "gemma3_text";
    for (const char* key : {"torch_dtype", "dtype", "bos_token_id", "eos_token_id"})
      if (object.contains(key) && !text.contains(key))
        text[key] = object[key];
    config = from_json(text, file.string() + " (text_config)");
    config.from_multimodal = true;
    return config;
  }
  if (type == object.end() || !type->is_string())
    fail(file, "model_type", "missing (" + expected_model_types() + ")");
  config.model_type = type->get<std::string>();
  if (std::find(kModelTypes.begin(), kModelTypes.end(), config.model_type) == kModelTypes.end())
    fail(file, "model_type", "'" + config.model_type + "' is not supported (" + expected_model_types() + ")");
  bool gemma = config.gemma();
  // Gemma 3's multimodal configs leave out what keeps Gemma3TextConfig's default.
  auto gemma_default = [&](std::int64_t value) { return gemma ? std::optional<std::int64_t>(value) : std::nullopt; };
  bool gemma2 = config.model_type == "gemma2";
  config.vocab_size = read_int(object, "vocab_size", file, gemma_default(gemma2 ? 256000 : 262208));
  config.hidden_size = read_int(object, "hidden_size", file, gemma_default(2304));
  config.intermediate_size = read_int(object, "intermediate_size", file, gemma_default(9216));
  config.num_hidden_layers = read_int(object, "num_hidden_layers", file, gemma_default(26));
  config.num_attention_heads = read_int(object, "num_attention_heads", file, gemma_default(8));
  config.num_key_value_heads = read_int(object, "num_key_value_heads", file, gemma ? 4 : config.num_attention_heads);
  config.head_dim = read_int(object, "head_dim", file,
                             gemma                              ? 256
                               : config.num_attention_heads > 0 ? config.hidden_size / config.num_attention_heads
                                                                : 0);
  const auto& family = config.model_type;
  config.max_position_embeddings = read_int(object, "max_position_embeddings", file,
                                            gemma2                                             ? 8192
                                              : gemma || family == "mixtral"                   ? 131072
                                              : family == "qwen3_moe" || family == "qwen2_moe" ? 32768
                                              : family == "olmoe"                              ? 4096
                                                                                               : 2048);
  config.rms_norm_eps = read_number(object, "rms_norm_eps", file,
                                    config.olmo() || config.model_type == "phi3" || config.model_type == "mixtral"
                                        || config.model_type == "olmoe"
                                      ? 1e-5
                                      : 1e-6);
  if (gemma)
    read_gemma(object, file, config);
  else
    read_rope(object, file, config, family == "mixtral" ? 1000000.0 : 10000.0);
  if (config.model_type == "olmo3")
    read_olmo3(object, file, config);
  if (config.model_type == "smollm3")
    read_smollm3(object, file, config);
  if (config.model_type == "granite")
    read_granite(object, file, config);
  if (is_mixture_of_experts(config.model_type))
    read_moe(object, file, config);
  // Phi-3's and Phi-4's partial_rotary_factor and LongRoPE come with the rotary settings.
  if (config.model_type != "phi3" && config.partial_rotary_factor != 1)
    fail(file, "partial_rotary_factor", "a rotary embedding over part of each head is read for phi3 only");
  config.attention_bias = config.model_type == "qwen2" || config.model_type == "qwen2_moe"
    || read_bool(object, "attention_bias", file, false);
  config.tie_word_embeddings = read_bool(object, "tie_word_embeddings", file, gemma);
  // transformers 5 writes the storage dtype as "dtype".
  const char* dtype_key = object.contains("torch_dtype") ? "torch_dtype" : "dtype";
  if (auto dtype = object.find(dtype_key); dtype != object.end() && !dtype->is_null()) {
    if (!dtype->is_string())
      fail(file, dtype_key, "expected a string, got " + dtype->dump());
    config.torch_dtype = dtype->get<std::string>();
    if (config.torch_dtype != "float32" && config.torch_dtype != "bfloat16" && config.torch_dtype != "float16")
      fail(file, dtype_key, "'" + config.torch_dtype + "' is not supported (expected float32, bfloat16 or float16)");
  }
  if (object.contains("bos_token_id") && !object["bos_token_id"].is_null())
    config.bos_token_id = read_int(object, "bos_token_id", file);
  if (auto eos = object.find("eos_token_id"); eos != object.end() && !eos->is_null()) {
    if (eos->is_array()) {
      for (const auto& id : *eos) {
        if (!id.is_number_integer())
          fail(file, "eos_token_id", "expected integers, got " + eos->dump());
        config.eos_token_ids.push_back(id.get<std::int64_t>());
      }
    } else {
      config.eos_token_ids.push_back(read_int(object, "eos_token_id", file));
    }
  }
  config.num_labels = read_num_labels(object, file);
  if (auto act = object.find("hidden_act"); !gemma && act != object.end() && !act->is_null() && *act != "silu")
    fail(file, "hidden_act", "activation " + act->dump() + " is not supported (expected \"silu\")");
  if (read_bool(object, "mlp_bias", file, false))
    fail(file, "mlp_bias", "biases on the MLP projections are not supported");
  // Qwen2's window covers only the layers from max_window_layers on, and no released model uses it.
  if (read_bool(object, "use_sliding_window", file, false))
    fail(file, "use_sliding_window", "sliding-window attention is not supported for " + config.model_type);
  // Mistral 7B v0.1's, Phi-3 mini's and Mixtral's (null in the released Mixtrals)
  if (config.model_type == "mistral" || config.model_type == "phi3" || config.model_type == "mixtral")
    read_window_in_every_layer(object, file, config);
  config.validate(file);
  return config;
}

ModelConfig ModelConfig::load(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in)
    throw CheckpointError(file.string() + ": cannot open");
  auto object = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (object.is_discarded())
    throw CheckpointError(file.string() + ": invalid JSON");
  return from_json(object, file);
}

void ModelConfig::validate(const std::filesystem::path& file) const {
  auto positive = [&](const char* key, std::int64_t value) {
    if (value <= 0)
      fail(file, key, "must be positive, got " + std::to_string(value));
  };
  positive("vocab_size", vocab_size);
  positive("hidden_size", hidden_size);
  positive("intermediate_size", intermediate_size);
  positive("num_hidden_layers", num_hidden_layers);
  positive("num_attention_heads", num_attention_heads);
  positive("num_key_value_heads", num_key_value_heads);
  positive("head_dim", head_dim);
  positive("max_position_embeddings", max_position_embeddings);
  if (num_attention_heads % num_key_value_heads != 0)
    fail(file, "num_key_value_heads",
         std::to_string(num_key_value_heads) + " does not divide num_attention_heads "
           + std::to_string(num_attention_heads));
  if (head_dim % 2 != 0)
    fail(file, "head_dim", "rotary embeddings need an even head_dim, got " + std::to_string(head_dim));
  if (!(partial_rotary_factor > 0 && partial_rotary_factor <= 1) || rotary_dim() % 2 != 0)
    fail(file, "partial_rotary_factor",
         "expected a share in (0, 1] of head_dim " + std::to_string(head_dim)
           + " that is an even number of dimensions, got " + std::to_string(partial_rotary_factor));
  for (const auto* factors : {&rope_scaling.short_factor, &rope_scaling.long_factor})
    if (rope_scaling.type == "longrope" && static_cast<std::int64_t>(factors->size()) != rotary_dim() / 2)
      fail(file, factors == &rope_scaling.short_factor ? "rope_scaling.short_factor" : "rope_scaling.long_factor",
           "expected " + std::to_string(rotary_dim() / 2) + " factors (one per rotary frequency), got "
             + std::to_string(factors->size()));
  if (rms_norm_eps <= 0)
    fail(file, "rms_norm_eps", "must be positive");
  if (rope_theta <= 0)
    fail(file, "rope_theta", "must be positive");
  if (sliding_window < 0)
    fail(file, "sliding_window", "must be positive");
  if (sliding_window > 0 && static_cast<std::int64_t>(sliding_layers.size()) != num_hidden_layers)
    fail(file, "layer_types", "expected one entry per layer (" + std::to_string(num_hidden_layers) + ")");
  if (!nope_layers.empty() && static_cast<std::int64_t>(nope_layers.size()) != num_hidden_layers)
    fail(file, "no_rope_layers", "expected one entry per layer (" + std::to_string(num_hidden_layers) + ")");
  for (auto [key, value] : {std::pair{"embedding_multiplier", embedding_multiplier},
                            {"residual_multiplier", residual_multiplier},
                            {"logits_scaling", logits_scaling}})
    if (!(value > 0))
      fail(file, key, "must be positive, got " + std::to_string(value));
  // Granite's scale of the scores; 0 in the other families: unset.
  if (!(attention_multiplier > 0) && (model_type == "granite" || attention_multiplier != 0))
    fail(file, "attention_multiplier", "must be positive, got " + std::to_string(attention_multiplier));
  if (query_pre_attn_scalar < 0)
    fail(file, "query_pre_attn_scalar", "must be positive");
  if (rope_local_base_freq < 0)
    fail(file, "rope_local_base_freq", "must be positive");
  if (attn_logit_softcapping < 0 || final_logit_softcapping < 0)
    fail(file, attn_logit_softcapping < 0 ? "attn_logit_softcapping" : "final_logit_softcapping", "must be positive");
  if (moe()) {
    if (num_experts_per_tok < 1 || num_experts_per_tok > num_experts)
      fail(file, "num_experts_per_tok",
           "expected 1 to " + std::to_string(num_experts) + " (the experts), got "
             + std::to_string(num_experts_per_tok));
    positive("moe_intermediate_size", moe_intermediate_size);
    if (static_cast<std::int64_t>(sparse_layers.size()) != num_hidden_layers)
      fail(file, "mlp_only_layers", "expected one entry per layer (" + std::to_string(num_hidden_layers) + ")");
    if (shared_expert_intermediate_size < 0 || (model_type == "qwen2_moe" && shared_expert_intermediate_size == 0))
      fail(file, "shared_expert_intermediate_size", "must be positive");
    if ((model_type == "mixtral" || model_type == "olmoe") && moe_intermediate_size != intermediate_size)
      fail(file, "intermediate_size", model_type + "'s experts are intermediate_size wide");
    if (router_aux_loss_coef < 0)
      fail(file, "router_aux_loss_coef", "must be positive or zero");
  }
  if (hidden_activation != "silu" && hidden_activation != "gelu_pytorch_tanh")
    fail(file, "hidden_activation",
         "'" + hidden_activation + "' is not supported (expected silu or gelu_pytorch_tanh)");
}

json ModelConfig::to_json() const {
  json object{
    {"architectures", {architecture()}},
    {"model_type", model_type},
    {"vocab_size", vocab_size},
    {"hidden_size", hidden_size},
    {"intermediate_size", intermediate_size},
    {"num_hidden_layers", num_hidden_layers},
    {"num_attention_heads", num_attention_heads},
    {"num_key_value_heads", num_key_value_heads},
    {"head_dim", head_dim},
    {"max_position_embeddings", max_position_embeddings},
    {"rms_norm_eps", rms_norm_eps},
    {"rope_theta", rope_theta},
    {"rope_scaling", rope_scaling.type == "default" ? json(nullptr) : rope_scaling_json(*this)},
    {"tie_word_embeddings", tie_word_embeddings},
    {"torch_dtype", torch_dtype},
  };
  if (!gemma())
    object["hidden_act"] = hidden_activation;
  if (model_type != "qwen2" && model_type != "qwen2_moe")
    object["attention_bias"] = attention_bias;
  if (moe())
    write_moe(*this, object);
  if (model_type == "mistral" || model_type == "mixtral")
    object["sliding_window"] = sliding_window > 0 ? json(sliding_window) : json(nullptr);
  if (model_type == "olmo3")
    object["sliding_window"] = sliding_window;
  if (model_type == "granite") {
    object["embedding_multiplier"] = embedding_multiplier;
    object["residual_multiplier"] = residual_multiplier;
    object["attention_multiplier"] = attention_scale();
    object["logits_scaling"] = logits_scaling;
  }
  if (model_type == "phi3") {
    object["sliding_window"] = sliding_window > 0 ? json(sliding_window) : json(nullptr);
    object["partial_rotary_factor"] = partial_rotary_factor;
    object["original_max_position_embeddings"] =
      rope_scaling.type == "longrope" ? rope_scaling.original_max_position_embeddings : max_position_embeddings;
  }
  if (model_type == "smollm3") {
    object["no_rope_layers"] = json::array();
    for (std::int64_t i = 0; i < num_hidden_layers; ++i)
      object["no_rope_layers"].push_back(nope(i) ? 0 : 1);
  }
  if (gemma() || model_type == "olmo3") {
    object["layer_types"] = json::array();
    for (std::int64_t i = 0; i < num_hidden_layers; ++i)
      object["layer_types"].push_back(sliding(i) ? "sliding_attention" : "full_attention");
  }
  if (gemma()) {
    object["hidden_activation"] = hidden_activation;
    object["query_pre_attn_scalar"] = query_pre_attn_scalar;
    object["sliding_window"] = sliding_window;
    if (model_type == "gemma3_text")
      object["rope_local_base_freq"] = rope_local_base_freq;
    object["attn_logit_softcapping"] = attn_logit_softcapping > 0 ? json(attn_logit_softcapping) : json(nullptr);
    object["final_logit_softcapping"] = final_logit_softcapping > 0 ? json(final_logit_softcapping) : json(nullptr);
  }
  if (num_labels > 0) {
    object["id2label"] = json::object();
    object["label2id"] = json::object();
    for (std::int64_t i = 0; i < num_labels; ++i) {
      object["id2label"][std::to_string(i)] = "LABEL_" + std::to_string(i);
      object["label2id"]["LABEL_" + std::to_string(i)] = i;
    }
  }
  if (bos_token_id)
    object["bos_token_id"] = *bos_token_id;
  if (eos_token_ids.size() == 1)
    object["eos_token_id"] = eos_token_ids.front();
  else if (!eos_token_ids.empty())
    object["eos_token_id"] = eos_token_ids;
  return object;
}

ModelConfig ModelConfig::tiny(std::int64_t vocab_size) {
  ModelConfig config;
  config.model_type = "qwen2";
  config.vocab_size = vocab_size;
  config.hidden_size = 256;
  config.intermediate_size = 688;
  config.num_hidden_layers = 4;
  config.num_attention_heads = 8;
  config.num_key_value_heads = 2;
  config.head_dim = 32;
  config.max_position_embeddings = 1024;
  config.rms_norm_eps = 1e-6;
  config.rope_theta = 10000.0;
  config.attention_bias = true;
  config.tie_word_embeddings = true;
  return config;
}

ModelConfig ModelConfig::qwen2_half_billion() {
  ModelConfig config;
  config.model_type = "qwen2";
  config.vocab_size = 151936;
  config.hidden_size = 896;
  config.intermediate_size = 4864;
  config.num_hidden_layers = 24;
  config.num_attention_heads = 14;
  config.num_key_value_heads = 2;
  config.head_dim = 64;
  config.attention_bias = true;
  config.tie_word_embeddings = true;
  config.max_position_embeddings = 32768;
  config.rope_theta = 1000000.0;
  config.rms_norm_eps = 1e-6;
  config.torch_dtype = "bfloat16";
  return config;
}

} // namespace chorus::models
