// Network faults between the recipe and a node, made real: the node runs in a network namespace of
// its own, joined to this one by a veth pair, and the tests take the link down or make it slow and
// lossy (netem). They need root and iproute2's `ip` and `tc`; where a namespace cannot be made (or
// the kernel has no netem) they are skipped, saying why.
//
//   - a partition of 10 s (link down, then up): heartbeats drop the node, its replica is respawned
//     after the heal, and the run trains all its steps;
//   - a slow, lossy link (netem: 50 ms delay, 2% loss), and a slow one (a 40 Mbit/s token bucket,
//     where the kernel has no netem): weight versions still arrive whole over the data path, no
//     replica is declared lost, and the run trains all its steps.
#include <chorus/chorus.hpp>

#include "tests/integration/fault_runs.hpp"
#include "tests/test_process.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <optional>
#include <unistd.h>

using namespace chorus;
using namespace chorus::test;
using namespace std::chrono_literals;

namespace {

// Runs `command` through the shell; returns its exit code and what it printed.
std::pair<int, std::string> shell(const std::string& command) {
  std::string output;
  if (FILE* pipe = popen((command + " 2>&1").c_str(), "r")) {
    char buffer[256];
    while (std::fgets(buffer, sizeof buffer, pipe))
      output += buffer;
    int status = pclose(pipe);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
  }
  return {-1, "cannot run " + command};
}

// A network namespace with a veth pair to this one: this process is `here`, the namespace `there`.
// Names and the /24 depend on the process id, so that tests in parallel do not meet.
class NetworkNamespace {
public:
  // Null, with `why`, when it cannot be made here.
  static std::unique_ptr<NetworkNamespace> make(std::string& why) {
    auto made = std::unique_ptr<NetworkNamespace>(new NetworkNamespace());
    auto n = std::to_string(::getpid() % 250 + 1);
    auto& ns = *made;
    for (const auto& command :
         {"ip netns add " + ns.name_, "ip link add " + ns.link_ + " type veth peer name " + ns.peer_,
          "ip link set " + ns.peer_ + " netns " + ns.name_, "ip addr add 10.231." + n + ".1/24 dev " + ns.link_,
          "ip link set " + ns.link_ + " up", ns.inside("ip addr add 10.231." + n + ".2/24 dev " + ns.peer_),
          ns.inside("ip link set " + ns.peer_ + " up"), ns.inside("ip link set lo up")}) {
      auto [code, output] = shell(command);
      if (code != 0) {
        why = "cannot make a network namespace here ('" + command + "': " + output + ")";
        return nullptr;
      }
    }
    ns.here_ = "10.231." + n + ".1";
    ns.there_ = "10.231." + n + ".2";
    return made;
  }

  ~NetworkNamespace() {
    shell("ip link del " + link_); // takes its peer with it
    shell("ip netns del " + name_);
  }

  const std::string& name() const {
    return name_;
  }
  const std::string& here() const {
    return here_;
  }
  const std::string& there() const {
    return there_;
  }

  // `command` run inside the namespace.
  std::string inside(const std::string& command) const {
    return "ip netns exec " + name_ + " " + command;
  }

  // Takes this side of the link down or up.
  void set_link(bool up) const {
    auto [code, output] = shell("ip link set " + link_ + (up ? " up" : " down"));
    EXPECT_EQ(code, 0) << output;
  }

  // Shapes the traffic leaving this side with queueing discipline `qdisc` (e.g. "netem delay 50ms
  // loss 2%"); empty, or why it cannot.
  std::string shape(const std::string& qdisc) const {
    auto [code, output] = shell("tc qdisc add dev " + link_ + " root " + qdisc);
    return code == 0 ? std::string() : output;
  }

private:
  NetworkNamespace()
    : name_("chorus" + std::to_string(::getpid())), link_("chv" + std::to_string(::getpid()) + "a"),
      peer_("chv" + std::to_string(::getpid()) + "b") {}

