// A tiny recipe program that recipe_main_test runs as a child process: it logs a few steps and
// then succeeds, fails, or waits for Ctrl-C, as its config says.
#include <chorus/chorus.hpp>

#include <asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

using namespace chorus;

struct ProgramConfig {
  std::string mode = "ok"; // ok, fail, bad_value or wait
  int steps = 3;
};
CHORUS_CONFIG(ProgramConfig, mode, steps)

Task<void> test_recipe(ProgramConfig config, RecipeContext& ctx) {
  auto logger = ctx.logger();
  logger.begin_stage("train", config.steps);
  for (int step = 1; step <= config.steps; ++step)
    logger.log("train", step, {{"loss", 1.0 / step}});
  if (config.mode == "fail")
    throw std::runtime_error("the recipe failed on purpose");
  if (config.mode == "bad_value")
    throw ConfigError("steps must be even, got " + std::to_string(config.steps));
  if (config.mode == "wait") {
    ctx.log().info("waiting for a signal");
    asio::steady_timer timer(ctx.executor(), std::chrono::seconds(120));
    co_await timer.async_wait(asio::use_awaitable);
  }
}

CHORUS_RECIPE_MAIN(test_recipe)
