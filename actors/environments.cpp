// Environments by name, in this process or hosted on a cluster node. A node program registers the
// environments it can host (chorus::node_main); for each recipe that places one there, it runs an
// environment host: an actor that keeps the episodes' environments and runs their coroutines on an
// executor thread of its own (environments are recipe-style coroutines), answering each reset and
// step when its coroutine completes. The recipe's side is a proxy Environment whose reset and step
// are requests to that host, so ENVGRPO and ENVGSPO run unchanged.
#include <chorus/deadline.hpp>
#include <chorus/errors.hpp>

#include "actors/environment_host.hpp"
#include "actors/environment_messages.hpp"
#include "actors/node_client.hpp"
#include "runtime/actor_host.hpp"
#include "runtime/actor_ref.hpp"
#include "runtime/runtime.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_response_promise.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

CHORUS_MESSAGE_TYPES(chorus_environments);

namespace chorus {

namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::string, EnvironmentFactory> factories;
};

Registry& registry() {
  static Registry instance;
  return instance;
}

} // namespace

void register_environment(std::string name, EnvironmentFactory factory) {
  if (name.empty() || !factory)
    throw ConfigError("register_environment: a name and a factory are required");
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  r.factories[std::move(name)] = std::move(factory);
}

EnvironmentFactory registered_environment(const std::string& name) {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  if (auto found = r.factories.find(name); found != r.factories.end())
    return found->second;
  std::string known;
  for (const auto& [key, factory] : r.factories)
    known += (known.empty() ? "" : ", ") + key;
  throw ConfigError("no environment is registered as '" + name + "' (registered: " + (known.empty() ? "none" : known)
                    + ")");
}

} // namespace chorus

namespace chorus::actors {

namespace {

using Episodes = std::map<std::uint64_t, std::shared_ptr<Environment>>;

struct HostState {
  std::string environment;
  EnvironmentFactory factory;
  // The executor the environments' coroutines run on, and the episodes: touched on its thread only.
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread thread;
  Episodes episodes;
  // Requests waiting for their coroutine, by key: touched on the actor's thread only.
  std::map<std::uint64_t, caf::typed_response_promise<EnvResetReply>> resets;
  std::map<std::uint64_t, caf::typed_response_promise<EnvReply>> steps;
  std::uint64_t next_key = 1;
  static inline const char* name = "chorus.environment_host";

