// The algorithms on the built-in tiny model: a few steps move each one's metric the right way. And
// the advantage math against numbers worked out by hand.
#include <chorus/chorus.hpp>
#include <chorus/json_schema.hpp>

#include "runtime/runtime.hpp"
#include "tests/recipes/short_runs.hpp"
#include "tests/recipes/x_task.hpp"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <fstream>
#include <regex>

using namespace chorus;
using chorus::test::gspo_on_x;
using chorus::test::sft_on_one_answer;
using chorus::test::share_of_x;
using chorus::test::x_task_prompts;

namespace {

class Algorithms : public ::testing::Test {
protected:
  Runtime runtime_;
  RecipeContext ctx_{runtime_, "test",
                     std::filesystem::path(::testing::TempDir())
                       / ::testing::UnitTest::GetInstance()->current_test_info()->name(),
                     MetricsLogger(), spdlog::default_logger()};

  Task<TrainingModel> tiny_model() {
    auto builder = co_await ModelRef{"builtin:tiny"}.to_builder(ctx_, {.kv_cache_len = 256});
    co_return co_await builder.spawn_train("policy", {.max_batch_size = 64});
  }
};

} // namespace

TEST(Advantages, GroupNormalisedByHand) {
  // Rewards 1, 0, 0, 1: mean 0.5, population std 0.5 -> +1, -1, -1, +1.
  auto advantages = group_advantages({1, 0, 0, 1});
  for (std::size_t i = 0; i < 4; ++i)
    EXPECT_NEAR(advantages[i], i == 0 || i == 3 ? 1.0 : -1.0, 1e-5);
  // Dr. GRPO: no std normalisation: +0.5 / -0.5.
  EXPECT_NEAR(group_advantages({1, 0}, {.normalize_std = false})[0], 0.5, 1e-12);
  // RLOO: reward minus the mean of the others: 3 - (1 + 2) / 2 = 1.5; 1 - 2.5 = -1.5; 2 - 2 = 0.
  auto rloo = group_advantages({3, 1, 2}, {.baseline = "rloo", .normalize_std = false});
  EXPECT_NEAR(rloo[0], 1.5, 1e-12);
  EXPECT_NEAR(rloo[1], -1.5, 1e-12);
  EXPECT_NEAR(rloo[2], 0.0, 1e-12);
  // Equal rewards teach nothing.
  EXPECT_EQ(group_advantages({0.7, 0.7, 0.7}), (std::vector<double>{0.0, 0.0, 0.0}));
  EXPECT_TRUE(uniform_rewards({0.7, 0.7}));
  EXPECT_FALSE(uniform_rewards({0.7, 0.8}));
}

TEST_F(Algorithms, SftLowersTheLossOfTheDemonstrations) {
  runtime_.run([&]() -> Task<void> {
    auto [before, result] = co_await sft_on_one_answer(co_await tiny_model(), 4);
    EXPECT_EQ(result.steps, 12);
    EXPECT_LT(result.eval_loss, 0.5 * before);
  }());
}

TEST_F(Algorithms, GrpoRaisesTheReward) {
  runtime_.run([&]() -> Task<void> {
    auto model = co_await tiny_model();
    auto grader = FunctionGrader("x", share_of_x);
    auto first = co_await GRPO({.dataset = x_task_prompts(),
                                .model = model,
                                .grader = grader,
                                .lr = 0.0,
                                .samples_per_batch = 32,
                                .completions_per_sample = 8,
                                .max_num_grpo_steps = 1,
                                .sampling = {.temperature = 1.0, .max_tokens = 8}})
                   .run();
    auto trained = co_await GRPO({.dataset = x_task_prompts(),
                                  .model = model,
                                  .grader = grader,
                                  .lr = 2e-3,
                                  .samples_per_batch = 32,
                                  .samples_per_mini_batch = 16,
                                  .completions_per_sample = 8,
                                  .variant = "dapo",
                                  .max_num_grpo_steps = 12,
                                  .sampling = {.temperature = 1.0, .max_tokens = 8}})
                     .run();
    EXPECT_GT(trained.reward_mean, first.reward_mean + 0.2) << first.reward_mean << " -> " << trained.reward_mean;
    std::printf("GRPO reward %.3f -> %.3f\n", first.reward_mean, trained.reward_mean);
  }());
}

