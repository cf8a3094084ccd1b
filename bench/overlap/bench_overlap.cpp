// bench_overlap: the same GSPO workload on the built-in tiny model (fixed steps, batch, group size and
// lengths; an LLM judge on its own actor) run synchronously (max_staleness 0) and asynchronously
// (max_staleness 1) in one run. Each actor has one thread, as if each had its own device: the
// synchronous loop leaves the policy idle while the trainer steps and the other way round; the
// asynchronous one overlaps them. The ideal bound is the busiest stage's time in the synchronous run
// (generation, grading or training alone): no schedule can beat it.
//
//   BENCH overlap        sync and async wall seconds; ratio = sync / async (target 1.6)
//   BENCH overlap_ideal  async against the ideal bound; ratio = ideal / async (target 0.87: within 15%)
#include <chorus/chorus.hpp>

#include "runtime/runtime.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>

using namespace chorus;
using Clock = std::chrono::steady_clock;

namespace {

// Long prompts (a document to answer about) and short answers. The judge, which reads the document
// and the answer for every completion, is the busiest stage; generation and training together take
// about as long (the trainer scores each group's shared document once: models/packing.hpp). The
// first step's generation and grading have nothing to overlap with: 32 steps keep that small beside
// the run. Micro-batches of 4 keep the trainer's activations small, so that it and the judge do not
// slow each other down much through the shared memory bandwidth.
constexpr int kSteps = 32;
constexpr int kGroupSize = 4;
constexpr int kPromptsPerStep = 4;
constexpr std::int64_t kCompletionTokens = 16;
constexpr std::int64_t kJudgeTokens = 2;
constexpr std::size_t kDocumentChars = 420;

std::vector<Prompt> make_prompts() {
  std::vector<Prompt> prompts;
  for (int i = 0; i < 16; ++i) {
    std::string document;
    for (int sentence = 0; document.size() < kDocumentChars; ++sentence)
      document +=
        "Record " + std::to_string(i * 100 + sentence) + " notes a value of " + std::to_string(sentence * 7 + i) + ". ";
    document.resize(kDocumentChars);
    prompts.push_back({{{"user", document + "\nSummarise the records in one line."}}, Json::object()});
  }
  return prompts;
}

struct RunTimes {
  double wall = 0;
  std::array<double, 3> busy{}; // generate, grade, train
  double overlap = 0;
};

RunTimes read_times(const std::filesystem::path& metrics, double wall) {
  RunTimes times;
  times.wall = wall;
  std::ifstream in(metrics);
  for (std::string line; std::getline(in, line);) {
    auto json = nlohmann::json::parse(line);
    times.busy[0] += json["busy_s/generate"].get<double>();
    times.busy[1] += json["busy_s/grade"].get<double>();
    times.busy[2] += json["busy_s/train"].get<double>();
    times.overlap += json["overlap"].get<double>() * json["step_s"].get<double>();
  }
  return times;
}

Task<RunTimes> run_gspo(RecipeContext& ctx, int steps, int max_staleness, const std::filesystem::path& metrics) {
  std::filesystem::remove(metrics);
  auto builder = co_await ModelRef{"builtin:tiny"}.to_builder(ctx, {.kv_cache_len = 1024, .threads = 1, .seed = 3});
  auto name = metrics.stem().string();
  auto model =
    co_await builder.spawn_train(name, {.max_batch_size = kPromptsPerStep * kGroupSize * 2, .keep_reference = false});
  auto judge_builder =
    co_await ModelRef{"builtin:tiny"}.to_builder(ctx, {.kv_cache_len = 1024, .threads = 1, .seed = 4});
  auto judge =
    co_await judge_builder.spawn_inference("judge_" + name, {.max_batch_size = kPromptsPerStep * kGroupSize});
  auto grader = BinaryJudgeGrader({.grader_key = "judge",
                                   .criteria = "Is the line about the number?",
                                   .model = judge,
                                   .sampling = {.temperature = 0.0, .max_tokens = kJudgeTokens},
                                   .cache = false});
  co_await model.complete("warm-up", {.max_tokens = 4});
  auto start = Clock::now();
  co_await GSPO({.dataset = make_prompts(),
                 .model = model,
                 .grader = grader,
                 .logger = MetricsLogger({.jsonl = metrics}),
                 .lr = 1e-4,
                 .samples_per_batch = kPromptsPerStep * kGroupSize,
                 .samples_per_mini_batch = kPromptsPerStep * kGroupSize,
                 .micro_batch_size = 4,
                 .completions_per_sample = kGroupSize,
                 .max_num_gspo_steps = steps,
                 .max_staleness = max_staleness,
                 .sampling = {.temperature = 1.0, .max_tokens = kCompletionTokens},
                 .seed = 1})
    .run();
  co_return read_times(metrics, std::chrono::duration<double>(Clock::now() - start).count());
}

void describe(const char* name, const RunTimes& t) {
  std::printf(
    "%-6s wall %6.2f s   busy: generate %6.2f s, grade %6.2f s, train %6.2f s   two or more at once %6.2f s\n", name,
    t.wall, t.busy[0], t.busy[1], t.busy[2], t.overlap);
}

Task<void> bench(RecipeContext& ctx) {
  auto dir = ctx.output_dir();
  // One untimed step first: the process's heap grows to its working size here, not in the first run.
  co_await run_gspo(ctx, 1, 0, dir / "warmup.jsonl");
  auto sync = co_await run_gspo(ctx, kSteps, 0, dir / "sync.jsonl");
  auto async = co_await run_gspo(ctx, kSteps, 1, dir / "async.jsonl");
  std::printf("GSPO on builtin:tiny: %d steps of %d prompts (%zu-character documents) x %d completions of %lld "
              "tokens, judge on its own actor\n",
              kSteps, kPromptsPerStep, kDocumentChars, kGroupSize, static_cast<long long>(kCompletionTokens));
  describe("sync", sync);
  describe("async", async);
  double ideal = std::max({sync.busy[0], sync.busy[1], sync.busy[2]});
  std::printf("ideal bound (the busiest stage alone, from the synchronous run): %.2f s\n", ideal);
  std::printf("BENCH overlap sync_s=%.2f async_s=%.2f ideal_s=%.2f ratio=%.2f target=1.6\n", sync.wall, async.wall,
              ideal, sync.wall / async.wall);
  std::printf("BENCH overlap_ideal async_s=%.2f ideal_s=%.2f ratio=%.2f target=0.87\n", async.wall, ideal,
              ideal / async.wall);
}

} // namespace

int main() {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  spdlog::set_level(spdlog::level::warn);
  Runtime runtime;
  auto output = std::filesystem::temp_directory_path() / "chorus_bench_overlap";
  std::filesystem::create_directories(output);
  RecipeContext ctx(runtime, "bench_overlap", output, MetricsLogger(), spdlog::default_logger());
  runtime.run(bench(ctx));
  return 0;
}