  ~HostState() {
    work.reset();
    io.stop(); // the coroutines still suspended are destroyed with the context
    if (thread.joinable())
      thread.join();
  }
};

using HostActor = StatefulActor<HostState>;

// Runs `body` (an environment call) as a coroutine on the host's executor and reports its outcome
// to the host, which answers the request: promises are kept and delivered by the actor itself.
template <class Body>
void run_on_executor(HostActor* self, std::uint64_t key, Body body) {
  auto host = caf::actor_cast<caf::weak_actor_ptr>(self);
  auto report = [host](EnvCompleted done) {
    if (auto alive = caf::actor_cast<caf::actor>(host.lock()))
      caf::anon_send(alive, std::move(done));
  };
  auto coroutine = [](Body body, std::uint64_t key, decltype(report) report) -> Task<void> {
    EnvCompleted done;
    done.key = key;
    try {
      co_await body(done);
    } catch (const std::exception& error) {
      done.error = error.what();
    }
    report(std::move(done));
  };
  asio::co_spawn(self->state.io, coroutine(std::move(body), key, std::move(report)), [](std::exception_ptr) {});
}

caf::behavior environment_host(HostActor* self, std::string name, EnvironmentFactory factory) {
  auto& state = self->state;
  state.environment = std::move(name);
  state.factory = std::move(factory);
  state.work.emplace(state.io.get_executor());
  state.thread = std::thread([&io = state.io] { io.run(); });
  auto label = [self] { return "environment '" + self->state.environment + "'"; };
  return {
    [self, label](EnvResetRequest& request) -> caf::result<EnvResetReply> {
      auto& state = self->state;
      auto key = state.next_key++;
      auto promise = self->make_response_promise<EnvResetReply>();
      state.resets.emplace(key, promise);
      Prompt prompt{std::move(request.prompt), Json::object()};
      try {
        prompt.metadata = Json::parse(request.metadata);
      } catch (const std::exception& error) {
        state.resets.erase(key);
        return make_bad_request_error(label() + ": the prompt's metadata is not JSON: " + error.what());
      }
      auto body = [episodes = &state.episodes, factory = state.factory, episode = request.episode,
                   prompt = std::move(prompt)](EnvCompleted& done) mutable -> Task<void> {
        std::shared_ptr<Environment> environment = factory();
        (*episodes)[episode] = environment;
        done.messages = co_await environment->reset(prompt);
      };
      run_on_executor(self, key, std::move(body));
      return caf::delegated<EnvResetReply>{};
    },
    [self](EnvStepRequest& request) -> caf::result<EnvReply> {
      auto& state = self->state;
      auto key = state.next_key++;
      auto promise = self->make_response_promise<EnvReply>();
      state.steps.emplace(key, promise);
      auto body = [episodes = &state.episodes, episode = request.episode,
                   conversation = std::move(request.conversation)](EnvCompleted& done) -> Task<void> {
        auto found = episodes->find(episode);
        if (found == episodes->end())
          throw std::invalid_argument("no episode " + std::to_string(episode) + " (a step before its reset?)");
        auto environment = found->second; // kept alive while it steps, even if the episode is closed
        done.reply = co_await environment->step(conversation);
      };
      run_on_executor(self, key, std::move(body));
      return caf::delegated<EnvReply>{};
    },
    [self](const EnvCloseEpisode& close) {
      asio::post(self->state.io,
                 [episodes = &self->state.episodes, episode = close.episode] { episodes->erase(episode); });
    },
    [self, label](EnvCompleted& done) {
      auto& state = self->state;
      auto fail = [&](auto& promise) { promise.deliver(make_handler_error(label() + ": " + done.error)); };
      if (auto reset = state.resets.find(done.key); reset != state.resets.end()) {
        if (done.error.empty())
          reset->second.deliver(EnvResetReply{std::move(done.messages)});
        else
          fail(reset->second);
        state.resets.erase(reset);
      } else if (auto step = state.steps.find(done.key); step != state.steps.end()) {
        if (done.error.empty())
          step->second.deliver(std::move(done.reply));
        else
          fail(step->second);
        state.steps.erase(step);
      }
    },
  };
}

// The recipe's side of hosted environments: the hosts on the nodes named, and how many episodes each
// has. A new episode goes to the live host with the fewest; a host whose node went down is left out
// (its episodes in flight fail, and the rollouts that ran them are retried on the others) until its
// node serves again and a new host is spawned there. Touched on the recipe executor only.
struct EnvironmentHosts : std::enable_shared_from_this<EnvironmentHosts> {
  using Clock = std::chrono::steady_clock;
  struct Host {
    ActorRef<> ref;
    std::string node;
    std::int64_t episodes = 0;
    bool down = false;
    std::uint64_t generation = 0; // bumped when a new host replaces a lost one on the node
  };
  RecipeContext* ctx = nullptr;
  std::string name;
  std::vector<Host> hosts;
  std::uint64_t next_episode = 1;
  Clock::duration rejoin_wait{}; // how long a new episode waits for a host when every one is down

  // The live host with the fewest episodes; when every one is down, waits up to rejoin_wait for one
  // to come back. @throws ActorDownError naming the nodes when none is live.
  Task<std::size_t> pick() {
    auto until = Clock::now() + rejoin_wait;
    while (!live() && Clock::now() < until)
      co_await sleep_for(std::chrono::milliseconds(100));
    std::optional<std::size_t> best;
    for (std::size_t i = 0; i < hosts.size(); ++i)
      if (!hosts[i].down && (!best || hosts[i].episodes < hosts[*best].episodes))
        best = i;
    if (!best) {
      std::string nodes;
      for (const auto& host : hosts)
        nodes += (nodes.empty() ? "'" : ", '") + host.node + "'";
      throw ActorDownError("environment '" + name + "'", "reset",
                           "environment '" + name + "': every node hosting it is down (" + nodes + ")"
                             + (rejoin_wait > Clock::duration::zero() ? "; none came back within the wait" : ""));
    }
    co_return *best;
  }

  bool live() const {
    return std::any_of(hosts.begin(), hosts.end(), [](const Host& host) { return !host.down; });
  }

  // Leaves host `index` out and tries every 2 s to spawn a new host on its node.
  void lost(std::size_t index) {
    if (hosts[index].down)
      return;
    hosts[index].down = true;
    spdlog::warn("environment '{}': node '{}' is down; its episodes are retried elsewhere", name, hosts[index].node);
    asio::co_spawn(ctx->executor(), rejoin(ctx, weak_from_this(), name, hosts[index].node, index), asio::detached);
  }