TEST_F(Algorithms, GspoRaisesTheReward) {
  runtime_.run([&]() -> Task<void> {
    auto [first, trained] = co_await gspo_on_x(co_await tiny_model(), /*kl_beta=*/0.01);
    EXPECT_GT(trained, first + 0.2) << first << " -> " << trained;
    std::printf("GSPO reward %.3f -> %.3f\n", first, trained);
  }());
}

// A mixture of experts (a tiny random Qwen3-MoE over builtin:tiny's vocabulary, saved by
// test_save_llama_tiny) through the actors: GSPO and SFT train it as they train a dense model, its
// replica generating with each new weight version.
// Through the trainer actor: a model spawned with gradient checkpointing takes the same steps.
TEST_F(Algorithms, GradientCheckpointingLeavesTrainingAsItWas) {
  runtime_.run([&]() -> Task<void> {
    std::vector<SftResult> results;
    for (bool checkpointing : {false, true}) {
      auto builder = co_await ModelRef{"builtin:tiny"}.to_builder(
        ctx_, {.kv_cache_len = 256, .gradient_checkpointing = checkpointing});
      auto model = co_await builder.spawn_train(checkpointing ? "checkpointed" : "plain", {.keep_reference = false});
      results.push_back((co_await sft_on_one_answer(model, 2)).second);
    }
    EXPECT_EQ(results[1].steps, results[0].steps);
    EXPECT_NEAR(results[1].train_loss, results[0].train_loss, 1e-5);
    EXPECT_NEAR(results[1].eval_loss, results[0].eval_loss, 1e-5);
    EXPECT_LT(results[1].eval_loss, results[1].train_loss);
  }());
}

TEST_F(Algorithms, AMixtureOfExpertsTrainsWithGspoAndSft) {
  runtime_.run([&]() -> Task<void> {
    auto tiny = co_await (co_await ModelRef{"builtin:tiny"}.to_builder(ctx_, {})).spawn_train("tiny");
    auto folder = std::filesystem::path(co_await tiny.save("moe", ctx_));
    auto command = std::string(CHORUS_SAVE_LLAMA_TINY) + " " + folder.string() + " qwen3_moe";
    if (std::system(command.c_str()) != 0) {
      ADD_FAILURE() << "failed: " << command;
      co_return;
    }
    auto model = co_await (co_await ModelRef{folder.string()}.to_builder(ctx_, {.kv_cache_len = 256}))
                   .spawn_train("moe", {.max_batch_size = 64});
    auto [first, trained] = co_await gspo_on_x(model, /*kl_beta=*/0.0);
    EXPECT_GT(trained, first + 0.2) << first << " -> " << trained;

    auto [before, sft] = co_await sft_on_one_answer(model, 6);
    EXPECT_LT(sft.eval_loss, 0.5 * before);

    std::printf("MoE: GSPO reward %.3f -> %.3f, SFT loss %.3f -> %.3f\n", first, trained, before, sft.eval_loss);
  }());
}

