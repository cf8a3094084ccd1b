// Components on chorus-node processes (loopback): the two-stage recipe gives the same numbers with its
// policy replica and judge on two nodes as in one process; a node killed mid-run is reported and the
// run completes on the other replica; a process without the cluster's secret cannot join.
#include <chorus/chorus.hpp>

#include "runtime/runtime.hpp"
#include "tests/expect_error.hpp"
#include "tests/integration/fault_runs.hpp"
#include "tests/integration/run_outputs.hpp"
#include "tests/recipes/x_task.hpp"
#include "tests/test_process.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <memory>

using namespace chorus;
using namespace chorus::test;
using namespace std::chrono_literals;

namespace {

void write_cluster(const std::filesystem::path& file, const std::string& secret,
                   const std::vector<std::pair<std::string, unsigned>>& nodes) {
  Json json{{"secret", secret}, {"nodes", Json::object()}};
  for (const auto& [name, port] : nodes)
    json["nodes"][name] = {{"host", "127.0.0.1"}, {"port", port}};
  std::ofstream(file) << json.dump(2);
}

// Two chorus-node processes, gen-1 and judge-1, on free loopback ports, and the cluster file naming them.
class Cluster : public ::testing::Test {
protected:
  void SetUp() override {
    write_cluster(dir_ / "bootstrap.json", kSecret, {{"gen-1", 1}, {"judge-1", 1}});
    std::vector<std::pair<std::string, unsigned>> ports;
    for (const char* name : {"gen-1", "judge-1"}) {
      nodes_.push_back(std::make_unique<ChildProcess>(
        CHORUS_NODE_PROGRAM,
        std::vector<std::string>{"--cluster", (dir_ / "bootstrap.json").string(), "--name", name, "--port", "0"}));
      auto line = nodes_.back()->wait_for_line("chorus-node " + std::string(name) + " listening on", 30s);
      ASSERT_TRUE(line) << nodes_.back()->output();
      ports.emplace_back(name, static_cast<unsigned>(std::stoul(line->substr(line->rfind(':') + 1))));
    }
    write_cluster(cluster_file_, kSecret, ports);
  }

