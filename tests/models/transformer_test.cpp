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
using test::sample_tokens;

namespace {

using test::random_model;
using test::small_config;

std::filesystem::path fresh_dir(const std::string& name) {
  auto dir = std::filesystem::path(::testing::TempDir()) / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
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
          {"granite", test::granite_config()},
          {"phi3_partial_rotary", test::phi3_config()},
          {"phi3_longrope_long_sequence", test::phi3_config(/*tied=*/false, /*longrope=*/true)},
          {"phi3_mini_window",
           [] {
             auto config = test::phi3_config(/*tied=*/false); // Phi-3 mini: every layer windowed
             config.partial_rotary_factor = 1;
             config.sliding_window = 8;
             config.sliding_layers = {true, true};
             return config;
           }()},
          {"qwen3_moe_dense_first_layer", test::moe_config("qwen3_moe")},
          {"qwen2_moe_shared_expert", test::moe_config("qwen2_moe", /*tied=*/true)},
          {"mixtral", test::moe_config("mixtral")},
          {"mixtral_sliding_window",
           [] {
             auto config = test::moe_config("mixtral");
             config.sliding_window = 8;
             config.sliding_layers = {true, true};
             return config;
           }()},
          {"olmoe", test::moe_config("olmoe")}};
}

void PrintTo(const Architecture& architecture, std::ostream* out) {
  *out << architecture.name;
}

class ReferenceLogits : public ::testing::TestWithParam<Architecture> {};

TEST_P(ReferenceLogits, MatchAnIndependentPyTorchForwardWithin1e4) {
  const auto& [name, config] = GetParam();
  auto model = random_model(config, 42);
  auto dir = fresh_dir("reference_" + name);
  auto tokens = sample_tokens(config.vocab_size, 2, 40, 7);
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
  if (plain.model_type == "qwen3" || plain.model_type == "smollm3" || plain.model_type == "granite"
      || plain.model_type == "phi3")
    plain.model_type = "llama";
  plain.partial_rotary_factor = 1;
  plain.nope_layers.clear();
  plain.embedding_multiplier = plain.residual_multiplier = plain.logits_scaling = 1;
  plain.attention_multiplier = 0;
  plain.sliding_window = 0;
  plain.attn_logit_softcapping = plain.final_logit_softcapping = 0;
  bool windowed = config.sliding_window > 0;
  plain.norm_topk_prob = !config.norm_topk_prob; // a mixture of experts weighs its choices otherwise
  if (plain.model_type != config.model_type || plain.rope_scaling.type != config.rope_scaling.type || windowed
      || config.moe()) {
    Transformer without(plain);
    auto state = model->named_parameters();
    for (auto& parameter : without->named_parameters())
      parameter.value().copy_(state[parameter.key()]);
    EXPECT_GT((without->forward(tokens) - expected).abs().max().item<double>(), 1e-3);
  }
}

INSTANTIATE_TEST_SUITE_P(Families, ReferenceLogits, ::testing::ValuesIn(architectures()),
                         [](const ::testing::TestParamInfo<Architecture>& info) { return info.param.name; });

// Off the CPU each projection is its own product, reading its weight in place (no kept
// concatenation): the same values and gradients as the fused product the CPU takes.
TEST(FusedLinear, ThePerPartProductsEqualTheFusedOne) {
  torch::manual_seed(1);
  auto x = torch::randn({2, 3, 8});
  auto weight = [](std::int64_t rows) { return torch::randn({rows, 8}).requires_grad_(); };
  std::vector<torch::Tensor> weights = {weight(4), weight(2), weight(2)};
  auto bias = torch::randn({8});
  FusedParameter fused;
  auto joined = linear_transposed(x, fused.transposed(weights), bias);
  auto parts = linear_parts(x, weights, bias);
  EXPECT_TRUE(torch::allclose(joined, parts, 1e-5, 1e-6));
  auto probe = torch::randn_like(parts);
  auto joined_grads = torch::autograd::grad({(joined * probe).sum()}, weights);
  auto parts_grads = torch::autograd::grad({(parts * probe).sum()}, weights);
  for (std::size_t i = 0; i < weights.size(); ++i)
    EXPECT_TRUE(torch::allclose(joined_grads[i], parts_grads[i], 1e-5, 1e-6)) << "part " << i;
  torch::NoGradGuard no_grad; // on the CPU fused_linear keeps the concatenation
  EXPECT_TRUE(torch::allclose(fused_linear(x, fused, weights, bias), parts, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(linear_parts(x, {weights[1]}), torch::matmul(x, weights[1].t()), 1e-6, 1e-7));
}

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
    auto tokens = sample_tokens(config.vocab_size, 3, 9, 7);
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
  auto tokens = sample_tokens(config.vocab_size, 2, 40, 7);
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
    auto tokens = sample_tokens(config.vocab_size, 2, 30, 7);
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(torch::equal(model->forward(tokens), loaded->forward(tokens))) << config.model_type;
  }
}