// The RL loops follow a learning-rate schedule over their steps, as SFT over its optimizer steps:
// here two steps of warm-up, then a linear decay to zero at the run's end; each step's two optimizer
// updates take that step's rate, and the metrics report the rate the trainer applied.
TEST_F(Algorithms, RlStepsFollowTheLearningRateSchedule) {
  auto jsonl = std::filesystem::path(::testing::TempDir()) / "rl_schedule_metrics.jsonl";
  std::filesystem::remove(jsonl);
  runtime_.run([&]() -> Task<void> {
    auto model = co_await tiny_model();
    co_await GRPO({.dataset = x_task_prompts(),
                   .model = model,
                   .grader = FunctionGrader("x", share_of_x),
                   .logger = MetricsLogger({.jsonl = jsonl}),
                   .lr = 1e-3,
                   .warmup_steps = 2,
                   .lr_schedule = "linear",
                   .samples_per_batch = 8,
                   .samples_per_mini_batch = 4,
                   .completions_per_sample = 4,
                   .max_num_grpo_steps = 4,
                   .sampling = {.temperature = 1.0, .max_tokens = 4}})
      .run();
  }());
  std::ifstream in(jsonl);
  std::vector<double> rates;
  for (std::string line; std::getline(in, line);)
    rates.push_back(Json::parse(line).at("lr").get<double>());
  ASSERT_EQ(rates.size(), 4u);
  std::vector<double> expected{5e-4, 1e-3, 1e-3, 5e-4};
  for (std::size_t i = 0; i < rates.size(); ++i)
    EXPECT_NEAR(rates[i], expected[i], 1e-12) << "step " << i + 1;
}

// A grader that cannot grade a sample (a judge's NA) leaves it out of the reward, the advantages and
// the loss: here every completion without an 'x' is ignored, so the graded ones all score above 0 and
// the step's mean reward counts them only; the metrics count the ignored ones.
TEST_F(Algorithms, IgnoredSamplesAreLeftOutOfTheRewardAndTheLossAndCounted) {
  auto jsonl = std::filesystem::path(::testing::TempDir()) / "ignored_metrics.jsonl";
  std::filesystem::remove(jsonl);
  runtime_.run([&]() -> Task<void> {
    auto model = co_await tiny_model();
    auto grader = FunctionGrader("x_only", [](const Sample& sample) {
      Grade grade;
      grade.score = share_of_x(sample);
      grade.ignored = grade.score == 0;
      return grade;
    });
    auto result = co_await GRPO({.dataset = x_task_prompts(),
                                 .model = model,
                                 .grader = grader,
                                 .logger = MetricsLogger({.jsonl = jsonl}),
                                 .lr = 1e-3,
                                 .samples_per_batch = 32,
                                 .completions_per_sample = 8,
                                 .max_num_grpo_steps = 2,
                                 .sampling = {.temperature = 1.0, .max_tokens = 8}})
                    .run();
    EXPECT_GT(result.reward_mean, 0.0); // the mean over graded samples, which all have an 'x'
  }());
  std::ifstream in(jsonl);
  std::string line;
  int steps = 0;
  while (std::getline(in, line)) {
    auto record = Json::parse(line);
    ++steps;
    auto ignored = record.at("ignored_samples").get<double>();
    EXPECT_GT(ignored, 0.0) << line; // an untrained model writes few x's
    EXPECT_LT(ignored, 32.0) << line;
    EXPECT_GT(record.at("reward_mean").get<double>(), 0.0) << line;
  }
  EXPECT_EQ(steps, 2);
}

// generate_and_validate: a model trained to answer a JSON object returns it parsed; an untrained
// one never satisfies the schema, and after the retries that is a ValidationError naming the problem.
TEST_F(Algorithms, GenerateAndValidateReturnsTheParsedValueOrSaysWhatWasWrong) {
  runtime_.run([&]() -> Task<void> {
    // Room for a retry's conversation (the answer, the problem and the schema) in bytes.
    auto builder = co_await ModelRef{"builtin:tiny"}.to_builder(ctx_, {.kv_cache_len = 1024});
    auto model = co_await builder.spawn_train("policy", {.max_batch_size = 8});
    Json schema = {
      {"type", "object"}, {"required", {"answer"}}, {"properties", {{"answer", {{"enum", {"yes", "no"}}}}}}};
    std::string message;
    try {
      co_await model.generate_and_validate(
        {{"user", "Is 4 even?"}}, schema,
        {.sampling = {.temperature = 0.0, .max_tokens = 12}, .max_parsing_retries = 1});
    } catch (const ValidationError& error) {
      message = error.what();
    }
    EXPECT_NE(message.find("no answer satisfied the schema in 2 attempt(s); the last: "), std::string::npos) << message;

    std::vector<Completion> examples;
    for (int i = 0; i < 8; ++i)
      examples.push_back(
        {{{"user", "Is " + std::to_string(2 * i) + " even?"}}, R"({"answer": "yes"})", Json::object()});
    co_await SFT({.dataset = examples, .model = model, .lr = 3e-3, .epochs = 24, .samples_per_batch = 4}).run();
    auto validated = co_await model.generate_and_validate({{"user", "Is 6 even?"}}, schema,
                                                          {.sampling = {.temperature = 0.0, .max_tokens = 32}});
    EXPECT_EQ(validated.value, Json({{"answer", "yes"}}));
    EXPECT_NE(validated.generation.text.find("yes"), std::string::npos);
    EXPECT_GE(validated.failed_attempts, 0);
  }());
}

