// The asynchronous RL loop: max_staleness 0 is the synchronous loop to the last bit, 1 overlaps
// generation with training without ever training on an older policy, and stragglers, failures and a
// slow grader are handled by the documented rule, each counted in the metrics.
#include <chorus/chorus.hpp>

#include "recipes/policy_optimization.hpp"
#include "recipes/rollout_pipeline.hpp"
#include "runtime/runtime.hpp"
#include "tests/expect_error.hpp"
#include "tests/recipes/scripted.hpp"
#include "tests/recipes/x_task.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <fstream>

using namespace chorus;
using chorus::test::expect_error_containing;
using chorus::test::Gate;
using chorus::test::GradingCounts;
using chorus::test::scripted;
using chorus::test::share_of_x;
using chorus::test::x_task_prompts;
using namespace std::chrono_literals;

namespace {

std::vector<nlohmann::json> read_metrics(const std::filesystem::path& file) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);)
    lines.push_back(nlohmann::json::parse(line));
  return lines;
}

class Overlap : public ::testing::Test {
protected:
  std::filesystem::path output_ = std::filesystem::path(::testing::TempDir())
    / ("overlap_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
  Runtime runtime_;
  RecipeContext ctx_{runtime_, "test", output_, MetricsLogger(), spdlog::default_logger()};

  void SetUp() override {
    std::filesystem::remove_all(output_);
    std::filesystem::create_directories(output_);
  }

  Task<TrainingModel> tiny_model(std::string name = "policy", int max_batch_size = 64) {
    auto builder = co_await ModelRef{"builtin:tiny"}.to_builder(ctx_, {.kv_cache_len = 256, .seed = 7});
    co_return co_await builder.spawn_train(name, {.max_batch_size = max_batch_size});
  }

  MetricsLogger logger(const std::string& name) {
    return MetricsLogger({.jsonl = output_ / (name + ".jsonl")});
  }
};

// The pipeline alone, as the RolloutPipeline tests drive it: kGroupsPerStep groups of kGroupSize per
// step, max_staleness 1, and `rollout` in place of a policy and a grader.
constexpr int kGroupsPerStep = 2;
constexpr int kGroupSize = 2;
constexpr int kRolloutsPerStep = kGroupsPerStep * kGroupSize;

detail::PipelineOptions pipeline_options(int steps, detail::RolloutFn rollout) {
  detail::PipelineOptions options;
  options.algorithm = "TEST";
  options.dataset = x_task_prompts();
  options.steps = steps;
  options.groups_per_step = kGroupsPerStep;
  options.group_size = kGroupSize;
  options.max_staleness = 1;
  options.rollout = std::move(rollout);
  return options;
}

// A rollout of `tokens` completion tokens made by the weights of `weight_version`.
detail::Rollout rollout_of(std::size_t tokens, std::int64_t weight_version) {
  detail::Rollout rollout;
  rollout.prompt_tokens = {1};
  rollout.tokens.assign(tokens, 2);
  rollout.logprobs.assign(tokens, -1.0f);
  rollout.generated = static_cast<std::int64_t>(tokens);
  rollout.weight_version = weight_version;
  return rollout;
}

} // namespace

