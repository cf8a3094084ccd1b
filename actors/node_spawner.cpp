#include "actors/node_spawner.hpp"

#include "actors/cluster_messages.hpp"
#include "actors/model_actors.hpp"
#include "runtime/actor_host.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <spdlog/spdlog.h>

#include <map>
#include <stdexcept>
#include <thread>

namespace chorus::actors {

namespace {

struct SpawnerState {
  std::string node;
  std::string secret;
  std::function<void(caf::actor)> track;
  EnvironmentSpawner environments;
  std::map<caf::actor_addr, std::vector<caf::actor>> by_client; // what each recipe process asked for
  static inline const char* name = "chorus.node_spawner";
};

using SpawnerActor = StatefulActor<SpawnerState>;

void check_secret(const SpawnerState& state, const std::string& secret) {
  if (secret != state.secret)
    throw std::invalid_argument("node '" + state.node
                                + "' refused the request: the cluster secret does not match this node's");
}

// Tracks `actor` as spawned for the recipe process that sent the current request: it stops when that
// process goes away.
void adopt(SpawnerActor* self, const caf::actor& actor) {
  auto& state = self->state;
  state.track(actor);
  auto client = caf::actor_cast<caf::actor>(self->current_sender());
  if (!client)
    return;
  if (!state.by_client.count(client.address()))
    self->monitor(client);
  state.by_client[client.address()].push_back(actor);
}

caf::behavior node_spawner(SpawnerActor* self, std::string node_name, std::string secret,
                           std::function<void(caf::actor)> track, EnvironmentSpawner environments) {
  auto& state = self->state;
  state.node = std::move(node_name);
  state.secret = std::move(secret);
  state.track = std::move(track);
  state.environments = std::move(environments);
  self->set_down_handler([self](const caf::down_msg& down) {
    auto found = self->state.by_client.find(down.source);
    if (found == self->state.by_client.end())
      return;
    spdlog::info("node '{}': a recipe went away; stopping the {} actor(s) it spawned here", self->state.node,
                 found->second.size());
    for (const auto& actor : found->second)
      self->send_exit(actor, caf::exit_reason::user_shutdown);
    self->state.by_client.erase(found);
  });
  return {
    guarded([self](const NodeHello& hello) {
      check_secret(self->state, hello.secret);
      return NodeWelcome{self->state.node, static_cast<std::int32_t>(std::thread::hardware_concurrency())};
    }),
    guarded([self](SpawnModelActor& request) {
      auto& state = self->state;
      check_secret(state, request.secret);
      auto name = request.spec.name;
      caf::actor actor, weights;
      if (request.role == "trainer" && request.data_parallel.rank == 0) {
        auto spawned = spawn_training_actors(self->system(), request.spec, request.spec, 0, request.keep_reference,
                                             request.data_parallel, request.weights_host);
        actor = spawned.trainer;
        weights = spawned.weight_server;
        state.track(weights);
      } else if (request.role == "inference")
        actor = spawn_policy_actor(self->system(), std::move(request.spec));
      else if (request.role == "scoring")
        actor = spawn_scoring_actor(self->system(), std::move(request.spec));
      else if (request.role == "replica" && request.weights)
        actor = spawn_remote_replica(self->system(), std::move(request.spec), request.weights);
      else if (request.role == "trainer")
        actor =
          spawn_trainer_rank(self->system(), std::move(request.spec), request.keep_reference, request.data_parallel);
      else
        throw std::invalid_argument("node '" + state.node + "': cannot spawn a model actor of role '" + request.role
                                    + "' (expected inference, scoring, replica with a weight server, or trainer)");
      adopt(self, actor);
      if (weights)
        adopt(self, weights);
      spdlog::info("node '{}': spawned '{}'", state.node, name);
      return SpawnedActor{actor, weights};
    }),
    guarded([self](const SpawnEnvironmentHost& request) {
      auto& state = self->state;
      check_secret(state, request.secret);
      if (!state.environments)
        throw std::invalid_argument("node '" + state.node
                                    + "' hosts no environments: run a node program that registers "
                                      "them (chorus::node_main, include/chorus/node.hpp) instead of chorus-node");
      caf::actor host;
      try {
        host = state.environments(self->system(), request.environment);
      } catch (const std::exception& error) {
        throw std::invalid_argument("node '" + state.node + "': " + error.what());
      }
      adopt(self, host);
      spdlog::info("node '{}': hosting environment '{}'", state.node, request.environment);
      return SpawnedActor{host, {}};
    }),
  };
}

} // namespace

caf::actor spawn_node_spawner(caf::actor_system& system, std::string node_name, std::string secret,
                              std::function<void(caf::actor)> track, EnvironmentSpawner environments) {
  return system.spawn(node_spawner, std::move(node_name), std::move(secret), std::move(track), std::move(environments));
}

} // namespace chorus::actors