// LongRoPE's factors depend on the sequence: the short ones within the pre-training context (32
// here), the long ones past it, as transformers chooses them for a forward pass.
TEST(Phi3, LongRopeTakesTheShortFactorsWithinThePretrainingContext) {
  auto config = test::phi3_config(/*tied=*/true, /*longrope=*/true);
  auto model = random_model(config, 43);
  auto dir = fresh_dir("reference_phi3_longrope_short");
  auto tokens = sample_tokens(config.vocab_size, 2, 20, 7);
  auto expected = test::reference_output(model, dir, tokens, "logits");
  torch::NoGradGuard no_grad;
  auto logits = model->forward(tokens);
  EXPECT_LT((logits - expected).abs().max().item<double>(), 1e-4);
  // With the long factors in their place the same tokens score differently.
  auto swapped = config;
  swapped.rope_scaling.short_factor = config.rope_scaling.long_factor;
  Transformer long_model(swapped);
  auto state = model->named_parameters();
  for (auto& parameter : long_model->named_parameters())
    parameter.value().copy_(state[parameter.key()]);
  EXPECT_GT((long_model->forward(tokens) - expected).abs().max().item<double>(), 1e-3);
}

// Phi-3's folder stores q, k and v as one matrix and gate and up as another, as transformers'
// Phi3ForCausalLM has them; they load back into the same model, and LongRoPE's settings travel in
// Phi3Config's keys.
TEST(Checkpoint, Phi3FoldersStoreTheFusedProjections) {
  auto config = test::phi3_config(/*tied=*/false, /*longrope=*/true);
  auto model = random_model(config, 6);
  auto dir = fresh_dir("roundtrip_phi3");
  save_pretrained(model, dir);
  auto file = SafetensorsFile::open(dir / "model.safetensors");
  auto q = config.num_attention_heads * config.head_dim, kv = config.num_key_value_heads * config.head_dim;
  EXPECT_EQ(file.entry("model.layers.1.self_attn.qkv_proj.weight").shape,
            (std::vector<std::int64_t>{q + 2 * kv, config.hidden_size}));
  EXPECT_EQ(file.entry("model.layers.1.mlp.gate_up_proj.weight").shape,
            (std::vector<std::int64_t>{2 * config.intermediate_size, config.hidden_size}));
  EXPECT_FALSE(file.contains("model.layers.1.self_attn.k_proj.weight"));
  EXPECT_FALSE(file.contains("model.layers.1.mlp.up_proj.weight"));
  // k's rows follow q's in the fused matrix.
  EXPECT_TRUE(torch::equal(file.load("model.layers.1.self_attn.qkv_proj.weight").narrow(0, q, kv),
                           model->model->layers[1]->as<DecoderLayer>()->self_attn->k_proj->weight));
  auto json = nlohmann::json::parse(std::ifstream(dir / "config.json"));
  EXPECT_EQ(json["architectures"][0], "Phi3ForCausalLM");
  EXPECT_EQ(json["original_max_position_embeddings"], 32);
  EXPECT_EQ(json["partial_rotary_factor"], 0.75);
  EXPECT_EQ(json["rope_scaling"]["type"], "longrope");
  EXPECT_EQ(json["rope_scaling"]["long_factor"].size(), 6u);
  auto loaded = load_pretrained(dir);
  EXPECT_EQ(loaded->config().to_json(), config.to_json());
  auto tokens = sample_tokens(config.vocab_size, 2, 40, 7);
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(model->forward(tokens), loaded->forward(tokens)));
  // A fused matrix shaped for another config is named with both shapes.
  auto other = test::phi3_config();
  other.num_key_value_heads = 4;
  auto other_dir = fresh_dir("phi3_other_heads");
  save_pretrained(model, other_dir);
  std::ofstream(other_dir / "config.json") << other.to_json().dump();
  expect_error_containing<CheckpointError>(
    [&] { load_pretrained(other_dir); },
    {"'model.layers.0.self_attn.qkv_proj.weight' has shape [128, 64]", "config.json implies [192, 64]"});
}

TEST(Checkpoint, Bfloat16FolderStoresBf16AndLoads) {
  auto config = small_config("llama", false);
  config.torch_dtype = "bfloat16";
  auto model = random_model(config, 3);
  auto dir = fresh_dir("bf16");
  save_pretrained(model, dir);
  EXPECT_EQ(SafetensorsFile::open(dir / "model.safetensors").entry("model.norm.weight").dtype, "BF16");
  auto loaded = load_pretrained(dir);
  auto tokens = sample_tokens(config.vocab_size, 1, 5, 7);
  torch::NoGradGuard no_grad;
  auto difference = (model->forward(tokens) - loaded->forward(tokens)).abs().max().item<double>();
  EXPECT_LT(difference, 0.1) << "bf16 rounding of the weights only";
}

TEST(Checkpoint, LeftPaddingLeavesTheRealTokensLogitsUnchanged) {
  auto config = small_config("qwen2", true);
  auto model = random_model(config, 5);
  auto tokens = sample_tokens(config.vocab_size, 1, 6, 7);
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
  auto tokens = sample_tokens(config.vocab_size, 1, 4, 7);
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
  auto tokens = sample_tokens(config.vocab_size, 2, 20, 7);
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

} // namespace
