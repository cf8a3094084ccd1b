// The learning-rate schedule trainers use: linear warm-up, then constant or cosine decay.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace chorus {

/// Linear warm-up to the base rate, then constant or cosine decay to base * min_ratio.
struct LrSchedule {
  /// What follows the warm-up: the base rate held, or a cosine decay to base_lr * min_ratio.
  enum class Kind { constant, cosine };

  /// The peak learning rate, reached at the end of the warm-up.
  double base_lr = 1e-5;
  /// Optimizer steps of linear warm-up from base_lr / warmup_steps to base_lr.
  std::int64_t warmup_steps = 0;
  /// The run's optimizer steps, warm-up included: the cosine reaches its floor at the last one.
  std::int64_t total_steps = 1;
  /// The decay after the warm-up.
  Kind kind = Kind::cosine;
  /// The floor of the cosine decay, as a share of base_lr.
  double min_ratio = 0.0;

  /// The rate for optimizer step `step`, counted from 0.
  double at(std::int64_t step) const {
    if (step < warmup_steps)
      return base_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
    if (kind == Kind::constant)
      return base_lr;
    auto span = std::max<std::int64_t>(1, total_steps - warmup_steps);
    auto progress = std::min(1.0, static_cast<double>(step - warmup_steps) / static_cast<double>(span));
    auto floor = base_lr * min_ratio;
    return floor + (base_lr - floor) * 0.5 * (1.0 + std::cos(3.14159265358979323846 * progress));
  }
};

} // namespace chorus
