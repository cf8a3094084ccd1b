// PPO: proximal policy optimisation with a learned value function (Schulman et al. 2017), as RLHF
// applies it to language models: the reward arrives at the completion's last token, a value head on
// the policy's last hidden states estimates the return at every token, generalised advantage
// estimation (GAE) turns both into per-token advantages, and each step minimises the clipped policy
// loss plus value_coef times the clipped value loss.
//
//   co_await PPO({.dataset = prompts, .model = model, .grader = grader, .logger = ctx.logger(),
//                 .lr = 1e-6, .gamma = 1.0, .lambda = 0.95, .max_num_ppo_steps = 100}).run();
#pragma once

#include <chorus/dataset.hpp>
#include <chorus/grader.hpp>
#include <chorus/grpo.hpp>
#include <chorus/metrics.hpp>
#include <chorus/model.hpp>
#include <chorus/task.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace chorus {

struct GaeResult {
  std::vector<double> advantages;
  std::vector<double> returns; // advantages + values: the value head's targets
};

/// GAE over one completion of T tokens: delta_t = r_t + gamma * V_{t+1} - V_t (V_T = 0: the episode
/// ends), A_t = delta_t + gamma * lambda * A_{t+1}.
GaeResult generalized_advantages(const std::vector<double>& rewards, const std::vector<double>& values, double gamma,
                                 double lambda);

struct PpoOptions {
  std::vector<Prompt> dataset;
  TrainingModel model;
  Grader grader;
  MetricsLogger logger;
  double lr = 1e-6;
  /// Prompts per step (one completion each).
  int samples_per_batch = 64;
  /// Completions per optimizer step.
  int samples_per_mini_batch = 32;
  /// Completions per forward/backward pass.
  int micro_batch_size = 8;
  /// Passes over each batch of rollouts.
  int ppo_epochs = 1;
  double gamma = 1.0;
  double lambda = 0.95;
  double clip_range = 0.2;
  double value_clip_range = 0.2;
  double value_coef = 0.5;
  double kl_beta = 0.0;
  /// With kl_beta > 0: make the weights at the start of the run the reference (see GrpoOptions).
  bool reset_reference = true;
  double max_grad_norm = 1.0;
  /// Normalise the batch's advantages to mean 0 and std 1 (standard in PPO implementations).
  bool whiten_advantages = true;
  int max_num_ppo_steps = 100;
  /// Asynchronous overlap, stragglers and back-pressure: as in GrpoOptions.
  int max_staleness = 0;
  double group_timeout_s = 600;
  int max_rollout_retries = 1;
  int max_grading_queue = 0;
  SamplingParams sampling{.temperature = 1.0, .max_tokens = 256};
  std::uint64_t seed = 0;
  std::string stage = "ppo";
};

class PPO {
public:
  /// @throws ConfigError for an empty dataset, no grader or an option out of range.
  explicit PPO(PpoOptions options);

  Task<RlResult> run() const;

private:
  PpoOptions options_;
};

} // namespace chorus
