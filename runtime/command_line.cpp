// Parsing a recipe program's command line. Small and strict: a typo is an error, never ignored.
#include <chorus/recipe_main.hpp>

#include "runtime/option_values.hpp"

#include <array>

namespace chorus {

namespace {

constexpr std::array kLogLevels{"trace", "debug", "info", "warn", "error"};

} // namespace

RecipeCommandLine parse_command_line(int argc, const char* const* argv) {
  RecipeCommandLine result;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view option = arg;
    std::optional<std::string> inline_value;
    if (arg.starts_with("--")) {
      if (auto equals = arg.find('='); equals != std::string_view::npos) {
        option = arg.substr(0, equals);
        inline_value = std::string(arg.substr(equals + 1));
      }
    }
    auto value = [&]() -> std::string {
      if (inline_value)
        return *inline_value;
      if (i + 1 >= argc)
        throw UsageError("option " + std::string(option) + " needs a value; try --help");
      return argv[++i];
    };
    if (option == "-h" || option == "--help") {
      result.help = true;
    } else if (option == "--schema") {
      result.schema = true;
    } else if (option == "-c" || option == "--config") {
      result.config_file = value();
    } else if (option == "-s" || option == "--set") {
      result.overrides.push_back(value());
    } else if (option == "-o" || option == "--output") {
      result.output_dir = value();
    } else if (option == "--checkpoint-every") {
      try {
        result.checkpoint_every = static_cast<int>(option_integer("--checkpoint-every", value(), 0, 1 << 30));
      } catch (const std::invalid_argument& error) {
        throw UsageError(std::string(error.what()) + " (a number of steps; 0: only at each stage's end)");
      }
    } else if (option == "--resume") {
      result.resume = true;
    } else if (option == "--cluster") {
      result.cluster_file = value();
    } else if (option == "--log-level") {
      result.log_level = value();
      if (std::find(kLogLevels.begin(), kLogLevels.end(), result.log_level) == kLogLevels.end())
        throw UsageError("--log-level " + result.log_level + ": expected one of trace, debug, info, warn, error");
    } else if (option.starts_with("-")) {
      throw UsageError("unknown option '" + std::string(arg) + "'; try --help");
    } else {
      throw UsageError("unexpected argument '" + std::string(arg)
                       + "'; config values are given as --set key=value, see --help");
    }
  }
  if (result.resume && result.output_dir.empty() && !result.help && !result.schema)
    throw UsageError("--resume needs --output DIR: the directory of the run to continue");
  return result;
}

namespace detail {

std::string recipe_usage(std::string_view program, std::string_view recipe, const std::string& config_table) {
  std::string text;
  text += "Usage: " + std::string(program) + " [options]\n\n";
  text += "Runs the recipe '" + std::string(recipe) + "'.\n\n";
  text += "Options:\n";
  text += "  -c, --config FILE        read config fields from a JSON file\n";
  text += "  -s, --set KEY=VALUE      set one field (after the file), e.g. --set lr=1e-5; repeatable\n";
  text += "  -o, --output DIR         output directory (default: runs/" + std::string(recipe) + "-<date>-<time>)\n";
  text += "      --checkpoint-every N a checkpoint every N steps of each stage (default 50; 0: only at\n"
          "                           each stage's end, which always gets one)\n";
  text += "      --resume             continue the run in --output DIR from its newest checkpoint, with its\n"
          "                           config (DIR/config.json; --config or --set, if given, must agree)\n";
  text += "      --cluster FILE       a cluster file: the chorus-node processes components may run on\n";
  text += "      --log-level LEVEL    trace, debug, info (default), warn or error\n";
  text += "  -h, --help               show this help\n";
  text += "      --schema             print the config's JSON Schema (for editors and validators)\n\n";
  text += "Config fields:\n" + config_table;
  text += "\nExit codes: 0 done, 1 recipe failed, 2 bad command line or config, 130 stopped by Ctrl-C or SIGTERM\n"
          "(during a stage: after its current step, with a checkpoint to --resume from).\n";
  return text;
}

int report_startup_error(std::string_view recipe, const std::exception& error) {
  std::cerr << recipe << ": error: " << error.what() << "\n";
  return 2;
}

} // namespace detail

} // namespace chorus
