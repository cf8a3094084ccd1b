// report.html: a self-contained page (inline SVG, no network) with the curves of both stages, read
// back from the run's metrics.jsonl, and the held-out evaluation table.
#pragma once

#include "even_number_task.hpp"

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

/// Writes `<output_dir>/report.html` and returns its path.
std::filesystem::path write_report(const std::filesystem::path& output_dir,
                                   const std::vector<std::pair<std::string, even_number::Evaluation>>& evaluations);
