// The loop GRPO and GSPO share: sample a group of completions per prompt, grade them, turn rewards
// into group-relative advantages, and take clipped policy-gradient steps over mini-batches. Internal
// to recipes/: the public algorithms fill this in with their own names and defaults.
#pragma once

#include <chorus/advantages.hpp>
#include <chorus/dataset.hpp>
#include <chorus/grader.hpp>
#include <chorus/grpo.hpp>
#include <chorus/metrics.hpp>
#include <chorus/model.hpp>

#include <string>
#include <vector>

namespace chorus::detail {

struct PolicyOptimization {
  std::string algorithm; // for error messages: "GRPO", "GSPO"
  std::vector<Prompt> dataset;
  TrainingModel model;
  Grader grader;
  MetricsLogger logger;
  double lr = 1e-6;
  int samples_per_batch = 64;
  int samples_per_mini_batch = 64;
  int micro_batch_size = 8;
  int completions_per_sample = 4;
  double max_grad_norm = 1.0;
  double clip_range = 0.2;
  double clip_range_high = -1.0;
  double kl_beta = 0.0;
  std::string loss_aggregation = "sequence_mean";
  std::string ratio_level = "token";
  AdvantageOptions advantages;
  bool drop_uniform_groups = false;
  int max_steps = 100;
  SamplingParams sampling;
  std::uint64_t seed = 0;
  std::string stage;
};

/// @throws ConfigError naming the algorithm and the option that is out of range.
void check(const PolicyOptimization& config);

Task<RlResult> run_policy_optimization(PolicyOptimization config);

} // namespace chorus::detail
