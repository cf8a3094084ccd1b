// Environments hosted on a cluster node: episodes run there (concurrently), answer as they would in
// the recipe's process, train with ENVGRPO unchanged; a name the node does not know, a node that
// hosts no environments, and a node that dies are errors naming the node.
#include <chorus/chorus.hpp>

#include "runtime/runtime.hpp"
#include "tests/expect_error.hpp"
#include "tests/integration/test_environments.hpp"
#include "tests/test_process.hpp"

#include <gtest/gtest.h>

#include <fstream>

using namespace chorus;
using namespace chorus::test;
using namespace std::chrono_literals;

namespace {

// One node program on a free loopback port, and the cluster file naming it.
class EnvironmentNode : public ::testing::Test {
protected:
  // Starts `count` node programs, env-1, env-2, ...
  void start(const std::string& program, int count = 1) {
    std::vector<std::pair<std::string, unsigned>> ports;
    for (int i = 1; i <= count; ++i)
      ports.emplace_back("env-" + std::to_string(i), 1);
    write_cluster(ports);
    for (auto& [name, port] : ports) {
      nodes_.push_back(std::make_unique<ChildProcess>(
        program, std::vector<std::string>{"--cluster", cluster_file_.string(), "--name", name, "--port", "0"}));
      auto line = nodes_.back()->wait_for_line("chorus-node " + name + " listening on", 30s);
      ASSERT_TRUE(line) << nodes_.back()->output();
      port = static_cast<unsigned>(std::stoul(line->substr(line->rfind(':') + 1)));
    }
    write_cluster(ports);
    runtime_ = std::make_unique<Runtime>(
      RuntimeOptions{.cluster = std::make_shared<const Cluster>(read_cluster_file(cluster_file_))});
    ctx_ = std::make_unique<RecipeContext>(*runtime_, "test", dir_, MetricsLogger(), spdlog::default_logger());
  }

  void write_cluster(const std::vector<std::pair<std::string, unsigned>>& nodes) {
    Json json{{"secret", "s3cret"}, {"nodes", Json::object()}};
    for (const auto& [name, port] : nodes)
      json["nodes"][name] = {{"host", "127.0.0.1"}, {"port", port}};
    std::ofstream(cluster_file_) << json.dump(2);
  }

  void TearDown() override {
    ctx_.reset();
    runtime_.reset();
  }

