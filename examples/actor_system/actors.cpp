// Stand-in actors with trivial compute: each sleeps for its configured time, as a model would
// compute, and reports when it was busy. Each runs on its own thread (detached), like the real ones.
#include "actors.hpp"

#include "runtime/actor_host.hpp"
#include "runtime/message.hpp"

#include <numeric>
#include <thread>

namespace tour {

CHORUS_MESSAGE_TYPES(chorus_tour);

namespace {

double seconds_since(Clock::time_point epoch) {
  return std::chrono::duration<double>(Clock::now() - epoch).count();
}

// Runs `work` for `ms` milliseconds of "compute" and returns when it was busy.
Busy compute(Clock::time_point epoch, int ms) {
  Busy busy{seconds_since(epoch), 0};
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  busy.end_s = seconds_since(epoch);
  return busy;
}

} // namespace

caf::behavior policy_actor(caf::event_based_actor* self, Clock::time_point epoch, int generate_ms,
                           std::shared_ptr<std::atomic<int>> version) {
  return {chorus::guarded([=](const GenerateRequest& request) {
    auto busy = compute(epoch, generate_ms);
    return GenerateReply{"answer to " + request.prompt, version->load(), busy};
  })};
}

caf::behavior judge_actor(caf::event_based_actor* self, Clock::time_point epoch, int grade_ms) {
  return {chorus::guarded([=](const GradeRequest& request) {
    auto busy = compute(epoch, grade_ms);
    // A deterministic stand-in score in [0, 1].
    auto score = static_cast<double>(std::hash<std::string>{}(request.completion) % 100) / 100.0;
    return GradeReply{score, busy};
  })};
}

caf::behavior trainer_actor(caf::event_based_actor* self, Clock::time_point epoch, int train_ms,
                            std::shared_ptr<std::atomic<int>> version) {
  return {chorus::guarded([=](const TrainRequest& request) {
    auto busy = compute(epoch, train_ms);
    double mean = std::accumulate(request.scores.begin(), request.scores.end(), 0.0)
      / static_cast<double>(std::max<std::size_t>(1, request.scores.size()));
    return TrainReply{++*version, 1.0 - mean, busy};
  })};
}

} // namespace tour
