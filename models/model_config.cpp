// config.json <-> ModelConfig. Reads the keys the Llama, Qwen2, Qwen3, Mistral and Gemma 2 and 3
// families use, in the spellings of transformers 4 and 5, and rejects what this engine would compute
// wrongly (other activations, rope types it does not know, Qwen2's partial windows) instead of
// ignoring it.
#include "models/model_config.hpp"

#include <chorus/errors.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <utility>

namespace chorus::models {

namespace {

using nlohmann::json;

// The model types read here, and the list an error message gives of them.
constexpr std::array<std::string_view, 10> kModelTypes{"llama",       "mistral", "qwen2", "qwen3",   "gemma2",
                                                       "gemma3_text", "olmo2",   "olmo3", "smollm3", "granite"};

std::string expected_model_types() {
  std::string list;
  for (std::size_t i = 0; i < kModelTypes.size(); ++i)
    list += (i == 0 ? "\"" : i + 1 == kModelTypes.size() ? " or \"" : ", \"") + std::string(kModelTypes[i]) + "\"";
  return "expected " + list;
}

[[noreturn]] void fail(const std::filesystem::path& file, const std::string& key, const std::string& what) {
  throw CheckpointError(file.string() + ": key '" + key + "': " + what);
}

std::int64_t read_int(const json& object, const std::string& key, const std::filesystem::path& file,
                      std::optional<std::int64_t> fallback = std::nullopt) {
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

// The rotary settings: transformers 5 writes them as one `rope_parameters` object (rope_theta with
// the scaling keys), earlier versions as `rope_theta` beside a `rope_scaling` object ("rope_type",
// or "type" before that). Each kind's keys as transformers' modeling_rope_utils reads them.
// `parameters_key`: where transformers 5 writes them (Gemma 3's nest them by layer type).
void read_rope(const json& object, const std::filesystem::path& file, ModelConfig& config,
               double default_theta = 10000.0, const std::string& parameters_key = "rope_parameters") {
  config.rope_theta = read_number(object, "rope_theta", file, default_theta);
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
  if (key == parameters_key)
    config.rope_theta = number("rope_theta").value_or(config.rope_theta);
  auto& rope = config.rope_scaling;
  auto type = scaling.find("rope_type");
  if (type == scaling.end())
    type = scaling.find("type");
  if (type != scaling.end() && !type->is_string())
    fail(file, key + ".rope_type", "expected a string, got " + type->dump());
  rope.type = type == scaling.end() ? "default" : type->get<std::string>();
  if (rope.type == "default")
    return;
  if (rope.type != "linear" && rope.type != "llama3" && rope.type != "yarn")
    fail(file, key + ".rope_type",
         "rope type '" + rope.type + "' is not supported (supported: default, linear, llama3, yarn)");
  if (rope.type == "yarn") {
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

json rope_scaling_json(const RopeScaling& rope) {
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
  config.max_position_embeddings = read_int(object, "max_position_embeddings", file,
                                            gemma2    ? 8192
                                              : gemma ? 131072
                                                      : 2048);
  config.rms_norm_eps = read_number(object, "rms_norm_eps", file, config.olmo() ? 1e-5 : 1e-6);
  if (gemma)
    read_gemma(object, file, config);
  else
    read_rope(object, file, config);
  if (config.model_type == "olmo3")
    read_olmo3(object, file, config);
  if (config.model_type == "smollm3")
    read_smollm3(object, file, config);
  if (config.model_type == "granite")
    read_granite(object, file, config);
  config.attention_bias = config.model_type == "qwen2" || read_bool(object, "attention_bias", file, false);
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
  // Mistral 7B v0.1's window covers every layer; null in the models since v0.2. A window no shorter
  // than the context changes nothing.
  if (config.model_type == "mistral" && object.contains("sliding_window") && !object["sliding_window"].is_null()) {
    auto window = read_int(object, "sliding_window", file);
    if (window < config.max_position_embeddings) {
      config.sliding_window = window;
      config.sliding_layers.assign(static_cast<std::size_t>(std::max<std::int64_t>(config.num_hidden_layers, 0)), true);
    }
  }
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
    {"rope_scaling", rope_scaling.type == "default" ? json(nullptr) : rope_scaling_json(rope_scaling)},
    {"tie_word_embeddings", tie_word_embeddings},
    {"torch_dtype", torch_dtype},
  };
  if (!gemma())
    object["hidden_act"] = hidden_activation;
  if (model_type != "qwen2")
    object["attention_bias"] = attention_bias;
  if (model_type == "mistral")
    object["sliding_window"] = sliding_window > 0 ? json(sliding_window) : json(nullptr);
  if (model_type == "olmo3")
    object["sliding_window"] = sliding_window;
  if (model_type == "granite") {
    object["embedding_multiplier"] = embedding_multiplier;
    object["residual_multiplier"] = residual_multiplier;
    object["attention_multiplier"] = attention_scale();
    object["logits_scaling"] = logits_scaling;
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
