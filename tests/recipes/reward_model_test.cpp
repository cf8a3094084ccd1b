// Reward models end to end on the built-in tiny model: a scoring model trained by RewardModelling on
// preferences (Bradley-Terry) ranks held-out pairs right, on labels (squared error) fits held-out
// labels; its saved folder scores the same; ScoringModelGrader squashes its scores.
#include <chorus/chorus.hpp>

#include "runtime/checkpoints.hpp"
#include "runtime/runtime.hpp"
#include "tests/expect_error.hpp"
#include "tests/recipes/x_task.hpp"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <fstream>

using namespace chorus;
using chorus::test::expect_error_containing;

namespace {

class RewardModels : public ::testing::Test {
protected:
  Runtime runtime_;
  RecipeContext ctx_{runtime_, "test",
                     std::filesystem::path(::testing::TempDir())
                       / ::testing::UnitTest::GetInstance()->current_test_info()->name(),
                     MetricsLogger(), spdlog::default_logger()};

  Task<ScoringModel> scoring(std::string reference, std::string name) {
    auto builder = co_await ModelRef{std::move(reference)}.to_builder(ctx_, {.kv_cache_len = 256, .seed = 1});
    co_return co_await builder.spawn_scoring(std::move(name));
  }
};

const std::vector<std::string> kPolite = {"Hello! How can I help?", "Good day, happy to help.", "Hi there, welcome!"};
const std::vector<std::string> kRude = {"What do you want?", "Go away.", "Not now."};

// Greetings numbered from `first`: the polite answer is preferred to the rude one.
std::vector<Preference> greetings(int first, int count) {
  std::vector<Preference> pairs;
  for (int i = first; i < first + count; ++i)
    pairs.push_back({{{"user", "Hello (message " + std::to_string(i) + ")"}},
                     kPolite[static_cast<std::size_t>(i) % 3],
                     kRude[static_cast<std::size_t>(i / 3) % 3],
                     Json::object()});
  return pairs;
}

// The same answers rated: polite 1, rude -1.
std::vector<Metric> ratings(int first, int count) {
  std::vector<Metric> rated;
  for (const auto& pair : greetings(first, count)) {
    rated.push_back({pair.prompt, pair.chosen, 1.0, Json::object()});
    rated.push_back({pair.prompt, pair.rejected, -1.0, Json::object()});
  }
  return rated;
}

} // namespace

TEST_F(RewardModels, BradleyTerryTrainingRanksHeldOutPairsAndItsFolderScoresTheSame) {
  runtime_.run([&]() -> Task<void> {
    auto model = co_await scoring("builtin:tiny", "reward");
    auto held_out = greetings(100, 9);
    auto before = co_await evaluate_scoring_model(model, held_out, {});
    auto result = co_await RewardModelling({.preferences = greetings(0, 24),
                                            .model = model,
                                            .lr = 1e-3,
                                            .epochs = 3,
                                            .samples_per_batch = 8,
                                            .eval_preferences = held_out})
                    .run();
    EXPECT_EQ(result.steps, 9);
    EXPECT_EQ(result.eval_accuracy, 1.0) << "before training: " << before.accuracy;
    EXPECT_LT(result.eval_mse, 0.0); // no labels held out

    const auto& pair = held_out.front();
    auto raw = co_await model.score(pair.prompt, pair.chosen);
    auto folder = co_await model.save("reward-model", ctx_);
    auto config = Json::parse(std::ifstream(std::filesystem::path(folder) / "config.json"));
    EXPECT_EQ(config["architectures"][0], "Qwen2ForSequenceClassification");
    auto reloaded = co_await scoring(folder, "reloaded");
    EXPECT_FLOAT_EQ(co_await reloaded.score(pair.prompt, pair.chosen), raw);

    auto grader = ScoringModelGrader({.grader_key = "rm", .model = reloaded, .center = 0.5, .temperature = 2.0});
    auto grade = co_await grader.grade({pair.prompt, pair.chosen, Json::object()});
    EXPECT_NEAR(grade.score, 1.0 / (1.0 + std::exp(-(raw - 0.5) / 2.0)), 1e-6);
    EXPECT_EQ(grade.scores.at("rm"), grade.score);
    EXPECT_NE(grade.explanation.find("reward model score"), std::string::npos);
    auto linear = ScoringModelGrader({.model = reloaded, .squash = "linear", .low = raw - 1.0, .high = raw + 3.0});
    EXPECT_NEAR((co_await linear.grade({pair.prompt, pair.chosen, Json::object()})).score, 0.25, 1e-6);

    // A scoring folder is not a language model to train.
    auto builder = co_await ModelRef{folder}.to_builder(ctx_, {.kv_cache_len = 256});
    std::string error;
    try {
      co_await builder.spawn_train("policy");
    } catch (const std::exception& e) {
      error = e.what();
    }
    EXPECT_NE(error.find("spawn_scoring"), std::string::npos) << error;
  }());
}

