// DPO: direct preference optimisation (Rafailov et al. 2023). Each step raises the policy's
// log-probability of the chosen completion relative to the rejected one, both measured against the
// frozen reference: loss = -log sigmoid(beta * ((log pi - log ref)(chosen) - (log pi - log ref)(rejected))).
//
//   co_await DPO({.dataset = preferences, .model = model, .logger = ctx.logger(), .beta = 0.1}).run();
#pragma once

#include <chorus/callbacks.hpp>
#include <chorus/dataset.hpp>
#include <chorus/metrics.hpp>
#include <chorus/model.hpp>
#include <chorus/task.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace chorus {

/// Options of DPO.
struct DpoOptions {
  /// The preference pairs to train on.
  std::vector<Preference> dataset;
  /// Spawned with keep_reference (the default): the reference is its initial weights.
  TrainingModel model;
  /// Where each step's metrics go (e.g. ctx.logger()).
  MetricsLogger logger;
  /// The peak learning rate.
  double lr = 1e-6;
  /// The inverse temperature of the implicit reward.
  double beta = 0.1;
  /// The loss of a pair's margin (TrainParams::dpo_loss): "sigmoid" (DPO), "hinge" (SLiC) or "ipo"
  /// (IPO, over mean log-probabilities per token).
  std::string loss_type = "sigmoid";
  /// With "sigmoid": the assumed share of flipped preferences, in [0, 0.5) (conservative DPO).
  double label_smoothing = 0.0;
  /// Passes over the dataset.
  int epochs = 1;
  /// Pairs per optimizer step.
  int samples_per_batch = 32;
  /// Pairs per forward/backward pass.
  int samples_per_mini_batch = 8;
  /// Clip the gradient's global norm to this (<= 0: no clipping).
  double max_grad_norm = 1.0;
  /// AdamW weight decay of matrices and embeddings.
  double weight_decay = 0.0;
  /// Optimizer steps of linear warm-up.
  int warmup_steps = 0;
  /// "cosine" or "linear" (decays to lr * min_lr_ratio over the run), or "constant".
  std::string lr_schedule = "cosine";
  /// The decay's floor, as a fraction of lr.
  double min_lr_ratio = 0.1;
  /// Seeds the order of the pairs in each epoch.
  std::uint64_t seed = 0;
  /// The stage name in the metrics, progress lines and checkpoints.
  std::string stage = "dpo";
  /// Run after each step (e.g. evaluation_callback, chorus/evaluation.hpp); what they return is
  /// logged with the step.
  std::vector<Callback> callbacks;
};

/// What a DPO run did.
struct DpoResult {
  /// Optimizer steps taken.
  std::int64_t steps = 0;
  /// The last step's loss.
  double loss = 0.0;
  /// The last step's share of pairs ranked right by the implicit reward.
  double reward_accuracy = 0.0;
};

/// The DPO trainer: `run()` is the whole loop.
class DPO {
public:
  /// @throws ConfigError for an empty dataset or an option out of range.
  explicit DPO(DpoOptions options);

  /// Tokenizes the pairs, then takes one step per batch of each shuffled epoch; a resumed run
  /// continues from its checkpoint.
  Task<DpoResult> run() const;

private:
  DpoOptions options_;
};

} // namespace chorus
