// Training primitives: the losses, the optimizer with its parameter groups, the learning-rate
// schedule and one optimizer step over micro-batches. Trainers (actors/) compose these.
#pragma once

#include <chorus/schedule.hpp>

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace chorus::models {

/// log p(targets) under `logits`: [batch, time, vocab] and [batch, time] -> [batch, time], in fp32.
/// The one function both the sampler's and the trainer's log-probs come from.
torch::Tensor token_logprobs(const torch::Tensor& logits, const torch::Tensor& targets);

/// Cross-entropy averaged over the tokens where `mask` is 1 (e.g. the assistant's tokens only).
torch::Tensor masked_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets,
                                   const torch::Tensor& mask);

/// The mean of `values` over the tokens where `mask` is 1.
torch::Tensor masked_mean(const torch::Tensor& values, const torch::Tensor& mask);

struct PolicyLoss {
  torch::Tensor loss;         // scalar, to minimise
  double clip_fraction = 0.0; // share of masked tokens whose ratio was clipped
  double ratio_mean = 0.0;
};

/// How per-token terms become one loss.
enum class Aggregation {
  token_mean,    // mean over every masked token of the batch (DAPO; long sequences weigh more)
  sequence_mean, // mean over sequences of each one's token mean (the original GRPO)
  sequence_sum,  // mean over sequences of each one's token sum (Dr. GRPO: no length normalisation)
};

/// `values` [batch, time] over `mask` aggregated as `aggregation` says.
torch::Tensor aggregate(const torch::Tensor& values, const torch::Tensor& mask, Aggregation aggregation);

/// The clipped policy-gradient surrogate (PPO / GRPO, token level):
///   ratio = exp(logprobs - old_logprobs),
///   loss  = -aggregate over masked tokens of min(ratio * A, clip(ratio, 1 - clip_low, 1 + clip_high) * A).
/// `advantages` is per token [batch, time] or per sequence [batch].
PolicyLoss clipped_policy_loss(const torch::Tensor& logprobs, const torch::Tensor& old_logprobs,
                               const torch::Tensor& advantages, const torch::Tensor& mask, double clip_low,
                               double clip_high, Aggregation aggregation = Aggregation::token_mean);

/// The truncation of a stale sample's importance weight (sequence_policy_loss).
constexpr double kStaleImportanceCap = 2.0;

/// The sequence-level clipped surrogate (GSPO): one ratio per sequence, the geometric mean of its
/// token ratios, s = exp(mean over masked tokens of (logprobs - old_logprobs)), and
///   loss = -mean over sequences of c * min(s * A, clip(s, 1 - clip_low, 1 + clip_high) * A)
/// with `advantages` [batch]. clip_fraction counts sequences.
///
/// c is 1, except on the rows where `stale` [batch] is 1: samples made by an older policy than the
/// one whose step this is (asynchronous RL). s corrects those only by the |y|-th root of their
/// probability ratio (1.05 per token is 2.2 over 16 tokens), too little: the update keeps pushing what
/// an earlier step already changed, and the run oscillates. There c = min(w, kStaleImportanceCap) / s,
/// a constant (no gradient through it), w = pi(y) / mu(y) the whole completion's importance weight:
/// the gradient is then the truncated importance-sampling estimate.
PolicyLoss sequence_policy_loss(const torch::Tensor& logprobs, const torch::Tensor& old_logprobs,
                                const torch::Tensor& advantages, const torch::Tensor& mask, double clip_low,
                                double clip_high, const torch::Tensor& stale = {});

/// The per-token KL estimate to a reference policy that is unbiased and never negative (Schulman's
/// k3): exp(ref - logprobs) - (ref - logprobs) - 1, averaged over the masked tokens.
torch::Tensor kl_to_reference(const torch::Tensor& logprobs, const torch::Tensor& reference_logprobs,
                              const torch::Tensor& mask);

/// A loss over preference pairs (DPO, Bradley-Terry) and how well it ranks them.
struct PairLoss {
  torch::Tensor loss;           // scalar, to minimise
  double reward_accuracy = 0.0; // share of pairs with a positive margin
  double reward_margin = 0.0;   // mean margin
};

/// Direct preference optimisation (Rafailov et al. 2023) over per-sequence log-probabilities
/// [pairs] (sums; IPO's: means per token): margin m = beta * ((chosen - ref_chosen) - (rejected -
/// ref_rejected)); loss = the mean over pairs of `kind`'s loss of m (TrainParams::dpo_loss):
/// "sigmoid" -(1 - e) log sigmoid(m) - e log sigmoid(-m) with e = label_smoothing, "hinge"
/// max(0, 1 - m), "ipo" (m / beta - 1 / (2 beta))^2.
/// @throws std::invalid_argument for an unknown `kind` or a label_smoothing outside [0, 0.5).
PairLoss dpo_loss(const torch::Tensor& chosen, const torch::Tensor& rejected, const torch::Tensor& reference_chosen,
                  const torch::Tensor& reference_rejected, double beta, const std::string& kind = "sigmoid",
                  double label_smoothing = 0.0);

/// dpo_loss's checks of `kind` and `label_smoothing`, for a caller to run before any work.
/// @throws std::invalid_argument naming the option.
void check_dpo_loss(const std::string& kind, double label_smoothing);

/// A reward model's Bradley-Terry loss over its scores of pairs' completions [pairs]:
/// margin = chosen - rejected, loss = -mean log sigmoid(margin) (the negative log-likelihood that
/// chosen is preferred, P = sigmoid(margin)).
PairLoss bradley_terry_loss(const torch::Tensor& chosen, const torch::Tensor& rejected);

