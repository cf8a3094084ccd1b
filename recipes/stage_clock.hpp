// StageClock: how long each stage of an RL loop (generate, grade, train) was busy, and for how long two
// or more were busy at once: the overlap the asynchronous loop exists for. Stages are entered and left
// by the coroutines doing the work, on the recipe executor (no locks). Each busy period also becomes a
// span on the stage's track of the timeline, so the trace shows the stages side by side.
#pragma once

#include <chorus/detail/wait_queue.hpp>
#include <chorus/task.hpp>

#include <array>
#include <chrono>
#include <string>

namespace chorus::detail {

class StageClock {
public:
  enum Stage { generate, grade, train };
  static constexpr int kStages = 3;

  using Clock = std::chrono::steady_clock;

  /// Seconds each stage was busy, the seconds in which two or more were, and the wall seconds.
  struct Totals {
    std::array<double, kStages> busy{};
    double overlap = 0;
    double wall = 0;
    Totals operator-(const Totals& earlier) const;
  };

  /// Marks one more piece of work in `stage` running until the matching `leave`.
  void enter(Stage stage);
  void leave(Stage stage);

  /// At most `limit` pieces of work in `stage` at once (0: no limit), for those that ask wait_for_room.
  void set_limit(Stage stage, int limit) {
    limit_[stage] = limit;
  }

  /// Waits until `stage` has room under its limit; enter() right after (no suspension in between).
  Task<void> wait_for_room(Stage stage);

  /// Pieces of work waiting for room in `stage`: its queue.
  int waiting(Stage stage) const {
    return waiting_[stage];
  }

  /// Totals from construction until now.
  Totals totals();

  /// Woken whenever a piece of work leaves a stage (for back-pressure).
  WaitQueue& left() {
    return left_;
  }

  static const char* name(Stage stage);

  /// enter() now, leave() at the end of the scope.
  class Busy {
  public:
    Busy(StageClock& clock, Stage stage) : clock_(clock), stage_(stage) {
      clock_.enter(stage_);
    }
    ~Busy() {
      clock_.leave(stage_);
    }
    Busy(const Busy&) = delete;
    Busy& operator=(const Busy&) = delete;

  private:
    StageClock& clock_;
    Stage stage_;
  };

private:
  void advance(); // books the time since the last change

  Clock::time_point start_ = Clock::now(), last_ = start_;
  std::array<int, kStages> active_{};
  std::array<int, kStages> waiting_{};
  std::array<int, kStages> limit_{};
  std::array<Clock::time_point, kStages> busy_since_{};
  Totals totals_;
  WaitQueue left_;
};

} // namespace chorus::detail
