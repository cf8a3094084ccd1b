// GRPO: group-relative policy optimisation (Shao et al. 2024) and the variants users ask for by name.
// Each step samples `completions_per_sample` completions of each prompt, grades them, turns the
// rewards into group-relative advantages, and takes one clipped policy-gradient step (token-level
// ratio) per mini-batch, with the sampler's log-probs as the old policy and an optional KL penalty to
// the frozen reference (k3).
//
//   co_await GRPO({.dataset = prompts, .model = model, .grader = grader, .logger = ctx.logger(),
//                  .lr = 1e-6, .samples_per_batch = 64, .completions_per_sample = 8,
//                  .variant = "dapo", .max_num_grpo_steps = 200}).run();
#pragma once

#include <chorus/advantages.hpp>
#include <chorus/callbacks.hpp>
#include <chorus/dataset.hpp>
#include <chorus/grader.hpp>
#include <chorus/metrics.hpp>
#include <chorus/model.hpp>
#include <chorus/task.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace chorus {

/// Options of GRPO (and of ENVGRPO).
///
/// GRPO, GSPO and PPO declare the fields they share in one order, which designated initialisers
/// must follow: dataset, model, grader, logger; lr, warmup_steps, lr_schedule, min_lr_ratio,
/// samples_per_batch, samples_per_mini_batch, micro_batch_size, completions_per_sample (not PPO: one
/// completion per prompt); max_grad_norm, weight_decay, clip_range, clip_range_high, kl_beta,
/// reset_reference; then the algorithm's own fields;
/// then max_num_<algorithm>_steps, max_staleness, group_timeout_s, max_rollout_retries,
/// max_grading_queue, sampling, seed, stage.
struct GrpoOptions {
  /// The prompts, drawn in a shuffled order, epoch after epoch.
  std::vector<Prompt> dataset;
  /// The policy: it generates the rollouts and is trained.
  TrainingModel model;
  /// Scores each completion: its score is the reward.
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
  /// Completions per step (prompts per step = samples_per_batch / completions_per_sample).
  int samples_per_batch = 64;
  /// Completions per optimizer step: a step takes samples_per_batch / samples_per_mini_batch updates.
  int samples_per_mini_batch = 64;
  /// Completions per forward/backward pass (gradient accumulation).
  int micro_batch_size = 8;
  /// The group size: completions sampled per prompt.
  int completions_per_sample = 4;
  /// Clip the gradient's global norm to this (<= 0: no clipping).
  double max_grad_norm = 1.0;
  /// AdamW weight decay of matrices and embeddings.
  double weight_decay = 0.0;
  /// The ratio is clipped to [1 - clip_range, 1 + clip_range_high] (clip_range_high < 0: clip_range).
  double clip_range = 0.2;
  /// The upper clip range (see clip_range).
  double clip_range_high = -1.0;
  /// Weight of the KL penalty to the frozen reference (needs spawn_train's keep_reference, the default).
  double kl_beta = 0.0;
  /// With kl_beta > 0: make the weights at the start of the run the reference (the SFT model when
  /// RL follows SFT); false keeps the reference as it is (the weights the model was loaded with).
  bool reset_reference = true;
  /// "sequence_mean" (GRPO), "token_mean" (DAPO) or "sequence_sum" (Dr. GRPO).
  std::string loss_aggregation = "sequence_mean";
  /// Advantage baseline: "mean" or "rloo" (see AdvantageOptions).
  std::string baseline = "mean";
  /// Divide advantages by the group's std.
  bool normalize_std = true;
  /// Drop groups whose completions all got the same reward (DAPO's dynamic sampling, without resampling).
  bool drop_uniform_groups = false;
  /// A preset that sets the fields above as the variant's paper does, whatever they were:
  /// "grpo" (leaves them), "dr_grpo" (no std normalisation, sequence_sum), "dapo" (clip_range_high
  /// 0.28, token_mean, drop_uniform_groups), "rloo" (rloo baseline, no std normalisation).
  std::string variant = "grpo";
  /// Steps in the run.
  int max_num_grpo_steps = 100;
  /// Asynchronous overlap. The rollouts for step k start once step k - 1 - max_staleness is trained,
  /// so with 1 generation and grading run while the trainer steps, on samples one policy version old
  /// (the importance ratio uses the behaviour log-probs). 0, the default, is the synchronous loop,
  /// number for number (up to the last bits of batched inference, which depend on which requests
  /// share a batch); on the main example's task GSPO with 1 learned as well (docs/overlap.md).
  int max_staleness = 0;
  /// Stragglers: group_timeout_s after a group's first request, its rollouts still running are
  /// cancelled (0: no deadline); a failed rollout is retried with the same seed up to
  /// max_rollout_retries times within the deadline. A group is trained on with the members it has if
  /// it has at least two, else dropped; all of it is counted in the metrics, and a step left with
  /// nothing to train on because rollouts failed stops the run with the first failure.
  double group_timeout_s = 600;
  /// Retries of a failed rollout (see group_timeout_s).
  int max_rollout_retries = 1;
  /// Back-pressure: at most this many rollouts are graded at once, and no new group starts
  /// generating while this many more wait for their turn (0: one step's rollouts).
  int max_grading_queue = 0;
  /// How completions are sampled; a negative `sampling.seed` is replaced by one drawn from `seed`.
  SamplingParams sampling{.temperature = 1.0, .max_tokens = 256};
  /// Seeds the prompt order, the mini-batch order and the completions' sampling (see sampling).
  std::uint64_t seed = 0;
  /// The stage name in the metrics, progress lines and checkpoints.
  std::string stage = "grpo";
  /// Run after each step (e.g. evaluation_callback, chorus/evaluation.hpp); what they return is
  /// logged with the step.
  std::vector<Callback> callbacks;
};

/// What a GRPO run (or an ENVGRPO run) did.
struct GrpoResult {
  /// The last step taken.
  std::int64_t steps = 0;
  /// The mean reward of the last step's completions.
  double reward_mean = 0.0;
};

/// The GRPO trainer: `run()` is the whole loop.
class GRPO {
public:
  /// @throws ConfigError for an empty dataset, no grader, an unknown variant or an option out of range.
  explicit GRPO(GrpoOptions options);

  /// Trains for max_num_grpo_steps steps; a resumed run continues from its checkpoint.
  Task<GrpoResult> run() const;

private:
  GrpoOptions options_;
};

} // namespace chorus
