// report.html: a self-contained page (inline SVG, no network) with the curves of both stages, read
// back from the run's metrics.jsonl, and the held-out evaluation table.
#pragma once

#include "even_number_task.hpp"

#include <chrono>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

/// Writes `<output_dir>/report.html` and returns its path.
std::filesystem::path write_report(const std::filesystem::path& output_dir,
                                   const std::vector<std::pair<std::string, even_number::Evaluation>>& evaluations);

/// Each stage's wall time, for the STAGES line: "base_eval=1.2 sft=10.3 ...", in seconds.
class StageTimes {
public:
  void start() {
    last_ = std::chrono::steady_clock::now();
  }
  /// Ends stage `name`, begun at the previous lap (or start).
  void lap(const std::string& name);
  std::string line() const {
    return line_;
  }

private:
  std::chrono::steady_clock::time_point last_;
  std::string line_;
};
