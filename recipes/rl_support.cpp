// The RL loops' small helpers (recipes/rl_support.hpp): prompt order, sampling seeds, step statistics.
#include "recipes/rl_support.hpp"

#include <spdlog/spdlog.h>

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
  ++samples;
  lengths.push_back(static_cast<double>(generated));
  for (const auto& [part, why] : grade.left_out)
    ++left_out[part];
  if (grade.ignored) {
    ++ignored;
    return;
  }
  rewards.push_back(grade.score);
  for (const auto& [key, score] : grade.scores)
    by_key[key].push_back(score);
}

void RewardStats::add_grading_metrics(Metrics& metrics, const Grader& grader, const std::string& stage,
                                      int step) const {
  metrics.emplace_back("ignored_samples", ignored);
  for (const auto& [part, count] : left_out) {
    auto share = samples > 0 ? static_cast<double>(count) / samples : 0.0;
    metrics.emplace_back("left_out/" + part, share);
    if (share > grader.failure_rate_warning())
      spdlog::warn("{} step {}: grader '{}' left out part '{}' on {} of {} samples ({:.0f}%, above its "
                   "failure_rate_warning of {:.0f}%)",
                   stage, step, grader.key(), part, count, samples, 100 * share, 100 * grader.failure_rate_warning());
  }
}

} // namespace chorus::detail
