// bench_soak: GSPO on three chorus-nodes (the policy's two replicas on gen-1 and gen-2, the judge on
// judge-1) under a random schedule of faults, for as long as asked:
//
//   bench_soak [--minutes M] [--seed S]      (default 2 minutes; not in CI: run it by hand)
//
// The run is cut into rounds; each round is a real recipe program (this program with --recipe) that
// trains 150 GSPO steps with a checkpoint after each, while this process injects one fault after
// another: a node killed and restarted after a few seconds, a node stopped (SIGSTOP) and continued,
// or (as root, with iproute2) a node's link taken down and up again: a partition. Every node runs in
// a network namespace of its own where one can be made, else on loopback without partitions.
//
// After each round it checks that every step was trained exactly once (metrics.jsonl holds steps
// 1..150, each once), that no rollout was trained twice (each step trained at most its batch, and
// its trained, failed and timed-out rollouts add up to no more than it started), and that the
// checkpoints resume to the same weights (the round's folder resumed with --resume restores its
// finished stage and saves weights equal to the round's own).
//
//   BENCH soak minutes=... rounds=... faults=... steps=... lost_steps=0 ratio=<steps trained once /
//   steps run> target=1.0
#include <chorus/chorus.hpp>

#include "tests/integration/network_namespace.hpp"
#include "tests/integration/run_outputs.hpp"
#include "tests/recipes/x_task.hpp"
#include "tests/test_process.hpp"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <thread>

using namespace chorus;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

constexpr int kSteps = 150;          // per round
constexpr int kSamplesPerBatch = 16; // rollouts per step

// -- the recipe: one round ----------------------------------------------------------

struct SoakConfig {
  int steps = kSteps;
};
CHORUS_CONFIG(SoakConfig, steps)

// The toy task's reward, after a word from the judge: grading needs the judge's node.
struct JudgeTouchingGrader : Grader::Impl {
  explicit JudgeTouchingGrader(InferenceModel model) : judge(std::move(model)) {
    key = "x_after_judge";
  }
  Task<Grade> grade(Sample sample) const override {
    co_await judge.generate({{"user", sample.completion}}, {.max_tokens = 2});
    co_return Grade{.score = test::share_of_x(sample)};
  }
  InferenceModel judge;
};

Task<void> soak(SoakConfig config, RecipeContext& ctx) {
  auto policy =
    co_await (co_await ModelRef{"builtin:tiny"}.to_builder(
                ctx, {.kv_cache_len = 128, .replicas = 2, .threads = 1, .replica_nodes = {"gen-1", "gen-2"}}))
      .spawn_train("policy", {.max_batch_size = 32});
  auto judge = co_await (co_await ModelRef{"builtin:tiny"}.to_builder(ctx, {.threads = 1, .node = "judge-1"}))
                 .spawn_inference("judge", {.max_batch_size = 32});
  co_await GSPO({.dataset = test::x_task_prompts(),
                 .model = policy,
                 .grader = Grader(std::make_shared<JudgeTouchingGrader>(judge)),
                 .logger = ctx.logger(),
                 .lr = 1e-3,
                 .samples_per_batch = kSamplesPerBatch,
                 .samples_per_mini_batch = kSamplesPerBatch,
                 .completions_per_sample = 4,
                 .max_num_gspo_steps = config.steps,
                 .sampling = {.temperature = 1.0, .max_tokens = 8},
                 .seed = 5})
    .run();
  co_await policy.save("final-model", ctx);
}

// -- the nodes and the faults ------------------------------------------------------

struct Node {
  std::string name;
  std::unique_ptr<test::NetworkNamespace> ns; // null: on loopback
  unsigned port = 0;
  std::unique_ptr<test::ChildProcess> process;
  std::string host() const {
    return ns ? ns->there() : "127.0.0.1";
  }
};

// The three chorus-nodes the rounds run on (each in its own namespace where one can be made), and
// the cluster file that names them.
class SoakNodes {
public:
  explicit SoakNodes(const fs::path& dir) : dir_(dir) {
    std::string why;
    for (const char* name : {"gen-1", "gen-2", "judge-1"}) {
      auto& node = nodes_.emplace_back();
      node.name = name;
      node.ns = test::NetworkNamespace::make(why, static_cast<int>(nodes_.size()));
      if (!node.ns)
        partitions_ = false;
    }
    if (!partitions_) {
      std::printf("no partitions: %s\n", why.c_str());
      for (auto& node : nodes_)
        node.ns.reset();
    }
    Json bootstrap{{"secret", kSecret}, {"nodes", Json::object()}};
    for (const auto& node : nodes_)
      bootstrap["nodes"][node.name] = {{"host", node.host()}, {"port", 1}};
    std::ofstream(dir_ / "bootstrap.json") << bootstrap.dump();
    for (auto& node : nodes_)
      start(node, "0");
    Json cluster{{"secret", kSecret},
                 {"recipe_host", partitions_ ? nodes_[0].ns->here() : "127.0.0.1"},
                 {"nodes", Json::object()}};
    for (const auto& node : nodes_)
      cluster["nodes"][node.name] = {{"host", node.host()}, {"port", node.port}};
    std::ofstream(file()) << cluster.dump();
  }