  std::filesystem::path dir_ = [] {
    auto dir = std::filesystem::path(::testing::TempDir())
      / ("environment_node_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    return dir;
  }();
  std::filesystem::path cluster_file_ = dir_ / "cluster.json";
  std::vector<std::unique_ptr<ChildProcess>> nodes_;
  std::unique_ptr<Runtime> runtime_;
  std::unique_ptr<RecipeContext> ctx_;
};

Prompt prompt_with_secret(int secret) {
  return {{{"user", "Write x."}}, Json{{"secret", secret}}};
}

// Four ENVGRPO steps with `environment`, and `fault` started once the first step has trained.
Task<GrpoResult> envgrpo_with_a_fault(RecipeContext& ctx, const std::filesystem::path& dir,
                                      EnvironmentFactory environment, std::function<Task<void>()> fault) {
  auto builder = co_await ModelRef{"builtin:tiny"}.to_builder(ctx, {.kv_cache_len = 256, .threads = 1});
  auto model = co_await builder.spawn_train("policy", {.max_batch_size = 16});
  std::vector<Prompt> prompts;
  for (int secret = 0; secret < 4; ++secret)
    prompts.push_back(prompt_with_secret(secret));
  auto after_the_first_step = [&](TrainingModel model) -> Task<void> {
    while (model.weight_version() < 1)
      co_await sleep_for(20ms);
    co_await fault();
  };
  auto training = ENVGRPO({.dataset = prompts,
                           .model = model,
                           .logger = MetricsLogger({.jsonl = dir / "metrics.jsonl"}),
                           .lr = 1e-3,
                           .samples_per_batch = 8,
                           .samples_per_mini_batch = 8,
                           .completions_per_sample = 2,
                           .max_num_grpo_steps = 4,
                           .sampling = {.temperature = 1.0, .max_tokens = 6},
                           .seed = 1},
                          {.environment = std::move(environment), .max_turns = 3})
                    .run();
  auto [rl, done] = co_await gather(std::move(training), after_the_first_step(model));
  co_return rl;
}

} // namespace

TEST_F(EnvironmentNode, EpisodesRunOnTheNodeConcurrentlyAndAnswerAsTheyWouldHere) {
  start(CHORUS_ENVIRONMENT_NODE_PROGRAM);
  register_environment("two_turns", [] { return std::make_unique<TwoTurns>("here"); });
  runtime_->run([&]() -> Task<void> {
    auto remote = co_await find_environment(*ctx_, "two_turns", "env-1");
    auto local = co_await find_environment(*ctx_, "two_turns");
    auto play = [](EnvironmentFactory factory, int secret) -> Task<std::vector<std::string>> {
      auto environment = factory();
      auto prompt = prompt_with_secret(secret);
      auto conversation = co_await environment->reset(prompt);
      std::vector<std::string> seen{conversation.back().content};
      conversation.push_back({"assistant", "xxo"});
      auto first = co_await environment->step(conversation);
      seen.push_back(first.message);
      conversation.push_back({"user", first.message});
      conversation.push_back({"assistant", "x"});
      auto last = co_await environment->step(conversation);
      seen.push_back(std::to_string(last.done) + " " + std::to_string(last.reward) + " " + last.explanation);
      co_return seen;
    };
    // 16 episodes at once, each with two steps of 200 ms: concurrent on the node, ~0.4 s in all.
    std::vector<Task<std::vector<std::string>>> episodes;
    for (int secret = 0; secret < 16; ++secret)
      episodes.push_back(play(remote, secret));
    auto started = std::chrono::steady_clock::now();
    auto results = co_await when_all(std::move(episodes));
    EXPECT_LT(std::chrono::steady_clock::now() - started, 3s);
    std::vector<Task<std::vector<std::string>>> here;
    for (int secret = 0; secret < 16; ++secret)
      here.push_back(play(local, secret));
    auto expectations = co_await when_all(std::move(here));
    for (int secret = 0; secret < 16; ++secret) {
      const auto& expected = expectations[secret];
      EXPECT_EQ(results[secret].size(), 3u);
      if (results[secret].size() != 3u)
        continue;
      EXPECT_EQ(results[secret][0], expected[0]);
      EXPECT_EQ(results[secret][1], expected[1]);
      EXPECT_EQ(results[secret][2], "1 0.750000 node: secret " + std::to_string(secret));
      EXPECT_EQ(expected[2], "1 0.750000 here: secret " + std::to_string(secret));
    }
  }());
}

TEST_F(EnvironmentNode, ENVGRPOTrainsWithTheEnvironmentOnTheNode) {
  start(CHORUS_ENVIRONMENT_NODE_PROGRAM);
  auto result = runtime_->run([&]() -> Task<GrpoResult> {
    auto environment = co_await find_environment(*ctx_, "two_turns", "env-1");
    auto builder = co_await ModelRef{"builtin:tiny"}.to_builder(*ctx_, {.kv_cache_len = 256, .threads = 1});
    auto model = co_await builder.spawn_train("policy", {.max_batch_size = 16});
    std::vector<Prompt> prompts;
    for (int secret = 0; secret < 4; ++secret)
      prompts.push_back(prompt_with_secret(secret));
    co_return co_await ENVGRPO({.dataset = prompts,
                                .model = model,
                                .logger = MetricsLogger({.jsonl = dir_ / "metrics.jsonl"}),
                                .lr = 1e-3,
                                .samples_per_batch = 8,
                                .samples_per_mini_batch = 8,
                                .completions_per_sample = 2,
                                .max_num_grpo_steps = 2,
                                .sampling = {.temperature = 1.0, .max_tokens = 6},
                                .seed = 1},
                               {.environment = environment, .max_turns = 3})
      .run();
  }());
  EXPECT_EQ(result.steps, 2);
  EXPECT_GE(result.reward_mean, 0.0);
  EXPECT_LE(result.reward_mean, 1.0);
}

TEST_F(EnvironmentNode, ANodeKilledMidRunLeavesThePoolAndENVGRPOCompletesOnTheOther) {
  start(CHORUS_ENVIRONMENT_NODE_PROGRAM, 2);
  constexpr int kSteps = 4;
  auto result = runtime_->run([&]() -> Task<GrpoResult> {
    auto environment = co_await find_environment_on_nodes(*ctx_, "two_turns", {"env-1", "env-2"});
    co_return co_await envgrpo_with_a_fault(*ctx_, dir_, environment, [this]() -> Task<void> {
      nodes_[1]->signal(SIGKILL);
      co_return;
    });
  }());
  EXPECT_EQ(result.steps, kSteps);
  // The episodes the dead node had (or was given before it was found down) were run again on env-1.
  std::ifstream metrics(dir_ / "metrics.jsonl");
  double retried = 0;
  for (std::string line; std::getline(metrics, line);)
    retried += Json::parse(line).value("rollouts_retried", 0.0);
  EXPECT_GE(retried, 1.0);
}

// The only environment node killed after the first step and restarted 3 s later: the episodes it
// had fail and are retried, new episodes wait for it, and the run trains every step.
TEST_F(EnvironmentNode, TheOnlyEnvironmentNodeRestartedMidRunIsBackInThePoolAndENVGRPOCompletes) {
  start(CHORUS_ENVIRONMENT_NODE_PROGRAM);
  constexpr int kSteps = 4;
  auto port = std::to_string(read_cluster_file(cluster_file_).node("env-1").port);
  std::unique_ptr<ChildProcess> restarted;
  auto result = runtime_->run([&]() -> Task<GrpoResult> {
    auto environment = co_await find_environment(*ctx_, "two_turns", "env-1");
    co_return co_await envgrpo_with_a_fault(*ctx_, dir_, environment, [&]() -> Task<void> {
      nodes_[0]->signal(SIGKILL);
      co_await sleep_for(3s);
      restarted = std::make_unique<ChildProcess>(
        CHORUS_ENVIRONMENT_NODE_PROGRAM,
        std::vector<std::string>{"--cluster", cluster_file_.string(), "--name", "env-1", "--port", port});
    });
  }());
  EXPECT_EQ(result.steps, kSteps) << (restarted ? restarted->output() : "");
}

TEST_F(EnvironmentNode, UnknownNamesNodesWithoutEnvironmentsAndDeadNodesAreErrorsNamingTheNode) {
  start(CHORUS_ENVIRONMENT_NODE_PROGRAM);
  runtime_->run([&]() -> Task<void> {
    try {
      co_await find_environment(*ctx_, "chess", "env-1");
      ADD_FAILURE() << "an unknown environment was found";
    } catch (const ActorError& error) {
      std::string what = error.what();
      EXPECT_NE(what.find("node 'env-1'"), std::string::npos) << what;
      EXPECT_NE(what.find("no environment is registered as 'chess' (registered: two_turns)"), std::string::npos)
        << what;
    }
    co_await expect_error_containing<ConfigError>(find_environment(*ctx_, "two_turns", "env-1", -1),
                                                  {"rejoin_wait_s must be at least 0"});
    auto environment = (co_await find_environment(*ctx_, "two_turns", "env-1"))();
    auto prompt = prompt_with_secret(1);
    co_await environment->reset(prompt);
    nodes_[0]->signal(SIGKILL);
    nodes_[0]->wait(10s);
    try {
      std::vector<ChatMessage> conversation{{"user", "Write x."}, {"assistant", "x"}};
      co_await environment->step(conversation);
      ADD_FAILURE() << "a step on a dead node succeeded";
    } catch (const ActorError& error) {
      EXPECT_NE(std::string(error.what()).find("node 'env-1'"), std::string::npos) << error.what();
    }
  }());
}

TEST_F(EnvironmentNode, PlainChorusNodeHostsNoEnvironments) {
  start(CHORUS_NODE_PROGRAM);
  runtime_->run([&]() -> Task<void> {
    try {
      co_await find_environment(*ctx_, "two_turns", "env-1");
      ADD_FAILURE() << "chorus-node hosted an environment it does not have";
    } catch (const ActorError& error) {
      EXPECT_NE(std::string(error.what()).find("no environment is registered as 'two_turns' (registered: none)"),
                std::string::npos)
        << error.what();
    }
  }());
}
