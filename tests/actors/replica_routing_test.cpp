// Routing over replicas: a lost replica is dropped and its request retried on another; the model
// fails with a clear message only when no replica is left.
#include "actors/model_actors.hpp"
#include "actors/model_state.hpp"
#include "runtime/runtime.hpp"

#include <caf/send.hpp>
#include <gtest/gtest.h>

using namespace chorus;

namespace {

// A policy actor's handle, and a handle whose actor has already stopped.
struct Replicas {
  ActorRef<> alive, lost;
};

Replicas make_replicas(Runtime& runtime) {
  actors::ModelActorSpec spec;
  spec.name = "judge/replica0";
  spec.kv_cache_len = 64;
  spec.max_batch_size = 4;
  Replicas replicas;
  replicas.alive = runtime.adopt(spec.name, actors::spawn_policy_actor(runtime.system(), spec));
  spec.name = "judge/replica1";
  auto doomed = actors::spawn_policy_actor(runtime.system(), spec);
  replicas.lost = runtime.adopt(spec.name, doomed);
  caf::anon_send_exit(doomed, caf::exit_reason::kill);
  return replicas;
}

std::shared_ptr<detail::InferenceState> state_of(std::vector<ActorRef<>> refs) {
  auto state = std::make_shared<detail::InferenceState>();
  state->name = "judge";
  for (auto& ref : refs) {
    auto replica = std::make_shared<detail::Replica>();
    replica->ref = std::move(ref);
    state->replicas.push_back(std::move(replica));
  }
  return state;
}

} // namespace

TEST(ReplicaRouting, ALostReplicaIsDroppedAndTheRequestRetriedOnAnother) {
  Runtime runtime;
  auto replicas = make_replicas(runtime);
  // The lost replica first: with nothing in flight anywhere, it is the one picked.
  auto state = state_of({replicas.lost, replicas.alive});
  auto model = detail::ModelAccess::inference(state, std::chrono::seconds(60));
  auto tokens = runtime.run(model.tokenize("abc"));
  EXPECT_EQ(tokens, (std::vector<std::int64_t>{'a', 'b', 'c'}));
  ASSERT_EQ(state->replicas.size(), 1u);
  EXPECT_EQ(state->replicas.front()->ref.name(), "judge/replica0");
}

TEST(ReplicaRouting, NoReplicaLeftIsAnErrorNamingTheModel) {
  Runtime runtime;
  auto replicas = make_replicas(runtime);
  auto model = detail::ModelAccess::inference(state_of({replicas.lost}), std::chrono::seconds(60));
  try {
    runtime.run(model.complete("abc"));
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("model 'judge': no replica left"), std::string::npos) << error.what();
  }
}

// With a replica being respawned (rejoining), a request waits for it: up to rejoin_wait, after
// which it fails naming the wait, and never past its own deadline, which ends it as a timeout.
TEST(ReplicaRouting, AWaitForARejoinEndsAtRejoinWaitOrAtTheRequestsDeadline) {
  Runtime runtime;
  auto replicas = make_replicas(runtime);
  auto state = state_of({replicas.lost});
  state->rejoining = 1; // as actors::rejoin counts itself while it runs: nothing comes back here
  state->rejoin_wait = std::chrono::milliseconds(300);
  auto start = std::chrono::steady_clock::now();
  try {
    runtime.run(detail::ModelAccess::inference(state, std::chrono::seconds(60)).complete("abc"));
    FAIL() << "no error";
  } catch (const TimeoutError& error) {
    FAIL() << "a timeout, not the end of the wait: " << error.what();
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("model 'judge': no replica left"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("none rejoined within 0.3 s"), std::string::npos) << error.what();
  }
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(300));
  EXPECT_EQ(state->current_losses().requests_retried, 1); // the request on the lost replica

  state->rejoin_wait = std::chrono::seconds(60);
  start = std::chrono::steady_clock::now();
  EXPECT_THROW(runtime.run(detail::ModelAccess::inference(state, std::chrono::milliseconds(300)).complete("abc")),
               TimeoutError);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  EXPECT_GT(state->current_losses().rejoin_wait_s, 0.5); // the pool has stood empty since the loss
}