/// PPO's clipped value loss: 0.5 * mean over masked tokens of
/// max((V - R)^2, (V_old + clip(V - V_old, -clip_range, clip_range) - R)^2).
torch::Tensor clipped_value_loss(const torch::Tensor& values, const torch::Tensor& old_values,
                                 const torch::Tensor& returns, const torch::Tensor& mask, double clip_range);

/// Prompt + completion sequences right-padded into one batch, set up for scoring the completions.
struct SequenceBatch {
  torch::Tensor tokens;          // [batch, time] int64
  torch::Tensor attention_mask;  // [batch, time] 1 on real tokens
  torch::Tensor targets;         // [batch, time - 1]: tokens[:, 1:]
  torch::Tensor completion_mask; // [batch, time - 1]: 1 where the target is a completion token

  /// `values[i]` (one per completion token of row i) placed where row i's completion targets are, on
  /// the batch's device.
  torch::Tensor at_completion(const std::vector<std::vector<float>>& values) const;

  std::vector<std::int64_t> prompt_lengths;
  std::vector<std::int64_t> completion_lengths;
};

/// The batch's tensors on `device` (a model's: Transformer::device()).
/// @throws std::invalid_argument for an empty prompt.
SequenceBatch make_sequence_batch(const std::vector<const std::vector<std::int64_t>*>& prompts,
                                  const std::vector<const std::vector<std::int64_t>*>& completions,
                                  torch::Device device = torch::kCPU);

/// log p(target) of every target of `batch` under `logits` [batch, time, vocab]: [batch, time - 1].
torch::Tensor batch_logprobs(const torch::Tensor& logits, const SequenceBatch& batch);

/// AdamW over `model`'s parameters in two groups: matrices and embeddings decay by `weight_decay`;
/// biases and norm weights (one-dimensional parameters) do not.
std::unique_ptr<torch::optim::AdamW> make_adamw(torch::nn::Module& model, double lr, double weight_decay,
                                                double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8);

/// The same over `parameters` (those that require gradients).
std::unique_ptr<torch::optim::AdamW> make_adamw(const std::vector<torch::Tensor>& parameters, double lr,
                                                double weight_decay, double beta1 = 0.9, double beta2 = 0.999,
                                                double eps = 1e-8);

/// fp32 master copies of a low-precision model's parameters (bf16 weights): the optimizer updates
/// the copies, in fp32 with fp32 AdamW state, and the model's weights are their rounding. Trained
/// in bf16 directly, an update smaller than half a weight's bf16 spacing (2^-9 of its size: lr 1e-6
/// on a weight of 0.01 is 1e-4 of it) rounds away, and most of a fine-tuning run's updates did.
class MasterWeights {
public:
  /// fp32 copies of `model`'s trained parameters that are not fp32 (none for an fp32 model; a frozen
  /// parameter, such as a LoRA adapter's base weight, is not trained and not copied).
  explicit MasterWeights(torch::nn::Module& model);

  /// True when the model has no low-precision parameter (nothing to keep).
  bool empty() const noexcept {
    return copies_ == 0;
  }

  /// What the optimizer updates, one per model parameter in order: the fp32 copy where there is
  /// one, else the parameter itself.
  const std::vector<torch::Tensor>& trained() const noexcept {
    return trained_;
  }

  /// Moves the gradients backward left on the model's parameters to their copies, in fp32.
  void gradients_to_copies();
  /// Rounds the copies into the model's parameters (after an optimizer step or a restore).
  void copies_to_model();
  /// Sets the copies from the model's parameters (after the model's weights were replaced).
  void model_to_copies();

private:
  std::vector<torch::Tensor> parameters_, trained_;
  std::size_t copies_ = 0;
};

/// The learning-rate schedule (include/chorus/schedule.hpp).
using chorus::LrSchedule;

/// Sets every parameter group's learning rate.
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

struct StepResult {
  double loss = 0.0;      // the batch's loss, token-weighted over micro-batches
  double grad_norm = 0.0; // before clipping
};

/// Data parallelism for optimizer_step: this process computes micro-batches i with
/// i % ranks == rank, and `sum_across_ranks` sums a tensor over all ranks in place.
struct Shard {
  int rank = 0;
  int ranks = 1;
  std::function<void(torch::Tensor&)> sum_across_ranks;
};

/// One optimizer step over a batch split into micro-batches (gradient accumulation). `loss_of(i)`
/// returns micro-batch i's mean loss; `weights[i]` is its share of the batch (e.g. its token count),
/// so that the accumulated gradient equals the gradient of the whole batch's mean loss. Clips the
/// global gradient norm of every parameter the optimizer updates to `max_grad_norm` (<= 0: no
/// clipping). With a `shard` of several ranks, each computes its micro-batches and the gradients
/// (and loss) are summed across ranks before clipping: every rank takes the same step. With `master`
/// the optimizer updates its fp32 copies (make_adamw over master->trained()): the model's gradients
/// move there before clipping and the updated copies are rounded into the model after the step.
/// A Transformer that is a mixture of experts with output_router_logits adds its router_loss() to
/// each micro-batch's loss, as transformers adds it to the model's.
StepResult optimizer_step(torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                          const std::vector<double>& weights, const std::function<torch::Tensor(std::size_t)>& loss_of,
                          double max_grad_norm, const Shard& shard = {}, MasterWeights* master = nullptr);

} // namespace chorus::models
