// RecipeContext: what a running recipe can reach: its output directory, its loggers, the runtime.
#pragma once

#include <chorus/metrics.hpp>
#include <chorus/task.hpp>

#include <asio/any_io_executor.hpp>
#include <spdlog/spdlog.h> // recipes log with ctx.log().info("...", ...)

#include <filesystem>
#include <memory>
#include <string>

namespace chorus {

class Runtime;

namespace detail {
class RunCheckpoints;
}

/// Handed to every recipe by CHORUS_RECIPE_MAIN; lives as long as the recipe runs. Recipe code uses
/// it from the recipe executor only.
class RecipeContext {
public:
  // -- constructors -----------------------------------------------------------

  /// A context for recipe `recipe_name` on `runtime`, writing to `output_dir` and logging to `metrics` and `log`.
  RecipeContext(Runtime& runtime, std::string recipe_name, std::filesystem::path output_dir, MetricsLogger metrics,
                std::shared_ptr<spdlog::logger> log);

  // -- properties -------------------------------------------------------------

  /// The recipe's name, e.g. `sft_to_gspo`.
  const std::string& recipe_name() const noexcept {
    return recipe_name_;
  }

  /// Where the run writes its outputs: metrics.jsonl, the resolved config.json, saved models.
  const std::filesystem::path& output_dir() const noexcept {
    return output_dir_;
  }

  /// The metrics logger (per-step JSON lines and progress), passed to trainers as `.logger`.
  MetricsLogger logger() const {
    return metrics_;
  }

  /// The console and file logger for messages.
  spdlog::logger& log() const {
    return *log_;
  }

  /// The recipe executor: the one thread that runs every recipe coroutine.
  asio::any_io_executor executor() const;

  /// True once the user asked the recipe to stop (Ctrl-C). Awaits throw CancelledError by then;
  /// code that loops without awaiting can check this.
  bool stop_requested() const noexcept;

  /// The runtime hosting the actors: for the code that spawns them (actors/, not recipes).
  Runtime& runtime() const noexcept {
    return *runtime_;
  }

  /// The run's checkpoints (--checkpoint-every, --resume); null when the run keeps none. The stages
  /// use them through StageCheckpoint (chorus/checkpoint.hpp).
  const std::shared_ptr<detail::RunCheckpoints>& checkpoints() const noexcept {
    return checkpoints_;
  }
  /// Sets the run's checkpoints (done by the recipe program before the recipe starts).
  void set_checkpoints(std::shared_ptr<detail::RunCheckpoints> checkpoints) {
    checkpoints_ = std::move(checkpoints);
  }

private:
  Runtime* runtime_;
  std::string recipe_name_;
  std::filesystem::path output_dir_;
  MetricsLogger metrics_;
  std::shared_ptr<spdlog::logger> log_;
  std::shared_ptr<detail::RunCheckpoints> checkpoints_;
};

} // namespace chorus
