#include "recipes/lr_schedules.hpp"

#include <chorus/errors.hpp>

namespace chorus::detail {

LrSchedule lr_schedule_of(const std::string& algorithm, double lr, int warmup_steps, const std::string& lr_schedule,
                          double min_lr_ratio, std::int64_t total_steps) {
  auto fail = [&](const std::string& what) { throw ConfigError(algorithm + ": " + what); };
  if (!(lr >= 0))
    fail("lr must be >= 0, got " + std::to_string(lr));
  if (warmup_steps < 0)
    fail("warmup_steps must be >= 0, got " + std::to_string(warmup_steps));
  auto kind = LrSchedule::kind_named(lr_schedule);
  if (!kind)
    fail("lr_schedule must be constant, cosine or linear, got '" + lr_schedule + "'");
  if (!(min_lr_ratio >= 0 && min_lr_ratio <= 1))
    fail("min_lr_ratio must be in [0, 1], got " + std::to_string(min_lr_ratio));
  return {
    .base_lr = lr, .warmup_steps = warmup_steps, .total_steps = total_steps, .kind = *kind, .min_ratio = min_lr_ratio};
}

} // namespace chorus::detail
