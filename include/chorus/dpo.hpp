// DPO: direct preference optimisation (Rafailov et al. 2023). Each step raises the policy's
// log-probability of the chosen completion relative to the rejected one, both measured against the
// frozen reference: loss = -log sigmoid(beta * ((log pi - log ref)(chosen) - (log pi - log ref)(rejected))).
//
//   co_await DPO({.dataset = preferences, .model = model, .logger = ctx.logger(), .beta = 0.1}).run();
#pragma once

#include <chorus/dataset.hpp>
#include <chorus/metrics.hpp>
#include <chorus/model.hpp>
#include <chorus/task.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace chorus {

struct DpoOptions {
  std::vector<Preference> dataset;
  /// Spawned with keep_reference (the default): the reference is its initial weights.
  TrainingModel model;
  MetricsLogger logger;
  double lr = 1e-6;
  /// The inverse temperature of the implicit reward.
  double beta = 0.1;
  int epochs = 1;
  /// Pairs per optimizer step.
  int samples_per_batch = 32;
  /// Pairs per forward/backward pass.
  int samples_per_mini_batch = 8;
  double max_grad_norm = 1.0;
  double weight_decay = 0.0;
  int warmup_steps = 0;
  /// "cosine" (to lr * min_lr_ratio) or "constant".
  std::string lr_schedule = "cosine";
  double min_lr_ratio = 0.1;
  std::uint64_t seed = 0;
  std::string stage = "dpo";
};

struct DpoResult {
  std::int64_t steps = 0;
  double loss = 0.0;
  /// The last step's share of pairs ranked right by the implicit reward.
  double reward_accuracy = 0.0;
};

class DPO {
public:
  /// @throws ConfigError for an empty dataset or an option out of range.
  explicit DPO(DpoOptions options);

  Task<DpoResult> run() const;

private:
  DpoOptions options_;
};

} // namespace chorus
