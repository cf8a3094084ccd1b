// The learning-rate schedule trainers use: linear warm-up, then the rate held, or decayed along a
// cosine or a line.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string_view>

namespace chorus {

/// Linear warm-up to the base rate, then constant, or a cosine or linear decay towards base * min_ratio.
struct LrSchedule {
  /// What follows the warm-up: the base rate held, or a decay to base_lr * min_ratio along a cosine
  /// (SFT's default) or a line (Hugging Face Trainer's default).
  enum class Kind { constant, cosine, linear };

  /// The peak learning rate, reached at the end of the warm-up.
  double base_lr = 1e-5;
  /// Steps of linear warm-up from base_lr / warmup_steps to base_lr.
  std::int64_t warmup_steps = 0;
  /// The run's steps, warm-up included: the decay would reach its floor at step total_steps, one
  /// past the last (as Hugging Face's schedules).
  std::int64_t total_steps = 1;
  /// The decay after the warm-up.
  Kind kind = Kind::cosine;
  /// The floor of the decay, as a share of base_lr.
  double min_ratio = 0.0;

  /// The rate for step `step`, counted from 0.
  double at(std::int64_t step) const {
    if (step < warmup_steps)
      return base_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
    if (kind == Kind::constant)
      return base_lr;
    auto span = std::max<std::int64_t>(1, total_steps - warmup_steps);
    auto progress = std::min(1.0, static_cast<double>(step - warmup_steps) / static_cast<double>(span));
    auto floor = base_lr * min_ratio;
    if (kind == Kind::linear)
      return floor + (base_lr - floor) * (1.0 - progress);
    return floor + (base_lr - floor) * 0.5 * (1.0 + std::cos(3.14159265358979323846 * progress));
  }

  /// The kind an algorithm's `lr_schedule` option names: "constant", "cosine" or "linear"; nullopt
  /// for any other name.
  static std::optional<Kind> kind_named(std::string_view name) {
    if (name == "constant")
      return Kind::constant;
    if (name == "cosine")
      return Kind::cosine;
    if (name == "linear")
      return Kind::linear;
    return std::nullopt;
  }
};

} // namespace chorus
