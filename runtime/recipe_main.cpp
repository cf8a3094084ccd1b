// run_recipe: the lifetime of a recipe program after its config is loaded. Creates the output
// directory and the loggers, runs the recipe coroutine on the recipe executor, turns Ctrl-C into a
// clean cancellation (a second Ctrl-C exits at once), and always shuts the runtime down.
#include <chorus/recipe_main.hpp>

#include "runtime/checkpoints.hpp"
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
#include <sys/resource.h>
#include <thread>

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

// Writes `text` to log.txt only (the logger's second sink): detail for whoever debugs the run, which
// the person reading the console does not need.
void log_to_file(spdlog::logger& logger, spdlog::level::level_enum level, const std::string& text) {
  const auto& file = logger.sinks().at(1);
  file->log(spdlog::details::log_msg(logger.name(), level, text));
  file->flush();
}

std::string seconds(Clock::duration d) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f s", std::chrono::duration<double>(d).count());
  return text;
}

// CPU seconds this process has used (every thread, user and system).
double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto of = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6; };
  return of(usage.ru_utime) + of(usage.ru_stime);
}

// "CPU 250.3 s on 2 cores: 82% busy": how much of the machine a run of `wall` used since `cpu_start`.
// A low share on a run that computes throughout means cores sat idle (docs/performance.md).
std::string cpu_use(double cpu_start, Clock::duration wall) {
  auto cpu = cpu_seconds() - cpu_start;
  auto cores = std::max(1u, std::thread::hardware_concurrency());
  auto busy = cpu / std::max(std::chrono::duration<double>(wall).count(), 1e-9) / cores;
  char text[96];
  std::snprintf(text, sizeof(text), "CPU %.1f s on %u cores: %.0f%% busy", cpu, cores, 100.0 * busy);
  return text;
}

// The first SIGINT or SIGTERM stops the recipe: at the end of the current step of a stage that keeps
// checkpoints (after writing one), at once otherwise. The second ends the process at once.
class StopOnSignal {
public:
  StopOnSignal(Runtime& runtime, detail::RunCheckpoints& checkpoints, spdlog::logger& log)
    : runtime_(runtime), checkpoints_(checkpoints), log_(log), signals_(runtime.io(), SIGINT, SIGTERM) {
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
      if (signal_ != 0) {
        log_.error("second {}: exiting now", signal == SIGTERM ? "SIGTERM" : "Ctrl-C");
        log_.flush();
        std::_Exit(130);
      }
      signal_ = signal;
      if (checkpoints_.defer_stop()) {
        log_.warn("{} received: stopping after the current step and its checkpoint (press Ctrl-C again to exit "
                  "at once)",
                  signal_name());
      } else {
        log_.warn("{} received: stopping the recipe (press Ctrl-C again to exit at once)", signal_name());
        runtime_.request_stop();
      }
      arm();
    });
  }

  Runtime& runtime_;
  detail::RunCheckpoints& checkpoints_;
  spdlog::logger& log_;
  asio::signal_set signals_;
  int signal_ = 0;
};

// The first key path where `a` and `b` differ ("" if they are equal).
std::string first_difference(const Json& a, const Json& b, const std::string& path = "") {
  if (a.is_object() && b.is_object()) {
    for (const auto& [key, value] : a.items()) {
      auto at = path.empty() ? key : path + "." + key;
      if (!b.contains(key))
        return at;
      if (auto inner = first_difference(value, b[key], at); !inner.empty())
        return inner;
    }
    for (const auto& [key, value] : b.items())
      if (!a.contains(key))
        return path.empty() ? key : path + "." + key;
    return "";
  }
  return a == b ? "" : (path.empty() ? "(the whole config)" : path);
}

// Writes config.json for a new run; for a resumed one, checks that the config is the run's.
// @throws ConfigError naming the first key that differs.
void record_config(const std::filesystem::path& output, const Json& resolved, bool resume) {
  auto file = output / "config.json";
  if (resume) {
    std::ifstream in(file);
    auto saved = Json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (!in.is_open() || saved.is_discarded())
      throw ConfigError(file.string() + ": missing or not JSON: " + output.string() + " is not a run to resume");
    if (auto key = first_difference(saved, resolved); !key.empty())
      throw ConfigError("--resume: config key '" + key + "' differs from the run's (" + file.string()
                        + "): a resumed run must use the config it started with");
    return;
  }
  std::ofstream out(file);
  out << resolved.dump(2) << "\n";
  if (!out)
    throw Error("cannot write " + file.string());
}