  std::string name_, link_, peer_, here_, there_;
};

std::filesystem::path temp_dir(const std::string& name) {
  auto dir = std::filesystem::path(::testing::TempDir()) / ("netfault_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// A chorus-node gen-1 inside a namespace, and the cluster file that names it and this process.
class NetworkFaults : public ::testing::Test {
protected:
  void SetUp() override {
    std::string why;
    ns_ = NetworkNamespace::make(why);
    if (!ns_)
      GTEST_SKIP() << why;
    auto bootstrap = dir_ / "bootstrap.json";
    std::ofstream(bootstrap) << Json{{"secret", kSecret}, {"nodes", {{"gen-1", {{"host", ns_->there()}, {"port", 1}}}}}}
                                  .dump();
    node_ = std::make_unique<ChildProcess>(CHORUS_IP_PROGRAM,
                                           std::vector<std::string>{"netns", "exec", ns_->name(), CHORUS_NODE_PROGRAM,
                                                                    "--cluster", bootstrap.string(), "--name", "gen-1",
                                                                    "--port", "0"});
    auto line = node_->wait_for_line("chorus-node gen-1 listening on", 30s);
    ASSERT_TRUE(line) << node_->output();
    auto port = std::stoul(line->substr(line->rfind(':') + 1));
    // The recipe's process is reached at this side's address: replicas read weights from it.
    std::ofstream(cluster_file_) << Json{{"secret", kSecret},
                                         {"recipe_host", ns_->here()},
                                         {"nodes", {{"gen-1", {{"host", ns_->there()}, {"port", port}}}}}}
                                      .dump();
  }

  void TearDown() override {
    node_.reset(); // before the namespace goes
    ns_.reset();
  }

  static constexpr const char* kSecret = "test secret";
  std::filesystem::path dir_ = temp_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::path cluster_file_ = dir_ / "cluster.json";
  std::unique_ptr<NetworkNamespace> ns_;
  std::unique_ptr<ChildProcess> node_;
};

TEST_F(NetworkFaults, APartitionOfTenSecondsDropsTheNodeWhichRejoinsAfterTheHealAndTheRunTrainsEveryStep) {
  auto outcome = run_with_a_fault(
    dir_, cluster_file_,
    [&]() -> Task<void> {
      ns_->set_link(false);
      co_await sleep_for(10s);
      ns_->set_link(true);
    },
    /*rejoin_wait_s=*/120);
  EXPECT_EQ(outcome.error, "") << node_->output();
  EXPECT_EQ(outcome.metrics_lines, 6u);
  // Heartbeats dropped the node: its requests were sent again once its replica came back.
  EXPECT_GE(outcome.requests_retried, 1.0);
  EXPECT_GT(outcome.rejoin_wait_s, 1.0);
  EXPECT_TRUE(node_->wait_for_output("weight versions arrive over the data path from " + ns_->here(), 5s))
    << node_->output();
}

// Six steps over the shaped link: nothing lost, every version adopted whole.
void expect_every_step_without_a_loss(const std::filesystem::path& dir, const std::filesystem::path& cluster_file,
                                      ChildProcess& node, const NetworkNamespace& ns) {
  auto outcome = run_with_a_fault(
    dir, cluster_file, []() -> Task<void> { co_return; }, /*rejoin_wait_s=*/120);
  EXPECT_EQ(outcome.error, "") << node.output();
  EXPECT_EQ(outcome.metrics_lines, 6u);
  EXPECT_EQ(outcome.requests_retried, 0.0);
  EXPECT_EQ(outcome.rejoin_wait_s, 0.0);
  // Every version came over the data path and was adopted: the replica sampled with the trainer's
  // weights (a version cut short or mixed would show as a log-prob gap).
  EXPECT_TRUE(node.wait_for_output("weight versions arrive over the data path from " + ns.here(), 5s))
    << node.output();
  EXPECT_EQ(node.output().find("weight data path failed"), std::string::npos) << node.output();
  EXPECT_EQ(node.output().find("weight sync failed"), std::string::npos) << node.output();
  for (const auto& line : read_metrics(dir / "metrics.jsonl"))
    EXPECT_LT(line.value("logprob_gap", 1.0), 1e-4) << line.dump();
}

TEST_F(NetworkFaults, ASlowLossyLinkDeliversEveryVersionWholeAndLosesNoReplica) {
  if (auto problem = ns_->shape("netem delay 50ms loss 2%"); !problem.empty())
    GTEST_SKIP() << "this kernel cannot shape the link with netem: " << problem;
  expect_every_step_without_a_loss(dir_, cluster_file_, *node_, *ns_);
}

// Where netem is missing (a container's kernel), a token bucket still makes the link slow: each
// 11 MB weight version takes seconds, beside the heartbeats on the same link.
TEST_F(NetworkFaults, ASlowLinkDeliversEveryVersionWholeWhileHeartbeatsKeepTheNode) {
  if (auto problem = ns_->shape("tbf rate 40mbit burst 64kbit latency 200ms"); !problem.empty())
    GTEST_SKIP() << "this kernel cannot shape the link with tbf: " << problem;
  expect_every_step_without_a_loss(dir_, cluster_file_, *node_, *ns_);
}

} // namespace
