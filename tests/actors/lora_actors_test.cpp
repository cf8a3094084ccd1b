// LoRA adapters through the actors: a trained adapter reaches the replicas, which then sample what
// the trainer scores; a saved adapter folder loads onto its base in a new model; bad adapter
// options are ConfigErrors before anything is spawned.
#include <chorus/chorus.hpp>

#include "runtime/runtime.hpp"
#include "tests/expect_error.hpp"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <filesystem>

using namespace chorus;
using chorus::test::expect_error_containing;

namespace {

class LoraActors : public ::testing::Test {
protected:
  std::filesystem::path output_ = std::filesystem::path(::testing::TempDir())
    / ("lora_actors_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
  Runtime runtime_;
  RecipeContext ctx_{runtime_, "test", output_, MetricsLogger(), spdlog::default_logger()};

  Task<TrainingModel> adapted_model() {
    auto builder = co_await ModelRef{"builtin:tiny"}.to_builder(
      ctx_, {.kv_cache_len = 256, .seed = 2, .adapter = {.r = 8, .lora_alpha = 16}});
    co_return co_await builder.spawn_train("policy", {.max_batch_size = 8});
  }
};

} // namespace

TEST_F(LoraActors, ATrainedAdapterReachesTheReplicaWhichSamplesWhatTheTrainerScores) {
  runtime_.run([&]() -> Task<void> {
    auto model = co_await adapted_model();
    auto prompt = co_await model.tokenize("Say hello");
    TrainSample sample{prompt, co_await model.tokenize(" hello hello"), 0.0, {}, 0};
    auto before = co_await model.generate_tokens(prompt, {.temperature = 0, .max_tokens = 6});
    auto first = co_await model.train_sft({sample}, {.lr = 3e-3});
    TrainReport report;
    for (int i = 0; i < 20; ++i)
      report = co_await model.train_sft({sample}, {.lr = 3e-3});
    EXPECT_LT(report.loss, 0.8 * first.loss);
    EXPECT_EQ(model.weight_version(), 21);
    // Greedy decoding on the replica follows the trained adapter...
    auto after = co_await model.generate_tokens(prompt, {.temperature = 0, .max_tokens = 6});
    EXPECT_EQ(after.weight_version, 21);
    EXPECT_NE(after.tokens, before.tokens);
    // ... and its log-probs are the trainer's (the gap over samples of the current version).
    std::vector<TrainSample> samples;
    for (int i = 0; i < 4; ++i) {
      auto g = co_await model.generate_tokens(prompt, {.max_tokens = 8, .seed = 10 + i});
      samples.push_back({g.prompt_tokens, g.tokens, 0.0, g.logprobs, g.weight_version});
    }
    auto gap = co_await model.train_policy(samples, {.lr = 0.0});
    EXPECT_GE(gap.logprob_gap, 0.0);
    EXPECT_LT(gap.logprob_gap, 1e-5);
  }());
}

TEST_F(LoraActors, ASavedAdapterLoadsOntoItsBase) {
  runtime_.run([&]() -> Task<void> {
    auto model = co_await adapted_model();
    auto prompt = co_await model.tokenize("The quick brown fox");
    auto completion = co_await model.tokenize(" jumps");
    for (int i = 0; i < 3; ++i)
      co_await model.train_sft({{prompt, completion, 0.0, {}, 0}}, {.lr = 1e-2});
    auto expected = co_await model.logprobs(prompt, completion);
    auto folder = co_await model.save("adapter", ctx_);
    EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(folder) / "adapter_config.json"));
    EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(folder) / "adapter_model.safetensors"));
    EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(folder) / "model.safetensors"));
    auto merged = co_await model.save("merged", ctx_, {.merge_adapter = true});
    EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(merged) / "model.safetensors"));

    // The base is builtin:tiny drawn from the same seed; the adapter goes on top.
    auto builder = co_await ModelRef{"builtin:tiny", folder}.to_builder(ctx_, {.kv_cache_len = 256, .seed = 2});
    auto loaded = co_await builder.spawn_inference("loaded");
    auto got = co_await loaded.logprobs(prompt, completion);
    auto merged_model =
      co_await (co_await ModelRef{merged}.to_builder(ctx_, {.kv_cache_len = 256})).spawn_inference("m");
    auto from_merged = co_await merged_model.logprobs(prompt, completion);
    EXPECT_EQ(got.size(), expected.size());
    for (std::size_t i = 0; i < expected.size() && i < got.size(); ++i) {
      EXPECT_NEAR(got[i], expected[i], 1e-5);
      EXPECT_NEAR(from_merged[i], expected[i], 1e-4);
    }
  }());
}

TEST_F(LoraActors, BadAdapterOptionsAreConfigErrors) {
  runtime_.run([&]() -> Task<void> {
    co_await expect_error_containing<ConfigError>(ModelRef{"builtin:tiny"}.to_builder(ctx_, {.adapter = {.r = -1}}),
                                                  {"adapter.r must be >= 0"});
    co_await expect_error_containing<ConfigError>(
      ModelRef{"builtin:tiny"}.to_builder(ctx_, {.adapter = {.r = 4, .target_modules = {"qkv"}}}),
      {"unknown module 'qkv'"});
    co_await expect_error_containing<ConfigError>(ModelRef{"builtin:tiny", output_.string()}.to_builder(ctx_, {}),
                                                  {"not a LoRA adapter folder"});
  }());
}
