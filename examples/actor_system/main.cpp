// The smallest tour of the chorus runtime: one recipe coroutine drives a stand-in policy, judge and
// trainer (each an actor on its own thread) so that generation, grading and training overlap, then
// prints a timeline of when each actor was busy.
//
//   rollouts:  for each prompt, at most `concurrency` at once: generate -> grade -> channel
//   training:  take `batch_size` graded samples from the channel -> one train step
#include <chorus/chorus.hpp>

#include "actors.hpp"
#include "runtime/runtime.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>

using namespace chorus;

struct TourConfig {
  int prompts = 32;
  int batch_size = 4;
  int concurrency = 4;
  int generate_ms = 20;
  int grade_ms = 8;
  int train_ms = 30;
};
CHORUS_CONFIG(TourConfig, prompts, batch_size, concurrency, generate_ms, grade_ms, train_ms)

namespace {

struct GradedSample {
  double score = 0;
  int policy_version = 0;
};

// When each actor was busy, for the timeline.
struct Timeline {
  std::vector<std::pair<std::string, tour::Busy>> spans;

  double busy_seconds(const std::string& actor) const {
    double total = 0;
    for (const auto& [name, busy] : spans)
      if (name == actor)
        total += busy.end_s - busy.start_s;
    return total;
  }

  double overlap_seconds(const std::string& a, const std::string& b) const {
    double total = 0;
    for (const auto& [name_a, x] : spans)
      for (const auto& [name_b, y] : spans)
        if (name_a == a && name_b == b)
          total += std::max(0.0, std::min(x.end_s, y.end_s) - std::max(x.start_s, y.start_s));
    return total;
  }

  std::string chart(double wall_s, int width = 64) const {
    std::string out;
    for (const std::string actor : {"policy", "judge", "trainer"}) {
      std::string row(static_cast<std::size_t>(width), ' ');
      for (const auto& [name, busy] : spans) {
        if (name != actor)
          continue;
        auto from = static_cast<int>(busy.start_s / wall_s * width);
        auto to = std::max(from + 1, static_cast<int>(busy.end_s / wall_s * width));
        for (int i = from; i < std::min(to, width); ++i)
          row[static_cast<std::size_t>(i)] = '#';
      }
      out += "  " + actor + std::string(8 - actor.size(), ' ') + "|" + row + "|\n";
    }
    return out;
  }
};

} // namespace

Task<void> actor_system_tour(TourConfig config, RecipeContext& ctx) {
  auto epoch = tour::Clock::now();
  auto version = std::make_shared<std::atomic<int>>(0);
  auto& runtime = ctx.runtime();
  auto policy = runtime.spawn_detached("policy", tour::policy_actor, epoch, config.generate_ms, version);
  auto judge = runtime.spawn_detached("judge", tour::judge_actor, epoch, config.grade_ms);
  auto trainer = runtime.spawn_detached("trainer", tour::trainer_actor, epoch, config.train_ms, version);

  std::vector<std::string> prompts;
  for (int i = 0; i < config.prompts; ++i)
    prompts.push_back("prompt " + std::to_string(i));

  Timeline timeline;
  Channel<GradedSample> graded(static_cast<std::size_t>(config.batch_size) * 2);
  auto logger = ctx.logger();
  int total_steps = (config.prompts + config.batch_size - 1) / config.batch_size;
  logger.begin_stage("train", total_steps);

  auto rollouts = [&]() -> Task<void> {
    auto one_prompt = [&](const std::string& prompt) -> Task<void> {
      tour::GenerateRequest generate{prompt};
      auto generated = co_await policy.ask(generate);
      timeline.spans.emplace_back("policy", generated.busy);
      tour::GradeRequest grade{prompt, generated.completion};
      auto grading = co_await judge.ask(grade);
      timeline.spans.emplace_back("judge", grading.busy);
      co_await graded.send(GradedSample{grading.score, generated.policy_version});
    };
    co_await for_each_concurrent(prompts, static_cast<std::size_t>(config.concurrency), one_prompt);
    graded.close();
  };

  auto training = [&]() -> Task<void> {
    int step = 0;
    tour::TrainRequest batch;
    int oldest_version = 0;
    while (true) {
      auto sample = co_await graded.receive();
      if (sample) {
        if (batch.scores.empty())
          oldest_version = sample->policy_version;
        batch.scores.push_back(sample->score);
      }
      bool full = static_cast<int>(batch.scores.size()) == config.batch_size;
      if (full || (!sample && !batch.scores.empty())) {
        auto trained = co_await trainer.ask(batch);
        timeline.spans.emplace_back("trainer", trained.busy);
        logger.log("train", ++step,
                   {{"loss", trained.loss},
                    {"policy_version", trained.policy_version},
                    {"staleness", trained.policy_version - 1 - oldest_version}});
        batch.scores.clear();
      }
      if (!sample)
        break;
    }
  };

  co_await gather(rollouts(), training());

  double wall = std::chrono::duration<double>(tour::Clock::now() - epoch).count();
  double busy = timeline.busy_seconds("policy") + timeline.busy_seconds("judge") + timeline.busy_seconds("trainer");
  std::printf("\nWhen each actor was busy (%.2f s across):\n%s\n", wall, timeline.chart(wall).c_str());
  std::printf("policy %.2f s, judge %.2f s, trainer %.2f s busy: %.2f s of work in %.2f s of wall time "
              "(%.1fx from overlap)\n",
              timeline.busy_seconds("policy"), timeline.busy_seconds("judge"), timeline.busy_seconds("trainer"), busy,
              wall, busy / wall);
  std::printf("generation and training overlapped for %.2f s; grading and training for %.2f s\n",
              timeline.overlap_seconds("policy", "trainer"), timeline.overlap_seconds("judge", "trainer"));
}

CHORUS_RECIPE_MAIN(actor_system_tour)
