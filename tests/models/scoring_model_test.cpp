// Scoring models: the transformer with a `score` head, as transformers' ...ForSequenceClassification
// lays it out. Scores against an independent PyTorch forward, folders that round-trip with the
// head named `score.weight`, a language model's folder turned into one, and clear errors.
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
using test::sample_tokens;

namespace {

using test::random_model;
using test::small_config;

std::filesystem::path fresh_dir(const std::string& name) {
  auto dir = std::filesystem::path(::testing::TempDir()) / ("scoring_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

ModelConfig scoring_config(const std::string& type, bool tied) {
  auto config = small_config(type, tied);
  config.num_labels = 1;
  return config;
}

torch::Tensor scores_of(Transformer& model, const torch::Tensor& tokens) {
  torch::NoGradGuard no_grad;
  return model->scores(model->hidden_states(tokens));
}

} // namespace

class ReferenceScores : public ::testing::TestWithParam<std::pair<std::string, bool>> {};

TEST_P(ReferenceScores, MatchAnIndependentPyTorchForwardWithin1e4) {
  auto [type, tied] = GetParam();
  auto config = scoring_config(type, tied);
  auto model = random_model(config, 42);
  auto dir = fresh_dir("reference_" + type + (tied ? "_tied" : ""));
  auto tokens = sample_tokens(config.vocab_size, 2, 9, 11);
  auto expected = test::reference_output(model, dir, tokens, "scores");
  auto scores = scores_of(model, tokens);
  ASSERT_EQ(scores.sizes(), expected.sizes());
  EXPECT_LT((scores - expected).abs().max().item<double>(), 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Families, ReferenceScores,
                         ::testing::Values(std::pair<std::string, bool>{"llama", false},
                                           std::pair<std::string, bool>{"qwen2", true}));

TEST(ScoringModel, SavesAsSequenceClassificationWithAScoreTensorAndLoadsBackBitForBit) {
  auto config = scoring_config("qwen2", false);
  auto model = random_model(config, 5);
  auto dir = fresh_dir("roundtrip");
  save_pretrained(model, dir);
  auto json = nlohmann::json::parse(std::ifstream(dir / "config.json"));
  EXPECT_EQ(json["architectures"], nlohmann::json::array({"Qwen2ForSequenceClassification"}));
  EXPECT_EQ(json["id2label"], (nlohmann::json{{"0", "LABEL_0"}}));
  auto file = SafetensorsFile::open(dir / "model.safetensors");
  ASSERT_TRUE(file.contains("score.weight"));
  EXPECT_EQ(file.load("score.weight").sizes(), (std::vector<std::int64_t>{1, config.hidden_size}));
  EXPECT_FALSE(file.contains("lm_head.weight")); // transformers' classifier has no language-model head

  auto loaded = load_pretrained(dir, torch::kFloat32, Head::scoring);
  auto tokens = sample_tokens(config.vocab_size, 2, 7, 11);
  EXPECT_TRUE(torch::equal(scores_of(model, tokens), scores_of(loaded, tokens)));
}

TEST(ScoringModel, ALanguageModelFolderBecomesAScoringModelWithTheSameBodyAndASeededHead) {
  auto config = small_config("llama", false);
  auto language_model = random_model(config, 6);
  auto dir = fresh_dir("from_lm");
  save_pretrained(language_model, dir);
  auto first = load_pretrained(dir, torch::kFloat32, Head::scoring, /*seed=*/1);
  auto again = load_pretrained(dir, torch::kFloat32, Head::scoring, /*seed=*/1);
  auto other = load_pretrained(dir, torch::kFloat32, Head::scoring, /*seed=*/2);
  ASSERT_TRUE(first->is_scoring());
  auto tokens = sample_tokens(config.vocab_size, 1, 6, 11);
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(language_model->hidden_states(tokens), first->hidden_states(tokens)));
  EXPECT_TRUE(torch::equal(first->score->weight, again->score->weight));
  EXPECT_FALSE(torch::equal(first->score->weight, other->score->weight));
  auto spread = first->score->weight.std().item<double>();
  EXPECT_GT(spread, 0.01);
  EXPECT_LT(spread, 0.04); // normal(0, 0.02), as transformers initialises a new head
}

TEST(ScoringModel, AScoringFolderIsNotALanguageModel) {
  auto model = random_model(scoring_config("qwen2", true), 7);
  auto dir = fresh_dir("not_lm");
  save_pretrained(model, dir);
  expect_error_containing<CheckpointError>([&] { load_pretrained(dir); },
                                           {"config.json", "Qwen2ForSequenceClassification", "spawn_scoring"});
  auto tokens = sample_tokens(97, 1, 3, 11);
  torch::NoGradGuard no_grad;
  expect_error_containing<std::invalid_argument>([&] { model->forward(tokens); }, {"no language-model head"});
}

TEST(ScoringModel, MoreThanOneLabelIsRefusedNamingTheKey) {
  auto json = scoring_config("llama", false).to_json();
  json["id2label"] = {{"0", "bad"}, {"1", "good"}};
  json["label2id"] = {{"bad", 0}, {"good", 1}};
  expect_error_containing<CheckpointError>([&] { ModelConfig::from_json(json, "folder/config.json"); },
                                           {"folder/config.json", "num_labels", "2 labels"});
  json.erase("id2label");
  json["num_labels"] = 3;
  expect_error_containing<CheckpointError>([&] { ModelConfig::from_json(json, "folder/config.json"); },
                                           {"num_labels", "3 labels"});
  json["num_labels"] = 1;
  EXPECT_EQ(ModelConfig::from_json(json, "folder/config.json").num_labels, 1);
}
