// Callbacks: what an algorithm runs after each of its steps. Every algorithm's options take
// `callbacks`; the figures a callback returns are logged with the step (metrics.jsonl, TensorBoard,
// the report). chorus/evaluation.hpp's evaluation_callback is the usual one.
//
//   Callback every_tenth = [](StepEnd end) -> Task<Metrics> {
//     co_return end.step % 10 == 0 ? Metrics{{"tenth", 1.0}} : Metrics{};
//   };
#pragma once

#include <chorus/metrics.hpp>
#include <chorus/task.hpp>

#include <cstdint>
#include <functional>
#include <string>

namespace chorus {

/// Where an algorithm is when it calls its callbacks: after step `step` of `total_steps` of `stage`.
struct StepEnd {
  /// The algorithm's stage name (e.g. "gspo").
  std::string stage;
  /// The step just taken (counted from 1).
  std::int64_t step = 0;
  /// The stage's last step.
  std::int64_t total_steps = 0;

  /// Whether this is the stage's last step.
  bool last() const noexcept {
    return step == total_steps;
  }
};

/// Run by an algorithm after each of its steps: the figures it returns are logged with the step.
using Callback = std::function<Task<Metrics>(StepEnd)>;

} // namespace chorus