// Guided decoding through the policy actor: an untrained model's answers are JSON of the schema, or
// one of the choices; generate_and_validate guided by its schema needs no retry; and a schema that
// cannot be followed is an error naming the keyword.
TEST_F(Algorithms, GuidedDecodingGivesAnUntrainedModelTheShapeAskedFor) {
  runtime_.run([&]() -> Task<void> {
    auto builder = co_await ModelRef{"builtin:tiny"}.to_builder(ctx_, {.kv_cache_len = 1024});
    auto model = co_await builder.spawn_inference("judge", {.max_batch_size = 8});
    Json schema = {{"type", "object"},
                   {"properties", {{"answer", {{"enum", {"yes", "no"}}}}, {"score", {{"type", "integer"}}}}},
                   {"required", {"answer", "score"}}};
    std::vector<Task<Generation>> requests;
    for (int i = 0; i < 8; ++i) {
      SamplingParams params{.temperature = 1.0, .max_tokens = 128, .seed = i};
      params.json_schema = schema;
      requests.push_back(model.generate({{"user", "Is 4 even?"}}, params));
    }
    int whole = 0;
    for (const auto& generation : co_await when_all(std::move(requests))) {
      if (generation.finish_reason != "stop")
        continue;
      ++whole;
      auto value = Json::parse(generation.text);
      EXPECT_EQ(schema_violation(value, schema), "") << generation.text;
    }
    EXPECT_GE(whole, 4);

    ValidateOptions guided{.max_parsing_retries = 0};
    guided.sampling.max_tokens = 256;
    guided.sampling.json_schema = schema;
    auto validated = co_await model.generate_and_validate({{"user", "Is 6 even?"}}, schema, guided);
    EXPECT_EQ(validated.failed_attempts, 0);
    EXPECT_TRUE(validated.value["answer"] == "yes" || validated.value["answer"] == "no");

    SamplingParams choice{.temperature = 1.0, .max_tokens = 16};
    choice.choice = {"even", "odd"};
    auto picked = co_await model.generate({{"user", "Is 4 even or odd?"}}, choice);
    EXPECT_TRUE(picked.text == "even" || picked.text == "odd") << picked.text;
    EXPECT_EQ(picked.finish_reason, "stop");

    SamplingParams patterned{.temperature = 1.0, .max_tokens = 24};
    patterned.regex = "(even|odd), [a-z]{2,8}\\.";
    auto sentence = co_await model.generate({{"user", "Is 4 even or odd?"}}, patterned);
    EXPECT_TRUE(std::regex_match(sentence.text, std::regex("(even|odd), [a-z]{2,8}\\."))) << sentence.text;
    EXPECT_EQ(sentence.finish_reason, "stop");

    SamplingParams unfollowable{.max_tokens = 8};
    unfollowable.json_schema = {{"type", "integer"}, {"multipleOf", 2}};
    std::string message;
    try {
      co_await model.generate({{"user", "x"}}, unfollowable);
    } catch (const ActorError& error) {
      message = error.what();
    }
    EXPECT_NE(message.find("$: the keyword 'multipleOf' is not supported in guided decoding"), std::string::npos)
      << message;
  }());
}

