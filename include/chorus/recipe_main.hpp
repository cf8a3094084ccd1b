// CHORUS_RECIPE_MAIN(fn): turns a recipe coroutine into a program with a command line.
//
//   program [--config FILE] [--set key.path=value]... [--output DIR] [--checkpoint-every N]
//           [--resume] [--cluster FILE] [--log-level LEVEL] [--help] [--schema]
//
// Exit codes: 0 done, 1 the recipe failed, 2 a bad command line or config (also a ConfigError the
// recipe throws when it checks its own fields), 130 stopped by Ctrl-C or SIGTERM (during a stage:
// after its current step and a checkpoint, see chorus/checkpoint.hpp).
#pragma once

#include <chorus/config.hpp>
#include <chorus/context.hpp>
#include <chorus/errors.hpp>
#include <chorus/task.hpp>

#include <filesystem>
#include <functional>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

namespace chorus {

/// What a recipe program was asked to do.
struct RecipeCommandLine {
  /// `--config FILE`: a JSON file with the config's fields; empty: defaults only.
  std::filesystem::path config_file;
  /// `--set key.path=value`, in the order given; applied after the file.
  std::vector<std::string> overrides;
  /// `--output DIR`; empty: `runs/<recipe>-<date>-<time>`.
  std::filesystem::path output_dir;
  /// `--checkpoint-every N`: a checkpoint every N steps of each stage, besides one at each stage's
  /// end; 0: only those.
  int checkpoint_every = 50;
  /// `--resume`: continue the run in `output_dir` from its newest complete checkpoint, with the
  /// config it started with (its config.json); `--config` or `--set` beside it must agree with it.
  bool resume = false;
  /// `--cluster FILE`: the nodes components may be placed on (BuilderOptions::node); empty: none.
  std::filesystem::path cluster_file;
  /// `--log-level`: trace, debug, info, warn or error.
  std::string log_level = "info";
  /// `--help`: print the usage and every config field, then exit.
  bool help = false;
  /// `--schema`: print the config's JSON Schema (config_schema), then exit.
  bool schema = false;
};

/// @throws UsageError for an unknown option, a missing or bad value, a stray argument, or --resume
/// without --output.
RecipeCommandLine parse_command_line(int argc, const char* const* argv);

namespace detail {

std::string recipe_usage(std::string_view program, std::string_view recipe, const std::string& config_table);

/// The config file of the run to resume in `output_dir` (its config.json).
/// @throws ConfigError if there is none: the folder is not a run.
std::filesystem::path resumed_config_file(const std::filesystem::path& output_dir);

/// Prints `error` for a failure before the recipe started and returns the exit code 2.
int report_startup_error(std::string_view recipe, const std::exception& error);

/// Starts the runtime, runs `body` on the recipe executor with Ctrl-C handling, shuts down.
int run_recipe(std::string_view recipe, const RecipeCommandLine& command_line, const Json& resolved_config,
               const std::function<Task<void>(RecipeContext&)>& body);

} // namespace detail

/// The body of CHORUS_RECIPE_MAIN: parses the command line, loads the config, runs `recipe`.
template <class Config>
int recipe_main(int argc, char** argv, std::string_view name, Task<void> (*recipe)(Config, RecipeContext&)) {
  RecipeCommandLine command_line;
  Config config{};
  try {
    command_line = parse_command_line(argc, argv);
    if (command_line.help) {
      std::cout << detail::recipe_usage(argc > 0 ? argv[0] : name, name, describe_config<Config>());
      return 0;
    }
    if (command_line.schema) {
      std::cout << config_schema<Config>(name).dump(2) << "\n";
      return 0;
    }
    // A resumed run reads the config it started with; --config or --set given beside --resume must
    // agree with it (run_recipe checks, naming the first key that differs).
    auto config_file = command_line.resume && command_line.config_file.empty()
      ? detail::resumed_config_file(command_line.output_dir)
      : command_line.config_file;
    config = load_config<Config>(config_file, command_line.overrides);
  } catch (const Error& error) {
    return detail::report_startup_error(name, error);
  }
  auto resolved = config_to_json(config);
  return detail::run_recipe(name, command_line, resolved,
                            [&config, recipe](RecipeContext& ctx) { return recipe(std::move(config), ctx); });
}

} // namespace chorus

/// Defines `main` for the recipe coroutine `fn`, of type `Task<void>(Config, RecipeContext&)` where
/// Config was declared with CHORUS_CONFIG.
#define CHORUS_RECIPE_MAIN(fn)                          \
  int main(int argc, char** argv) {                     \
    return ::chorus::recipe_main(argc, argv, #fn, &fn); \
  }
