// run_recipe: the lifetime of a recipe program after its config is loaded. Creates the output
// directory and the loggers, runs the recipe coroutine on the recipe executor, turns Ctrl-C into a
// clean cancellation (a second Ctrl-C exits at once), and always shuts the runtime down.
#include <chorus/recipe_main.hpp>

#include "runtime/runtime.hpp"
#include "runtime/timeline.hpp"

#include <asio/signal_set.hpp>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdlib>
#include <ctime>
#include <fstream>

namespace chorus::detail {

namespace {

using Clock = std::chrono::steady_clock;

std::filesystem::path default_output_dir(std::string_view recipe) {
  auto now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &local);
  return std::filesystem::path("runs") / (std::string(recipe) + "-" + stamp);
}

// Logs and progress go to stderr (and log.txt): standard output is left to the recipe's results, so
// that a program's last line of output can be machine-readable.
std::shared_ptr<spdlog::logger> make_logger(std::string_view recipe, const std::filesystem::path& file,
                                            const std::string& level) {
  std::vector<spdlog::sink_ptr> sinks{std::make_shared<spdlog::sinks::stderr_color_sink_mt>(),
                                      std::make_shared<spdlog::sinks::basic_file_sink_mt>(file.string())};
  auto logger = std::make_shared<spdlog::logger>(std::string(recipe), sinks.begin(), sinks.end());
  logger->set_pattern("[%H:%M:%S] %^%l%$ %v");
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::info);
  return logger;
}

std::string seconds(Clock::duration d) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f s", std::chrono::duration<double>(d).count());
  return text;
}

// The first SIGINT or SIGTERM cancels the recipe; the second ends the process at once.
class StopOnSignal {
public:
  StopOnSignal(Runtime& runtime, spdlog::logger& log)
    : runtime_(runtime), log_(log), signals_(runtime.io(), SIGINT, SIGTERM) {
    arm();
  }

  ~StopOnSignal() {
    std::error_code ignored;
    signals_.cancel(ignored);
  }

  const char* signal_name() const {
    return signal_ == SIGTERM ? "SIGTERM" : "Ctrl-C";
  }

private:
  void arm() {
    signals_.async_wait([this](const std::error_code& ec, int signal) {
      if (ec)
        return;
      if (runtime_.stop_requested()) {
        log_.error("second {}: exiting now", signal == SIGTERM ? "SIGTERM" : "Ctrl-C");
        log_.flush();
        std::_Exit(130);
      }
      signal_ = signal;
      log_.warn("{} received: stopping the recipe (press Ctrl-C again to exit at once)", signal_name());
      runtime_.request_stop();
      arm();
    });
  }

  Runtime& runtime_;
  spdlog::logger& log_;
  asio::signal_set signals_;
  int signal_ = 0;
};

} // namespace

int run_recipe(std::string_view recipe, const RecipeCommandLine& command_line, const Json& resolved_config,
               const std::function<Task<void>(RecipeContext&)>& body) {
  auto started = Clock::now();
  auto output = command_line.output_dir.empty() ? default_output_dir(recipe) : command_line.output_dir;
  std::error_code ec;
  std::filesystem::create_directories(output, ec);
  if (ec) {
    std::cerr << recipe << ": error: cannot create the output directory " << output << ": " << ec.message() << "\n";
    return 1;
  }
  {
    std::ofstream out(output / "config.json");
    out << resolved_config.dump(2) << "\n";
    if (!out) {
      std::cerr << recipe << ": error: cannot write " << (output / "config.json") << "\n";
      return 1;
    }
  }
  auto log = make_logger(recipe, output / "log.txt", command_line.log_level);
  spdlog::set_default_logger(log); // what the runtime and the actors log goes to stderr and log.txt too
  std::shared_ptr<const Cluster> cluster;
  if (!command_line.cluster_file.empty()) {
    try {
      cluster = std::make_shared<const Cluster>(read_cluster_file(command_line.cluster_file));
    } catch (const std::exception& error) {
      log->error("{}", error.what());
      return 2;
    }
  }
  MetricsLogger metrics({.jsonl = output / "metrics.jsonl", .console = log});
  Runtime runtime({.cluster = cluster});
  RecipeContext ctx(runtime, std::string(recipe), output, metrics, log);
  int code = 0;
  {
    StopOnSignal stop_on_signal(runtime, *log);
    log->info("recipe '{}' started; outputs in {}", recipe, output.string());
    try {
      runtime.run(body(ctx));
      log->info("recipe '{}' finished in {}; outputs in {}", recipe, seconds(Clock::now() - started),
                output.string());
    } catch (const std::exception& error) {
      if (runtime.stop_requested()) {
        log->warn("recipe '{}' stopped by {} after {}; partial outputs in {}", recipe,
                  stop_on_signal.signal_name(), seconds(Clock::now() - started), output.string());
        code = 130;
      } else {
        log->error("recipe '{}' failed after {}: {}", recipe, seconds(Clock::now() - started), error.what());
        // A config value the recipe itself rejects (ConfigError) is still a bad config.
        code = dynamic_cast<const ConfigError*>(&error) ? 2 : 1;
      }
    }
  }
  runtime.shutdown();
  try {
    Timeline::process().write(output / "timeline.json");
  } catch (const std::exception& error) {
    log->warn("{}", error.what());
  }
  return code;
}

} // namespace chorus::detail
