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

class ReferenceLogits : public ::testing::TestWithParam<std::pair<std::string, bool>> {};

TEST_P(ReferenceLogits, MatchAnIndependentPyTorchForwardWithin1e4) {
  auto [type, tied] = GetParam();
  auto config = small_config(type, tied);
  auto model = random_model(config, 42);
  auto dir = fresh_dir("reference_" + type + (tied ? "_tied" : ""));
  auto tokens = sample_tokens(config.vocab_size, 2, 11);
  auto expected = test::reference_output(model, dir, tokens, "logits");
  torch::NoGradGuard no_grad;
  auto logits = model->forward(tokens);
  ASSERT_EQ(logits.sizes(), expected.sizes());
  auto difference = (logits - expected).abs().max().item<double>();
  EXPECT_LT(difference, 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Families, ReferenceLogits,
                         ::testing::Values(std::pair<std::string, bool>{"llama", false},
                                           std::pair<std::string, bool>{"qwen2", true}));

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
  auto scaling = base;
  scaling["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
  check(scaling, "key 'rope_scaling'");
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
