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
