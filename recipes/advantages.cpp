#include <chorus/advantages.hpp>
#include <chorus/errors.hpp>

#include <cmath>

namespace chorus {

std::vector<double> group_advantages(const std::vector<double>& rewards, const AdvantageOptions& options) {
  auto n = static_cast<double>(rewards.size());
  std::vector<double> advantages(rewards.size(), 0.0);
  if (rewards.empty() || uniform_rewards(rewards))
    return advantages; // exactly 0: the mean of equal values need not equal them in floating point
  double sum = 0;
  for (auto r : rewards)
    sum += r;
  double mean = sum / n;
  double variance = 0;
  for (auto r : rewards)
    variance += (r - mean) * (r - mean);
  double scale = options.normalize_std ? std::sqrt(variance / n) + options.epsilon : 1.0;
  for (std::size_t i = 0; i < rewards.size(); ++i) {
    double baseline;
    if (options.baseline == "mean")
      baseline = mean;
    else if (options.baseline == "rloo")
      baseline = rewards.size() > 1 ? (sum - rewards[i]) / (n - 1) : rewards[i];
    else
      throw ConfigError("advantage baseline must be mean or rloo, got '" + options.baseline + "'");
    advantages[i] = (rewards[i] - baseline) / scale;
  }
  return advantages;
}

bool uniform_rewards(const std::vector<double>& rewards) {
  for (auto r : rewards)
    if (r != rewards.front())
      return false;
  return true;
}

} // namespace chorus