  fs::path file() const {
    return dir_ / "cluster.json";
  }

  bool partitions() const {
    return partitions_;
  }

  std::vector<Node>& nodes() {
    return nodes_;
  }

  // (Re)starts `node` on `port` ("0": any free one, remembered).
  void start(Node& node, const std::string& port) {
    std::vector<std::string> args{
      "--cluster", (dir_ / "bootstrap.json").string(), "--name", node.name, "--bind", node.host(), "--port", port};
    if (node.ns) { // the node runs inside its namespace
      args.insert(args.begin(), {"netns", "exec", node.ns->name(), NODE_PROGRAM});
      node.process = std::make_unique<test::ChildProcess>(IP_PROGRAM, args);
    } else {
      node.process = std::make_unique<test::ChildProcess>(NODE_PROGRAM, args);
    }
    auto line = node.process->wait_for_line("chorus-node " + node.name + " listening on", 30s);
    if (!line)
      throw std::runtime_error("node " + node.name + " did not start: " + node.process->output());
    node.port = static_cast<unsigned>(std::stoul(line->substr(line->rfind(':') + 1)));
  }

private:
  static constexpr const char* kSecret = "soak secret";
  fs::path dir_;
  std::vector<Node> nodes_;
  bool partitions_ = true;
};

// One fault on a random node, held for a random few seconds, then repaired. Returns what it did.
std::string inject_fault(SoakNodes& cluster, std::mt19937& random) {
  auto& nodes = cluster.nodes();
  auto& node = nodes[std::uniform_int_distribution<std::size_t>(0, nodes.size() - 1)(random)];
  auto kinds = cluster.partitions() ? 3 : 2;
  auto kind = std::uniform_int_distribution<int>(0, kinds - 1)(random);
  auto held = std::chrono::milliseconds(std::uniform_int_distribution<int>(2000, 8000)(random));
  std::string what;
  if (kind == 0) {
    node.process->signal(SIGKILL);
    node.process->wait(10s);
    std::this_thread::sleep_for(held);
    cluster.start(node, std::to_string(node.port));
    what = "killed and restarted";
  } else if (kind == 1) {
    node.process->signal(SIGSTOP);
    std::this_thread::sleep_for(held);
    node.process->signal(SIGCONT);
    what = "stopped and continued";
  } else {
    node.ns->set_link(false);
    std::this_thread::sleep_for(held);
    node.ns->set_link(true);
    what = "partitioned";
  }
  char text[128];
  std::snprintf(text, sizeof text, "%s %s for %.1f s", node.name.c_str(), what.c_str(), held.count() / 1000.0);
  return text;
}

// -- the checks ---------------------------------------------------------------------

// Steps trained other than exactly once (missing, or logged twice), and rollout accounting errors.
struct RoundCheck {
  int steps_once = 0, lost_steps = 0, accounting_errors = 0;
};

RoundCheck check_round(const fs::path& output) {
  RoundCheck check;
  std::map<int, int> seen;
  for (const auto& line : test::read_metrics(output / "metrics.jsonl")) {
    if (line.value("stage", "") != "gspo")
      continue;
    ++seen[line.value("step", 0)];
    double trained = 0;
    for (const auto& [key, value] : line.items())
      if (key.rfind("staleness/", 0) == 0)
        trained += value.get<double>();
    auto accounted = trained + line.value("rollouts_failed", 0.0) + line.value("rollouts_timed_out", 0.0);
    if (trained > kSamplesPerBatch || accounted > kSamplesPerBatch) {
      std::printf("  step %d: %.0f rollouts trained, %.0f accounted for, of %d started\n", line.value("step", 0),
                  trained, accounted, kSamplesPerBatch);
      ++check.accounting_errors;
    }
  }
  for (int step = 1; step <= kSteps; ++step)
    (seen[step] == 1 ? check.steps_once : check.lost_steps) += 1;
  return check;
}

// Set by Ctrl-C or SIGTERM: the soak stops, and its nodes and network namespaces are removed.
std::atomic<bool> interrupted{false};

