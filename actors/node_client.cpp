#include "actors/node_client.hpp"

#include <chorus/deadline.hpp>

#include "runtime/runtime.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <caf/io/middleman.hpp>
#include <caf/send.hpp>

namespace chorus::actors {

Task<ModelInfo> wait_loaded(ActorRef<> ref) {
  // Loading a large folder can take a while; a hung load still ends.
  constexpr auto kLoadTimeout = std::chrono::minutes(30);
  auto info = co_await ref.ask(ModelInfoRequest{}, kLoadTimeout);
  co_return info;
}

Task<caf::actor> join_node(RecipeContext& ctx, const std::string& node) {
  auto& runtime = ctx.runtime();
  auto& joined = runtime.joined_nodes();
  if (auto found = joined.find(node); found != joined.end())
    co_return found->second;
  const auto& cluster = *runtime.cluster();
  const auto& address = cluster.node(node);
  // A blocking connect, once per node: refused at once on a closed port, bounded by TCP otherwise.
  auto spawner = runtime.system().middleman().remote_actor(address.host, address.port);
  if (!spawner
      && (spawner.error() == caf::sec::incompatible_application_ids
          || spawner.error() == caf::sec::incompatible_versions))
    throw ActorError("node '" + node + "'", "connect",
                     "node '" + node + "' (" + address.host + ":" + std::to_string(address.port)
                       + ") runs another version of chorus (its wire protocol differs): "
                         "run the same build on every node");
  if (!spawner)
    throw ActorError("node '" + node + "'", "connect",
                     "node '" + node + "' (" + address.host + ":" + std::to_string(address.port) + ", from "
                       + cluster.file.string() + ") cannot be reached: " + runtime.system().render(spawner.error()));
  // Not adopted: the runtime stops the actors it adopts at shutdown, and the node outlives this run.
  ActorRef<> ref(runtime.bridge(), *spawner, "node '" + node + "'");
  auto welcome = co_await ref.ask(NodeHello{cluster.secret}, std::chrono::seconds(30));
  if (welcome.name != node)
    throw ConfigError(cluster.file.string() + ": " + address.host + ":" + std::to_string(address.port) + " is node '"
                      + welcome.name + "', not '" + node + "'");
  ctx.log().info("joined node '{}' at {}:{} ({} cores)", node, address.host, address.port, welcome.cores);
  joined.emplace(node, *spawner);
  co_return *spawner;
}

Task<SpawnedActor> spawn_on_node(RecipeContext& ctx, const std::string& node, SpawnModelActor request) {
  auto spawner = co_await join_node(ctx, node);
  ActorRef<> ref(ctx.runtime().bridge(), spawner, "node '" + node + "'");
  request.secret = ctx.runtime().cluster()->secret;
  co_return co_await ref.ask(std::move(request), std::chrono::seconds(60));
}

Task<void> rejoin(RecipeContext* ctx, std::weak_ptr<detail::InferenceState> weak, std::string node, std::string name,
                  SpawnModelActor request) {
  constexpr auto kRetry = std::chrono::seconds(2);
  // Counted while it runs, however it ends.
  struct Rejoining {
    std::weak_ptr<detail::InferenceState> pool;
    explicit Rejoining(std::weak_ptr<detail::InferenceState> weak) : pool(std::move(weak)) {
      if (auto state = pool.lock())
        ++state->rejoining;
    }
    ~Rejoining() {
      if (auto state = pool.lock())
        --state->rejoining;
    }
  } rejoining(weak);
  request.spec.name = name.substr(0, name.rfind('@'));
  for (;;) {
    co_await sleep_for(kRetry);
    if (weak.expired() || ctx->stop_requested())
      co_return;
    try {
      ctx->runtime().joined_nodes().erase(node); // the old connection died with the node
      auto handle = (co_await spawn_on_node(*ctx, node, request)).actor;
      auto ref = ctx->runtime().adopt(name, handle);
      co_await wait_loaded(ref);
      auto state = weak.lock();
      if (!state) {
        caf::anon_send_exit(handle, caf::exit_reason::user_shutdown);
        co_return;
      }
      auto replica = std::make_shared<detail::Replica>();
      replica->ref = ref;
      replica->node = node;
      state->add(replica);
      ctx->log().info("model '{}': '{}' rejoined; {} serving", state->name, name, state->replicas.size());
      co_return;
    } catch (const std::exception&) {
      // still down: try again
    }
  }
}

void rejoin_lost(RecipeContext* ctx, const std::shared_ptr<detail::InferenceState>& pool, SpawnModelActor request) {
  std::weak_ptr<detail::InferenceState> weak = pool;
  pool->on_lost = [ctx, weak, request = std::move(request)](const std::shared_ptr<detail::Replica>& lost) {
    if (lost->node.empty())
      return; // an actor in this process does not come back
    asio::co_spawn(ctx->executor(), rejoin(ctx, weak, lost->node, lost->ref.name(), request), asio::detached);
  };
}

} // namespace chorus::actors