// Says that a signal stopped the run and how to continue it; returns the exit code (130).
int report_stop(spdlog::logger& log, std::string_view recipe, const char* signal, Clock::duration elapsed,
                const std::filesystem::path& output) {
  log.warn(
    "recipe '{}' stopped by {} after {}; partial outputs in {}{}", recipe, signal, seconds(elapsed), output.string(),
    std::filesystem::exists(output / "checkpoints" / "latest") ? "; continue with --resume --output " + output.string()
                                                               : std::string());
  return 130;
}

// Says why the run failed; returns the exit code: 2 for a config value the recipe itself rejects
// (ConfigError, still a bad config), else 1.
int report_failure(spdlog::logger& log, std::string_view recipe, const std::exception& error, Clock::duration elapsed) {
  log.error("recipe '{}' failed after {}: {}", recipe, seconds(elapsed), error.what());
  // The console names the model and what failed in words; the actor and the request's type are for
  // log.txt.
  if (const auto* failed = dynamic_cast<const ActorError*>(&error))
    log_to_file(log, spdlog::level::err, "detail: actor '" + failed->actor() + "', request " + failed->request());
  return dynamic_cast<const ConfigError*>(&error) ? 2 : 1;
}

} // namespace

std::filesystem::path resumed_config_file(const std::filesystem::path& output_dir) {
  auto file = output_dir / "config.json";
  if (!std::filesystem::is_regular_file(file))
    throw ConfigError(file.string() + ": missing: " + output_dir.string() + " is not a run to resume");
  return file;
}

int run_recipe(std::string_view recipe, const RecipeCommandLine& command_line, const Json& resolved_config,
               const std::function<Task<void>(RecipeContext&)>& body) {
  auto started = Clock::now();
  auto cpu_started = cpu_seconds();
  // A file-size limit (ulimit -f) then fails a write with a message naming the file, as a full disk
  // does, instead of killing the process.
  std::signal(SIGXFSZ, SIG_IGN);
  auto output = command_line.output_dir.empty() ? default_output_dir(recipe) : command_line.output_dir;
  std::error_code ec;
  std::filesystem::create_directories(output, ec);
  if (ec) {
    std::cerr << recipe << ": error: cannot create the output directory " << output << ": " << ec.message() << "\n";
    return 1;
  }
  std::shared_ptr<RunCheckpoints> checkpoints;
  try {
    record_config(output, resolved_config, command_line.resume);
    checkpoints = std::make_shared<RunCheckpoints>(RunCheckpoints::Options{.dir = output / "checkpoints",
                                                                           .every = command_line.checkpoint_every,
                                                                           .resume = command_line.resume,
                                                                           .metrics = output / "metrics.jsonl"});
  } catch (const ConfigError& error) {
    std::cerr << recipe << ": error: " << error.what() << "\n";
    return 2;
  } catch (const CheckpointError& error) {
    std::cerr << recipe << ": error: --resume: " << error.what() << "\n";
    return 2;
  } catch (const std::exception& error) {
    std::cerr << recipe << ": error: " << error.what() << "\n";
    return 1;
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
  std::optional<MetricsLogger> metrics;
  try {
    metrics.emplace(
      MetricsLogger::Options{.jsonl = output / "metrics.jsonl", .tensorboard = output / "tensorboard", .console = log});
  } catch (const std::exception& error) {
    log->error("{}", error.what());
    return 1;
  }
  Runtime runtime({.cluster = cluster});
  RecipeContext ctx(runtime, std::string(recipe), output, *metrics, log);
  checkpoints->on_stop([&runtime] { runtime.request_stop(); });
  ctx.set_checkpoints(checkpoints);
  int code = 0;
  {
    StopOnSignal stop_on_signal(runtime, *checkpoints, *log);
    if (const auto& from = checkpoints->resumed_from())
      log->info("recipe '{}' resumed from checkpoint {} (stage {} '{}', step {}); outputs in {}", recipe, from->name,
                from->ordinal, from->stage, from->step, output.string());
    else
      log->info("recipe '{}' started; outputs in {}", recipe, output.string());
    try {
      runtime.run(body(ctx));
      auto wall = Clock::now() - started;
      log->info("recipe '{}' finished in {} ({}); outputs in {}", recipe, seconds(wall), cpu_use(cpu_started, wall),
                output.string());
    } catch (const std::exception& error) {
      code = runtime.stop_requested()
        ? report_stop(*log, recipe, stop_on_signal.signal_name(), Clock::now() - started, output)
        : report_failure(*log, recipe, error, Clock::now() - started);
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
