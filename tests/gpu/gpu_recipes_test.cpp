// The algorithms through the recipe API with every actor's model on a CUDA device: SFT lowers the
// loss, GSPO raises the reward, and each weight version the trainer publishes reaches the replica on
// the same GPU. Skipped (with the reason) where LibTorch has no CUDA device.
#include <chorus/chorus.hpp>

#include "actors/model_actors.hpp"
#include "runtime/runtime.hpp"
#include "tests/recipes/short_runs.hpp"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

using namespace chorus;

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
    auto [before, result] = co_await chorus::test::sft_on_one_answer(co_await tiny_model(), 4);
    EXPECT_LT(result.eval_loss, 0.5 * before);
  }());
}

TEST_F(RecipesOnCuda, GspoRaisesTheRewardAndEachVersionReachesTheReplica) {
  runtime_.run([&]() -> Task<void> {
    auto model = co_await tiny_model();
    auto [first, trained] = co_await chorus::test::gspo_on_x(model, /*kl_beta=*/0.01);
    EXPECT_GT(trained, first + 0.2) << first << " -> " << trained;
    // The replica on the same GPU generates with the newest version the trainer published.
    auto generation = co_await model.generate({{"user", "Go on."}}, {.max_tokens = 4});
    EXPECT_EQ(generation.weight_version, model.weight_version());
    EXPECT_GT(model.weight_version(), 0);
  }());
}
