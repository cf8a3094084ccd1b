// The loop GRPO and GSPO share: sample a group of completions per prompt, grade them, turn rewards
// into group-relative advantages, and take clipped policy-gradient steps over mini-batches. Internal
// to recipes/: the public algorithms fill this in with their own names and defaults.
#pragma once

#include <chorus/advantages.hpp>
#include <chorus/checkpoint.hpp>
#include <chorus/dataset.hpp>
#include <chorus/environment.hpp>
#include <chorus/grader.hpp>
#include <chorus/grpo.hpp>
#include <chorus/gspo.hpp>
#include <chorus/metrics.hpp>
#include <chorus/model.hpp>

#include "recipes/rl_support.hpp"

#include <functional>
#include <string>
#include <vector>

namespace chorus::detail {

/// One graded trajectory: what the model generated after the prompt (with the environment's turns,
/// masked out, in a multi-turn episode) and its reward.
struct Rollout {
  std::vector<std::int64_t> prompt_tokens;
  std::vector<std::int64_t> tokens;
  std::vector<float> logprobs;     // one per token (0 for masked ones)
  std::vector<std::uint8_t> mask;  // empty: every token is the model's
  std::int64_t weight_version = 0; // the oldest weights that generated any of it
  std::int64_t generated = 0;      // tokens the model generated
  Grade grade;
};

class StageClock;
class RolloutPipeline;

/// Where an RL loop stands: the last step taken and that step's mean reward (the algorithms return
/// it as their own result type; a checkpoint records it).
struct RlProgress {
  std::int64_t steps = 0;
  double reward_mean = 0.0;
};

/// Produces one rollout of a prompt with the given sampling, marking its generate and grade stages.
using RolloutFn = std::function<Task<Rollout>(Prompt, SamplingParams, StageClock&)>;

struct PolicyOptimization {
  std::string algorithm; // for error messages: "GRPO", "GSPO"
  std::vector<Prompt> dataset;
  TrainingModel model;
  Grader grader;
  MetricsLogger logger;
  double lr = 1e-6;
  int warmup_steps = 0;
  std::string lr_schedule = "constant";
  double min_lr_ratio = 0.0;
  int samples_per_batch = 64;
  int samples_per_mini_batch = 64;
  int micro_batch_size = 8;
  int completions_per_sample = 4;
  double max_grad_norm = 1.0;
  double weight_decay = 0.0;
  double clip_range = 0.2;
  double clip_range_high = -1.0;
  double kl_beta = 0.0;
  bool reset_reference = true;
  std::string loss_aggregation = "sequence_mean";
  std::string ratio_level = "token";
  AdvantageOptions advantages;
  bool drop_uniform_groups = false;
  int max_steps = 100;
  int max_staleness = 0;
  double group_timeout_s = 600;
  int max_rollout_retries = 1;
  int max_grading_queue = 0;
  SamplingParams sampling;
  std::uint64_t seed = 0;
  std::string stage;
  std::vector<Callback> callbacks;
  /// How a prompt becomes a rollout; unset: one generation, graded by `grader`.
  RolloutFn rollout;
};

/// The shared loop's settings for GRPO (its variant applied) and GSPO.
/// @throws ConfigError for an unknown variant, baseline or aggregation.
PolicyOptimization from(const GrpoOptions& options);
PolicyOptimization from(const GspoOptions& options);

/// @throws ConfigError naming the algorithm and the option that is out of range.
void check(const PolicyOptimization& config);

Task<RlProgress> run_policy_optimization(PolicyOptimization config);

/// run_policy_optimization with its progress as the algorithm's result (GrpoResult, GspoResult).
template <class Result>
Task<Result> run_policy_optimization_as(PolicyOptimization config) {
  auto progress = co_await run_policy_optimization(std::move(config));
  co_return Result{progress.steps, progress.reward_mean};
}

/// One completion of `prompt`, graded as soon as it is generated.
Task<Rollout> generate_and_grade(TrainingModel model, Grader grader, Prompt prompt, SamplingParams sampling,
                                 StageClock& clock);

/// @throws ConfigError naming `algorithm` for overlap options out of range.
void check_overlap(const std::string& algorithm, int max_staleness, double group_timeout_s, int max_rollout_retries,
                   int max_grading_queue);

/// An RL stage's start: its checkpoint, and in a resumed run the result so far and the weight
/// version after each step done (for RolloutPipeline). `steps`: the stage's last step. A fresh stage
/// resets the reference first when `reset_reference`.
struct RlStage {
  StageCheckpoint checkpoint;
  RlProgress result;
  std::vector<std::int64_t> versions;
};
Task<RlStage> open_rl_stage(TrainingModel model, std::string stage, int steps, bool reset_reference,
                            ScoringModel value_model = {});

/// What an RL stage's checkpoint records of its loop; the prompts drawn and the sampling seeds
/// follow from the step.
Json rl_progress(const RlProgress& result, const RolloutPipeline& pipeline);

/// One multi-turn episode of `prompt` against a fresh environment from `environment.environment`,
/// with its tools (environment.cpp).
Task<Rollout> episode(TrainingModel model, EnvironmentOptions environment, Prompt prompt, SamplingParams sampling,
                      StageClock& clock);

} // namespace chorus::detail