TEST_F(RewardModels, RegressionOnLabelsLowersTheHeldOutError) {
  runtime_.run([&]() -> Task<void> {
    auto model = co_await scoring("builtin:tiny", "rater");
    auto held_out = ratings(100, 6);
    auto before = co_await evaluate_scoring_model(model, {}, held_out);
    auto result = co_await RewardModelling({.metrics = ratings(0, 12),
                                            .model = model,
                                            .lr = 3e-4,
                                            .epochs = 10,
                                            .samples_per_batch = 8,
                                            .eval_metrics = held_out,
                                            .eval_every = 3})
                    .run();
    EXPECT_EQ(result.steps, 30);
    EXPECT_LT(result.eval_accuracy, 0.0); // no pairs held out
    EXPECT_LT(result.eval_mse, 0.25 * before.mse) << "before training: " << before.mse;
  }());
}

// PPO with a separate value model: the value model takes a value step with each policy step (its
// weights move), the policy none (its value coefficient is 0).
TEST_F(RewardModels, PpoTrainsASeparateValueModelAlongsideThePolicy) {
  runtime_.run([&]() -> Task<void> {
    auto builder = co_await ModelRef{"builtin:tiny"}.to_builder(ctx_, {.kv_cache_len = 256});
    auto policy = co_await builder.spawn_train("policy", {.max_batch_size = 64});
    auto value_model = co_await scoring("builtin:tiny", "value");
    auto probe = TrainSample{co_await value_model.tokenize_chat({{"user", "Go on."}}), {'x', 'x'}};
    auto before = co_await value_model.values({probe});
    EXPECT_EQ(before.front().size(), 2u);
    auto ppo = [&](double value_lr, int steps, std::string stage) {
      return PPO({.dataset = test::x_task_prompts(),
                  .model = policy,
                  .value_model = value_model,
                  .grader = FunctionGrader("x", test::share_of_x),
                  .lr = 1e-3,
                  .samples_per_batch = 16,
                  .samples_per_mini_batch = 8,
                  .value_lr = value_lr,
                  .max_num_ppo_steps = steps,
                  .sampling = {.temperature = 1.0, .max_tokens = 8},
                  .stage = std::move(stage)})
        .run();
    };
    auto result = co_await ppo(-1.0, 2, "ppo");
    EXPECT_EQ(result.steps, 2);
    EXPECT_EQ(value_model.weight_version(), 4); // one value step per mini-batch
    EXPECT_EQ(policy.weight_version(), 4);
    auto after = co_await value_model.values({probe});
    EXPECT_NE(after.front().front(), before.front().front());

    // value_lr sets the value model's rate apart from the policy's: at 0 its estimates stay put
    // while the policy goes on learning.
    co_await ppo(0.0, 1, "ppo_value_lr_0");
    EXPECT_EQ(policy.weight_version(), 6);
    auto frozen = co_await value_model.values({probe});
    EXPECT_EQ(frozen.front(), after.front());
  }());
}

