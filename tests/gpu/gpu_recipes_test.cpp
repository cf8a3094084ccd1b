// The algorithms through the recipe API with every actor's model on a CUDA device: SFT lowers the
// loss, GSPO raises the reward, and each weight version the trainer publishes reaches the replica on
// the same GPU. Skipped (with the reason) where LibTorch has no CUDA device.
#include <chorus/chorus.hpp>

#include "actors/model_actors.hpp"
#include "recipes/tokenized.hpp"
#include "runtime/runtime.hpp"
#include "tests/recipes/x_task.hpp"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

using namespace chorus;
using chorus::test::share_of_x;
using chorus::test::x_task_prompts;

namespace {

class RecipesOnCuda : public ::testing::Test {
protected:
  void SetUp() override {
    if (actors::available_devices() == 0)
      GTEST_SKIP() << "no CUDA device: this LibTorch (" << actors::libtorch_version() << ") sees none";
  }

  Runtime runtime_;
  RecipeContext ctx_{runtime_, "test",
                     std::filesystem::path(::testing::TempDir())
                       / ::testing::UnitTest::GetInstance()->current_test_info()->name(),
                     MetricsLogger(), spdlog::default_logger()};

  Task<TrainingModel> tiny_model() {
    auto builder = co_await ModelRef{"builtin:tiny"}.to_builder(ctx_, {.kv_cache_len = 256, .device = "cuda"});
    co_return co_await builder.spawn_train("policy", {.max_batch_size = 64});
  }
};

} // namespace

TEST_F(RecipesOnCuda, SftLowersTheLossOfTheDemonstrations) {
  runtime_.run([&]() -> Task<void> {
    auto model = co_await tiny_model();
    std::vector<Completion> examples;
    for (int i = 0; i < 12; ++i)
      examples.push_back({{{"user", "Name a color " + std::to_string(i)}}, "blue", Json::object()});
    auto before = co_await completion_loss(model, co_await detail::tokenize_completions(model, examples));
    auto result = co_await SFT({.dataset = examples,
                                .model = model,
                                .lr = 3e-3,
                                .epochs = 4,
                                .samples_per_batch = 4,
                                .eval_dataset = examples})
                    .run();
    EXPECT_LT(result.eval_loss, 0.5 * before);
  }());
}

TEST_F(RecipesOnCuda, GspoRaisesTheRewardAndEachVersionReachesTheReplica) {
  runtime_.run([&]() -> Task<void> {
    auto model = co_await tiny_model();
    auto grader = FunctionGrader("x", share_of_x);
    GspoOptions options{.dataset = x_task_prompts(),
                        .model = model,
                        .grader = grader,
                        .lr = 0.0,
                        .samples_per_batch = 32,
                        .completions_per_sample = 8,
                        .max_num_gspo_steps = 1,
                        .sampling = {.temperature = 1.0, .max_tokens = 8}};
    auto first = co_await GSPO(options).run();
    options.lr = 2e-3;
    options.samples_per_mini_batch = 16;
    options.kl_beta = 0.01;
    options.max_num_gspo_steps = 12;
    auto trained = co_await GSPO(options).run();
    EXPECT_GT(trained.reward_mean, first.reward_mean + 0.2) << first.reward_mean << " -> " << trained.reward_mean;
    // The replica on the same GPU generates with the newest version the trainer published.
    auto generation = co_await model.generate({{"user", "Go on."}}, {.max_tokens = 4});
    EXPECT_EQ(generation.weight_version, model.weight_version());
    EXPECT_GT(model.weight_version(), 0);
  }());
}