  static Task<void> rejoin(RecipeContext* ctx, std::weak_ptr<EnvironmentHosts> weak, std::string name, std::string node,
                           std::size_t index) {
    co_await retry_on_node(
      *ctx, node, [weak] { return !weak.expired(); },
      [&]() -> Task<void> {
        auto host = co_await spawn_host(*ctx, name, node);
        auto self = weak.lock(); // not held across the spawn: a pool nobody holds is not kept alive
        if (!self) {
          caf::anon_send_exit(host.handle(), caf::exit_reason::user_shutdown);
          co_return;
        }
        self->hosts[index].ref = host;
        self->hosts[index].down = false;
        ++self->hosts[index].generation;
        spdlog::info("environment '{}': node '{}' is back", name, node);
      });
  }

  // A new host of environment `name` on `node`.
  static Task<ActorRef<>> spawn_host(RecipeContext& ctx, const std::string& name, const std::string& node) {
    auto spawner = co_await join_node(ctx, node);
    ActorRef<> ref(ctx.runtime().bridge(), spawner, "node '" + node + "'");
    SpawnEnvironmentHost request{ctx.runtime().cluster()->secret, name};
    auto spawned = co_await ref.ask(std::move(request), std::chrono::seconds(60));
    co_return ctx.runtime().adopt("environment '" + name + "' on node '" + node + "'", spawned.actor);
  }
};

class RemoteEnvironment final : public Environment {
public:
  explicit RemoteEnvironment(std::shared_ptr<EnvironmentHosts> hosts)
    : hosts_(std::move(hosts)), episode_(hosts_->next_episode++) {}

  ~RemoteEnvironment() override {
    if (!host_)
      return;
    --hosts_->hosts[*host_].episodes;
    ref_.tell(EnvCloseEpisode{episode_});
  }

  Task<std::vector<ChatMessage>> reset(const Prompt& prompt) override {
    if (!host_) {
      host_ = co_await hosts_->pick();
      auto& host = hosts_->hosts[*host_];
      ++host.episodes;
      ref_ = host.ref; // the episode lives on this host, even if its node's host is replaced later
      generation_ = host.generation;
    }
    EnvResetRequest request{episode_, prompt.prompt, prompt.metadata.dump()};
    auto reply = co_await ask(std::move(request));
    co_return std::move(reply.messages);
  }

  Task<EnvReply> step(const std::vector<ChatMessage>& conversation) override {
    if (!host_)
      throw Error("environment '" + hosts_->name + "': step before reset");
    EnvStepRequest request{episode_, conversation};
    co_return co_await ask(std::move(request));
  }

private:
  // Asks this episode's host; a host found down is left out of later episodes.
  template <class Request>
  Task<typename Request::Reply> ask(Request request) {
    try {
      co_return co_await ref_.ask(std::move(request));
    } catch (const ActorDownError&) {
      if (hosts_->hosts[*host_].generation == generation_) // not a host that already replaced it
        hosts_->lost(*host_);
      throw;
    }
  }

  std::shared_ptr<EnvironmentHosts> hosts_;
  std::uint64_t episode_;
  std::optional<std::size_t> host_;
  ActorRef<> ref_;               // the host this episode lives on
  std::uint64_t generation_ = 0; // of hosts_->hosts[*host_] when the episode began
};

} // namespace

caf::actor spawn_environment_host(caf::actor_system& system, const std::string& name) {
  auto factory = registered_environment(name); // throws for a name not registered here
  return system.spawn(environment_host, name, std::move(factory));
}

} // namespace chorus::actors

namespace chorus {

Task<EnvironmentFactory> find_environment(RecipeContext& ctx, std::string name, std::string node,
                                          double rejoin_wait_s) {
  if (node.empty())
    co_return registered_environment(name);
  std::vector<std::string> nodes{std::move(node)};
  co_return co_await find_environment_on_nodes(ctx, std::move(name), std::move(nodes), rejoin_wait_s);
}

Task<EnvironmentFactory> find_environment_on_nodes(RecipeContext& ctx, std::string name, std::vector<std::string> nodes,
                                                   double rejoin_wait_s) {
  if (nodes.empty())
    throw ConfigError("find_environment_on_nodes '" + name + "': no nodes named");
  if (!(rejoin_wait_s >= 0))
    throw ConfigError("find_environment_on_nodes '" + name + "': rejoin_wait_s must be at least 0");
  auto hosts = std::make_shared<actors::EnvironmentHosts>();
  hosts->ctx = &ctx;
  hosts->name = name;
  hosts->rejoin_wait = detail::from_seconds(rejoin_wait_s);
  for (const auto& node : nodes)
    hosts->hosts.push_back({co_await actors::EnvironmentHosts::spawn_host(ctx, name, node), node});
  co_return [hosts]() -> std::unique_ptr<Environment> { return std::make_unique<actors::RemoteEnvironment>(hosts); };
}

} // namespace chorus