// The value model trains with the policy, so it is saved and restored with the stage's checkpoints.
TEST(RewardModelCheckpoints, APpoStageRestoresItsValueModelWithThePolicy) {
  auto dir = std::filesystem::path(::testing::TempDir()) / "ppo_value_model_checkpoints";
  std::filesystem::remove_all(dir);
  auto run = [&](bool resume) {
    Runtime runtime;
    RecipeContext ctx{runtime, "test", dir, MetricsLogger(), spdlog::default_logger()};
    ctx.set_checkpoints(std::make_shared<detail::RunCheckpoints>(
      detail::RunCheckpoints::Options{.dir = dir / "checkpoints", .every = 1, .resume = resume}));
    return runtime.run([&]() -> Task<std::pair<std::int64_t, std::vector<float>>> {
      auto builder = co_await ModelRef{"builtin:tiny"}.to_builder(ctx, {.kv_cache_len = 256, .seed = 1});
      auto policy = co_await builder.spawn_train("policy", {.max_batch_size = 64});
      auto value_model = co_await builder.spawn_scoring("value");
      co_await PPO({.dataset = test::x_task_prompts(),
                    .model = policy,
                    .value_model = value_model,
                    .grader = FunctionGrader("x", test::share_of_x),
                    .lr = 1e-3,
                    .samples_per_batch = 8,
                    .samples_per_mini_batch = 8,
                    .max_num_ppo_steps = 2,
                    .sampling = {.temperature = 1.0, .max_tokens = 4}})
        .run();
      auto probe = TrainSample{co_await value_model.tokenize_chat({{"user", "Go on."}}), {'x'}};
      co_return std::pair{value_model.weight_version(), (co_await value_model.values({probe})).front()};
    }());
  };
  auto [trained_version, trained_values] = run(false);
  EXPECT_EQ(trained_version, 2);
  EXPECT_TRUE(std::filesystem::is_directory(dir / "checkpoints"));
  bool found = false;
  for (const auto& entry : std::filesystem::directory_iterator(dir / "checkpoints"))
    found = found || std::filesystem::is_directory(entry.path() / "value_model");
  EXPECT_TRUE(found) << "no checkpoint holds value_model/";
  // Resumed: the finished stage restores both models instead of training; the value model's weights
  // are the trained ones, not a fresh head's.
  auto [restored_version, restored_values] = run(true);
  EXPECT_EQ(restored_version, 2);
  EXPECT_EQ(restored_values, trained_values);
  // A checkpoint written without a value model cannot resume a stage that has one: a CheckpointError
  // naming the missing folder, not a value model silently restarted from a fresh head.
  for (const auto& entry : std::filesystem::directory_iterator(dir / "checkpoints"))
    if (entry.is_directory())
      std::filesystem::remove_all(entry.path() / "value_model");
  expect_error_containing<CheckpointError>([&] { run(true); }, {"value_model", "missing", "without one"});
}

TEST_F(RewardModels, ScoringModelGraderRefusesBadSquashes) {
  runtime_.run([&]() -> Task<void> {
    auto model = co_await scoring("builtin:tiny", "rater");
    auto refused = [&](ScoringModelOptions options, std::string expected) {
      options.model = model;
      std::string error;
      try {
        ScoringModelGrader grader(std::move(options));
      } catch (const ConfigError& e) {
        error = e.what();
      }
      EXPECT_NE(error.find(expected), std::string::npos) << "error: '" << error << "'";
    };
    refused({.grader_key = "rm", .squash = "tanh"}, "squash must be sigmoid or linear, got 'tanh'");
    refused({.grader_key = "rm", .squash = "sigmoid", .temperature = 0.0}, "temperature must be > 0");
    refused({.grader_key = "rm", .squash = "linear", .low = 1.0, .high = 1.0}, "high must be above low");
    refused({.grader_key = "rm", .squash = "linear", .low = 2.0, .high = -2.0}, "high must be above low");
    co_return;
  }());
}

TEST(RewardModelOptions, BadOptionsAreConfigErrors) {
  EXPECT_THROW(RewardModelling({}), ConfigError);
  expect_error_containing<ConfigError>([] { RewardModelling({.preferences = greetings(0, 1)}); }, {"spawn_scoring"});
  expect_error_containing<ConfigError>(
    [] { RewardModelling({.preferences = greetings(0, 1), .metrics = ratings(0, 1)}); }, {"not both"});
  expect_error_containing<ConfigError>([] { ScoringModelGrader({}); }, {"no model"});
  ScoringModel empty;
  expect_error_containing<Error>([&] { empty.name(); }, {"holds no model"});
}
