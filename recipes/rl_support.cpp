// The RL loops' small helpers (recipes/rl_support.hpp): prompt order, sampling seeds, step statistics.
#include "recipes/rl_support.hpp"

#include <cmath>

namespace chorus::detail {

std::vector<Prompt> PromptStream::next(std::size_t count) {
  std::vector<Prompt> result;
  while (result.size() < count) {
    if (position_ == order_.size()) {
      order_ = shuffled(prompts_, seed_ + epoch_++);
      position_ = 0;
    }
    result.push_back(order_[position_++]);
  }
  return result;
}

SamplingParams seeded(SamplingParams sampling, std::uint64_t run_seed, int step, std::size_t index) {
  if (sampling.seed < 0)
    sampling.seed = static_cast<std::int64_t>((run_seed * 1000003 + static_cast<std::uint64_t>(step) * 10007 + index)
                                              & 0x7fffffffffffffffULL);
  return sampling;
}

double mean_of(const std::vector<double>& values) {
  double sum = 0;
  for (auto v : values)
    sum += v;
  return values.empty() ? 0.0 : sum / static_cast<double>(values.size());
}

double std_of(const std::vector<double>& values) {
  auto mean = mean_of(values);
  double sum = 0;
  for (auto v : values)
    sum += (v - mean) * (v - mean);
  return values.empty() ? 0.0 : std::sqrt(sum / static_cast<double>(values.size()));
}

double mean_over(const std::vector<TrainReport>& reports, double TrainReport::* figure) {
  std::vector<double> values;
  for (const auto& report : reports)
    values.push_back(report.*figure);
  return mean_of(values);
}

void RewardStats::add(const Grade& grade, std::int64_t generated) {
  rewards.push_back(grade.score);
  lengths.push_back(static_cast<double>(generated));
  for (const auto& [key, score] : grade.scores)
    by_key[key].push_back(score);
}

} // namespace chorus::detail
