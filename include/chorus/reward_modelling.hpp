// Reward modelling: train a scoring model (ModelBuilder::spawn_scoring) to score completions, either
// from preferences (the Bradley-Terry loss, -log sigmoid(score(chosen) - score(rejected)): the loss
// of InstructGPT's and TRL's reward models) or from labelled completions (the squared error to each
// label). Held-out pairs measure the pairwise accuracy; held-out labels the squared error.
//
//   auto reward_model = co_await builder.spawn_scoring("reward");
//   co_await RewardModelling({.preferences = pairs, .model = reward_model, .logger = ctx.logger(),
//                             .eval_preferences = held_out}).run();
//   co_await reward_model.save("reward-model", ctx);   // a ...ForSequenceClassification folder
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

/// Options of RewardModelling. Give `preferences` or `metrics`, not both.
struct RewardModellingOptions {
  /// Preference pairs: trained with the Bradley-Terry loss.
  std::vector<Preference> preferences;
  /// Labelled completions: trained with the squared error between score and label.
  std::vector<Metric> metrics;
  /// The scoring model to train (spawn_scoring).
  ScoringModel model;
  /// Where each step's metrics go (e.g. ctx.logger()).
  MetricsLogger logger;
  /// The peak learning rate.
  double lr = 1e-5;
  /// Passes over the data.
  int epochs = 1;
  /// Pairs (or labelled completions) per optimizer step.
  int samples_per_batch = 32;
  /// Pairs (or labelled completions) per forward/backward pass.
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
  /// Held-out pairs: the share the model ranks right (eval/accuracy), measured every eval_every
  /// steps and at the end.
  std::vector<Preference> eval_preferences;
  /// Held-out labelled completions: the mean squared error of their scores (eval/mse), as above.
  std::vector<Metric> eval_metrics;
  /// Measure the held-out figures every this many steps (0: at the end only).
  int eval_every = 0;
  /// Seeds the order of the data in each epoch.
  std::uint64_t seed = 0;
  /// The stage name in the metrics, progress lines and checkpoints.
  std::string stage = "reward_model";
  /// Run after each step (e.g. evaluation_callback, chorus/evaluation.hpp); what they return is
  /// logged with the step.
  std::vector<Callback> callbacks;
};

/// What a reward-modelling run did.
struct RewardModellingResult {
  /// Optimizer steps taken.
  std::int64_t steps = 0;
  /// The last step's loss.
  double loss = 0.0;
  /// The last step's share of pairs ranked right (preferences only).
  double train_accuracy = 0.0;
  /// The held-out pairwise accuracy at the end (-1 without held-out pairs).
  double eval_accuracy = -1.0;
  /// The held-out mean squared error at the end (-1 without held-out labels).
  double eval_mse = -1.0;
};

/// The reward-modelling trainer: `run()` is the whole loop.
class RewardModelling {
public:
  /// @throws ConfigError for no data (or both kinds), no model or an option out of range.
  explicit RewardModelling(RewardModellingOptions options);

  /// Tokenizes the data, then takes one step per batch of each shuffled epoch; a resumed run
  /// continues from its checkpoint.
  Task<RewardModellingResult> run() const;

private:
  RewardModellingOptions options_;
};

/// The held-out figures of a scoring model on `pairs` (the share with score(chosen) > score(rejected))
/// and on `labelled` (the mean squared error of the scores); -1 for an empty set.
struct ScoringEvaluation {
  /// The share of pairs ranked right (-1: no pairs).
  double accuracy = -1.0;
  /// The mean squared error to the labels (-1: no labels).
  double mse = -1.0;
};

/// Scores `pairs` and `labelled` with `model` (no step) and returns the held-out figures.
Task<ScoringEvaluation> evaluate_scoring_model(ScoringModel model, const std::vector<Preference>& pairs,
                                               const std::vector<Metric>& labelled);

} // namespace chorus
