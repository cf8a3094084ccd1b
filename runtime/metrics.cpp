// MetricsLogger: one JSON object per line (flushed per step, so a crashed run keeps its history)
// and throttled progress lines with a rate and an ETA per stage.
#include <chorus/errors.hpp>
#include <chorus/metrics.hpp>

#include "runtime/tensorboard.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>

namespace chorus {

using Clock = std::chrono::steady_clock;

struct MetricsLogger::State {
  struct Stage {
    std::int64_t total = 0;
    Clock::time_point started = Clock::now();
    Clock::time_point last_print{};
    bool printed = false;
  };

  Options options;
  Clock::time_point created = Clock::now();
  std::mutex mutex;
  std::ofstream file;
  std::unique_ptr<detail::TensorBoardWriter> tensorboard;
  std::map<std::string, Stage, std::less<>> stages;
};

namespace {

std::string format_clock(double seconds) {
  auto total = static_cast<long>(std::lround(std::max(0.0, seconds)));
  char text[32];
  if (total >= 3600)
    std::snprintf(text, sizeof(text), "%ld:%02ld:%02ld", total / 3600, total / 60 % 60, total % 60);
  else
    std::snprintf(text, sizeof(text), "%ld:%02ld", total / 60, total % 60);
  return text;
}

std::string format_figure(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.4g", value);
  return text;
}

} // namespace

MetricsLogger::MetricsLogger() : state_(std::make_shared<State>()) {}

MetricsLogger::MetricsLogger(Options options) : state_(std::make_shared<State>()) {
  state_->options = std::move(options);
  if (!state_->options.jsonl.empty()) {
    state_->file.open(state_->options.jsonl, std::ios::out | std::ios::app);
    if (!state_->file)
      throw Error(state_->options.jsonl.string() + ": cannot create the metrics file");
  }
  if (!state_->options.tensorboard.empty())
    state_->tensorboard = std::make_unique<detail::TensorBoardWriter>(state_->options.tensorboard);
}

void MetricsLogger::begin_stage(std::string_view stage, std::int64_t total_steps) {
  std::lock_guard<std::mutex> guard{state_->mutex};
  auto& entry = state_->stages[std::string(stage)];
  entry = State::Stage{};
  entry.total = total_steps;
}

void MetricsLogger::log(std::string_view stage, std::int64_t step, const Metrics& metrics) {
  auto now = Clock::now();
  std::lock_guard<std::mutex> guard{state_->mutex};
  if (state_->file.is_open()) {
    auto line = nlohmann::ordered_json::object();
    line["stage"] = stage;
    line["step"] = step;
    line["time_s"] = std::chrono::duration<double>(now - state_->created).count();
    for (const auto& [key, value] : metrics)
      line[key] = std::isfinite(value) ? nlohmann::ordered_json(value) : nlohmann::ordered_json(nullptr);
    state_->file << line.dump() << '\n';
    state_->file.flush();
  }
  if (state_->tensorboard) {
    auto wall = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    state_->tensorboard->write_scalars(stage, step, wall, metrics);
  }
  auto& console = state_->options.console;
  if (!console)
    return;
  auto found = state_->stages.find(stage);
  if (found == state_->stages.end())
    found = state_->stages.emplace(std::string(stage), State::Stage{}).first;
  auto& entry = found->second;
  bool last = entry.total > 0 && step >= entry.total;
  if (!last && entry.printed && now - entry.last_print < state_->options.console_interval)
    return;
  entry.last_print = now;
  entry.printed = true;
  double elapsed = std::chrono::duration<double>(now - entry.started).count();
  double rate = elapsed > 0 ? static_cast<double>(step) / elapsed : 0.0;
  std::string text = "[" + std::string(stage) + "] " + std::to_string(step);
  if (entry.total > 0) {
    text += "/" + std::to_string(entry.total) + " "
      + std::to_string(100 * step / std::max<std::int64_t>(1, entry.total)) + "%";
  }
  text += " " + format_figure(rate) + " steps/s";
  if (entry.total > 0 && rate > 0)
    text +=
      last ? " took " + format_clock(elapsed) : " ETA " + format_clock(static_cast<double>(entry.total - step) / rate);
  if (!metrics.empty()) {
    text += " |";
    for (const auto& [key, value] : metrics)
      text += " " + key + " " + format_figure(value);
  }
  console->info("{}", text);
}

const std::filesystem::path& MetricsLogger::path() const {
  return state_->options.jsonl;
}

} // namespace chorus