TEST(Advantages, GeneralizedAdvantageEstimationByHand) {
  // Rewards 0, 0, 1; values 0.5, 0.25, 0.5; gamma 1, lambda 0.5:
  // delta_2 = 1 - 0.5 = 0.5; delta_1 = 0 + 0.5 - 0.25 = 0.25; delta_0 = 0 + 0.25 - 0.5 = -0.25.
  // A_2 = 0.5; A_1 = 0.25 + 0.5 * 0.5 = 0.5; A_0 = -0.25 + 0.5 * 0.5 = 0. Returns = A + V.
  auto gae = generalized_advantages({0, 0, 1}, {0.5, 0.25, 0.5}, 1.0, 0.5);
  EXPECT_NEAR(gae.advantages[0], 0.0, 1e-12);
  EXPECT_NEAR(gae.advantages[1], 0.5, 1e-12);
  EXPECT_NEAR(gae.advantages[2], 0.5, 1e-12);
  EXPECT_NEAR(gae.returns[0], 0.5, 1e-12);
  EXPECT_NEAR(gae.returns[1], 0.75, 1e-12);
  EXPECT_NEAR(gae.returns[2], 1.0, 1e-12);
  // lambda 1, gamma 1: every advantage is the final reward minus the value (Monte Carlo).
  auto monte_carlo = generalized_advantages({0, 1}, {0.25, 0.5}, 1.0, 1.0);
  EXPECT_NEAR(monte_carlo.advantages[0], 0.75, 1e-12);
  EXPECT_NEAR(monte_carlo.advantages[1], 0.5, 1e-12);
}

TEST_F(Algorithms, PpoRaisesTheRewardAndLearnsValues) {
  runtime_.run([&]() -> Task<void> {
    auto model = co_await tiny_model();
    auto grader = FunctionGrader("x", share_of_x);
    auto first = co_await PPO({.dataset = x_task_prompts(),
                               .model = model,
                               .grader = grader,
                               .lr = 0.0,
                               .samples_per_batch = 32,
                               .max_num_ppo_steps = 1,
                               .sampling = {.temperature = 1.0, .max_tokens = 8}})
                   .run();
    auto trained =
      co_await PPO({.dataset = x_task_prompts(),
                    .model = model,
                    .grader = grader,
                    .lr = 2e-3,
                    .samples_per_batch = 32,
                    .samples_per_mini_batch = 16,
                    .max_num_ppo_steps = 12,
                    .max_staleness = 0, // at this lr, stale PPO samples are mostly clipped: 30 steps to learn
                    .sampling = {.temperature = 1.0, .max_tokens = 8}})
        .run();
    EXPECT_GT(trained.reward_mean, first.reward_mean + 0.2) << first.reward_mean << " -> " << trained.reward_mean;
    std::printf("PPO reward %.3f -> %.3f\n", first.reward_mean, trained.reward_mean);
    // The value head moved off zero towards the returns.
    auto sample = TrainSample{co_await model.tokenize_chat({{"user", "Go on."}}), {'x', 'x'}, 0.0, {}, 0};
    auto values = co_await model.values({sample});
    EXPECT_NE(values.front().front(), 0.0f);
  }());
}

TEST_F(Algorithms, DpoRanksTheChosenCompletionsFirst) {
  runtime_.run([&]() -> Task<void> {
    auto model = co_await tiny_model();
    std::vector<Preference> preferences;
    for (int i = 0; i < 8; ++i)
      preferences.push_back({{{"user", "Greet me " + std::to_string(i)}}, "Hello!", "Go away.", Json::object()});
    auto result =
      co_await DPO(
        {.dataset = preferences, .model = model, .lr = 3e-3, .beta = 0.5, .epochs = 3, .samples_per_batch = 4})
        .run();
    EXPECT_EQ(result.steps, 6);
    EXPECT_EQ(result.reward_accuracy, 1.0);
    EXPECT_LT(result.loss, std::log(2.0) - 0.1);
  }());
}

