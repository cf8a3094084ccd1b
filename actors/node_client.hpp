// The recipe's side of a cluster: joining chorus-node processes (connect, secret), spawning model
// actors on them, and bringing back a replica whose node returns. C++20 (coroutines), no LibTorch;
// used by the model handles on the recipe executor.
#pragma once

#include <chorus/context.hpp>

#include "actors/cluster_messages.hpp"
#include "actors/messages.hpp"
#include "actors/model_state.hpp"

#include <memory>
#include <string>

namespace chorus::actors {

/// Waits until `ref`'s actor has loaded its model; a load failure becomes an ActorError naming it.
Task<ModelInfo> wait_loaded(ActorRef<> ref);

/// The spawner of cluster node `node`, joined (connected, secret checked) on first use.
/// @throws ActorError naming the node if it cannot be reached or runs another version.
Task<caf::actor> join_node(RecipeContext& ctx, const std::string& node);

/// Spawns a model actor on cluster node `node` (SpawnModelActor says what each role is), joining the
/// node on first use; the request's secret is filled in here.
Task<SpawnedActor> spawn_on_node(RecipeContext& ctx, const std::string& node, SpawnModelActor request);

/// Tries every few seconds, while `pool` is in use, to respawn replica `name` on `node` (streaming
/// from `weights`) and add it back to the pool: a restarted chorus-node rejoins on its own.
Task<void> rejoin(RecipeContext* ctx, std::weak_ptr<detail::InferenceState> pool, std::string node, std::string name,
                  ModelActorSpec spec, caf::actor weights);

} // namespace chorus::actors
