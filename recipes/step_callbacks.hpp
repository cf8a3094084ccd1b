// Running an algorithm's callbacks after a step. Internal to recipes/.
#pragma once

#include <chorus/callbacks.hpp>

#include <vector>

namespace chorus::detail {

/// Runs each callback, in order, after the step `end` names, adding the figures each returns to
/// `metrics`.
Task<void> run_callbacks(const std::vector<Callback>& callbacks, StepEnd end, Metrics& metrics);

} // namespace chorus::detail