TEST_F(Overlap, StalenessZeroIsTheSynchronousLoopExactly) {
  constexpr int kSteps = 3;
  constexpr int kSamplesPerBatch = 16, kSamplesPerMiniBatch = 8, kCompletionsPerSample = 4;
  constexpr std::size_t kGroup = kCompletionsPerSample, kPrompts = kSamplesPerBatch / kCompletionsPerSample;
  const SamplingParams sampling{.temperature = 1.0, .max_tokens = 8};
  const std::uint64_t seed = 11;
  std::vector<double> pipelined_rewards, sequential_rewards;
  std::vector<float> pipelined_logprobs, sequential_logprobs;
  runtime_.run([&]() -> Task<void> {
    auto grader = FunctionGrader("x", share_of_x);
    auto probe = [](TrainingModel model) -> Task<std::vector<float>> {
      auto prompt = co_await model.tokenize_chat({{"user", "Go on."}});
      co_return co_await model.logprobs(prompt, {'x', 'y', 'x'});
    };

    // One sequence at a time on the policy. CPU matrix products are not batch-invariant in the last
    // bits (a row's result changes with how many rows share the product: OpenBLAS picks its kernel
    // and blocking by shape), so with continuous batching the behaviour log-probs, and through the
    // importance ratio the updates, would depend on which requests happened to arrive together.
    // The pipeline must give the same numbers as the loop; arrival timing is not what is tested.
    auto pipelined = co_await tiny_model("pipelined", 1);
    co_await GRPO({.dataset = x_task_prompts(),
                   .model = pipelined,
                   .grader = grader,
                   .logger = logger("pipelined"),
                   .lr = 1e-3,
                   .samples_per_batch = kSamplesPerBatch,
                   .samples_per_mini_batch = kSamplesPerMiniBatch,
                   .micro_batch_size = kSamplesPerMiniBatch,
                   .completions_per_sample = kCompletionsPerSample,
                   .max_num_grpo_steps = kSteps,
                   .max_staleness = 0,
                   .sampling = sampling,
                   .seed = seed})
      .run();
    for (const auto& line : read_metrics(output_ / "pipelined.jsonl"))
      pipelined_rewards.push_back(line["reward_mean"].get<double>());
    pipelined_logprobs = co_await probe(pipelined);

    // The same run written as the plain sequential loop: generate and grade everything, then train.
    auto sequential = co_await tiny_model("sequential", 1);
    auto dataset = x_task_prompts();
    detail::PromptStream stream(dataset, seed);
    for (int step = 1; step <= kSteps; ++step) {
      auto step_prompts = stream.next(kPrompts);
      std::vector<Task<Generation>> requests;
      for (std::size_t p = 0; p < kPrompts; ++p)
        for (std::size_t k = 0; k < kGroup; ++k)
          requests.push_back(
            sequential.generate(step_prompts[p].prompt, detail::seeded(sampling, seed, step, p * kGroup + k)));
      auto generations = co_await when_all(std::move(requests));
      std::vector<TrainSample> samples;
      double reward_sum = 0;
      for (std::size_t p = 0; p < kPrompts; ++p) {
        std::vector<double> rewards;
        for (std::size_t k = 0; k < kGroup; ++k)
          rewards.push_back(share_of_x({step_prompts[p].prompt, generations[p * kGroup + k].text, Json::object()}));
        auto advantages = group_advantages(rewards);
        for (std::size_t k = 0; k < kGroup; ++k) {
          auto& g = generations[p * kGroup + k];
          reward_sum += rewards[k];
          if (!g.tokens.empty())
            samples.push_back({g.prompt_tokens, g.tokens, advantages[k], g.logprobs, g.weight_version});
        }
      }
      sequential_rewards.push_back(reward_sum / kSamplesPerBatch);
      for (auto& batch : batches_of(shuffled(samples, seed + static_cast<std::uint64_t>(step)), kSamplesPerMiniBatch))
        co_await sequential.train_policy(std::move(batch),
                                         {.lr = 1e-3,
                                          .max_grad_norm = 1.0,
                                          .micro_batch_size = kSamplesPerMiniBatch,
                                          .clip_range = 0.2,
                                          .loss_aggregation = "sequence_mean",
                                          .ratio_level = "token"});
    }
    sequential_logprobs = co_await probe(sequential);
  }());
  ASSERT_EQ(pipelined_rewards.size(), static_cast<std::size_t>(kSteps));
  EXPECT_EQ(pipelined_rewards, sequential_rewards);
  ASSERT_EQ(pipelined_logprobs.size(), sequential_logprobs.size());
  for (std::size_t i = 0; i < pipelined_logprobs.size(); ++i)
    EXPECT_EQ(pipelined_logprobs[i], sequential_logprobs[i]) << "token " << i;
  EXPECT_NE(pipelined_logprobs, std::vector<float>(3, pipelined_logprobs.front())); // it trained something
}

TEST_F(Overlap, StalenessOneOverlapsGenerationWithTrainingAndNeverExceedsTheBound) {
  constexpr int kSteps = 6;
  runtime_.run([&]() -> Task<void> {
    auto model = co_await tiny_model();
    auto result = co_await GRPO({.dataset = x_task_prompts(),
                                 .model = model,
                                 .grader = FunctionGrader("x", share_of_x),
                                 .logger = logger("async"),
                                 .lr = 1e-3,
                                 .samples_per_batch = 32,
                                 .samples_per_mini_batch = 16,
                                 .completions_per_sample = 4,
                                 .max_num_grpo_steps = kSteps,
                                 .max_staleness = 1,
                                 .sampling = {.temperature = 1.0, .max_tokens = 16}})
                    .run();
    EXPECT_EQ(result.steps, kSteps);
  }());
  auto lines = read_metrics(output_ / "async.jsonl");
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(kSteps));
  int stale_samples = 0;
  double overlap = 0;
  for (const auto& line : lines) {
    EXPECT_FALSE(line.contains("staleness/2")) << line.dump();
    EXPECT_EQ(line["stale_dropped"].get<double>(), 0.0);
    EXPECT_LE(line["staleness"].get<double>(), 1.0);
    stale_samples += line.value("staleness/1", 0.0);
    overlap += line["overlap"].get<double>();
    EXPECT_GT(line["busy_s/train"].get<double>(), 0.0);
    if (&line != &lines.back()) // the last step's rollouts were all made while the step before trained
      EXPECT_GT(line["busy_s/generate"].get<double>(), 0.0);
  }
  EXPECT_EQ(lines[0].value("staleness/1", 0.0), 0.0); // the first step's rollouts come from the start
  EXPECT_GT(stale_samples, 0);                        // later ones were made while the trainer stepped
  EXPECT_GT(overlap, 0.0);
}

