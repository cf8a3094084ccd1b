// SFT: supervised fine-tuning on demonstrations. Cross-entropy over the assistant's tokens only (the
// completion as the chat template closes the turn), epochs over a shuffled dataset, a warm-up then
// cosine (or constant) learning rate, gradient accumulation over mini-batches.
//
//   co_await SFT({.dataset = examples, .model = model, .logger = ctx.logger(), .lr = 1e-5,
//                 .epochs = 2, .samples_per_batch = 64}).run();
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

/// Options of SFT.
struct SftOptions {
  /// The demonstrations to train on.
  std::vector<Completion> dataset;
  /// The model to train.
  TrainingModel model;
  /// Where each step's metrics go (e.g. ctx.logger()).
  MetricsLogger logger;
  /// The peak learning rate.
  double lr = 1e-5;
  /// Passes over the dataset.
  int epochs = 1;
  /// Samples per optimizer step.
  int samples_per_batch = 32;
  /// Samples per forward/backward pass (gradient accumulation within a batch).
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
  /// Held-out demonstrations: their loss is measured after each epoch (none if empty).
  std::vector<Completion> eval_dataset;
  /// Seeds the order of the samples in each epoch.
  std::uint64_t seed = 0;
  /// The stage name in the metrics and progress lines.
  std::string stage = "sft";
  /// Run after each step (e.g. evaluation_callback, chorus/evaluation.hpp); what they return is
  /// logged with the step.
  std::vector<Callback> callbacks;
};

/// What an SFT run did.
struct SftResult {
  /// Optimizer steps taken.
  std::int64_t steps = 0;
  /// The last step's training loss.
  double train_loss = 0.0;
  /// The held-out loss after the last epoch (NaN without an eval set).
  double eval_loss = 0.0;
};

/// The SFT trainer: `run()` is the whole loop.
class SFT {
public:
  /// @throws ConfigError for an empty dataset or an option out of range.
  explicit SFT(SftOptions options);

  /// Tokenizes the demonstrations, then takes one step per batch of each shuffled epoch and measures
  /// the held-out loss after it; a resumed run continues from its checkpoint.
  Task<SftResult> run() const;

private:
  SftOptions options_;
};

/// The mean per-token cross-entropy of `samples`' completions under `model`'s current weights
/// (scored by its replicas; no step).
Task<double> completion_loss(TrainingModel model, std::vector<TrainSample> samples);

} // namespace chorus
