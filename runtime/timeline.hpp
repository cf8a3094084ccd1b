// Timeline: spans of work recorded by the actors and the recipe (a decode step, a train step, a
// rollout phase), written as a Chrome trace (timeline.json in a recipe's output directory; open it in
// Perfetto or chrome://tracing) to show what ran at the same time. Thread-safe, cheap (one lock and
// one push per span), bounded. Valid C++17: actors that include LibTorch record spans too.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

namespace chorus {

class Timeline {
public:
  using Clock = std::chrono::steady_clock;

  /// The timeline of this process.
  static Timeline& process();

  /// Records that `name` ran on `track` (an actor's or the recipe's name) from `start` to `end`;
  /// `detail` (may be empty) shows as the span's argument. Past kMaxSpans spans, drops new ones.
  void record(const std::string& track, const std::string& name, Clock::time_point start, Clock::time_point end,
              const std::string& detail = {});

  /// Writes the spans recorded so far as Chrome trace JSON. @throws Error if the file cannot be written.
  void write(const std::filesystem::path& file) const;

  std::size_t size() const;

  static constexpr std::size_t kMaxSpans = 1'000'000;

private:
  struct Span {
    std::uint32_t track;
    std::string name;
    std::int64_t start_us;
    std::int64_t duration_us;
    std::string detail;
  };

  mutable std::mutex mutex_;
  Clock::time_point epoch_ = Clock::now();
  std::vector<std::string> tracks_;
  std::vector<Span> spans_;
};

/// Records a span from its construction to its destruction.
class TimelineSpan {
public:
  TimelineSpan(std::string track, std::string name, std::string detail = {})
    : track_(std::move(track)), name_(std::move(name)), detail_(std::move(detail)), start_(Timeline::Clock::now()) {}
  ~TimelineSpan() {
    Timeline::process().record(track_, name_, start_, Timeline::Clock::now(), detail_);
  }
  TimelineSpan(const TimelineSpan&) = delete;
  TimelineSpan& operator=(const TimelineSpan&) = delete;

private:
  std::string track_, name_, detail_;
  Timeline::Clock::time_point start_;
};

} // namespace chorus
