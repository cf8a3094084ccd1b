// Advantages of the completions of one prompt (a group), from their rewards: the quantity every
// group-relative RL algorithm (GRPO, Dr. GRPO, DAPO, RLOO, GSPO) trains on.
#pragma once

#include <string>
#include <vector>

namespace chorus {

/// How group_advantages turns rewards into advantages.
struct AdvantageOptions {
  /// "mean": reward minus the group's mean (GRPO). "rloo": reward minus the mean of the *other*
  /// completions (leave-one-out; an unbiased baseline).
  std::string baseline = "mean";
  /// Divide by the group's standard deviation (GRPO); Dr. GRPO and RLOO do not.
  bool normalize_std = true;
  /// Added to the standard deviation, so that a group of equal rewards gets advantages 0.
  double epsilon = 1e-6;
};

/// One advantage per reward of the group (population standard deviation, as the GRPO paper).
std::vector<double> group_advantages(const std::vector<double>& rewards, const AdvantageOptions& options = {});

/// Whether every reward of the group is the same: such a group teaches nothing (DAPO drops it).
bool uniform_rewards(const std::vector<double>& rewards);

} // namespace chorus