  static constexpr const char* kSecret = "test secret";
  std::filesystem::path dir_ =
    fresh_test_dir(std::string("cluster_") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::path cluster_file_ = dir_ / "cluster.json";
  std::vector<std::unique_ptr<ChildProcess>> nodes_;
};

TEST_F(Cluster, TwoStageRecipeOnTwoNodesGivesTheSameMetricsAsOneProcess) {
#ifndef CHORUS_TWO_STAGE_PROGRAM
  GTEST_SKIP() << "built without the examples (the sanitizer build)";
#else
  // Fixed threads per actor and the synchronous loop: the same arithmetic wherever an actor runs.
  std::vector<std::string> args{"--set", "grader=judge",       "--set", "judge_model=builtin:tiny",
                                "--set", "gspo_max_steps=3",   "--set", "sft_epochs=1",
                                "--set", "demonstrations=48",  "--set", "eval_prompts=8",
                                "--set", "gspo_batch_size=16", "--set", "threads=1",
                                "--set", "max_staleness=0",    "--set", "judge_demonstrations=32"};
  auto run = [&](const std::string& name, std::vector<std::string> extra) {
    auto all = args;
    all.insert(all.end(), {"--output", (dir_ / name).string()});
    all.insert(all.end(), extra.begin(), extra.end());
    ChildProcess recipe(CHORUS_TWO_STAGE_PROGRAM, all);
    EXPECT_EQ(recipe.wait(300s), 0) << recipe.output();
    auto eval = recipe.output().substr(recipe.output().find("EVAL"));
    return std::pair{eval.substr(0, eval.find('\n')), read_metrics(dir_ / name / "metrics.jsonl")};
  };
  auto [local_eval, local] = run("local", {});
  auto [cluster_eval, placed] =
    run("placed", {"--cluster", cluster_file_.string(), "--set", "policy_node=gen-1", "--set", "judge_node=judge-1"});
  auto log = [&] {
    std::ifstream in(dir_ / "placed" / "log.txt");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  EXPECT_NE(log.find("joined node 'gen-1'"), std::string::npos) << log;
  EXPECT_NE(log.find("joined node 'judge-1'"), std::string::npos) << log;
  // The replica on gen-1 read the versions over the data path (the metrics' equality below shows it
  // adopted each whole; the one published after the last step may be cut off by the recipe's exit).
  EXPECT_TRUE(nodes_[0]->wait_for_output("weight versions arrive over the data path from 127.0.0.1:", 5s))
    << nodes_[0]->output();
  ASSERT_EQ(local.size(), placed.size());
  ASSERT_GT(local.size(), 3u);
  for (std::size_t i = 0; i < local.size(); ++i) {
    // logprob_gap compares the replica's sampling with the trainer: it must be ~0 in both.
    EXPECT_LT(placed[i].value("logprob_gap", 0.0), 1e-4) << placed[i].dump();
    local[i].erase("logprob_gap");
    placed[i].erase("logprob_gap");
    EXPECT_EQ(metrics_difference(local[i], placed[i]), "") << "metrics line " << i;
  }
  EXPECT_EQ(local_eval, cluster_eval);
#endif
}

TEST_F(Cluster, ANodeKilledMidRunIsReportedAndTheRunCompletesOnTheOtherReplica) {
  Runtime runtime({.cluster = std::make_shared<const chorus::Cluster>(read_cluster_file(cluster_file_))});
  RecipeContext ctx(runtime, "test", dir_, MetricsLogger(), spdlog::default_logger());
  constexpr int kSteps = 6;
  auto& gen = *nodes_[0];
  auto replicas_left = runtime.run([&]() -> Task<std::size_t> {
    auto builder = co_await ModelRef{"builtin:tiny"}.to_builder(
      ctx, {.kv_cache_len = 128, .replicas = 2, .threads = 1, .replica_nodes = {"", "gen-1"}, .seed = 3});
    auto model = co_await builder.spawn_train("policy", {.max_batch_size = 32});
    auto killer = [&gen](TrainingModel model) -> Task<void> {
      while (model.weight_version() < 2)
        co_await sleep_for(20ms);
      gen.signal(SIGKILL);
    };
    auto training = GRPO({.dataset = x_task_prompts(),
                          .model = model,
                          .grader = FunctionGrader("x", share_of_x),
                          .logger = MetricsLogger({.jsonl = dir_ / "metrics.jsonl"}),
                          .lr = 1e-3,
                          .samples_per_batch = 16,
                          .samples_per_mini_batch = 16,
                          .completions_per_sample = 4,
                          .max_num_grpo_steps = kSteps,
                          .sampling = {.temperature = 1.0, .max_tokens = 8},
                          .seed = 5})
                      .run();
    co_await gather(std::move(training), killer(model));
    co_return model.replicas();
  }());
  EXPECT_EQ(replicas_left, 1u);
  EXPECT_EQ(read_metrics(dir_ / "metrics.jsonl").size(), static_cast<std::size_t>(kSteps));
  EXPECT_NE(gen.wait(10s), 0);
}

// The policy's only replica's node killed at GSPO step 3 and restarted 4 s later.
TEST_F(Cluster, TheOnlyReplicasNodeRestartedMidGspoRejoinsAndTheRunTrainsEveryStep) {
  auto port = std::to_string(read_cluster_file(cluster_file_).node("gen-1").port);
  std::unique_ptr<ChildProcess> restarted;
  auto outcome = run_with_a_fault(
    dir_, cluster_file_,
    [&]() -> Task<void> {
      nodes_[0]->signal(SIGKILL);
      co_await sleep_for(4s);
      restarted = std::make_unique<ChildProcess>(
        CHORUS_NODE_PROGRAM,
        std::vector<std::string>{"--cluster", cluster_file_.string(), "--name", "gen-1", "--port", port});
    },
    /*rejoin_wait_s=*/120);
  EXPECT_EQ(outcome.error, "");
  EXPECT_EQ(outcome.metrics_lines, 6u);
  // The requests on the lost replica were sent again, to the respawned one, after the node's 4 s down.
  EXPECT_GE(outcome.requests_retried, 1.0);
  EXPECT_EQ(outcome.requests_retried, static_cast<double>(outcome.losses.requests_retried));
  EXPECT_GT(outcome.rejoin_wait_s, 3.0);
  EXPECT_NEAR(outcome.rejoin_wait_s, outcome.losses.rejoin_wait_s, 1e-6);
}

TEST_F(Cluster, TheOnlyReplicasNodeLeftDownFailsTheRunAfterTheWait) {
  auto start = std::chrono::steady_clock::now();
  auto outcome = run_with_a_fault(
    dir_, cluster_file_,
    [&]() -> Task<void> {
      nodes_[0]->signal(SIGKILL);
      co_return;
    },
    /*rejoin_wait_s=*/3);
  auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(outcome.error.find("model 'policy': no replica left to serve requests"), std::string::npos)
    << outcome.error;
  EXPECT_NE(outcome.error.find("none rejoined within 3 s"), std::string::npos) << outcome.error;
  EXPECT_LT(outcome.metrics_lines, 6u);
  EXPECT_LT(seconds, 60.0);
}

// A node that keeps its connections open and answers nothing for 10 s: heartbeats drop it, the
// requests on it fail over to the waiting room, reconnecting to it does not block the recipe (the
// handshake has a deadline), and once it runs again its replica is respawned and the run goes on.
TEST_F(Cluster, TheOnlyReplicasNodeStoppedForTenSecondsIsDroppedThenRejoinsAndTheRunTrainsEveryStep) {
  auto outcome = run_with_a_fault(
    dir_, cluster_file_,
    [&]() -> Task<void> {
      nodes_[0]->signal(SIGSTOP); // it holds its connections and answers nothing
      co_await sleep_for(10s);
      nodes_[0]->signal(SIGCONT);
    },
    /*rejoin_wait_s=*/120);
  EXPECT_EQ(outcome.error, "");
  EXPECT_EQ(outcome.metrics_lines, 6u);
  EXPECT_GE(outcome.requests_retried, 1.0);
  EXPECT_GT(outcome.rejoin_wait_s, 1.0);
}

TEST_F(Cluster, ANodeCutOffWithoutClosingItsConnectionIsNoticedWithinSeconds) {
  Runtime runtime({.cluster = std::make_shared<const chorus::Cluster>(read_cluster_file(cluster_file_))});
  RecipeContext ctx(runtime, "test", dir_, MetricsLogger(), spdlog::default_logger());
  auto& judge_node = *nodes_[1];
  auto seconds = runtime.run([&]() -> Task<double> {
    // rejoin_wait_s 0: the request fails as soon as the node is noticed gone, instead of waiting for
    // it to come back.
    auto judge = co_await (co_await ModelRef{"builtin:tiny"}.to_builder(
                             ctx, {.threads = 1, .node = "judge-1", .rejoin_wait_s = 0}))
                   .spawn_inference("judge");
    co_await judge.generate({{"user", "hi"}}, {.max_tokens = 2});
    judge_node.signal(SIGSTOP); // frozen: its socket stays open, nothing answers, no heartbeats
    auto start = std::chrono::steady_clock::now();
    co_await expect_error_containing<Error>(judge.generate({{"user", "hi"}}, {.max_tokens = 2}),
                                            {"on node 'judge-1'", "went down"});
    co_return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }());
  judge_node.signal(SIGCONT);
  EXPECT_LT(seconds, 30.0); // heartbeats every second, a connection silent for 5 s is dropped
}

// A node slow to answer the handshake (stopped for 3 s, as a busy machine may be) is joined once it
// answers: CAF's heartbeat drops a connection still waiting for its first bytes at the next tick, and
// the join tries again within its deadline instead of failing the run.
TEST_F(Cluster, ANodeSlowToAnswerTheHandshakeIsJoinedOnceItAnswers) {
  Runtime runtime({.cluster = std::make_shared<const chorus::Cluster>(read_cluster_file(cluster_file_))});
  RecipeContext ctx(runtime, "test", dir_, MetricsLogger(), spdlog::default_logger());
  auto& judge_node = *nodes_[1];
  judge_node.signal(SIGSTOP);
  auto start = std::chrono::steady_clock::now();
  auto tokens = runtime.run([&]() -> Task<std::size_t> {
    auto wake = [&]() -> Task<void> {
      co_await sleep_for(3s);
      judge_node.signal(SIGCONT);
    };
    auto join = [&]() -> Task<std::size_t> {
      auto judge = co_await (co_await ModelRef{"builtin:tiny"}.to_builder(ctx, {.threads = 1, .node = "judge-1"}))
                     .spawn_inference("judge");
      co_return (co_await judge.generate({{"user", "hi"}}, {.max_tokens = 2})).tokens.size();
    };
    co_return std::get<1>(co_await gather(wake(), join()));
  }());
  judge_node.signal(SIGCONT);
  auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GE(tokens, 1u);
  EXPECT_GT(seconds, 3.0);
}

TEST_F(Cluster, ANodeThatComesBackRejoinsThePool) {
  auto cluster = std::make_shared<const chorus::Cluster>(read_cluster_file(cluster_file_));
  Runtime runtime({.cluster = cluster});
  RecipeContext ctx(runtime, "test", dir_, MetricsLogger(), spdlog::default_logger());
  auto port = std::to_string(cluster->node("gen-1").port);
  std::unique_ptr<ChildProcess> restarted;
  auto counts = runtime.run([&]() -> Task<std::vector<std::size_t>> {
    auto model = co_await (co_await ModelRef{"builtin:tiny"}.to_builder(
                             ctx, {.kv_cache_len = 128, .replicas = 2, .threads = 1, .replica_nodes = {"", "gen-1"}}))
                   .spawn_train("policy", {.max_batch_size = 8});
    auto burst = [&model]() -> Task<void> { // concurrent requests: both replicas get some
      std::vector<Task<Generation>> requests;
      for (int i = 0; i < 8; ++i)
        requests.push_back(model.generate({{"user", "hi"}}, {.max_tokens = 4}));
      co_await when_all(std::move(requests));
    };
    std::vector<std::size_t> counts{model.replicas()};
    nodes_[0]->signal(SIGKILL);
    nodes_[0]->wait(10s);
    co_await burst(); // the requests sent to the dead replica fail over to the other
    counts.push_back(model.replicas());
    restarted = std::make_unique<ChildProcess>(
      CHORUS_NODE_PROGRAM,
      std::vector<std::string>{"--cluster", cluster_file_.string(), "--name", "gen-1", "--port", port});
    for (int i = 0; i < 300 && model.replicas() < 2; ++i)
      co_await sleep_for(100ms);
    counts.push_back(model.replicas());
    co_await burst();
    counts.push_back(model.replicas());
    co_return counts;
  }());
  EXPECT_EQ(counts, (std::vector<std::size_t>{2, 1, 2, 2})) << (restarted ? restarted->output() : "");
}

TEST_F(Cluster, ATrainerOnANodeTrainsAsInTheRecipesProcess) {
  Runtime runtime({.cluster = std::make_shared<const chorus::Cluster>(read_cluster_file(cluster_file_))});
  RecipeContext ctx(runtime, "test", dir_, MetricsLogger(), spdlog::default_logger());
  runtime.run([&]() -> Task<void> {
    for (std::string trainer_node : {"", "gen-1"}) {
      auto model = co_await (co_await ModelRef{"builtin:tiny"}.to_builder(
                               ctx, {.kv_cache_len = 128, .threads = 1, .trainer_node = trainer_node, .seed = 3}))
                     .spawn_train("policy");
      auto name = trainer_node.empty() ? std::string("here") : trainer_node;
      co_await GRPO({.dataset = x_task_prompts(),
                     .model = model,
                     .grader = FunctionGrader("x", share_of_x),
                     .logger = MetricsLogger({.jsonl = dir_ / (name + ".jsonl")}),
                     .lr = 1e-3,
                     .samples_per_batch = 8,
                     .samples_per_mini_batch = 8,
                     .completions_per_sample = 4,
                     .max_num_grpo_steps = 3,
                     .sampling = {.temperature = 1.0, .max_tokens = 8},
                     .seed = 5})
        .run();
    }
  }());
  auto here = read_metrics(dir_ / "here.jsonl"), there = read_metrics(dir_ / "gen-1.jsonl");
  ASSERT_EQ(here.size(), 3u);
  ASSERT_EQ(there.size(), 3u);
  for (std::size_t i = 0; i < here.size(); ++i) {
    // The sampler-trainer gap (~1e-7) is rounding, and differs between the runs' thread teams.
    EXPECT_LT(there[i]["logprob_gap"].get<double>(), 1e-4);
    here[i].erase("logprob_gap");
    there[i].erase("logprob_gap");
    EXPECT_EQ(metrics_difference(here[i], there[i]), "") << "step " << i + 1;
  }
  EXPECT_TRUE(nodes_[0]->wait_for_output("spawned 'policy/trainer'", 5s)) << nodes_[0]->output();
}

TEST_F(Cluster, TwoTrainerRanksTakeTheSameStepsAsOneTrainerOnTheSameBatches) {
  Runtime runtime({.cluster = std::make_shared<const chorus::Cluster>(read_cluster_file(cluster_file_))});
  RecipeContext ctx(runtime, "test", dir_, MetricsLogger(), spdlog::default_logger());
  struct Outcome {
    std::vector<TrainReport> one, two;
    std::vector<float> one_logprobs, two_logprobs;
  };
  auto outcome = runtime.run([&]() -> Task<Outcome> {
    auto one =
      co_await (co_await ModelRef{"builtin:tiny"}.to_builder(ctx, {.kv_cache_len = 128, .threads = 1, .seed = 3}))
        .spawn_train("one");
    auto two = co_await (co_await ModelRef{"builtin:tiny"}.to_builder(
                           ctx, {.kv_cache_len = 128, .threads = 1, .trainer_nodes = {"gen-1"}, .seed = 3}))
                 .spawn_train("two");
    // Eight samples of different lengths in four micro-batches: two on each rank.
    std::vector<TrainSample> samples;
    for (int i = 0; i < 8; ++i) {
      auto prompt = co_await one.tokenize_chat({{"user", "Count to " + std::to_string(i)}});
      std::vector<std::int64_t> completion;
      for (int k = 0; k <= i + 2; ++k)
        completion.push_back('0' + (k % 10));
      samples.push_back({prompt, completion});
    }
    const TrainParams params{.lr = 1e-3, .micro_batch_size = 2};
    Outcome result;
    for (int step = 0; step < 3; ++step) {
      result.one.push_back(co_await one.train_sft(samples, params));
      result.two.push_back(co_await two.train_sft(samples, params));
    }
    result.one_logprobs = co_await one.logprobs(samples[5].prompt_tokens, samples[5].completion_tokens);
    result.two_logprobs = co_await two.logprobs(samples[5].prompt_tokens, samples[5].completion_tokens);
    co_return result;
  }());
  ASSERT_EQ(outcome.one.size(), outcome.two.size());
  for (std::size_t i = 0; i < outcome.one.size(); ++i) {
    EXPECT_NEAR(outcome.one[i].loss, outcome.two[i].loss, 1e-5 * std::abs(outcome.one[i].loss)) << "step " << i;
    EXPECT_NEAR(outcome.one[i].grad_norm, outcome.two[i].grad_norm, 1e-4 * outcome.one[i].grad_norm) << "step " << i;
  }
  EXPECT_LT(outcome.one.back().loss, outcome.one.front().loss); // it trained
  ASSERT_EQ(outcome.one_logprobs.size(), outcome.two_logprobs.size());
  for (std::size_t i = 0; i < outcome.one_logprobs.size(); ++i)
    EXPECT_NEAR(outcome.one_logprobs[i], outcome.two_logprobs[i], 1e-4) << "token " << i;
  // The second rank ran on the node, not in this process.
  EXPECT_TRUE(nodes_[0]->wait_for_output("spawned 'two/trainer1'", 5s)) << nodes_[0]->output();
}

TEST(ClusterNode, ServesWithoutAClusterFileOnTheAddressAndPortGivenWithTheSecretFromTheEnvironment) {
  auto dir = fresh_test_dir("cluster_node_without_file");
  unsetenv("CHORUS_CLUSTER_SECRET");
  ChildProcess no_secret(CHORUS_NODE_PROGRAM, {"--name", "solo", "--bind", "127.0.0.1", "--port", "0"});
  EXPECT_EQ(no_secret.wait(30s), 2);
  EXPECT_NE(no_secret.output().find("CHORUS_CLUSTER_SECRET"), std::string::npos) << no_secret.output();

  setenv("CHORUS_CLUSTER_SECRET", "from the environment", 1);
  ChildProcess node(CHORUS_NODE_PROGRAM, {"--name", "solo", "--bind", "127.0.0.1", "--port", "0"});
  unsetenv("CHORUS_CLUSTER_SECRET");
  auto line = node.wait_for_line("chorus-node solo listening on 127.0.0.1:", 30s);
  ASSERT_TRUE(line) << node.output();
  write_cluster(dir / "cluster.json", "from the environment",
                {{"solo", static_cast<unsigned>(std::stoul(line->substr(line->rfind(':') + 1)))}});
  Runtime runtime({.cluster = std::make_shared<const chorus::Cluster>(read_cluster_file(dir / "cluster.json"))});
  RecipeContext ctx(runtime, "test", dir, MetricsLogger(), spdlog::default_logger());
  auto generation = runtime.run([&]() -> Task<Generation> {
    auto judge = co_await (co_await ModelRef{"builtin:tiny"}.to_builder(ctx, {.threads = 1, .node = "solo"}))
                   .spawn_inference("judge");
    co_return co_await judge.generate({{"user", "hi"}}, {.max_tokens = 3});
  }());
  EXPECT_FALSE(generation.finish_reason.empty()); // answered by the model on the node
  EXPECT_LE(generation.tokens.size(), 3u);
}

TEST_F(Cluster, AProcessWithoutTheSecretCannotJoin) {
  write_cluster(dir_ / "wrong.json", "not the secret", {{"gen-1", 1}});
  auto real = read_cluster_file(cluster_file_);
  auto wrong = read_cluster_file(dir_ / "wrong.json");
  wrong.nodes = real.nodes;
  Runtime runtime({.cluster = std::make_shared<const chorus::Cluster>(wrong)});
  RecipeContext ctx(runtime, "test", dir_, MetricsLogger(), spdlog::default_logger());
  auto what = runtime.run([&]() -> Task<std::string> {
    try {
      auto builder = co_await ModelRef{"builtin:tiny"}.to_builder(ctx, {.node = "judge-1"});
      co_await builder.spawn_inference("judge");
    } catch (const Error& error) {
      co_return std::string(error.what());
    }
    co_return std::string("joined without the secret");
  }());
  EXPECT_NE(what.find("secret does not match"), std::string::npos) << what;
  EXPECT_NE(what.find("judge-1"), std::string::npos) << what;
}

TEST_F(Cluster, APeerOfAnotherVersionIsRefusedAtTheHandshake) {
  // What a build with another wire protocol would say in its handshake.
  Runtime runtime({.cluster = std::make_shared<const chorus::Cluster>(read_cluster_file(cluster_file_)),
                   .configure = [](caf::actor_system_config& config) {
                     config.set("middleman.app-identifiers", std::vector<std::string>{"chorus-wire-0"});
                   }});
  RecipeContext ctx(runtime, "test", dir_, MetricsLogger(), spdlog::default_logger());
  auto what = runtime.run([&]() -> Task<std::string> {
    try {
      co_await (co_await ModelRef{"builtin:tiny"}.to_builder(ctx, {.node = "judge-1"})).spawn_inference("judge");
    } catch (const Error& error) {
      co_return std::string(error.what());
    }
    co_return std::string("joined across versions");
  }());
  EXPECT_NE(what.find("another version of chorus"), std::string::npos) << what;
}

TEST_F(Cluster, ANodeTheFileDoesNotNameIsAConfigError) {
  Runtime runtime({.cluster = std::make_shared<const chorus::Cluster>(read_cluster_file(cluster_file_))});
  RecipeContext ctx(runtime, "test", dir_, MetricsLogger(), spdlog::default_logger());
  runtime.run([&]() -> Task<void> {
    co_await expect_error_containing<ConfigError>(ModelRef{"builtin:tiny"}.to_builder(ctx, {.node = "gen-7"}),
                                                  {"no node 'gen-7'", "gen-1, judge-1"});
  }());
}

TEST(ClusterPlacement, MistakesAreConfigErrorsBeforeAnythingIsSpawned) {
  // Building with `options` must fail with a ConfigError saying each of `fragments`.
  auto expect_config_error = [](std::shared_ptr<const chorus::Cluster> cluster, BuilderOptions options,
                                std::vector<std::string> fragments, const char* file = __builtin_FILE(),
                                int line = __builtin_LINE()) {
    Runtime runtime({.cluster = std::move(cluster)});
    RecipeContext ctx(runtime, "test", fresh_test_dir("cluster_placement"), MetricsLogger(), spdlog::default_logger());
    runtime.run([&]() -> Task<void> {
      co_await expect_error_containing<ConfigError>(ModelRef{"builtin:tiny"}.to_builder(ctx, options),
                                                    std::move(fragments), file, line);
    }());
  };
  chorus::Cluster cluster;
  cluster.file = "cluster.json";
  cluster.secret = "s";
  cluster.nodes.push_back({"gen-1", "127.0.0.1", 7101});
  auto with_file = std::make_shared<const chorus::Cluster>(cluster);

  expect_config_error(nullptr, {.node = "gen-1"}, {"without a cluster"});
  expect_config_error(with_file, {.replicas = 2, .replica_nodes = {"gen-1"}}, {"give one per replica"});
  expect_config_error(with_file, {.trainer_nodes = {""}}, {"trainer_nodes names a node with an empty name"});
  expect_config_error(with_file, {.trainer_node = "train-9"}, {"no node 'train-9'"});
  expect_config_error(nullptr, {.rejoin_wait_s = -1}, {"rejoin_wait_s must be from 0 (fail at once) to 86400"});
}

} // namespace
