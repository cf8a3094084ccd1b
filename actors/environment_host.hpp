// The node side of environments placed on a cluster node (actors/environments.cpp).
#pragma once

#include <chorus/environment.hpp>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include <string>

namespace chorus {

/// The factory registered as `name` (register_environment).
/// @throws ConfigError naming the registered ones if there is none.
EnvironmentFactory registered_environment(const std::string& name);

} // namespace chorus

namespace chorus::actors {

/// Spawns the host of registered environment `name`: its episodes' environments live there and its
/// resets and steps run on an executor thread of the host's own.
/// @throws ConfigError if no environment is registered as `name`.
caf::actor spawn_environment_host(caf::actor_system& system, const std::string& name);

} // namespace chorus::actors
