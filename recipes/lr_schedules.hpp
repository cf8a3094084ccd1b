// The learning-rate schedule an algorithm's options name (lr, warmup_steps, lr_schedule,
// min_lr_ratio), checked the same way for every algorithm. Internal to recipes/.
#pragma once

#include <chorus/schedule.hpp>

#include <cstdint>
#include <string>

namespace chorus::detail {

/// The schedule of a run of `total_steps` steps.
/// @throws ConfigError naming `algorithm` and the option for an lr below 0, a negative warm-up, an
///         unknown schedule or a min_lr_ratio outside [0, 1].
LrSchedule lr_schedule_of(const std::string& algorithm, double lr, int warmup_steps, const std::string& lr_schedule,
                          double min_lr_ratio, std::int64_t total_steps = 1);

} // namespace chorus::detail
