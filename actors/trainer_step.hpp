// What the trainer's step files share: a step over samples as resolved once, rows of per-token
// fields, last-token values, sample names.
#pragma once

#include "actors/trainer.hpp"
#include "models/training.hpp"

#include <string>
#include <vector>

namespace chorus::actors {

// One step over samples: what its objective and parameters resolve to, once, and the metric totals
// its micro-batches add to (each weighted by its share of the step; the gap by tokens).
struct Trainer::SampleStep {
  Objective objective;
  const std::vector<TrainSample>& samples;
  const TrainParams& params;
  bool sequence_level = false; // GSPO's sequence ratio (never with PPO's per-token advantages)
  models::Aggregation aggregation = models::Aggregation::token_mean;
  double clip_high = 0;
  double gap_sum = 0, gap_count = 0, clip_sum = 0, kl_sum = 0, value_loss_sum = 0;

  SampleStep(Objective objective, const std::vector<TrainSample>& samples, const TrainParams& params)
    : objective(objective), samples(samples), params(params) {
    sequence_level = objective == Objective::policy && params.ratio_level == "sequence";
    aggregation = params.loss_aggregation == "sequence_mean" ? models::Aggregation::sequence_mean
      : params.loss_aggregation == "sequence_sum"            ? models::Aggregation::sequence_sum
                                                             : models::Aggregation::token_mean;
    clip_high = params.clip_range_high >= 0 ? params.clip_range_high : params.clip_range;
  }

  // Micro-batches weigh by what the loss averages over: tokens, or sequences.
  bool per_sequence() const {
    if (objective == Objective::regression)
      return true;
    bool policy = objective == Objective::policy || objective == Objective::ppo;
    return policy && (sequence_level || aggregation != models::Aggregation::token_mean);
  }
};

inline std::string sample_name(std::size_t index) {
  return "sample " + std::to_string(index);
}

// Each row's value at its last real token: [batch, time] -> [batch].
inline torch::Tensor at_last_token(const torch::Tensor& values, const models::SequenceBatch& batch) {
  std::vector<std::int64_t> last;
  for (std::size_t row = 0; row < batch.prompt_lengths.size(); ++row)
    last.push_back(batch.prompt_lengths[row] + batch.completion_lengths[row] - 1);
  auto index = torch::tensor(last, torch::kInt64).to(values.device()).unsqueeze(1);
  return values.gather(1, index).squeeze(1);
}

// `field` (one value per completion token) of samples [begin, end), a row each.
inline std::vector<std::vector<float>> rows_of(const std::vector<TrainSample>& samples, std::size_t begin,
                                               std::size_t end, std::vector<float> TrainSample::* field) {
  std::vector<std::vector<float>> rows;
  for (auto i = begin; i < end; ++i)
    rows.push_back(samples[i].*field);
  return rows;
}

} // namespace chorus::actors
