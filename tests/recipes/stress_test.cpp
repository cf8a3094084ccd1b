// A randomized stress test of the recipe machinery: the rollout pipeline of the RL algorithms, the
// coroutine <-> actor bridge, gather, channels and deadlines, driven by stand-in generator and
// grader actors that reply after random delays, fail at random, never answer, or die at random
// points (a supervisor in the rollout replaces a dead one). Each seed draws its own run shape
// (steps, groups, group size, staleness, deadline, retries) and its own faults, so a failure names the
// seed that reproduces it.
//
// Every run must end, within a bound, either cleanly or with one of the pipeline's named errors;
// every rollout started must be accounted for (trained, dropped as stale, counted as failed or
// timed out, or in a group too small to train); no rollout is trained twice; no rollout coroutine
// outlives the run. Under the sanitizer build, LeakSanitizer checks that nothing leaked.
#include <chorus/deadline.hpp>
#include <chorus/errors.hpp>
#include <chorus/gather.hpp>

#include "recipes/rollout_pipeline.hpp"
#include "runtime/actor_host.hpp"
#include "runtime/runtime.hpp"

#include <asio/steady_timer.hpp>
#include <caf/all.hpp>
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

namespace chorus::test {

/// A stand-in actor's job: what it does is drawn from `seed`.
struct StandInRequest {
  using Reply = std::int64_t;
  std::uint64_t seed = 0;
};

/// A stand-in actor's message to itself: answer now.
struct StandInAnswer {
  std::uint64_t key = 0;
};

CHORUS_INSPECT(StandInRequest, seed)
CHORUS_INSPECT(StandInAnswer, key)

} // namespace chorus::test

CAF_BEGIN_TYPE_ID_BLOCK(chorus_stress_test, caf::first_custom_type_id + 940)
  CAF_ADD_TYPE_ID(chorus_stress_test, (chorus::test::StandInRequest))
  CAF_ADD_TYPE_ID(chorus_stress_test, (chorus::test::StandInAnswer))
CAF_END_TYPE_ID_BLOCK(chorus_stress_test)

namespace chorus::test {

using namespace std::chrono_literals;

namespace {

struct StandInState {
  std::map<std::uint64_t, caf::typed_response_promise<std::int64_t>> pending;
  std::uint64_t next_key = 0;
};

// What a stand-in does with a request, in percent of requests, and how long it takes.
constexpr int kDiesPercent = 2;         // the actor dies with its requests pending
constexpr int kNeverAnswersPercent = 2; // dropped unanswered: the asker's timeout ends it
constexpr int kFailsPercent = 4;        // an error reply
constexpr auto kSlowestReply = std::chrono::microseconds(4000);
constexpr auto kAskTimeout = 100ms; // well above kSlowestReply: only unanswered requests time out
constexpr auto kSlowestStep = std::chrono::microseconds(3000); // a training step's pause
constexpr auto kHang = 30s;                                    // a run that has not ended by then hangs
constexpr int kPrompts = 5;
constexpr int kSeedsPerCase = 25; // the cases run in parallel under ctest
constexpr int kCases = 4;

// Replies after up to kSlowestReply with a value drawn from the request's seed, or dies, drops the
// request or fails it, as often as the constants above say.
caf::behavior stand_in(StatefulActor<StandInState>* self) {
  return {
    [self](const StandInRequest& request) -> caf::result<std::int64_t> {
      std::mt19937_64 random(request.seed);
      auto roll = std::uniform_int_distribution<int>(0, 99)(random);
      if (roll < kDiesPercent) {
        self->quit(caf::exit_reason::user_shutdown);
        return caf::delegated<std::int64_t>{};
      }
      if (roll < kDiesPercent + kNeverAnswersPercent) {
        self->make_response_promise<std::int64_t>(); // dropped unanswered
        return caf::delegated<std::int64_t>{};
      }
      if (roll < kDiesPercent + kNeverAnswersPercent + kFailsPercent)
        return caf::make_error(caf::sec::runtime_error, "stand-in failure");
      auto key = self->state.next_key++;
      self->state.pending.emplace(key, self->make_response_promise<std::int64_t>());
      auto delay = std::chrono::microseconds(
        std::uniform_int_distribution<int>(0, static_cast<int>(kSlowestReply.count()))(random));
      self->delayed_send(self, delay, StandInAnswer{key});
      return caf::delegated<std::int64_t>{};
    },
    [self](const StandInAnswer& answer) {
      auto found = self->state.pending.find(answer.key);
      found->second.deliver(static_cast<std::int64_t>(answer.key % 2));
      self->state.pending.erase(found);
    },
  };
}

// A pool of stand-ins; one that died is replaced by a fresh one, as a supervisor would.
class Pool {
public:
  Pool(Runtime& runtime, std::string name) : runtime_(runtime), name_(std::move(name)) {
    for (auto& slot : slots_)
      slot = spawn();
  }

  Task<std::int64_t> ask(std::uint64_t seed, std::size_t index) {
    auto& slot = slots_[index % slots_.size()];
    auto actor = slot;
    try {
      co_return co_await actor.ask(StandInRequest{seed}, kAskTimeout);
    } catch (const ActorDownError&) {
      if (slot.name() == actor.name())
        slot = spawn();
      throw;
    }
  }

private:
  ActorRef<> spawn() {
    return runtime_.spawn(name_ + "-" + std::to_string(spawned_++), stand_in);
  }

