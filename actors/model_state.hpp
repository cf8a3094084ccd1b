// The state behind the recipe-facing model handles: replicas with their requests in flight, routing,
// and dropping lost replicas. C++20, no LibTorch; used on the recipe executor only (no locks).
#pragma once

#include <chorus/deadline.hpp>
#include <chorus/model.hpp>

#include "runtime/actor_ref.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace chorus {

namespace detail {

class RunCheckpoints;

struct ModelSpec {
  std::string reference;
  BuilderOptions options;
  std::string adapter; // a LoRA adapter folder loaded onto the model (ModelRef::adapter)
};

// One actor that serves generation, with the requests it has in flight.
struct Replica {
  ActorRef<> ref;
  int in_flight = 0;
  // The node it runs on ("": the recipe's process), for rejoining.
  std::string node;
};

struct InferenceState {
  using Clock = std::chrono::steady_clock;

  std::string name;
  // Its chat template is a thinking one (ModelInfo::thinks), and its generation prompt leaves the
  // <think> block open, by enable_thinking.
  bool thinks = false;
  std::array<bool, 2> opens_thinking{};
  ToolCallFormat tool_call_format = ToolCallFormat::tagged; // how its template writes calls

  std::vector<std::shared_ptr<Replica>> replicas;
  // Called with each replica dropped from the pool (a replica on another node tries to rejoin).
  std::function<void(const std::shared_ptr<Replica>&)> on_lost;
  std::string last_loss; // why the last replica dropped was lost, for the error once none is left
  std::string last_lost; // its name
  // The newest weight version its trainer reported: generation waits for at least this one.
  std::int64_t min_weight_version = 0;
  bool waiting_announced = false; // the warning that requests wait for a rejoin, once per empty pool
  // How long a request waits for a lost replica to rejoin when none is left (BuilderOptions::
  // rejoin_wait_s; zero: it fails at once), and the replicas being respawned on their nodes now.
  Clock::duration rejoin_wait{};
  int rejoining = 0;
  // What losses cost so far (ReplicaLosses): requests sent again after their replica was lost, and
  // the time the pool stood empty while a replica was awaited.
  ReplicaLosses losses;
  std::optional<Clock::time_point> empty_since;

  // The error once no replica is left; `more` says why none came back, if one was awaited.
  Error none_left(const std::string& more = "") const {
    return Error("model '" + name + "': no replica left to serve requests (every one was lost"
                 + (last_loss.empty() ? std::string() : "; the last: " + last_loss) + more + ")");
  }

  // The replica with the fewest requests in flight. @throws Error when none is left.
  std::shared_ptr<Replica> pick() const {
    if (replicas.empty())
      throw none_left();
    return *std::min_element(replicas.begin(), replicas.end(),
                             [](const auto& a, const auto& b) { return a->in_flight < b->in_flight; });
  }

  // As pick(), but when none is left and one is being respawned, waits for it up to rejoin_wait,
  // and never past the request's `deadline`. @throws Error when none is left after rejoin_wait,
  // TimeoutError (naming `request`) when the deadline ended the wait.
  Task<std::shared_ptr<Replica>> acquire(Clock::time_point deadline, const char* request) {
    if (replicas.empty() && rejoining > 0 && rejoin_wait > Clock::duration::zero()) {
      auto until = std::min(Clock::now() + rejoin_wait, deadline);
      if (!waiting_announced) {
        waiting_announced = true;
        spdlog::warn("model '{}': no replica left; requests wait up to {:.0f} s for '{}'{} to rejoin when its node is "
                     "back",
                     name, std::chrono::duration<double>(rejoin_wait).count(), last_lost,
                     rejoining > 1 ? " (or another lost one)" : "");
      }
      while (replicas.empty() && rejoining > 0 && Clock::now() < until)
        co_await sleep_for(std::chrono::milliseconds(100));
      if (replicas.empty() && rejoining > 0 && until == deadline)
        throw TimeoutError("model '" + name + "'", request,
                           "model '" + name + "': no replica came back before the request's deadline");
      if (replicas.empty())
        throw none_left(fmt::format("; none rejoined within {:g} s, BuilderOptions::rejoin_wait_s",
                                    std::chrono::duration<double>(rejoin_wait).count()));
    }
    co_return pick();
  }

