// config.json as each family's checkpoints on the Hub spell it (their keys, shapes shrunk): what
// ModelConfig reads, the defaults it fills in, what it writes back, and the errors naming the file
// and key.
#include <chorus/errors.hpp>

#include "models/model_config.hpp"
#include "tests/expect_error.hpp"
#include "tests/models/test_models.hpp"

#include <gtest/gtest.h>

using chorus::CheckpointError;
using chorus::test::expect_error_containing;
using namespace chorus::models;

namespace {

using test::small_config;

TEST(ModelConfigJson, ErrorsNameTheFileAndKey) {
  auto base = small_config("llama", false).to_json();
  auto check = [&](nlohmann::json json, const std::string& expected) {
    expect_error_containing<CheckpointError>([&] { ModelConfig::from_json(json, "folder/config.json"); },
                                             {"folder/config.json", expected});
  };
  auto missing = base;
  missing.erase("hidden_size");
  check(missing, "key 'hidden_size': missing");
  auto wrong = base;
  wrong["num_hidden_layers"] = "two";
  check(wrong, "key 'num_hidden_layers': expected an integer");
  auto groups = base;
  groups["num_key_value_heads"] = 3;
  check(groups, "does not divide num_attention_heads");
  auto family = base;
  family["model_type"] = "gpt2";
  check(family, "'gpt2' is not supported");
  auto incomplete = base;
  incomplete["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
  check(incomplete, "key 'rope_scaling.low_freq_factor': missing (rope type 'llama3' needs it)");
  auto dynamic = base;
  dynamic["rope_parameters"] = {{"rope_type", "dynamic"}, {"factor", 2.0}, {"rope_theta", 1e4}};
  check(dynamic, "key 'rope_parameters.rope_type': rope type 'dynamic' is not supported");
  auto factor = base;
  factor["rope_scaling"] = {{"type", "linear"}, {"factor", "two"}};
  check(factor, "key 'rope_scaling.factor': expected a number");
  auto bands = base;
  bands["rope_scaling"] = {{"rope_type", "llama3"},
                           {"factor", 8.0},
                           {"low_freq_factor", 4.0},
                           {"high_freq_factor", 1.0},
                           {"original_max_position_embeddings", 8192}};
  check(bands, "key 'rope_scaling.high_freq_factor': must be greater than low_freq_factor");
  auto shrink = base;
  shrink["rope_scaling"] = {{"type", "linear"}, {"factor", 0.0}};
  check(shrink, "key 'rope_scaling.factor': must be positive");
  auto context = base;
  context["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 0}};
  check(context, "key 'rope_scaling.original_max_position_embeddings': must be positive");
  auto activation = base;
  activation["hidden_act"] = "gelu";
  check(activation, "key 'hidden_act': activation \"gelu\" is not supported");
  auto mlp_bias = base;
  mlp_bias["mlp_bias"] = true;
  check(mlp_bias, "key 'mlp_bias'");
  auto qwen_window = base;
  qwen_window["model_type"] = "qwen2";
  qwen_window["use_sliding_window"] = true;
  check(qwen_window, "key 'use_sliding_window': sliding-window attention is not supported for qwen2");
  auto gemma = test::gemma3_config().to_json();
  auto softcap = gemma;
  softcap["final_logit_softcapping"] = -30.0;
  check(softcap, "key 'final_logit_softcapping': must be positive");
  auto layer_types = gemma;
  layer_types["layer_types"] = {"sliding_attention"};
  check(layer_types, "key 'layer_types': expected one entry per layer (2)");
  auto layer_type = gemma;
  layer_type["layer_types"][1] = "chunked_attention";
  check(layer_type, "key 'layer_types': entry 1 is \"chunked_attention\"");
  auto gelu = gemma;
  gelu["hidden_activation"] = "silu";
  check(gelu, "key 'hidden_activation': activation \"silu\" is not supported");
  auto local_scaling = gemma;
  local_scaling.erase("rope_theta");
  local_scaling["rope_parameters"] = {{"full_attention", {{"rope_type", "default"}, {"rope_theta", 1e6}}},
                                      {"sliding_attention", {{"rope_type", "linear"}, {"factor", 8.0}}}};
  check(local_scaling, "key 'rope_parameters.sliding_attention.rope_type': 'linear'");
}

// Mistral Nemo's config.json as the Hub has it (its keys, shapes shrunk): Llama's architecture with
// head_dim of its own and no sliding window.
TEST(ModelConfigJson, ReadsMistralNemosConfig) {
  auto nemo = nlohmann::json::parse(R"({
    "architectures": ["MistralForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 2,
    "head_dim": 32, "hidden_act": "silu", "hidden_size": 64, "initializer_range": 0.02,
    "intermediate_size": 96, "max_position_embeddings": 1024000, "model_type": "mistral",
    "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2, "rms_norm_eps": 1e-05,
    "rope_theta": 1000000.0, "sliding_window": null, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
    "transformers_version": "4.43.0.dev0", "use_cache": true, "vocab_size": 97})");
  auto config = ModelConfig::from_json(nemo, "nemo/config.json");
  EXPECT_EQ(config.head_dim, 32);
  EXPECT_FALSE(config.attention_bias);
  EXPECT_FALSE(config.qk_norm());
  EXPECT_EQ(config.architecture(), "MistralForCausalLM");
  auto saved = config.to_json();
  EXPECT_TRUE(saved.contains("sliding_window") && saved["sliding_window"].is_null());
  EXPECT_EQ(ModelConfig::from_json(saved, "again.json").to_json(), saved);
  // A window as long as the context changes nothing.
  nemo["sliding_window"] = 1024000;
  EXPECT_EQ(ModelConfig::from_json(nemo, "nemo/config.json").to_json(), saved);
}

// Mistral 7B v0.1's window covers every layer.
TEST(ModelConfigJson, AMistralWindowShorterThanTheContextSlidesInEveryLayer) {
  auto json = small_config("mistral", false).to_json();
  json["sliding_window"] = 64;
  auto config = ModelConfig::from_json(json, "mistral/config.json");
  EXPECT_EQ(config.sliding_window, 64);
  EXPECT_TRUE(config.sliding(0) && config.sliding(1));
  EXPECT_EQ(ModelConfig::from_json(config.to_json(), "again.json").to_json(), config.to_json());
}

// Gemma 3 1B's config.json as the Hub has it (its keys, shapes shrunk to six layers: the sixth is the
// full-attention one), and the same settings as transformers 5 writes them (layer_types, the rotary
// settings nested by layer type).
TEST(ModelConfigJson, ReadsGemma3sConfigInBothTransformersSpellings) {
  auto gemma = nlohmann::json::parse(R"({
    "architectures": ["Gemma3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
    "attn_logit_softcapping": null, "bos_token_id": 2, "cache_implementation": "hybrid",
    "eos_token_id": [1, 106], "final_logit_softcapping": null, "head_dim": 16,
    "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 64, "initializer_range": 0.02,
    "intermediate_size": 96, "max_position_embeddings": 32768, "model_type": "gemma3_text",
    "num_attention_heads": 4, "num_hidden_layers": 6, "num_key_value_heads": 1, "pad_token_id": 0,
    "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-06, "rope_local_base_freq": 10000,
    "rope_scaling": null, "rope_theta": 1000000, "sliding_window": 512, "sliding_window_pattern": 6,
    "torch_dtype": "bfloat16", "transformers_version": "4.50.0.dev0", "use_cache": true, "vocab_size": 97})");
  auto config = ModelConfig::from_json(gemma, "gemma/config.json");
  EXPECT_TRUE(config.gemma() && config.qk_norm());
  EXPECT_TRUE(config.tie_word_embeddings); // Gemma's default: the key is absent
  EXPECT_EQ(config.sliding_window, 512);
  EXPECT_EQ(config.sliding_layers, (std::vector<bool>{true, true, true, true, true, false}));
  EXPECT_EQ(config.rope_theta, 1000000.0);
  EXPECT_EQ(config.rope_local_base_freq, 10000.0);
  EXPECT_DOUBLE_EQ(config.attention_scale(), 1.0 / 16); // 256^(-1/2), not head_dim's
  EXPECT_EQ(config.architecture(), "Gemma3ForCausalLM");
  EXPECT_EQ(ModelConfig::from_json(config.to_json(), "again.json").to_json(), config.to_json());

  auto v5 = gemma;
  for (const char* key :
       {"rope_scaling", "rope_theta", "rope_local_base_freq", "sliding_window_pattern", "torch_dtype"})
    v5.erase(key);
  v5["dtype"] = "bfloat16";
  v5["layer_types"] = {"sliding_attention", "sliding_attention", "sliding_attention",
                       "sliding_attention", "sliding_attention", "full_attention"};
  v5["rope_parameters"] = {{"full_attention", {{"rope_type", "default"}, {"rope_theta", 1000000.0}}},
                           {"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 10000.0}}}};
  EXPECT_EQ(ModelConfig::from_json(v5, "v5/config.json").to_json(), config.to_json());
}

// Gemma 2 2B's config.json as the Hub has it (its keys, shapes shrunk to four layers): every other
// layer windowed, both caps.
TEST(ModelConfigJson, ReadsGemma2sConfig) {
  auto gemma = nlohmann::json::parse(R"({
    "architectures": ["Gemma2ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
    "attn_logit_softcapping": 50.0, "bos_token_id": 2, "cache_implementation": "hybrid",
    "eos_token_id": [1, 107], "final_logit_softcapping": 30.0, "head_dim": 16,
    "hidden_act": "gelu_pytorch_tanh", "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 64,
    "initializer_range": 0.02, "intermediate_size": 96, "max_position_embeddings": 8192,
    "model_type": "gemma2", "num_attention_heads": 4, "num_hidden_layers": 4, "num_key_value_heads": 2,
    "pad_token_id": 0, "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-06, "rope_theta": 10000.0,
    "sliding_window": 4096, "torch_dtype": "float32", "transformers_version": "4.42.4", "use_cache": true,
    "vocab_size": 97})");
  auto config = ModelConfig::from_json(gemma, "gemma2/config.json");
  EXPECT_TRUE(config.gemma());
  EXPECT_FALSE(config.qk_norm());
  EXPECT_EQ(config.sliding_layers, (std::vector<bool>{true, false, true, false}));
  EXPECT_EQ(config.attn_logit_softcapping, 50.0);
  EXPECT_EQ(config.final_logit_softcapping, 30.0);
  EXPECT_EQ(config.rope_local_base_freq, 0.0); // one rotary embedding for every layer
  EXPECT_DOUBLE_EQ(config.attention_scale(), 1.0 / 16);
  EXPECT_EQ(config.architecture(), "Gemma2ForCausalLM");
  EXPECT_EQ(ModelConfig::from_json(config.to_json(), "again.json").to_json(), config.to_json());
  gemma["final_logit_softcapping"] = nullptr; // null turns a cap off
  EXPECT_EQ(ModelConfig::from_json(gemma, "gemma2/config.json").final_logit_softcapping, 0.0);
}

// OLMo 2's and OLMo 3's config.json as the Hub has them (their keys, shapes shrunk): OLMo 3's window
// in the layers layer_types marks (three of every four when absent), its YaRN in the full-attention
// layers only.
TEST(ModelConfigJson, ReadsOlmo2AndOlmo3sConfigs) {
  auto olmo2 = nlohmann::json::parse(R"({
    "architectures": ["Olmo2ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
    "eos_token_id": 100257, "hidden_act": "silu", "hidden_size": 64, "initializer_range": 0.02,
    "intermediate_size": 96, "max_position_embeddings": 4096, "model_type": "olmo2", "num_attention_heads": 4,
    "num_hidden_layers": 2, "num_key_value_heads": 4, "pad_token_id": 100277, "rms_norm_eps": 1e-06,
    "rope_scaling": null, "rope_theta": 500000, "tie_word_embeddings": false, "torch_dtype": "float32",
    "transformers_version": "4.48.0", "use_cache": true, "vocab_size": 97})");
  auto config = ModelConfig::from_json(olmo2, "olmo2/config.json");
  EXPECT_TRUE(config.olmo());
  EXPECT_FALSE(config.qk_norm()); // OLMo's norms span all heads, not each one
  EXPECT_FALSE(config.gemma());
  EXPECT_EQ(config.sliding_window, 0);
  EXPECT_EQ(config.rms_norm_eps, 1e-6);
  EXPECT_EQ(config.architecture(), "Olmo2ForCausalLM");
  EXPECT_EQ(ModelConfig::from_json(config.to_json(), "again.json").to_json(), config.to_json());
  olmo2.erase("rms_norm_eps");
  EXPECT_EQ(ModelConfig::from_json(olmo2, "olmo2/config.json").rms_norm_eps, 1e-5); // Olmo2Config's default

  auto olmo3 = nlohmann::json::parse(R"({
    "architectures": ["Olmo3ForCausalLM"], "attention_bias": false, "eos_token_id": 100257, "hidden_act": "silu",
    "hidden_size": 64, "intermediate_size": 96,
    "layer_types": ["sliding_attention", "sliding_attention", "sliding_attention", "full_attention",
                    "sliding_attention", "sliding_attention", "sliding_attention", "full_attention"],
    "max_position_embeddings": 65536, "model_type": "olmo3", "num_attention_heads": 4, "num_hidden_layers": 8,
    "num_key_value_heads": 4, "pad_token_id": 100277, "rms_norm_eps": 1e-06,
    "rope_scaling": {"attention_factor": 1.2079441541679836, "beta_fast": 32, "beta_slow": 1, "factor": 8.0,
                     "original_max_position_embeddings": 8192, "rope_type": "yarn"},
    "rope_theta": 500000, "sliding_window": 4096, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
    "vocab_size": 97})");
  config = ModelConfig::from_json(olmo3, "olmo3/config.json");
  EXPECT_TRUE(config.olmo());
  EXPECT_EQ(config.sliding_window, 4096);
  EXPECT_EQ(config.sliding_layers, (std::vector<bool>{true, true, true, false, true, true, true, false}));
  EXPECT_EQ(config.rope_scaling.type, "yarn");
  EXPECT_EQ(config.rope_local_base_freq, 500000.0); // the sliding layers: rope_theta, unscaled
  EXPECT_EQ(config.architecture(), "Olmo3ForCausalLM");
  EXPECT_EQ(ModelConfig::from_json(config.to_json(), "again.json").to_json(), config.to_json());
  olmo3.erase("layer_types");
  olmo3["rope_scaling"] = nullptr;
  config = ModelConfig::from_json(olmo3, "olmo3/config.json");
  EXPECT_EQ(config.sliding_layers, (std::vector<bool>{true, true, true, false, true, true, true, false}));
  EXPECT_EQ(config.rope_local_base_freq, 0.0); // unscaled: one rotary embedding for every layer
  olmo3["layer_types"] = {"sliding_attention"};
  expect_error_containing<CheckpointError>([&] { ModelConfig::from_json(olmo3, "olmo3/config.json"); },
                                           {"olmo3/config.json", "layer_types", "one entry per layer"});
}

// SmolLM3's config.json as the Hub has it (its keys, shapes shrunk): no_rope_layers marks the layers
// that rotate; absent, every fourth does not.
TEST(ModelConfigJson, ReadsSmolLM3sConfig) {
  auto smollm3 = nlohmann::json::parse(R"({
    "architectures": ["SmolLM3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
    "bos_token_id": null, "eos_token_id": 128012, "hidden_act": "silu", "hidden_size": 64,
    "initializer_range": 0.02, "intermediate_size": 96, "layer_types": ["full_attention", "full_attention",
    "full_attention", "full_attention", "full_attention", "full_attention", "full_attention", "full_attention"],
    "max_position_embeddings": 65536, "max_window_layers": 28, "mlp_bias": false, "model_type": "smollm3",
    "no_rope_layer_interval": 4, "no_rope_layers": [1, 1, 1, 0, 1, 1, 1, 0], "num_attention_heads": 4,
    "num_hidden_layers": 8, "num_key_value_heads": 2, "pad_token_id": 128004, "pretraining_tp": 2,
    "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 5000000.0, "sliding_window": null,
    "tie_word_embeddings": true, "torch_dtype": "bfloat16", "transformers_version": "4.54.0.dev0",
    "use_cache": false, "use_sliding_window": false, "vocab_size": 97})");
  auto config = ModelConfig::from_json(smollm3, "smollm3/config.json");
  EXPECT_EQ(config.nope_layers, (std::vector<bool>{false, false, false, true, false, false, false, true}));
  EXPECT_EQ(config.sliding_window, 0);
  EXPECT_EQ(config.head_dim, 16);
  EXPECT_EQ(config.architecture(), "SmolLM3ForCausalLM");
  EXPECT_EQ(ModelConfig::from_json(config.to_json(), "again.json").to_json(), config.to_json());
  smollm3["no_rope_layers"] = nlohmann::json::array();
  smollm3["no_rope_layer_interval"] = 2;
  EXPECT_EQ(ModelConfig::from_json(smollm3, "smollm3/config.json").nope_layers,
            (std::vector<bool>{false, true, false, true, false, true, false, true}));
  smollm3["no_rope_layers"] = {1, 1, 1, 2, 1, 1, 1, 0};
  expect_error_containing<CheckpointError>([&] { ModelConfig::from_json(smollm3, "smollm3/config.json"); },
                                           {"smollm3/config.json", "no_rope_layers", "entry 3 is 2"});
  smollm3["no_rope_layers"] = {1, 0};
  expect_error_containing<CheckpointError>([&] { ModelConfig::from_json(smollm3, "smollm3/config.json"); },
                                           {"no_rope_layers", "one entry per layer (8)"});
  smollm3.erase("no_rope_layers");
  smollm3["no_rope_layer_interval"] = 0;
  expect_error_containing<CheckpointError>([&] { ModelConfig::from_json(smollm3, "smollm3/config.json"); },
                                           {"no_rope_layer_interval", "must be positive"});
}

// Granite 3.3's config.json as the Hub has it (its keys, shapes shrunk): its multipliers, and
// GraniteConfig's defaults (1) where absent.
TEST(ModelConfigJson, ReadsGranitesConfig) {
  auto granite = nlohmann::json::parse(R"({
    "architectures": ["GraniteForCausalLM"], "attention_bias": false, "attention_dropout": 0.1,
    "attention_multiplier": 0.015625, "bos_token_id": 0, "embedding_multiplier": 12.0, "eos_token_id": 0,
    "hidden_act": "silu", "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 96,
    "logits_scaling": 8.0, "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "granite",
    "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2, "pad_token_id": 0,
    "residual_multiplier": 0.22, "rms_norm_eps": 1e-05, "rope_scaling": null, "rope_theta": 10000000.0,
    "tie_word_embeddings": true, "torch_dtype": "bfloat16", "transformers_version": "4.49.0",
    "use_cache": true, "vocab_size": 97})");
  auto config = ModelConfig::from_json(granite, "granite/config.json");
  EXPECT_EQ(config.embedding_multiplier, 12.0);
  EXPECT_EQ(config.residual_multiplier, 0.22);
  EXPECT_EQ(config.attention_scale(), 0.015625); // in place of head_dim^(-1/2)
  EXPECT_EQ(config.logits_scaling, 8.0);
  EXPECT_EQ(config.architecture(), "GraniteForCausalLM");
  EXPECT_EQ(ModelConfig::from_json(config.to_json(), "again.json").to_json(), config.to_json());
  for (const char* key : {"attention_multiplier", "embedding_multiplier", "residual_multiplier", "logits_scaling"})
    granite.erase(key);
  config = ModelConfig::from_json(granite, "granite/config.json");
  EXPECT_EQ(config.attention_scale(), 1.0); // GraniteConfig's defaults
  EXPECT_EQ(config.logits_scaling, 1.0);
  granite["logits_scaling"] = 0;
  expect_error_containing<CheckpointError>([&] { ModelConfig::from_json(granite, "granite/config.json"); },
                                           {"granite/config.json", "logits_scaling", "must be positive"});
  granite["logits_scaling"] = 8.0;
  granite["attention_multiplier"] = 0; // not "unset" in Granite: its scale of the scores
  expect_error_containing<CheckpointError>([&] { ModelConfig::from_json(granite, "granite/config.json"); },
                                           {"granite/config.json", "attention_multiplier", "must be positive"});
}

// Phi-4 mini's config.json (its keys; shapes shrunk to head_dim 16, so 12 of each head's dimensions
// turn and LongRoPE has 6 factors of each kind), the same settings as transformers 5 writes them,
// Phi-3 mini's window in every layer, and the errors.
TEST(ModelConfigJson, ReadsPhi3MiniAndPhi4MinisConfigs) {
  auto phi4 = nlohmann::json::parse(R"({
    "architectures": ["Phi3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
    "bos_token_id": 199999, "embd_pdrop": 0.0, "eos_token_id": 199999, "full_attn_mod": 1,
    "hidden_act": "silu", "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 96,
    "interpolate_factor": 1, "lm_head_bias": false, "max_position_embeddings": 131072, "mlp_bias": false,
    "model_type": "phi3", "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2,
    "original_max_position_embeddings": 4096, "pad_token_id": 199999, "partial_rotary_factor": 0.75,
    "resid_pdrop": 0.0, "rms_norm_eps": 1e-05,
    "rope_scaling": {"long_factor": [1, 1.1, 1.9, 3.2, 8.0, 20.5], "short_factor": [1, 1, 1, 1.02, 1.1, 1.3],
                     "type": "longrope"},
    "rope_theta": 10000.0, "sliding_window": 262144, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
    "transformers_version": "4.45.0", "use_cache": true, "vocab_size": 97})");
  auto config = ModelConfig::from_json(phi4, "phi4/config.json");
  EXPECT_EQ(config.architecture(), "Phi3ForCausalLM");
  EXPECT_EQ(config.rotary_dim(), 12);
  EXPECT_EQ(config.rope_scaling.type, "longrope");
  EXPECT_EQ(config.rope_scaling.original_max_position_embeddings, 4096);
  EXPECT_EQ(config.rope_scaling.factor, 32.0); // max_position_embeddings over the pre-training context
  EXPECT_EQ(config.rope_scaling.long_factor.back(), 20.5);
  EXPECT_EQ(config.sliding_window, 0); // a window past the context changes nothing
  EXPECT_EQ(config.rms_norm_eps, 1e-5);
  EXPECT_TRUE(config.tie_word_embeddings);
  EXPECT_EQ(ModelConfig::from_json(config.to_json(), "again.json").to_json(), config.to_json());
  EXPECT_EQ(config.to_json()["rope_scaling"].size(), 3u); // Phi3Config's own shape: type and the factors

  // transformers 5: the rotary settings, the share turned and the pre-training context in one object.
  auto v5 = phi4;
  for (const char* key : {"rope_scaling", "rope_theta", "partial_rotary_factor", "original_max_position_embeddings"})
    v5.erase(key);
  v5["rope_parameters"] = phi4["rope_scaling"];
  v5["rope_parameters"].erase("type");
  v5["rope_parameters"]["rope_type"] = "longrope";
  v5["rope_parameters"]["rope_theta"] = 10000.0;
  v5["rope_parameters"]["partial_rotary_factor"] = 0.75;
  v5["rope_parameters"]["original_max_position_embeddings"] = 4096;
  EXPECT_EQ(ModelConfig::from_json(v5, "phi4/config.json").to_json(), config.to_json());

  // Phi-3 mini 4k: the whole head turns, every layer attends within 2047 tokens; the first
  // long-context checkpoints named LongRoPE "su".
  auto mini = phi4;
  for (const char* key : {"partial_rotary_factor", "rope_scaling"})
    mini.erase(key);
  mini["max_position_embeddings"] = 4096;
  mini["sliding_window"] = 2047;
  config = ModelConfig::from_json(mini, "phi3/config.json");
  EXPECT_EQ(config.rotary_dim(), 16);
  EXPECT_EQ(config.sliding_window, 2047);
  EXPECT_TRUE(config.sliding(0) && config.sliding(1));
  auto su = phi4;
  su.erase("partial_rotary_factor");
  su["rope_scaling"]["type"] = "su";
  su["rope_scaling"]["long_factor"] = nlohmann::json::array({1, 1, 1, 1, 1, 1, 1, 1});
  su["rope_scaling"]["short_factor"] = su["rope_scaling"]["long_factor"];
  EXPECT_EQ(ModelConfig::from_json(su, "phi3/config.json").rope_scaling.type, "longrope");

  auto check = [&](const nlohmann::json& json, std::initializer_list<std::string_view> expected) {
    expect_error_containing<CheckpointError>([&] { ModelConfig::from_json(json, "phi4/config.json"); }, expected);
  };
  auto short_list = phi4;
  short_list["rope_scaling"]["short_factor"].erase(0);
  check(short_list, {"phi4/config.json", "rope_scaling.short_factor", "expected 6 factors"});
  auto odd = phi4;
  odd["partial_rotary_factor"] = 0.7; // 11 dimensions of 16
  check(odd, {"partial_rotary_factor", "an even number of dimensions"});
  auto missing = phi4;
  missing["rope_scaling"].erase("long_factor");
  check(missing, {"rope_scaling.long_factor", "expected a list of numbers"});
  auto llama = small_config("llama", false).to_json();
  llama["partial_rotary_factor"] = 0.5;
  check(llama, {"partial_rotary_factor", "phi3 only"});
  // LongRoPE in another family keeps its context in the rope settings.
  llama.erase("partial_rotary_factor");
  llama["rope_scaling"] = {{"rope_type", "longrope"},
                           {"original_max_position_embeddings", 64},
                           {"short_factor", {1, 1, 1, 1, 1, 1, 1, 1}},
                           {"long_factor", {1, 2, 3, 4, 5, 6, 7, 8}}};
  config = ModelConfig::from_json(llama, "llama/config.json");
  EXPECT_EQ(config.rope_scaling.original_max_position_embeddings, 64);
  EXPECT_EQ(ModelConfig::from_json(config.to_json(), "again.json").to_json(), config.to_json());
}

// Llama 3.2's and Qwen3's config.json as the Hub has them (their keys, shapes shrunk), and the same
// settings as transformers 5 writes them (rope_parameters, dtype).
TEST(ModelConfigJson, ReadsLlama32AndQwen3ConfigsInBothTransformersSpellings) {
  auto llama = nlohmann::json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
    "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "head_dim": 16,
    "hidden_act": "silu", "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 96,
    "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
    "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2, "pretraining_tp": 1,
    "rms_norm_eps": 1e-05,
    "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "rope_theta": 500000.0, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
    "transformers_version": "4.45.0.dev0", "use_cache": true, "vocab_size": 97})");
  auto config = ModelConfig::from_json(llama, "llama/config.json");
  EXPECT_EQ(config.rope_scaling.type, "llama3");
  EXPECT_EQ(config.rope_scaling.factor, 32.0);
  EXPECT_EQ(config.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_EQ(config.rope_theta, 500000.0);
  EXPECT_FALSE(config.attention_bias);
  EXPECT_EQ(ModelConfig::from_json(config.to_json(), "again.json").to_json(), config.to_json());

  auto v5 = llama;
  v5.erase("rope_scaling");
  v5.erase("rope_theta");
  v5.erase("torch_dtype");
  v5["dtype"] = "bfloat16";
  v5["rope_parameters"] = llama["rope_scaling"];
  v5["rope_parameters"]["rope_theta"] = 500000.0;
  EXPECT_EQ(ModelConfig::from_json(v5, "v5/config.json").to_json(), config.to_json());

  auto qwen3 = nlohmann::json::parse(R"({
    "architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
    "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 32, "hidden_act": "silu",
    "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 96, "max_position_embeddings": 40960,
    "max_window_layers": 28, "model_type": "qwen3", "num_attention_heads": 4, "num_hidden_layers": 2,
    "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 1000000,
    "sliding_window": null, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
    "transformers_version": "4.51.0", "use_cache": true, "use_sliding_window": false, "vocab_size": 97})");
  auto qwen = ModelConfig::from_json(qwen3, "qwen3/config.json");
  EXPECT_TRUE(qwen.qk_norm());
  EXPECT_EQ(qwen.head_dim, 32) << "Qwen3's head_dim is its own, not hidden_size / heads";
  EXPECT_EQ(qwen.rope_scaling.type, "default");
  EXPECT_EQ(qwen.architecture(), "Qwen3ForCausalLM");
  // Qwen's long-context setting: YaRN over the 32k pre-training context.
  qwen3["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 32768}};
  auto yarn = ModelConfig::from_json(qwen3, "qwen3/config.json");
  EXPECT_EQ(yarn.rope_scaling.type, "yarn");
  EXPECT_EQ(yarn.rope_scaling.factor, 4.0);
  EXPECT_EQ(ModelConfig::from_json(yarn.to_json(), "again.json").to_json(), yarn.to_json());
}

TEST(ModelConfigJson, RoundTripsAndDerivesDefaults) {
  auto config = small_config("qwen2", true);
  config.eos_token_ids = {5, 6};
  auto again = ModelConfig::from_json(config.to_json(), "config.json");
  EXPECT_EQ(again.to_json(), config.to_json());
  auto json = config.to_json();
  json.erase("head_dim");
  json.erase("num_key_value_heads");
  auto derived = ModelConfig::from_json(json, "config.json");
  EXPECT_EQ(derived.head_dim, 16);
  EXPECT_EQ(derived.num_key_value_heads, 4);
  EXPECT_TRUE(derived.attention_bias) << "qwen2 always has q/k/v biases";
}

} // namespace