  Runtime& runtime_;
  std::string name_;
  std::array<ActorRef<>, 3> slots_;
  int spawned_ = 0;
};

struct RunShape {
  int steps;
  std::size_t groups;
  std::size_t group_size;
  int staleness;
  double timeout_s;
  int retries;
};

RunShape shape_of(std::uint64_t seed) {
  std::mt19937_64 random(seed);
  auto pick = [&](int low, int high) { return std::uniform_int_distribution<int>(low, high)(random); };
  static const double timeouts[] = {0.0, 0.02, 0.25};
  return {pick(1, 4),
          static_cast<std::size_t>(pick(1, 4)),
          static_cast<std::size_t>(pick(1, 4)),
          pick(0, 2),
          timeouts[pick(0, 2)],
          pick(0, 2)};
}

std::string describe(std::uint64_t seed, const RunShape& s) {
  return "seed " + std::to_string(seed) + ": " + std::to_string(s.steps) + " steps of " + std::to_string(s.groups)
    + " groups of " + std::to_string(s.group_size) + ", staleness " + std::to_string(s.staleness) + ", timeout "
    + std::to_string(s.timeout_s) + " s, retries " + std::to_string(s.retries);
}

// One run: produces and trains `shape`'s steps with the stand-ins; checks the accounting.
void stress_run(std::uint64_t seed) {
  auto shape = shape_of(seed);
  SCOPED_TRACE(describe(seed, shape));
  Runtime runtime({.configure = [](caf::actor_system_config& config) {
    config.add_message_types<caf::id_block::chorus_stress_test>();
  }});
  Pool generators(runtime, "generator"), graders(runtime, "grader");
  int live_rollouts = 0, succeeded = 0;
  std::int64_t next_id = 0, version = 0;
  std::set<std::int64_t> trained_ids;
  std::uint64_t draws = seed * 7919;

  detail::PipelineOptions options;
  options.algorithm = "stress";
  for (int i = 0; i < kPrompts; ++i)
    options.dataset.push_back({{{"user", "prompt " + std::to_string(i)}}, Json::object()});
  options.steps = shape.steps;
  options.groups_per_step = shape.groups;
  options.group_size = shape.group_size;
  options.max_staleness = shape.staleness;
  options.group_timeout_s = shape.timeout_s;
  options.max_rollout_retries = shape.retries;
  options.seed = seed;
  options.rollout = [&](Prompt, SamplingParams, detail::StageClock&) -> Task<detail::Rollout> {
    ++live_rollouts;
    struct Leave {
      int& live;
      ~Leave() {
        --live;
      }
    } leave{live_rollouts};
    auto id = next_id++;
    auto generated_by = version;
    auto tokens = co_await generators.ask(++draws, static_cast<std::size_t>(id));
    auto score = co_await graders.ask(++draws, static_cast<std::size_t>(id));
    detail::Rollout rollout;
    rollout.tokens = {id, tokens};
    rollout.generated = 2;
    rollout.weight_version = generated_by;
    rollout.grade.score = static_cast<double>(score);
    ++succeeded;
    co_return rollout;
  };

  detail::RolloutPipeline pipeline(options, {0});
  int unfinished = 0, dropped_groups = 0, trained = 0, stale = 0;
  std::mt19937_64 pauses(seed);
  auto train = [&]() -> Task<void> {
    for (int step = 1; step <= shape.steps; ++step) {
      auto rollouts = co_await pipeline.next_step(step);
      unfinished += rollouts.failed + rollouts.timed_out;
      dropped_groups += rollouts.groups_dropped;
      stale += rollouts.stale_dropped;
      for (const auto& group : rollouts.groups) {
        for (const auto& member : group.members) {
          EXPECT_TRUE(trained_ids.insert(member.tokens[0]).second)
            << "rollout " << member.tokens[0] << " trained twice";
          EXPECT_LE(step - 1 - member.weight_version, shape.staleness) << "trained beyond max_staleness";
          ++trained;
        }
      }
      asio::steady_timer pause(co_await asio::this_coro::executor,
                               std::chrono::microseconds(std::uniform_int_distribution<int>(
                                 0, static_cast<int>(kSlowestStep.count()))(pauses)));
      co_await pause.async_wait(asio::use_awaitable);
      pipeline.step_trained(step, ++version);
    }
  };

  std::string error;
  try {
    runtime.run(with_deadline(gather(pipeline.produce(), train()), kHang, "stress run"));
  } catch (const DeadlineError& hang) {
    ADD_FAILURE() << "the run hung: " << hang.what();
    error = hang.what();
  } catch (const Error& named) {
    error = named.what();
    // The pipeline's named ends: a step with nothing to train on.
    EXPECT_NE(error.find("stress: every rollout of step"), std::string::npos) << error;
  }
  runtime.shutdown();
  EXPECT_EQ(live_rollouts, 0) << "a rollout coroutine outlived its run";
  if (!error.empty())
    return;
  // Every rollout started is accounted for exactly once.
  auto started = shape.steps * static_cast<int>(shape.groups * shape.group_size);
  EXPECT_EQ(started, succeeded + unfinished) << "rollouts started but neither finished, failed nor timed out";
  // Only a group of an earlier step that arrives after a later step's groups can be too old.
  if (shape.staleness == 0)
    EXPECT_EQ(stale, 0);
  auto in_small_groups = succeeded - trained - stale;
  EXPECT_GE(in_small_groups, 0);
  EXPECT_LE(in_small_groups, dropped_groups) << "finished rollouts neither trained nor in a dropped group";
}

class Stress : public ::testing::TestWithParam<int> {};

TEST_P(Stress, EveryRunEndsAndEveryRolloutIsAccountedFor) {
  for (int i = 0; i < kSeedsPerCase; ++i)
    stress_run(static_cast<std::uint64_t>(GetParam() * kSeedsPerCase + i + 1));
}

INSTANTIATE_TEST_SUITE_P(Seeds, Stress, ::testing::Range(0, kCases));

} // namespace

} // namespace chorus::test
