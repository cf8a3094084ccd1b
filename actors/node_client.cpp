#include "actors/node_client.hpp"

#include <chorus/deadline.hpp>

#include "runtime/runtime.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/middleman_actor.hpp>
#include <caf/send.hpp>

#include <chrono>
#include <set>

namespace chorus::actors {

Task<ModelInfo> wait_loaded(ActorRef<> ref) {
  // Loading a large folder can take a while; a hung load still ends.
  constexpr auto kLoadTimeout = std::chrono::minutes(30);
  auto info = co_await ref.ask(ModelInfoRequest{}, kLoadTimeout);
  co_return info;
}

namespace {

// How long joining a node may take: the TCP connect and CAF's handshake.
constexpr auto kConnectTimeout = std::chrono::seconds(15);

// One attempt at the connection, through the middleman actor; answers `promise` and quits unless
// it tries again.
void attempt_connection(caf::event_based_actor* self, caf::typed_response_promise<NodeConnection> promise,
                        ConnectNode request, std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<caf::timespan>(deadline - std::chrono::steady_clock::now());
  self->request(self->system().middleman().actor_handle(), left, caf::connect_atom::value, request.host, request.port)
    .then(
      [self, promise](const caf::node_id&, caf::strong_actor_ptr& actor, const std::set<std::string>&) mutable {
        NodeConnection connection;
        connection.spawner = caf::actor_cast<caf::actor>(std::move(actor));
        if (!connection.spawner)
          connection.error = "nothing is published at that port";
        promise.deliver(std::move(connection));
        self->quit();
      },
      [self, promise, request, deadline](const caf::error& error) mutable {
        // CAF 0.17's heartbeat tick judges a connection still awaiting the peer's first handshake
        // bytes by a last-seen time of zero, and drops it as timed out: a handshake slower than the
        // time to the next tick (a busy peer) fails at random. The peer is there: try again.
        if (error == caf::sec::connection_timeout
            && std::chrono::steady_clock::now() + std::chrono::seconds(1) < deadline) {
          attempt_connection(self, promise, std::move(request), deadline);
          return;
        }
        NodeConnection failed;
        failed.error = self->system().render(error);
        failed.other_version =
          error == caf::sec::incompatible_application_ids || error == caf::sec::incompatible_versions;
        promise.deliver(std::move(failed));
        self->quit();
      });
}

// Answers one ConnectNode, then quits.
caf::behavior node_connector(caf::event_based_actor* self) {
  return {[self](const ConnectNode& request) {
    auto promise = self->make_response_promise<NodeConnection>();
    attempt_connection(self, promise, request, std::chrono::steady_clock::now() + kConnectTimeout);
    return promise;
  }};
}

// The nodes each runtime is connecting to now. CAF's middleman connects one at a time, blocking
// while it does: a second attempt at an unreachable node would only queue behind the first.
std::set<std::pair<const void*, std::string>>& connecting() {
  static std::set<std::pair<const void*, std::string>> nodes; // touched on recipe executors only
  return nodes;
}

} // namespace

Task<caf::actor> join_node(RecipeContext& ctx, const std::string& node) {
  auto& runtime = ctx.runtime();
  auto& joined = runtime.joined_nodes();
  if (auto found = joined.find(node); found != joined.end())
    co_return found->second;
  auto key = std::pair<const void*, std::string>(&runtime, node);
  while (connecting().count(key)) { // another coroutine is joining it: share its outcome
    co_await sleep_for(std::chrono::milliseconds(100));
    if (auto found = joined.find(node); found != joined.end())
      co_return found->second;
  }
  connecting().insert(key);
  struct Connecting {
    std::pair<const void*, std::string> key;
    ~Connecting() {
      connecting().erase(key);
    }
  } connecting_now{key};
  const auto& cluster = *runtime.cluster();
  const auto& address = cluster.node(node);
  auto where = "node '" + node + "' (" + address.host + ":" + std::to_string(address.port);
  // Not on the recipe's executor: a node that accepts the connection but never answers the handshake
  // (a stopped process, a half-open link) would hold it for good.
  auto connector = runtime.system().spawn(node_connector);
  ActorRef<> connect(runtime.bridge(), connector, "the connection to node '" + node + "'");
  NodeConnection connection;
  try {
    connection =
      co_await connect.ask(ConnectNode{address.host, address.port}, kConnectTimeout + std::chrono::seconds(5));
  } catch (const TimeoutError&) {
    caf::anon_send_exit(connector, caf::exit_reason::user_shutdown);
    connection.error = "no answer to the handshake within " + std::to_string(kConnectTimeout.count()) + " s";
  }
  if (connection.other_version)
    throw ActorError("node '" + node + "'", "connect",
                     where
                       + ") runs another version of chorus (its wire protocol differs): "
                         "run the same build on every node");
  if (!connection.spawner)
    throw ActorError("node '" + node + "'", "connect",
                     where + ", from " + cluster.file.string() + ") cannot be reached: " + connection.error);
  // Not adopted: the runtime stops the actors it adopts at shutdown, and the node outlives this run.
  ActorRef<> ref(runtime.bridge(), connection.spawner, "node '" + node + "'");
  auto welcome = co_await ref.ask(NodeHello{cluster.secret}, std::chrono::seconds(30));
  if (welcome.name != node)
    throw ConfigError(cluster.file.string() + ": " + address.host + ":" + std::to_string(address.port) + " is node '"
                      + welcome.name + "', not '" + node + "'");
  ctx.log().info("joined node '{}' at {}:{} ({} cores)", node, address.host, address.port, welcome.cores);
  joined.emplace(node, connection.spawner);
  co_return connection.spawner;
}

Task<SpawnedActor> spawn_on_node(RecipeContext& ctx, const std::string& node, SpawnModelActor request) {
  auto spawner = co_await join_node(ctx, node);
  ActorRef<> ref(ctx.runtime().bridge(), spawner, "node '" + node + "'");
  request.secret = ctx.runtime().cluster()->secret;
  co_return co_await ref.ask(std::move(request), std::chrono::seconds(60));
}

Task<void> retry_on_node(RecipeContext& ctx, std::string node, std::function<bool()> wanted,
                         std::function<Task<void>()> attempt) {
  for (;;) {
    co_await sleep_for(std::chrono::seconds(2));
    if (!wanted() || ctx.stop_requested())
      co_return;
    try {
      ctx.runtime().joined_nodes().erase(node); // the old connection died with the node
      co_await attempt();
      co_return;
    } catch (const std::exception&) {
      // still down: try again
    }
  }
}

Task<void> rejoin(RecipeContext* ctx, std::weak_ptr<detail::InferenceState> weak, std::string node, std::string name,
                  SpawnModelActor request) {
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
  co_await retry_on_node(
    *ctx, node, [weak] { return !weak.expired(); },
    [&]() -> Task<void> {
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
    });
}

void rejoin_lost(RecipeContext* ctx, const std::shared_ptr<detail::InferenceState>& pool, SpawnModelActor request,
                 double rejoin_wait_s) {
  pool->rejoin_wait = chorus::detail::from_seconds(rejoin_wait_s);
  std::weak_ptr<detail::InferenceState> weak = pool;
  pool->on_lost = [ctx, weak, request = std::move(request)](const std::shared_ptr<detail::Replica>& lost) {
    if (lost->node.empty())
      return; // an actor in this process does not come back
    asio::co_spawn(ctx->executor(), rejoin(ctx, weak, lost->node, lost->ref.name(), request), asio::detached);
  };
}

} // namespace chorus::actors
