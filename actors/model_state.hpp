// The state behind the recipe-facing model handles: replicas with their requests in flight, routing,
// and dropping lost replicas. C++20, no LibTorch; used on the recipe executor only (no locks).
#pragma once

#include <chorus/model.hpp>

#include "runtime/actor_ref.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
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
  std::string name;
  std::vector<std::shared_ptr<Replica>> replicas;
  // Called with each replica dropped from the pool (a replica on another node tries to rejoin).
  std::function<void(const std::shared_ptr<Replica>&)> on_lost;
  std::string last_loss; // why the last replica dropped was lost, for the error once none is left
  // The newest weight version its trainer reported: generation waits for at least this one.
  std::int64_t min_weight_version = 0;

  // The replica with the fewest requests in flight. @throws Error when none is left.
  std::shared_ptr<Replica> pick() const {
    if (replicas.empty())
      throw Error("model '" + name + "': no replica left to serve requests (every one was lost"
                  + (last_loss.empty() ? std::string(")") : "; the last: " + last_loss + ")"));
    return *std::min_element(replicas.begin(), replicas.end(),
                             [](const auto& a, const auto& b) { return a->in_flight < b->in_flight; });
  }

  void drop(const std::shared_ptr<Replica>& replica, const std::string& why) {
    auto found = std::find(replicas.begin(), replicas.end(), replica);
    if (found == replicas.end())
      return; // another coroutine dropped it first
    replicas.erase(found);
    last_loss = why; // names the replica in words (runtime/ask_words.hpp)
    spdlog::warn("model '{}': replica '{}' lost ({}); {} left", name, replica->ref.name(), why, replicas.size());
    if (on_lost)
      on_lost(replica);
  }

  // Asks a replica; a lost replica is dropped and the request retried on another. If the asker stops
  // waiting (timeout, cancellation), `abandoned` is told which replica holds the request.
  template <class Request>
  Task<reply_t<Request>> ask(Request request, std::chrono::milliseconds timeout,
                             std::function<void(const ActorRef<>&)> abandoned = {}) {
    for (;;) {
      auto replica = pick();
      ++replica->in_flight;
      try {
        auto copy = request;
        auto reply = co_await replica->ref.ask(std::move(copy), timeout);
        --replica->in_flight;
        co_return reply;
      } catch (const ActorDownError& lost) {
        --replica->in_flight;
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
