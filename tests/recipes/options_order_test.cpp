// GRPO, GSPO and PPO declare the option fields they share in one order, so one designated
// initialiser of those fields is valid for all three (C++20 wants declaration order; the build makes
// any other order an error: cmake/ChorusWarnings.cmake). Each initialiser below is written once and
// instantiated for every algorithm it applies to: a field moved in one struct fails the build here.
#include <chorus/chorus.hpp>

#include <gtest/gtest.h>

using namespace chorus;

namespace {

// The fields every one of GRPO, GSPO and PPO has, in their shared order.
template <class Options>
Options every_shared_field() {
  return Options{.dataset = {Prompt{{{"user", "Say x"}}, {}}},
                 .model = TrainingModel(),
                 .grader = FunctionGrader("x", [](const Sample&) { return 1.0; }),
                 .logger = MetricsLogger(),
                 .lr = 1e-3,
                 .warmup_steps = 3,
                 .lr_schedule = "linear",
                 .min_lr_ratio = 0.25,
                 .samples_per_batch = 8,
                 .samples_per_mini_batch = 4,
                 .micro_batch_size = 2,
                 .max_grad_norm = 0.5,
                 .weight_decay = 0.05,
                 .clip_range = 0.1,
                 .clip_range_high = 0.3,
                 .kl_beta = 0.01,
                 .reset_reference = false,
                 .max_staleness = 1,
                 .group_timeout_s = 30,
                 .max_rollout_retries = 2,
                 .max_grading_queue = 3,
                 .sampling = {.temperature = 0.5, .max_tokens = 7},
                 .seed = 11,
                 .stage = "shared"};
}

// The group algorithms' (GRPO, GSPO) shared fields, with completions_per_sample, which PPO does not
// have (one completion per prompt).
template <class Options>
Options every_group_field() {
  return Options{.lr = 1e-3,
                 .warmup_steps = 3,
                 .samples_per_batch = 8,
                 .samples_per_mini_batch = 4,
                 .micro_batch_size = 2,
                 .completions_per_sample = 4,
                 .max_grad_norm = 0.5,
                 .weight_decay = 0.05,
                 .clip_range = 0.1,
                 .clip_range_high = 0.3,
                 .kl_beta = 0.01,
                 .reset_reference = false,
                 .max_staleness = 1,
                 .seed = 11};
}

template <class Options>
void expect_shared_fields(const Options& options) {
  EXPECT_EQ(options.dataset.size(), 1u);
  EXPECT_TRUE(options.grader);
  EXPECT_EQ(options.lr, 1e-3);
  EXPECT_EQ(options.warmup_steps, 3);
  EXPECT_EQ(options.lr_schedule, "linear");
  EXPECT_EQ(options.min_lr_ratio, 0.25);
  EXPECT_EQ(options.samples_per_batch, 8);
  EXPECT_EQ(options.samples_per_mini_batch, 4);
  EXPECT_EQ(options.micro_batch_size, 2);
  EXPECT_EQ(options.max_grad_norm, 0.5);
  EXPECT_EQ(options.weight_decay, 0.05);
  EXPECT_EQ(options.clip_range, 0.1);
  EXPECT_EQ(options.clip_range_high, 0.3);
  EXPECT_EQ(options.kl_beta, 0.01);
  EXPECT_FALSE(options.reset_reference);
  EXPECT_EQ(options.max_staleness, 1);
  EXPECT_EQ(options.group_timeout_s, 30);
  EXPECT_EQ(options.max_rollout_retries, 2);
  EXPECT_EQ(options.max_grading_queue, 3);
  EXPECT_EQ(options.sampling.max_tokens, 7);
  EXPECT_EQ(options.seed, 11u);
  EXPECT_EQ(options.stage, "shared");
}

} // namespace

TEST(AlgorithmOptions, OneInitialiserOfTheSharedFieldsServesGrpoGspoAndPpo) {
  expect_shared_fields(every_shared_field<GrpoOptions>());
  expect_shared_fields(every_shared_field<GspoOptions>());
  expect_shared_fields(every_shared_field<PpoOptions>());
}

TEST(AlgorithmOptions, OneInitialiserOfTheGroupFieldsServesGrpoAndGspo) {
  auto grpo = every_group_field<GrpoOptions>();
  auto gspo = every_group_field<GspoOptions>();
  EXPECT_EQ(grpo.completions_per_sample, 4);
  EXPECT_EQ(gspo.completions_per_sample, 4);
  EXPECT_EQ(grpo.clip_range_high, 0.3);
  EXPECT_EQ(gspo.clip_range_high, 0.3);
}

TEST(AlgorithmOptions, EachAlgorithmReturnsAResultNamedAfterIt) {
  static_assert(std::is_same_v<decltype(std::declval<GRPO>().run()), Task<GrpoResult>>);
  static_assert(std::is_same_v<decltype(std::declval<GSPO>().run()), Task<GspoResult>>);
  static_assert(std::is_same_v<decltype(std::declval<PPO>().run()), Task<PpoResult>>);
  static_assert(std::is_same_v<decltype(std::declval<ENVGRPO>().run()), Task<GrpoResult>>);
  static_assert(std::is_same_v<decltype(std::declval<ENVGSPO>().run()), Task<GspoResult>>);
  static_assert(std::is_same_v<decltype(std::declval<SFT>().run()), Task<SftResult>>);
  static_assert(std::is_same_v<decltype(std::declval<DPO>().run()), Task<DpoResult>>);
  SUCCEED();
}
