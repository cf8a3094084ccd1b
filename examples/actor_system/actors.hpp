// The tour's stand-in actors. The policy and the trainer share a version counter, as a real policy
// adopts the trainer's newest weights.
#pragma once

#include "messages.hpp"

#include <caf/event_based_actor.hpp>

#include <atomic>
#include <chrono>
#include <memory>

namespace tour {

using Clock = std::chrono::steady_clock;

caf::behavior policy_actor(caf::event_based_actor* self, Clock::time_point epoch, int generate_ms,
                           std::shared_ptr<std::atomic<int>> version);

caf::behavior judge_actor(caf::event_based_actor* self, Clock::time_point epoch, int grade_ms);

caf::behavior trainer_actor(caf::event_based_actor* self, Clock::time_point epoch, int train_ms,
                            std::shared_ptr<std::atomic<int>> version);

} // namespace tour
