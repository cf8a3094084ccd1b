// PPO: proximal policy optimisation with a learned value function (Schulman et al. 2017), as RLHF
// applies it to language models: the reward arrives at the completion's last token, a value head on
// the policy's last hidden states estimates the return at every token, generalised advantage
// estimation (GAE) turns both into per-token advantages, and each step minimises the clipped policy
// loss plus value_coef times the clipped value loss. A separate value model (a scoring model) can
// stand in for the value head.
//
//   co_await PPO({.dataset = prompts, .model = model, .grader = grader, .logger = ctx.logger(),
//                 .lr = 1e-6, .gamma = 1.0, .lambda = 0.95, .max_num_ppo_steps = 100}).run();
#pragma once

#include <chorus/callbacks.hpp>
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

/// The per-token advantages and returns of one completion.
struct GaeResult {
  /// A_t, one per token.
  std::vector<double> advantages;
  std::vector<double> returns; ///< Advantages + values: the value head's targets.
};

/// GAE over one completion of T tokens: delta_t = r_t + gamma * V_{t+1} - V_t (V_T = 0: the episode
/// ends), A_t = delta_t + gamma * lambda * A_{t+1}.
/// @throws Error if `rewards` and `values` differ in size.
GaeResult generalized_advantages(const std::vector<double>& rewards, const std::vector<double>& values, double gamma,
                                 double lambda);

/// Options of PPO. The fields GRPO, GSPO and PPO share come in the same order in each (see
/// GrpoOptions).
struct PpoOptions {
  /// The prompts, drawn in a shuffled order, epoch after epoch.
  std::vector<Prompt> dataset;
  /// The policy: it generates the rollouts and is trained (with its value head, unless value_model).
  TrainingModel model;
  /// A separate value model (spawn_scoring, e.g. from a reward model's folder): its score at each token
  /// is the value estimate, and it takes a value step (value_clip_range) with each policy step. Empty:
  /// the policy's own value head (zero-initialised, trained in the policy's step with value_coef).
  ScoringModel value_model;
  /// Scores each completion: its score is the reward at the completion's last token.
  Grader grader;
  /// Where each step's metrics go (e.g. ctx.logger()).
  MetricsLogger logger;
  /// The peak learning rate (see lr_schedule).
  double lr = 1e-6;
  /// Steps of linear warm-up to lr (a step's optimizer updates all take the step's rate).
  int warmup_steps = 0;
  /// After the warm-up: "constant" (lr held), or a decay to lr * min_lr_ratio over the run's steps
  /// along a "cosine" or a "linear" one.
  std::string lr_schedule = "constant";
  /// The decay's floor, as a fraction of lr.
  double min_lr_ratio = 0.0;
  /// Prompts per step (one completion each).
  int samples_per_batch = 64;
  /// Completions per optimizer step.
  int samples_per_mini_batch = 32;
  /// Completions per forward/backward pass.
  int micro_batch_size = 8;
  /// Clip the gradient's global norm to this (<= 0: no clipping).
  double max_grad_norm = 1.0;
  /// AdamW weight decay of matrices and embeddings.
  double weight_decay = 0.0;
  /// The ratio is clipped to [1 - clip_range, 1 + clip_range_high].
  double clip_range = 0.2;
  /// The upper clip range when it differs (DAPO's clip-higher; negative: clip_range).
  double clip_range_high = -1.0;
  /// Weight of the KL penalty to the frozen reference (needs spawn_train's keep_reference, the default).
  double kl_beta = 0.0;
  /// With kl_beta > 0: make the weights at the start of the run the reference (see GrpoOptions).
  bool reset_reference = true;
  /// Passes over each batch of rollouts.
  int ppo_epochs = 1;
  /// The discount of future rewards in GAE, in [0, 1].
  double gamma = 1.0;
  /// GAE's lambda, in [0, 1]: 1 gives the Monte Carlo return, 0 the one-step TD error.
  double lambda = 0.95;
  /// The clip range of the value update.
  double value_clip_range = 0.2;
  /// Weight of the value loss (the policy's own value head).
  double value_coef = 0.5;
  /// The peak learning rate of a separate value_model, on the policy's schedule (< 0: lr). Value
  /// models often learn faster than the policy may.
  double value_lr = -1.0;
  /// Normalise the batch's advantages to mean 0 and std 1 (standard in PPO implementations).
  bool whiten_advantages = true;
  /// Steps in the run.
  int max_num_ppo_steps = 100;
  /// Asynchronous overlap, stragglers and back-pressure: as in GrpoOptions.
  int max_staleness = 0;
  /// Seconds after a rollout's first request before it is cancelled if still running (0: no deadline).
  double group_timeout_s = 600;
  /// Retries of a failed rollout (see GrpoOptions::group_timeout_s).
  int max_rollout_retries = 1;
  /// Back-pressure: the most rollouts graded at once (see GrpoOptions; 0: one step's rollouts).
  int max_grading_queue = 0;
  /// How completions are sampled; a negative `sampling.seed` is replaced by one drawn from `seed`.
  SamplingParams sampling{.temperature = 1.0, .max_tokens = 256};
  /// Seeds the prompt order, the mini-batch order and the completions' sampling (see sampling).
  std::uint64_t seed = 0;
  /// The stage name in the metrics, progress lines and checkpoints.
  std::string stage = "ppo";
  /// Run after each step (e.g. evaluation_callback, chorus/evaluation.hpp); what they return is
  /// logged with the step.
  std::vector<Callback> callbacks;
};

/// What a PPO run did.
struct PpoResult {
  /// The last step taken.
  std::int64_t steps = 0;
  /// The mean reward of the last step's completions.
  double reward_mean = 0.0;
};

/// The PPO trainer: `run()` is the whole loop.
class PPO {
public:
  /// @throws ConfigError for an empty dataset, no grader or an option out of range.
  explicit PPO(PpoOptions options);

  /// Trains for max_num_ppo_steps steps; a resumed run continues from its checkpoint.
  Task<PpoResult> run() const;

private:
  PpoOptions options_;
};

} // namespace chorus