TEST(AlgorithmOptions, BadOptionsAreConfigErrors) {
  EXPECT_THROW(SFT({}), ConfigError);
  EXPECT_THROW(GRPO({.dataset = x_task_prompts()}), ConfigError); // no grader
  EXPECT_THROW(GRPO({.dataset = x_task_prompts(), .grader = FunctionGrader("x", share_of_x), .variant = "grpo++"}),
               ConfigError);
  EXPECT_THROW(GSPO({.dataset = x_task_prompts(),
                     .grader = FunctionGrader("x", share_of_x),
                     .samples_per_batch = 2,
                     .completions_per_sample = 4}),
               ConfigError);
  EXPECT_THROW(DPO({.dataset = {{{{"user", "a"}}, "b", "c", Json::object()}}, .beta = 0.0}), ConfigError);
  EXPECT_THROW(DPO({.dataset = {{{{"user", "a"}}, "b", "c", Json::object()}}, .loss_type = "kto"}), ConfigError);
  EXPECT_THROW(DPO({.dataset = {{{{"user", "a"}}, "b", "c", Json::object()}}, .label_smoothing = 0.5}), ConfigError);
  EXPECT_THROW(
    DPO({.dataset = {{{{"user", "a"}}, "b", "c", Json::object()}}, .loss_type = "ipo", .label_smoothing = 0.1}),
    ConfigError);
  EXPECT_THROW(PPO({.dataset = x_task_prompts(), .grader = FunctionGrader("x", share_of_x), .gamma = 1.5}),
               ConfigError);
  // The overlap options, checked by every pipelined algorithm.
  EXPECT_THROW(GRPO({.dataset = x_task_prompts(), .grader = FunctionGrader("x", share_of_x), .max_staleness = -1}),
               ConfigError);
  EXPECT_THROW(GSPO({.dataset = x_task_prompts(), .grader = FunctionGrader("x", share_of_x), .group_timeout_s = -1}),
               ConfigError);
  EXPECT_THROW(PPO({.dataset = x_task_prompts(), .grader = FunctionGrader("x", share_of_x), .max_rollout_retries = -1}),
               ConfigError);
  EXPECT_THROW(GRPO({.dataset = x_task_prompts(), .grader = FunctionGrader("x", share_of_x), .max_grading_queue = -1}),
               ConfigError);
  // The learning-rate schedule, checked the same way by every algorithm, naming the option.
  auto expect_schedule_error = [](auto make, const std::string& words) {
    try {
      make();
      ADD_FAILURE() << "no error for " << words;
    } catch (const ConfigError& error) {
      EXPECT_NE(std::string(error.what()).find(words), std::string::npos) << error.what();
    }
  };
  auto x = FunctionGrader("x", share_of_x);
  expect_schedule_error([&] { GRPO({.dataset = x_task_prompts(), .grader = x, .lr_schedule = "step"}); },
                        "GRPO: lr_schedule must be constant, cosine or linear, got 'step'");
  expect_schedule_error([&] { GSPO({.dataset = x_task_prompts(), .grader = x, .warmup_steps = -1}); },
                        "GSPO: warmup_steps must be >= 0");
  expect_schedule_error([&] { PPO({.dataset = x_task_prompts(), .grader = x, .min_lr_ratio = 2}); },
                        "PPO: min_lr_ratio must be in [0, 1]");
  expect_schedule_error([&] { PPO({.dataset = x_task_prompts(), .grader = x, .lr = -1}); }, "PPO: lr must be >= 0");
  expect_schedule_error([&] { PPO({.dataset = x_task_prompts(), .grader = x, .value_lr = std::nan("")}); },
                        "PPO: value_lr");
  expect_schedule_error([&] { GRPO({.dataset = x_task_prompts(), .grader = x, .weight_decay = -0.1}); },
                        "weight_decay must be >= 0");
  expect_schedule_error([&] { SFT({.dataset = {{{{"user", "a"}}, "b", Json::object()}}, .lr_schedule = "step"}); },
                        "SFT: lr_schedule must be constant, cosine or linear");
  expect_schedule_error([&] { DPO({.dataset = {{{{"user", "a"}}, "b", "c", Json::object()}}, .min_lr_ratio = -0.5}); },
                        "DPO: min_lr_ratio must be in [0, 1]");
}
