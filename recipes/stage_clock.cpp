#include "recipes/stage_clock.hpp"

#include "runtime/timeline.hpp"

namespace chorus::detail {

StageClock::Totals StageClock::Totals::operator-(const Totals& earlier) const {
  Totals result;
  for (int i = 0; i < kStages; ++i)
    result.busy[i] = busy[i] - earlier.busy[i];
  result.overlap = overlap - earlier.overlap;
  result.wall = wall - earlier.wall;
  return result;
}

const char* StageClock::name(Stage stage) {
  switch (stage) {
    case generate: return "generate";
    case grade: return "grade";
    case train: return "train";
  }
  return "?";
}

void StageClock::advance() {
  auto now = Clock::now();
  double seconds = std::chrono::duration<double>(now - last_).count();
  int busy_stages = 0;
  for (int i = 0; i < kStages; ++i) {
    if (active_[i] > 0) {
      totals_.busy[i] += seconds;
      ++busy_stages;
    }
  }
  if (busy_stages >= 2)
    totals_.overlap += seconds;
  last_ = now;
}

void StageClock::enter(Stage stage) {
  advance();
  if (active_[stage]++ == 0)
    busy_since_[stage] = last_;
}

void StageClock::leave(Stage stage) {
  advance();
  if (--active_[stage] == 0)
    Timeline::process().record(std::string("stage/") + name(stage), name(stage), busy_since_[stage], last_);
  left_.notify_all();
}

Task<void> StageClock::wait_for_room(Stage stage) {
  ++waiting_[stage];
  try {
    while (limit_[stage] > 0 && active_[stage] >= limit_[stage])
      co_await left_.wait();
  } catch (...) {
    --waiting_[stage];
    throw;
  }
  --waiting_[stage];
}

StageClock::Totals StageClock::totals() {
  advance();
  auto result = totals_;
  result.wall = std::chrono::duration<double>(last_ - start_).count();
  return result;
}

} // namespace chorus::detail
