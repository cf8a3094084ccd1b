// The timeline writes Chrome trace JSON: one named track per recorder, complete events in microseconds.
#include "runtime/timeline.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <thread>

using chorus::Timeline;
using chorus::TimelineSpan;

TEST(Timeline, WritesChromeTraceEventsPerTrack) {
  auto before = Timeline::process().size();
  {
    TimelineSpan span("timeline-test/policy", "decode step", "4 running");
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  auto now = Timeline::Clock::now();
  Timeline::process().record("timeline-test/trainer", "sft step", now, now + std::chrono::milliseconds(3));
  EXPECT_EQ(Timeline::process().size(), before + 2);

  auto file = std::filesystem::path(::testing::TempDir()) / "timeline.json";
  Timeline::process().write(file);
  auto trace = nlohmann::json::parse(std::ifstream(file));
  int tracks = 0, spans = 0;
  for (const auto& event : trace["traceEvents"]) {
    if (event["ph"] == "M" && event["args"]["name"].get<std::string>().rfind("timeline-test/", 0) == 0)
      ++tracks;
    if (event["ph"] == "X" && event["name"] == "decode step" && event.contains("args")
        && event["args"]["detail"] == "4 running") {
      ++spans;
      EXPECT_GE(event["dur"].get<std::int64_t>(), 2000);
    }
    if (event["ph"] == "X" && event["name"] == "sft step") {
      ++spans;
      EXPECT_EQ(event["dur"].get<std::int64_t>(), 3000);
    }
  }
  EXPECT_EQ(tracks, 2);
  EXPECT_EQ(spans, 2);
}
