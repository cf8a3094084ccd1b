// The recipe's side of a cluster: joining chorus-node processes (connect, secret), spawning model
// actors on them, and bringing back a replica whose node returns. C++20 (coroutines), no LibTorch;
// used by the model handles on the recipe executor.
#pragma once

#include <chorus/context.hpp>

#include "actors/cluster_messages.hpp"
#include "actors/messages.hpp"
#include "actors/model_state.hpp"

#include <functional>
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

/// Tries every few seconds, while `pool` is in use, to respawn actor `name` on `node` as `request`
/// says (a replica streaming from its weight server, or an inference model) and add it back to the
/// pool: a restarted chorus-node rejoins on its own. The pool counts it as rejoining meanwhile, so
/// its requests wait for it (InferenceState::acquire).
Task<void> rejoin(RecipeContext* ctx, std::weak_ptr<detail::InferenceState> pool, std::string node, std::string name,
                  SpawnModelActor request);

/// Makes `pool` respawn each actor it loses on a node once the node is back (rejoin), as `request`
/// (role, spec, weight server) says with the lost actor's name; its requests wait up to
/// `rejoin_wait_s` for one when none is left (InferenceState::rejoin_wait).
void rejoin_lost(RecipeContext* ctx, const std::shared_ptr<detail::InferenceState>& pool, SpawnModelActor request,
                 double rejoin_wait_s);

/// Every 2 s, while `wanted()` holds and the recipe is not stopping, forgets `node`'s old connection
/// and runs `attempt` (which joins the node again) until one attempt returns; an attempt that throws
/// is tried again: the node is still down. What rejoins lost replicas and environment hosts.
Task<void> retry_on_node(RecipeContext& ctx, std::string node, std::function<bool()> wanted,
                         std::function<Task<void>()> attempt);

} // namespace chorus::actors
