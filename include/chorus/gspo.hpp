// GSPO: group sequence policy optimisation (Zheng et al. 2025). As GRPO, but the importance ratio is
// the sequence's, length-normalised: s = exp(mean over its tokens of (log pi_theta - log pi_old)),
// clipped to [1 - clip_range, 1 + clip_range_high] and applied to the sequence's advantage. The paper
// uses clip ranges of 3e-4 / 4e-4; the seed recipe 0.2.
//
//   co_await GSPO({.dataset = prompts, .model = model, .grader = combined, .logger = logger,
//                  .lr = 5e-7, .samples_per_batch = 256, .samples_per_mini_batch = 64,
//                  .completions_per_sample = 4, .max_grad_norm = 1.0, .clip_range = 0.2,
//                  .kl_beta = 0.1, .max_num_gspo_steps = 1000}).run();
#pragma once

#include <chorus/callbacks.hpp>
#include <chorus/grpo.hpp>

namespace chorus {

/// Options of GSPO (and of ENVGSPO). The fields GRPO, GSPO and PPO share come in the same order in
/// each (see GrpoOptions), so one designated initialiser reads the same for all three.
struct GspoOptions {
  /// The prompts, drawn in a shuffled order, epoch after epoch.
  std::vector<Prompt> dataset;
  /// The policy: it generates the rollouts and is trained.
  TrainingModel model;
  /// Scores each completion: its score is the reward.
  Grader grader;
  /// Where each step's metrics go (e.g. ctx.logger()).
  MetricsLogger logger;
  /// The peak learning rate (see lr_schedule).
  double lr = 5e-7;
  /// Steps of linear warm-up to lr (a step's optimizer updates all take the step's rate).
  int warmup_steps = 0;
  /// After the warm-up: "constant" (lr held), or a decay to lr * min_lr_ratio over the run's steps
  /// along a "cosine" or a "linear" one.
  std::string lr_schedule = "constant";
  /// The decay's floor, as a fraction of lr.
  double min_lr_ratio = 0.0;
  /// Completions per step (prompts per step = samples_per_batch / completions_per_sample).
  int samples_per_batch = 256;
  /// Completions per optimizer step.
  int samples_per_mini_batch = 64;
  /// Completions per forward/backward pass (gradient accumulation).
  int micro_batch_size = 8;
  /// The group size: completions sampled per prompt.
  int completions_per_sample = 4;
  /// Clip the gradient's global norm to this (<= 0: no clipping).
  double max_grad_norm = 1.0;
  /// AdamW weight decay of matrices and embeddings.
  double weight_decay = 0.0;
  /// The sequence ratio is clipped to [1 - clip_range, 1 + clip_range_high].
  double clip_range = 0.2;
  /// The upper clip range when it differs (negative: clip_range).
  double clip_range_high = -1.0;
  /// Weight of the KL penalty to the frozen reference (needs spawn_train's keep_reference, the default).
  double kl_beta = 0.0;
  /// With kl_beta > 0: make the weights at the start of the run the reference (see GrpoOptions).
  bool reset_reference = true;
  /// Divide advantages by the group's std (GSPO does).
  bool normalize_std = true;
  /// Steps in the run.
  int max_num_gspo_steps = 1000;
  /// Asynchronous overlap, stragglers and back-pressure: as in GrpoOptions.
  int max_staleness = 0;
  /// Seconds after a group's first request before its rollouts still running are cancelled (0: no deadline).
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
  std::string stage = "gspo";
  /// Run after each step (e.g. evaluation_callback, chorus/evaluation.hpp); what they return is
  /// logged with the step.
  std::vector<Callback> callbacks;
};

/// What a GSPO run (or an ENVGSPO run) did.
struct GspoResult {
  /// The last step taken.
  std::int64_t steps = 0;
  /// The mean reward of the last step's completions.
  double reward_mean = 0.0;
};

/// The GSPO trainer: `run()` is the whole loop.
class GSPO {
public:
  /// @throws ConfigError for an empty dataset, no grader or an option out of range.
  explicit GSPO(GspoOptions options);

  /// Trains for max_num_gspo_steps steps; a resumed run continues from its checkpoint.
  Task<GspoResult> run() const;

private:
  GspoOptions options_;
};

} // namespace chorus