TEST_F(Overlap, AStragglerIsCancelledAtItsGroupsDeadlineAndTheGroupTrainsWithoutIt) {
  constexpr int kSamplesPerBatch = 8;
  auto start = std::chrono::steady_clock::now();
  runtime_.run([&]() -> Task<void> {
    auto model = co_await tiny_model();
    auto hang_first = [](int call, const Sample& sample) -> Task<double> {
      if (call == 0)
        co_await Gate().pass(); // a judge that never answers
      co_return share_of_x(sample);
    };
    co_await GRPO({.dataset = x_task_prompts(),
                   .model = model,
                   .grader = scripted(hang_first),
                   .logger = logger("straggler"),
                   .samples_per_batch = kSamplesPerBatch,
                   .completions_per_sample = 4,
                   .max_num_grpo_steps = 2,
                   .max_staleness = 0,
                   .group_timeout_s = 1.0,
                   .sampling = {.max_tokens = 8}})
      .run();
  }());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 60s);
  auto lines = read_metrics(output_ / "straggler.jsonl");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["rollouts_timed_out"].get<double>(), 1.0);
  EXPECT_EQ(lines[0]["groups_partial"].get<double>(), 1.0);
  EXPECT_EQ(lines[0]["groups_dropped"].get<double>(), 0.0);
  EXPECT_EQ(lines[0]["staleness/0"].get<double>(), kSamplesPerBatch - 1.0); // trained on the others
  EXPECT_EQ(lines[1]["rollouts_timed_out"].get<double>(), 0.0);
}

TEST_F(Overlap, AStepWhoseRolloutsAllMissTheDeadlineStopsTheRunSayingSo) {
  runtime_.run([&]() -> Task<void> {
    auto model = co_await tiny_model();
    auto never_answer = [](int, const Sample&) -> Task<double> {
      co_await Gate().pass();
      co_return 0.0;
    };
    co_await expect_error_containing<Error>(GRPO({.dataset = x_task_prompts(),
                                                  .model = model,
                                                  .grader = scripted(never_answer),
                                                  .samples_per_batch = 4,
                                                  .completions_per_sample = 2,
                                                  .max_num_grpo_steps = 2,
                                                  .group_timeout_s = 0.3,
                                                  .sampling = {.max_tokens = 4}})
                                              .run(),
                                            {"missed its group's deadline"});
  }());
}

TEST_F(Overlap, AFailedRolloutIsRetriedAndRolloutsThatAlwaysFailStopTheRun) {
  runtime_.run([&]() -> Task<void> {
    auto model = co_await tiny_model();
    auto fail_first = [](int call, const Sample& sample) -> Task<double> {
      if (call == 0)
        throw std::runtime_error("judge hiccup");
      co_return share_of_x(sample);
    };
    co_await GRPO({.dataset = x_task_prompts(),
                   .model = model,
                   .grader = scripted(fail_first),
                   .logger = logger("retry"),
                   .samples_per_batch = 8,
                   .completions_per_sample = 4,
                   .max_num_grpo_steps = 1,
                   .sampling = {.max_tokens = 8}})
      .run();
    auto always_fail = [](int, const Sample&) -> Task<double> {
      throw std::runtime_error("judge down");
      co_return 0.0;
    };
    co_await expect_error_containing<Error>(GRPO({.dataset = x_task_prompts(),
                                                  .model = model,
                                                  .grader = scripted(always_fail),
                                                  .samples_per_batch = 8,
                                                  .completions_per_sample = 4,
                                                  .max_num_grpo_steps = 3,
                                                  .sampling = {.max_tokens = 8}})
                                              .run(),
                                            {"judge down", "every rollout of step 1 failed"});
  }());
  auto lines = read_metrics(output_ / "retry.jsonl");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["rollouts_retried"].get<double>(), 1.0);
  EXPECT_EQ(lines[0]["rollouts_failed"].get<double>(), 0.0);
  EXPECT_EQ(lines[0]["groups_partial"].get<double>(), 0.0);
}