  // ReplicaLosses so far, the time of a wait still under way included.
  ReplicaLosses current_losses() const {
    auto now = losses;
    if (empty_since)
      now.rejoin_wait_s += std::chrono::duration<double>(Clock::now() - *empty_since).count();
    return now;
  }

  void add(std::shared_ptr<Replica> replica) {
    replicas.push_back(std::move(replica));
    losses = current_losses(); // the wait, if there was one, is over
    empty_since.reset();
    waiting_announced = false;
  }

  void drop(const std::shared_ptr<Replica>& replica, const std::string& why) {
    auto found = std::find(replicas.begin(), replicas.end(), replica);
    if (found == replicas.end())
      return; // another coroutine dropped it first
    replicas.erase(found);
    last_loss = why; // names the replica in words (runtime/ask_words.hpp)
    last_lost = replica->ref.name();
    spdlog::warn("model '{}': replica '{}' lost ({}); {} left", name, replica->ref.name(), why, replicas.size());
    if (replicas.empty())
      empty_since = Clock::now();
    if (on_lost)
      on_lost(replica);
  }

  // Asks a replica; a lost replica is dropped and the request retried on another. If the asker stops
  // waiting (timeout, cancellation), `abandoned` is told which replica holds the request.
  template <class Request>
  Task<reply_t<Request>> ask(Request request, std::chrono::milliseconds timeout,
                             std::function<void(const ActorRef<>&)> abandoned = {}) {
    // One deadline for the whole request, however many replicas it goes through or waits for.
    auto deadline = Clock::now() + timeout;
    for (;;) {
      auto replica = co_await acquire(deadline, caf::type_name<Request>::value);
      ++replica->in_flight;
      try {
        auto copy = request;
        auto left = std::max(Clock::duration::zero(), deadline - Clock::now());
        auto reply = co_await replica->ref.ask(std::move(copy), left);
        --replica->in_flight;
        co_return reply;
      } catch (const ActorDownError& lost) {
        --replica->in_flight;
        ++losses.requests_retried;
        drop(replica, lost.what());
      } catch (const TimeoutError&) {
        --replica->in_flight;
        if (abandoned)
          abandoned(replica->ref);
        throw;
      } catch (const CancelledError&) {
        --replica->in_flight;
        if (abandoned)
          abandoned(replica->ref);
        throw;
      } catch (...) {
        --replica->in_flight;
        throw;
      }
    }
  }
};

struct TrainingState {
  std::string name;
  ActorRef<> trainer;
  std::shared_ptr<InferenceState> inference;
  std::int64_t weight_version = 0;
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};
  // The run's checkpoints (null: none kept), for the stages that train this model.
  std::shared_ptr<RunCheckpoints> checkpoints;
};

struct ModelAccess {
  static ModelBuilder builder(RecipeContext& ctx, std::shared_ptr<const ModelSpec> spec) {
    return ModelBuilder(ctx, std::move(spec));
  }
  static InferenceModel inference(std::shared_ptr<InferenceState> state, std::chrono::milliseconds timeout) {
    return InferenceModel(std::move(state), timeout);
  }
  static TrainingModel training(std::shared_ptr<TrainingState> state) {
    return TrainingModel(std::move(state));
  }
  static const std::shared_ptr<TrainingState>& state_of(const TrainingModel& model) {
    return model.state_;
  }
  // A scoring model is a trainer with no replicas: its state is a TrainingState with none.
  static ScoringModel scoring(std::shared_ptr<TrainingState> state) {
    return ScoringModel(std::move(state));
  }
  static const std::shared_ptr<TrainingState>& state_of(const ScoringModel& model) {
    return model.state_;
  }
};

} // namespace detail

} // namespace chorus