// This program's path (for the rounds, which run it with --recipe).
std::string self_path() {
  return fs::read_symlink("/proc/self/exe").string();
}

} // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--recipe") == 0)
    return recipe_main<SoakConfig>(argc - 1, argv + 1, "soak", &soak);
  double minutes = 2;
  unsigned seed = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--minutes") == 0)
      minutes = std::atof(argv[i + 1]);
    else if (std::strcmp(argv[i], "--seed") == 0)
      seed = static_cast<unsigned>(std::atoi(argv[i + 1]));
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  // Read once: if the program is rebuilt meanwhile, /proc/self/exe names a deleted file.
  const auto program = self_path();
  auto dir = fs::temp_directory_path() / ("chorus_soak_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  SoakNodes cluster(dir);
  std::mt19937 random(seed);
  auto started = std::chrono::steady_clock::now();
  auto elapsed_minutes = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count() / 60.0;
  };
  int rounds = 0, faults = 0, steps = 0, steps_once = 0, lost_steps = 0, accounting_errors = 0, failed_rounds = 0,
      resume_mismatches = 0;
  std::signal(SIGINT, [](int) { interrupted = true; });
  std::signal(SIGTERM, [](int) { interrupted = true; });
  while (elapsed_minutes() < minutes && !interrupted) {
    auto output = dir / ("round-" + std::to_string(++rounds));
    test::ChildProcess round(
      program,
      {"--recipe", "--output", output.string(), "--cluster", cluster.file().string(), "--checkpoint-every", "1"});
    // Faults while the round trains (from its first step on: spawning the models is not what this
    // soaks), one every 2-6 s.
    round.wait_for_output("[gspo] 1/", 300s);
    while (!interrupted
           && !round.ended(std::chrono::milliseconds(std::uniform_int_distribution<int>(2000, 6000)(random))))
      std::printf("round %d: %s\n", rounds, inject_fault(cluster, random).c_str()), ++faults;
    if (interrupted) {
      std::printf("interrupted in round %d: stopping its nodes and removing their namespaces\n", rounds);
      break; // the round's process and the nodes are killed as they go out of scope
    }
    auto code = round.wait(600s);
    auto check = check_round(output);
    steps += kSteps;
    steps_once += check.steps_once;
    lost_steps += check.lost_steps;
    accounting_errors += check.accounting_errors;
    if (code == 127) { // the program could not be started: no point in going on
      std::printf("round %d: cannot run %s\n", rounds, program.c_str());
      ++failed_rounds;
      break;
    }
    if (code != 0) {
      ++failed_rounds;
      std::printf("round %d failed (exit %d):\n%s\n", rounds, code, round.output().c_str());
      continue;
    }
    // The round's checkpoints resume to its weights: a copy resumed restores the finished stage.
    auto resumed = dir / ("round-" + std::to_string(rounds) + "-resumed");
    fs::copy(output, resumed, fs::copy_options::recursive);
    fs::remove_all(resumed / "final-model");
    test::ChildProcess resume(
      program, {"--recipe", "--resume", "--output", resumed.string(), "--cluster", cluster.file().string()});
    auto resume_code = resume.wait(600s);
    auto difference = resume_code == 0 ? test::max_weight_difference(output / "final-model" / "model.safetensors",
                                                                     resumed / "final-model" / "model.safetensors")
                                       : 1e9;
    if (difference > 1e-6) {
      ++resume_mismatches;
      std::printf("round %d: resumed weights differ by %g (exit %d)\n%s\n", rounds, difference, resume_code,
                  resume.output().c_str());
    }
    std::printf("round %d: %d/%d steps trained once, resumed weights differ by %g; %.1f minutes so far\n", rounds,
                check.steps_once, kSteps, difference, elapsed_minutes());
  }
  std::printf("soak: %d rounds, %d faults, %d failed rounds, %d rollout accounting errors, %d resume mismatches\n",
              rounds, faults, failed_rounds, accounting_errors, resume_mismatches);
  std::printf("BENCH soak minutes=%.1f rounds=%d faults=%d steps=%d lost_steps=%d failed_rounds=%d "
              "accounting_errors=%d resume_mismatches=%d ratio=%.3f target=1.0\n",
              elapsed_minutes(), rounds, faults, steps, lost_steps, failed_rounds, accounting_errors, resume_mismatches,
              steps > 0 ? static_cast<double>(steps_once) / steps : 0.0);
  fs::remove_all(dir);
  return lost_steps == 0 && failed_rounds == 0 && accounting_errors == 0 && resume_mismatches == 0 ? 0 : 1;
}
