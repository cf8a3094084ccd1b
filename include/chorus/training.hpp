// What a recipe sends to a trainer: samples (prompt and completion tokens, with the advantage and the
// behaviour policy's log-probs for policy-gradient steps), the step's parameters, and its report.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace chorus {

/// One training sequence: the loss covers the completion tokens only.
struct TrainSample {
  /// The prompt's token ids: context, not trained on.
  std::vector<std::int64_t> prompt_tokens;
  /// The completion's token ids: the loss covers these (see completion_mask).
  std::vector<std::int64_t> completion_tokens;
  /// Policy-gradient steps: the completion's advantage (e.g. its group-normalised reward).
  double advantage = 0.0;
  /// Policy-gradient steps: the log-probs the sampler recorded for the completion tokens (behaviour
  /// policy); empty for SFT.
  std::vector<float> behaviour_logprobs;
  /// The weight version that generated the completion (Generation::weight_version).
  std::int64_t weight_version = 0;
  /// Which completion tokens are trained (1) and which are context only (0), e.g. the environment's
  /// turns inside a multi-turn episode; empty: all of them.
  std::vector<std::uint8_t> completion_mask;
  /// PPO: one advantage per completion token (GAE), used instead of `advantage`.
  std::vector<float> token_advantages;
  /// PPO: the value head's estimates at rollout time, one per completion token.
  std::vector<float> old_values;
  /// PPO: the returns the value head is trained towards, one per completion token.
  std::vector<float> returns;
  /// Reward modelling on numeric labels (a scoring model's regression): the sequence's target score.
  double label = 0.0;
};

/// One preference for DPO or a reward model: after the same prompt, `chosen` is preferred to `rejected`.
struct PreferencePair {
  /// The prompt's token ids.
  std::vector<std::int64_t> prompt_tokens;
  /// The token ids of the preferred completion.
  std::vector<std::int64_t> chosen_tokens;
  /// The token ids of the other completion.
  std::vector<std::int64_t> rejected_tokens;
};

/// The parameters of one optimizer step.
struct TrainParams {
  /// The learning rate of this step.
  double lr = 1e-5;
  /// Clip the gradient's global norm to this (<= 0: no clipping).
  double max_grad_norm = 1.0;
  /// AdamW weight decay of matrices and embeddings (norms and biases never decay).
  double weight_decay = 0.0;
  /// Samples per forward/backward pass; the step accumulates gradients over all of them.
  std::int64_t micro_batch_size = 8;
  /// Policy-gradient steps: the ratio is clipped to [1 - clip_range, 1 + clip_range_high].
  double clip_range = 0.2;
  /// The upper clip range when it differs (DAPO's clip-higher); negative: clip_range.
  double clip_range_high = -1.0;
  /// Token-level steps: how per-token terms become the loss: "token_mean" (every token of the batch
  /// weighs the same: DAPO), "sequence_mean" (each sequence's token mean, then the mean over
  /// sequences: GRPO) or "sequence_sum" (no length normalisation: Dr. GRPO).
  std::string loss_aggregation = "token_mean";
  /// Policy-gradient steps: "token" (PPO / GRPO: one ratio per token) or "sequence" (GSPO: the
  /// length-normalised ratio of the whole completion).
  std::string ratio_level = "token";
  /// Policy-gradient steps: weight of the KL penalty to the frozen reference model (needs
  /// TrainOptions::keep_reference).
  double kl_beta = 0.0;
  /// DPO steps: the inverse temperature beta of the implicit reward beta * log(pi / pi_ref).
  double dpo_beta = 0.1;
  /// DPO steps: the loss of a pair's margin m = beta * (chosen's log-ratio - rejected's):
  /// "sigmoid" (DPO: -log sigmoid(m)), "hinge" (SLiC: max(0, 1 - m)) or "ipo" (IPO: (m / beta -
  /// 1 / (2 beta))^2, over each completion's mean log-probability per token).
  std::string dpo_loss = "sigmoid";
  /// DPO steps, "sigmoid": the assumed share of pairs whose preference is flipped (conservative DPO,
  /// Mitchell 2023): -(1 - e) log sigmoid(m) - e log sigmoid(-m). 0: plain DPO.
  double dpo_label_smoothing = 0.0;
  /// PPO steps: weight of the value loss.
  double value_coef = 0.5;
  /// PPO steps: the clip range of the value update.
  double value_clip_range = 0.2;
  /// Policy-gradient steps: the weight version the step's on-policy samples were made by (the
  /// trainer's when the RL step began); samples made by older weights are stale, and a GSPO step
  /// weighs them by their whole completion's truncated importance ratio (models/training.hpp,
  /// sequence_policy_loss). -1: every sample counts as on-policy.
  std::int64_t on_policy_version = -1;
};

/// What one optimizer step did.
struct TrainReport {
  /// The step's loss.
  double loss = 0.0;
  /// The gradient's global norm before clipping.
  double grad_norm = 0.0;
  /// The learning rate the step used.
  double lr = 0.0;
  /// Completion tokens trained on.
  std::int64_t tokens = 0;
  /// Completion tokens trained on per second of the step.
  double tokens_per_second = 0.0;
  /// Mean |trainer log-prob - sampler log-prob| over the tokens of samples generated by the current
  /// weights (-1 when there were none): should be ~0; a gap means sampling and training disagree.
  double logprob_gap = -1.0;
  /// Policy-gradient steps: the share of tokens (or sequences) whose ratio was clipped.
  double clip_fraction = 0.0;
  /// Policy-gradient steps with a reference model: the mean KL estimate to it.
  double kl = 0.0;
  /// DPO steps: the share of pairs whose implicit reward ranks chosen above rejected.
  double reward_accuracy = 0.0;
  /// DPO steps: the mean reward margin beta * ((log pi - log ref)(chosen) - (log pi - log ref)(rejected)).
  double reward_margin = 0.0;
  /// PPO steps: the value head's loss.
  double value_loss = 0.0;
  /// The weight version after the step.
  std::int64_t weight_version = 0;
};

} // namespace chorus
