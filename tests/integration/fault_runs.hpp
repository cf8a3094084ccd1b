// A run that suffers a fault: six GSPO steps of the toy 'x' task with the policy's only replica on
// cluster node gen-1, and `fault` started at step 3 (a node killed, stopped, cut off ...).
#pragma once

#include <chorus/chorus.hpp>

#include "runtime/runtime.hpp"
#include "tests/integration/run_outputs.hpp"
#include "tests/recipes/x_task.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

namespace chorus::test {

/// An empty folder `name` under the test's temporary directory (emptied if it was there).
inline std::filesystem::path fresh_test_dir(const std::string& name) {
  auto dir = std::filesystem::path(::testing::TempDir()) / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

struct FaultRun {
  std::size_t metrics_lines = 0;
  double requests_retried = 0, rejoin_wait_s = 0; // summed over the metrics lines
  ReplicaLosses losses;                           // the model's own count
  std::string error;                              // what the run failed with (empty: it completed)
};

/// `rejoin_wait_s` bounds how long requests wait for the replica (BuilderOptions).
inline FaultRun run_with_a_fault(const std::filesystem::path& dir, const std::filesystem::path& cluster_file,
                                 std::function<Task<void>()> fault, double rejoin_wait_s) {
  using namespace std::chrono_literals;
  Runtime runtime({.cluster = std::make_shared<const Cluster>(read_cluster_file(cluster_file))});
  RecipeContext ctx(runtime, "test", dir, MetricsLogger(), spdlog::default_logger());
  FaultRun outcome;
  runtime.run([&]() -> Task<void> {
    auto model =
      co_await (
        co_await ModelRef{"builtin:tiny"}.to_builder(
          ctx,
          {.kv_cache_len = 128, .threads = 1, .replica_nodes = {"gen-1"}, .seed = 3, .rejoin_wait_s = rejoin_wait_s}))
        .spawn_train("policy", {.max_batch_size = 32});
    auto at_step_three = [&](TrainingModel model) -> Task<void> {
      while (model.weight_version() < 2)
        co_await sleep_for(20ms);
      co_await fault();
    };
    try {
      co_await gather(GSPO({.dataset = x_task_prompts(),
                            .model = model,
                            .grader = FunctionGrader("x", share_of_x),
                            .logger = MetricsLogger({.jsonl = dir / "metrics.jsonl"}),
                            .lr = 1e-3,
                            .samples_per_batch = 8,
                            .samples_per_mini_batch = 8,
                            .completions_per_sample = 4,
                            .max_num_gspo_steps = 6,
                            .sampling = {.temperature = 1.0, .max_tokens = 8},
                            .seed = 5})
                        .run(),
                      at_step_three(model));
    } catch (const Error& error) {
      outcome.error = error.what();
    }
    outcome.losses = model.losses();
  }());
  auto metrics = read_metrics(dir / "metrics.jsonl");
  outcome.metrics_lines = metrics.size();
  for (const auto& line : metrics) {
    outcome.requests_retried += line.value("requests_retried", 0.0);
    outcome.rejoin_wait_s += line.value("rejoin_wait_s", 0.0);
  }
  return outcome;
}

} // namespace chorus::test
