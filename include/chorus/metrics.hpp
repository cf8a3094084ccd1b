// MetricsLogger: per-step numbers to a JSONL file, and a progress line on the console.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace spdlog {
class logger;
}

namespace chorus {

/// One step's figures in the order they are given: `{{"loss", 0.42}, {"lr", 1e-5}}`.
using Metrics = std::vector<std::pair<std::string, double>>;

/// Writes one JSON line per logged step to `metrics.jsonl` (and, with a TensorBoard folder, the same
/// figures as scalars `<stage>/<key>` of a TensorBoard event file):
/// `{"stage":"sft","step":3,"time_s":12.5,"loss":0.42,...}` (`time_s` counts from the logger's
/// creation; a non-finite figure is written as null), and prints a progress line per stage:
/// `[sft] 12/100 12% 3.4 steps/s ETA 0:26 | loss 0.42`, at most once per `console_interval`
/// and always for the last step. Cheap to copy; copies share the file; safe from any thread.
class MetricsLogger {
public:
  /// Where the logger writes.
  struct Options {
    /// Where the JSON lines go; empty: no file.
    std::filesystem::path jsonl;
    /// A folder for TensorBoard event files (`tensorboard --logdir` it); empty: none.
    std::filesystem::path tensorboard;
    /// The console (spdlog) logger for progress lines; null: no console output.
    std::shared_ptr<spdlog::logger> console;
    /// Minimum time between two progress lines of one stage.
    std::chrono::milliseconds console_interval{1000};
  };

  // -- constructors -----------------------------------------------------------

  /// A logger that records nothing.
  MetricsLogger();

  /// @throws Error if the JSONL or the event file cannot be created.
  explicit MetricsLogger(Options options);

  // -- logging ----------------------------------------------------------------

  /// Announces a stage of `total_steps` steps, so progress lines show a fraction and an ETA.
  void begin_stage(std::string_view stage, std::int64_t total_steps);

  /// Records the figures of step `step` (counted from 1) of `stage`.
  void log(std::string_view stage, std::int64_t step, const Metrics& metrics);

  /// The JSONL file written to, empty if none.
  const std::filesystem::path& path() const;

private:
  struct State;
  std::shared_ptr<State> state_;
};

} // namespace chorus
