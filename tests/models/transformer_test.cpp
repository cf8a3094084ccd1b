// The transformer and its checkpoints: logits against an independent PyTorch reference, exact
// save/load round trips, padding that changes nothing, and clear errors for broken folders.
#include <chorus/errors.hpp>

#include "models/checkpoint.hpp"
#include "models/safetensors.hpp"
#include "tests/expect_error.hpp"
#include "tests/models/reference_forward.hpp"
#include "tests/models/test_models.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>

using chorus::CheckpointError;
using chorus::test::expect_error_containing;
using namespace chorus::models;

namespace {

using test::random_model;
using test::small_config;

std::filesystem::path fresh_dir(const std::string& name) {
  auto dir = std::filesystem::path(::testing::TempDir()) / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

torch::Tensor sample_tokens(std::int64_t vocab, std::int64_t batch, std::int64_t time) {
  torch::manual_seed(7);
  return torch::randint(vocab, {batch, time}, torch::kInt64);
}

struct Architecture {
  std::string name;
  ModelConfig config;
};

// Each family, tied and untied heads, and each rope scaling kind on a family that ships with it.
std::vector<Architecture> architectures() {
  return {{"llama", small_config("llama", false)},
          {"qwen2_tied", small_config("qwen2", true)},
          {"qwen3_tied", small_config("qwen3", true)},
          {"qwen3_untied_with_bias",
           [] {
             auto config = small_config("qwen3", false);
             config.attention_bias = true;
             return config;
           }()},
          {"llama_rope_llama3", test::rope_scaled(small_config("llama", true), "llama3")},
          {"llama_rope_linear", test::rope_scaled(small_config("llama", false), "linear")},
          {"qwen3_rope_yarn", test::rope_scaled(small_config("qwen3", true), "yarn")},
          {"mistral_heads_wider_than_hidden",
           [] {
             auto config = small_config("mistral", false); // as Mistral Nemo: heads * head_dim > hidden
             config.head_dim = 32;
             return config;
           }()},
          {"mistral_sliding_window",
           [] {
             auto config = small_config("mistral", false); // as Mistral 7B v0.1: every layer windowed
             config.sliding_window = 8;
             config.sliding_layers = {true, true};
             return config;
           }()},
          {"gemma2", test::gemma2_config()},
          {"gemma3", test::gemma3_config()},
          {"gemma3_rope_linear", test::rope_scaled(test::gemma3_config(), "linear")},
          {"olmo2", test::olmo2_config()},
          {"olmo2_tied", test::olmo2_config(/*tied=*/true)},
          {"olmo3", test::olmo3_config()},
          {"smollm3", test::smollm3_config()},
          {"smollm3_rope_yarn", test::rope_scaled(test::smollm3_config(/*tied=*/false), "yarn")},
          {"granite", test::granite_config()}};
}

void PrintTo(const Architecture& architecture, std::ostream* out) {
  *out << architecture.name;
}

class ReferenceLogits : public ::testing::TestWithParam<Architecture> {};

TEST_P(ReferenceLogits, MatchAnIndependentPyTorchForwardWithin1e4) {
  const auto& [name, config] = GetParam();
  auto model = random_model(config, 42);
  auto dir = fresh_dir("reference_" + name);
  auto tokens = sample_tokens(config.vocab_size, 2, 40);
  auto expected = test::reference_output(model, dir, tokens, "logits");
  torch::NoGradGuard no_grad;
  auto logits = model->forward(tokens);
  ASSERT_EQ(logits.sizes(), expected.sizes());
  auto difference = (logits - expected).abs().max().item<double>();
  EXPECT_LT(difference, 1e-4);
  // The part under test changes the output: without it the same weights give logits farther from the
  // reference than ten times the tolerance.
  auto plain = config;
  plain.rope_scaling = RopeScaling{};
  if (plain.model_type == "qwen3" || plain.model_type == "smollm3" || plain.model_type == "granite")
    plain.model_type = "llama";
  plain.nope_layers.clear();
  plain.embedding_multiplier = plain.residual_multiplier = plain.logits_scaling = 1;
  plain.attention_multiplier = 0;
  plain.sliding_window = 0;
  plain.attn_logit_softcapping = plain.final_logit_softcapping = 0;
  bool windowed = config.sliding_window > 0;
  if (plain.model_type != config.model_type || plain.rope_scaling.type != config.rope_scaling.type || windowed) {
    Transformer without(plain);
    auto state = model->named_parameters();
    for (auto& parameter : without->named_parameters())
      parameter.value().copy_(state[parameter.key()]);
    EXPECT_GT((without->forward(tokens) - expected).abs().max().item<double>(), 1e-3);
  }
}

INSTANTIATE_TEST_SUITE_P(Families, ReferenceLogits, ::testing::ValuesIn(architectures()),
                         [](const ::testing::TestParamInfo<Architecture>& info) { return info.param.name; });

// In bf16 each family's RMSNorm rounds where its reference code does: Llama's rounds the normalised
// input, then multiplies by the weight in bf16; OLMo's multiplies in fp32 and rounds once; Gemma's
// multiplies by 1 + weight in fp32. In fp32 the first two are the same.
TEST(RMSNorm, EachFamilyRoundsWhereItsReferenceDoes) {
  torch::manual_seed(3);
  auto x = torch::randn({64, 96}).to(torch::kBFloat16);
  auto w = (torch::rand({96}) * 2 + 0.5).to(torch::kBFloat16);
  auto x32 = x.to(torch::kFloat32);
  auto normed = x32 * torch::rsqrt(x32.pow(2).mean(-1, true) + 1e-6);
  torch::NoGradGuard no_grad;
  std::map<NormScale, torch::Tensor> out;
  for (auto scale : {NormScale::weight, NormScale::weight_in_fp32, NormScale::one_plus_weight}) {
    RMSNorm norm(96, 1e-6, scale);
    norm->weight = norm->weight.to(torch::kBFloat16);
    norm->weight.copy_(w);
    out[scale] = norm(x);
    EXPECT_EQ(out[scale].scalar_type(), torch::kBFloat16);
  }
  EXPECT_TRUE(torch::equal(out[NormScale::weight], w * normed.to(torch::kBFloat16)));
  EXPECT_TRUE(torch::equal(out[NormScale::weight_in_fp32], (normed * w.to(torch::kFloat32)).to(torch::kBFloat16)));
  EXPECT_TRUE(
    torch::equal(out[NormScale::one_plus_weight], (normed * (w.to(torch::kFloat32) + 1)).to(torch::kBFloat16)));
  EXPECT_FALSE(torch::equal(out[NormScale::weight], out[NormScale::weight_in_fp32])); // one rounding apart
  RMSNorm llama(96, 1e-6, NormScale::weight), olmo(96, 1e-6, NormScale::weight_in_fp32);
  llama->weight.copy_(w.to(torch::kFloat32));
  olmo->weight.copy_(w.to(torch::kFloat32));
  EXPECT_TRUE(torch::allclose(llama(x32), olmo(x32), 0, 0));
}

TEST(Checkpoint, LoadOfSaveReproducesLogitsBitForBit) {
  for (bool tied : {false, true}) {
    auto config = small_config("qwen2", tied);
    auto model = random_model(config, 1);
    auto dir = fresh_dir(std::string("roundtrip_") + (tied ? "tied" : "untied"));
    save_pretrained(model, dir);
    auto loaded = load_pretrained(dir);
    auto tokens = sample_tokens(config.vocab_size, 3, 9);
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(torch::equal(model->forward(tokens), loaded->forward(tokens))) << "tied=" << tied;
    EXPECT_EQ(SafetensorsFile::open(dir / "model.safetensors").contains("lm_head.weight"), !tied);
  }
  // Qwen3's norms and a scaled rotary embedding travel through the folder too.
  auto config = test::rope_scaled(small_config("qwen3", true), "yarn");
  auto model = random_model(config, 2);
  auto dir = fresh_dir("roundtrip_qwen3_yarn");
  save_pretrained(model, dir);
  auto loaded = load_pretrained(dir);
  EXPECT_EQ(loaded->config().rope_scaling.type, "yarn");
  EXPECT_TRUE(SafetensorsFile::open(dir / "model.safetensors").contains("model.layers.1.self_attn.k_norm.weight"));
  auto tokens = sample_tokens(config.vocab_size, 2, 40);
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(model->forward(tokens), loaded->forward(tokens)));
}

// OLMo's, SmolLM3's and Granite's folders hold their own tensors (no norm before the attention, norms
// as wide as the projections) and settings (windows, YaRN in the full layers, layers without
// rotation, multipliers).
TEST(Checkpoint, OlmoSmolLM3AndGraniteFoldersRoundTrip) {
  for (const auto& config : {test::olmo3_config(), test::smollm3_config(), test::granite_config()}) {
    auto model = random_model(config, 5);
    auto dir = fresh_dir("roundtrip_" + config.model_type);
    save_pretrained(model, dir);
    auto loaded = load_pretrained(dir);
    EXPECT_EQ(loaded->config().to_json(), config.to_json());
    auto file = SafetensorsFile::open(dir / "model.safetensors");
    bool olmo = config.olmo();
    EXPECT_EQ(file.contains("model.layers.0.input_layernorm.weight"), !olmo);
    EXPECT_EQ(file.contains("model.layers.0.post_feedforward_layernorm.weight"), olmo);
    if (olmo)
      EXPECT_EQ(file.entry("model.layers.0.self_attn.q_norm.weight").shape,
                (std::vector<std::int64_t>{config.num_attention_heads * config.head_dim}));
    auto tokens = sample_tokens(config.vocab_size, 2, 30);
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(torch::equal(model->forward(tokens), loaded->forward(tokens))) << config.model_type;
  }
}

TEST(Checkpoint, Bfloat16FolderStoresBf16AndLoads) {
  auto config = small_config("llama", false);
  config.torch_dtype = "bfloat16";
  auto model = random_model(config, 3);
  auto dir = fresh_dir("bf16");
  save_pretrained(model, dir);
  EXPECT_EQ(SafetensorsFile::open(dir / "model.safetensors").entry("model.norm.weight").dtype, "BF16");
  auto loaded = load_pretrained(dir);
  auto tokens = sample_tokens(config.vocab_size, 1, 5);
  torch::NoGradGuard no_grad;
  auto difference = (model->forward(tokens) - loaded->forward(tokens)).abs().max().item<double>();
  EXPECT_LT(difference, 0.1) << "bf16 rounding of the weights only";
}

TEST(Checkpoint, LeftPaddingLeavesTheRealTokensLogitsUnchanged) {
  auto config = small_config("qwen2", true);
  auto model = random_model(config, 5);
  auto tokens = sample_tokens(config.vocab_size, 1, 6);
  auto padded = torch::cat({torch::zeros({1, 3}, torch::kInt64), tokens}, 1);
  auto mask = torch::cat({torch::zeros({1, 3}, torch::kInt64), torch::ones({1, 6}, torch::kInt64)}, 1);
  torch::NoGradGuard no_grad;
  auto plain = model->forward(tokens);
  auto with_padding = model->forward(padded, mask).narrow(1, 3, 6);
  EXPECT_LT((plain - with_padding).abs().max().item<double>(), 1e-5);
}

TEST(Checkpoint, ShardedFolderLoads) {
  auto config = small_config("llama", false);
  auto model = random_model(config, 9);
  auto dir = fresh_dir("sharded");
  save_pretrained(model, dir);
  auto whole = SafetensorsFile::open(dir / "model.safetensors");
  std::vector<std::pair<std::string, torch::Tensor>> first, second;
  nlohmann::json weight_map;
  for (const auto& entry : whole.entries()) {
    bool in_first = entry.name.find("layers.0.") != std::string::npos;
    (in_first ? first : second).emplace_back(entry.name, whole.load(entry.name));
    weight_map[entry.name] = in_first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  save_safetensors(dir / "model-00001-of-00002.safetensors", first);
  save_safetensors(dir / "model-00002-of-00002.safetensors", second);
  std::filesystem::remove(dir / "model.safetensors");
  std::ofstream(dir / "model.safetensors.index.json")
    << nlohmann::json{{"metadata", {}}, {"weight_map", weight_map}}.dump();
  auto loaded = load_pretrained(dir);
  auto tokens = sample_tokens(config.vocab_size, 1, 4);
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(model->forward(tokens), loaded->forward(tokens)));
}

// Gemma 3 4B and larger are multimodal (Gemma3ForConditionalGeneration): config.json holds the
// language model's config as text_config (keys at their default left out), the weights are named
// under language_model (transformers 4.50's layout or 4.52's) beside a vision tower. The language
// model loads from both layouts, the vision weights are left unread, and a save writes it alone.
TEST(Checkpoint, TheLanguageModelOfAMultimodalGemma3CheckpointLoads) {
  auto config = test::gemma3_config();
  auto model = random_model(config, 12);
  auto text_only = fresh_dir("gemma3_text_only");
  save_pretrained(model, text_only);
  auto weights = SafetensorsFile::open(text_only / "model.safetensors");
  auto text_config = config.to_json();
  for (const char* key : {"architectures", "model_type", "torch_dtype", "tie_word_embeddings", "attention_bias"})
    text_config.erase(key);
  auto tokens = sample_tokens(config.vocab_size, 2, 20);
  torch::NoGradGuard no_grad;
  auto expected = model->forward(tokens);
  for (const std::string layout : {"language_model.model.", "model.language_model."}) {
    auto dir = fresh_dir("gemma3_multimodal");
    std::ofstream(dir / "config.json") << nlohmann::json{{"architectures", {"Gemma3ForConditionalGeneration"}},
                                                         {"model_type", "gemma3"},
                                                         {"torch_dtype", "float32"},
                                                         {"text_config", text_config},
                                                         {"vision_config", {{"model_type", "siglip_vision_model"}}}}
                                            .dump();
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    for (const auto& entry : weights.entries())
      tensors.emplace_back(layout + entry.name.substr(std::string("model.").size()), weights.load(entry.name));
    tensors.emplace_back(layout == "model.language_model." ? "model.vision_tower.patch.weight"
                                                           : "vision_tower.patch.weight",
                         torch::ones({4, 4}));
    tensors.emplace_back("multi_modal_projector.mm_soft_emb_norm.weight", torch::ones({4}));
    save_safetensors(dir / "model.safetensors", tensors);
    auto loaded = load_pretrained(dir);
    EXPECT_TRUE(loaded->config().from_multimodal);
    EXPECT_TRUE(torch::equal(loaded->forward(tokens), expected)) << layout;
    auto saved = fresh_dir("gemma3_saved_text_only");
    save_pretrained(loaded, saved);
    EXPECT_EQ(nlohmann::json::parse(std::ifstream(saved / "config.json"))["architectures"][0], "Gemma3ForCausalLM");
    EXPECT_TRUE(torch::equal(load_pretrained(saved)->forward(tokens), expected));
  }
}

TEST(Checkpoint, MissingTensorNamesTheFolderAndTensor) {
  auto config = small_config("llama", false);
  auto model = random_model(config, 2);
  auto dir = fresh_dir("missing_tensor");
  save_pretrained(model, dir);
  auto whole = SafetensorsFile::open(dir / "model.safetensors");
  std::vector<std::pair<std::string, torch::Tensor>> kept;
  for (const auto& entry : whole.entries())
    if (entry.name != "model.layers.1.mlp.up_proj.weight")
      kept.emplace_back(entry.name, whole.load(entry.name));
  save_safetensors(dir / "model.safetensors", kept);
  expect_error_containing<CheckpointError>([&] { load_pretrained(dir); },
                                           {"model.layers.1.mlp.up_proj.weight", "missing"});
}

TEST(Checkpoint, ShapeThatDisagreesWithConfigJson) {
  auto config = small_config("llama", false);
  auto model = random_model(config, 2);
  auto dir = fresh_dir("shape_mismatch");
  save_pretrained(model, dir);
  auto json = config.to_json();
  json["intermediate_size"] = 128;
  std::ofstream(dir / "config.json") << json.dump();
  expect_error_containing<CheckpointError>([&] { load_pretrained(dir); },
                                           {"gate_proj.weight", "[96, 64]", "[128, 64]"});
}

TEST(Checkpoint, UnexpectedTensorIsAnError) {
  auto config = small_config("qwen2", true);
  auto model = random_model(config, 2);
  auto dir = fresh_dir("unexpected");
  save_pretrained(model, dir);
  auto whole = SafetensorsFile::open(dir / "model.safetensors");
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& entry : whole.entries())
    tensors.emplace_back(entry.name, whole.load(entry.name));
  tensors.emplace_back("model.layers.0.self_attn.q_norm.weight", torch::ones({16}));
  save_safetensors(dir / "model.safetensors", tensors);
  expect_error_containing<CheckpointError>([&] { load_pretrained(dir); }, {"q_norm"});
}

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
