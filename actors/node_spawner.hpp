// The actor a chorus-node publishes: it checks the cluster secret and spawns model actors on the
// node for a recipe in another process. What it spawned for a recipe stops when that recipe's
// process goes away, so a node outlives many runs without collecting their actors.
#pragma once

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include <functional>
#include <string>

namespace chorus::actors {

/// Spawns the host of the registered environment named; throws for a name not registered.
using EnvironmentSpawner = std::function<caf::actor(caf::actor_system& system, const std::string& environment)>;

/// `track` receives every actor spawned, so that the node stops them when it shuts down;
/// `environments` hosts environments (null: this node hosts none).
caf::actor spawn_node_spawner(caf::actor_system& system, std::string node_name, std::string secret,
                              std::function<void(caf::actor)> track, EnvironmentSpawner environments = nullptr);

} // namespace chorus::actors
