#include "runtime/timeline.hpp"

#include <chorus/errors.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>

namespace chorus {

Timeline& Timeline::process() {
  static Timeline timeline;
  return timeline;
}

void Timeline::record(const std::string& track, const std::string& name, Clock::time_point start, Clock::time_point end,
                      const std::string& detail) {
  std::lock_guard<std::mutex> guard{mutex_};
  if (spans_.size() >= kMaxSpans)
    return;
  auto found = std::find(tracks_.begin(), tracks_.end(), track);
  auto id = static_cast<std::uint32_t>(found - tracks_.begin());
  if (found == tracks_.end())
    tracks_.push_back(track);
  auto micros = [](Clock::duration d) { return std::chrono::duration_cast<std::chrono::microseconds>(d).count(); };
  spans_.push_back({id, name, micros(start - epoch_), micros(end - start), detail});
}

std::size_t Timeline::size() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return spans_.size();
}

void Timeline::write(const std::filesystem::path& file) const {
  std::lock_guard<std::mutex> guard{mutex_};
  auto events = nlohmann::json::array();
  for (std::size_t i = 0; i < tracks_.size(); ++i)
    events.push_back(
      {{"name", "thread_name"}, {"ph", "M"}, {"pid", 1}, {"tid", i + 1}, {"args", {{"name", tracks_[i]}}}});
  for (const auto& span : spans_) {
    nlohmann::json event{{"name", span.name},     {"ph", "X"},           {"pid", 1},
                         {"tid", span.track + 1}, {"ts", span.start_us}, {"dur", span.duration_us}};
    if (!span.detail.empty())
      event["args"] = {{"detail", span.detail}};
    events.push_back(std::move(event));
  }
  std::ofstream out(file);
  out << nlohmann::json{{"traceEvents", events}, {"displayTimeUnit", "ms"}}.dump() << "\n";
  if (!out)
    throw Error(file.string() + ": cannot write the timeline");
}

} // namespace chorus