// Forced order, no wall clock: the first grading calls wait until kQueue of them are in flight, so
// the queue is full at least once; a pipeline that let more in would start one more meanwhile.
TEST_F(Overlap, GradingNeverRunsMoreThanMaxGradingQueueAtOnce) {
  constexpr int kQueue = 3;
  auto counts = std::make_shared<GradingCounts>();
  runtime_.run([&]() -> Task<void> {
    auto model = co_await tiny_model();
    Gate full;
    auto held = [&full, counts](int, const Sample& sample) -> Task<double> {
      if (counts->in_flight == kQueue)
        full.open();
      co_await full.pass();
      co_return share_of_x(sample);
    };
    co_await GRPO({.dataset = x_task_prompts(),
                   .model = model,
                   .grader = scripted(held, counts),
                   .samples_per_batch = 16,
                   .completions_per_sample = 4,
                   .max_num_grpo_steps = 2,
                   .max_grading_queue = kQueue,
                   .sampling = {.max_tokens = 4}})
      .run();
  }());
  EXPECT_EQ(counts->most_in_flight, kQueue);
}

// The pipeline alone, with a scripted rollout and no model: the staleness gate, and the rule that a
// sample older than max_staleness is dropped and counted, never trained on.
TEST(RolloutPipeline, StepsWaitForTheTrainerAndSamplesBeyondTheBoundAreDropped) {
  Runtime runtime;
  std::vector<std::string> events;
  runtime.run([&]() -> Task<void> {
    // Every rollout claims the weights the run started from (version 100), as a policy that never
    // adopted new weights would.
    auto options = pipeline_options(3, [&events](Prompt, SamplingParams, detail::StageClock&) -> Task<detail::Rollout> {
      events.push_back("rollout");
      co_return rollout_of(2, 100);
    });
    detail::RolloutPipeline pipeline(std::move(options), /*versions=*/{100});
    auto train = [](detail::RolloutPipeline& pipeline, std::vector<std::string>& events,
                    std::vector<detail::StepRollouts>& steps) -> Task<void> {
      for (int step = 1; step <= 3; ++step) {
        steps.push_back(co_await pipeline.next_step(step));
        events.push_back("trained " + std::to_string(step));
        pipeline.step_trained(step, 100 + 10 * step);
      }
    };
    std::vector<detail::StepRollouts> steps;
    co_await gather(pipeline.produce(), train(pipeline, events, steps));
    EXPECT_EQ(steps.size(), 3u);
    if (steps.size() != 3u)
      co_return;
    EXPECT_EQ(steps[0].staleness.at(0), 4);
    EXPECT_EQ(steps[1].staleness.at(1), 4); // made by version 0, trained by version 1: within the bound
    EXPECT_EQ(steps[2].stale_dropped, 4);   // version 0 against version 2: dropped, and counted
    EXPECT_EQ(steps[2].groups_dropped, 2);
    EXPECT_TRUE(steps[2].groups.empty());
  }());
  // Steps 1 and 2 may start at once; step 3's wait for step 1 to be trained.
  auto first_trained = std::find(events.begin(), events.end(), "trained 1");
  ASSERT_NE(first_trained, events.end());
  EXPECT_GE(std::count(events.begin(), first_trained, "rollout"), kRolloutsPerStep);
  EXPECT_LE(std::count(events.begin(), first_trained, "rollout"), 2 * kRolloutsPerStep);
  EXPECT_EQ(std::count(events.begin(), events.end(), "rollout"), 3 * kRolloutsPerStep);
}

// The first step's rollouts run alone (the trainer waits for them); the next step's start when they
// are all in, without waiting for the first step to be trained (max_staleness 1). Forced order: the
// first step's rollouts are held until all of them have started, so a pipeline that started the
// next step's early would start them while the first step's are still running.
TEST(RolloutPipeline, TheFirstStepsRolloutsRunAloneThenTheBoundGoverns) {
  Runtime runtime;
  std::vector<std::string> events;
  runtime.run([&]() -> Task<void> {
    Gate all_started;
    int started = 0;
    auto options = pipeline_options(2, [&](Prompt, SamplingParams, detail::StageClock&) -> Task<detail::Rollout> {
      events.push_back("start");
      if (++started == kRolloutsPerStep)
        all_started.open();
      co_await all_started.pass();
      events.push_back("end");
      co_return rollout_of(1, 0);
    });
    detail::RolloutPipeline pipeline(std::move(options), /*versions=*/{0});
    auto train = [](detail::RolloutPipeline& pipeline, std::vector<std::string>& events) -> Task<void> {
      for (int step = 1; step <= 2; ++step) {
        co_await pipeline.next_step(step);
        events.push_back("trained " + std::to_string(step));
        pipeline.step_trained(step, step);
      }
    };
    co_await gather(pipeline.produce(), train(pipeline, events));
  }());
  ASSERT_EQ(std::count(events.begin(), events.end(), "start"), 2 * kRolloutsPerStep);
  // Step 2's first rollout starts after step 1's last has ended.
  auto next_step_start = events.begin();
  for (int seen = 0; seen <= kRolloutsPerStep; ++next_step_start)
    seen += *next_step_start == "start" ? 1 : 0;
  --next_step_start;
  EXPECT_EQ(std::count(events.begin(), next_step_start, "end"), kRolloutsPerStep);
}
