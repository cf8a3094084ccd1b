// Runtime: the actor system, the bridge and the recipe executor, started and stopped together.
// Include only from runtime/ and actors/ (and tests): it spells CAF types.
#pragma once

#include <chorus/errors.hpp>
#include <chorus/task.hpp>

#include "runtime/actor_ref.hpp"
#include "runtime/bridge.hpp"
#include "runtime/cluster.hpp"
#include "runtime/message.hpp"

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/spawn_options.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace chorus {

struct RuntimeOptions {
  /// Loads CAF's middleman, so that actors can be published to and reached from other processes.
  bool network = false;
  /// The nodes that components may be placed on (a cluster file); implies `network`.
  std::shared_ptr<const Cluster> cluster;
  /// Called with the CAF config before the actor system starts, after the registered type blocks.
  std::function<void(caf::actor_system_config&)> configure;
  /// How long shutdown waits for the actors to stop before it gives up and ends the process with
  /// kShutdownStalledExitCode: an actor still busy, or a leaked handle that keeps one alive (CAF 0.17
  /// waits for every detached actor to be destroyed), must not hang the program forever.
  std::chrono::milliseconds shutdown_timeout = std::chrono::seconds(60);
};

/// The exit code of a process whose runtime could not shut down within its shutdown_timeout.
inline constexpr int kShutdownStalledExitCode = 70;

class Runtime {
public:
  // -- constructors and destructors -------------------------------------------

  explicit Runtime(RuntimeOptions options = {});

  /// Calls shutdown().
  ~Runtime();

  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // -- the parts --------------------------------------------------------------

  caf::actor_system& system() {
    return *system_;
  }

  Bridge& bridge() {
    return *bridge_;
  }

  /// The recipe executor: one io_context, run by the thread that calls `run`.
  asio::io_context& io() {
    return *io_;
  }

  asio::any_io_executor executor() {
    return io_->get_executor();
  }

  // -- actors -----------------------------------------------------------------

  /// Spawns `fun(self, args...)` as an actor on a thread of its own (for blocking compute) and
  /// returns a handle named `name`. The runtime stops the actor at shutdown.
  template <class Interface = caf::actor, class F, class... Ts>
  ActorRef<Interface> spawn_detached(std::string name, F fun, Ts&&... args) {
    auto handle = system_->spawn<caf::detached>(std::move(fun), std::forward<Ts>(args)...);
    track(caf::actor_cast<caf::actor>(handle));
    return ActorRef<Interface>(*bridge_, caf::actor_cast<Interface>(handle), std::move(name));
  }

  /// Spawns `fun(self, args...)` as a cooperatively scheduled actor (for short, non-blocking work).
  template <class Interface = caf::actor, class F, class... Ts>
  ActorRef<Interface> spawn(std::string name, F fun, Ts&&... args) {
    auto handle = system_->spawn(std::move(fun), std::forward<Ts>(args)...);
    track(caf::actor_cast<caf::actor>(handle));
    return ActorRef<Interface>(*bridge_, caf::actor_cast<Interface>(handle), std::move(name));
  }

  /// Takes ownership of an actor spawned elsewhere, e.g. a remote actor's proxy from
  /// `system().middleman().remote_actor(...)`, and returns a handle named `name`.
  template <class Interface = caf::actor>
  ActorRef<Interface> adopt(std::string name, Interface handle) {
    track(caf::actor_cast<caf::actor>(handle));
    return ActorRef<Interface>(*bridge_, std::move(handle), std::move(name));
  }

  // -- cluster ----------------------------------------------------------------

  /// The cluster this process belongs to; null when it runs alone.
  const Cluster* cluster() const noexcept {
    return cluster_.get();
  }

  /// The spawners of the nodes joined so far, by node name (recipe executor only).
  std::map<std::string, caf::actor>& joined_nodes() {
    return joined_nodes_;
  }

  // -- running ----------------------------------------------------------------

  /// Runs `task` on the recipe executor, on the calling thread, until it completes; returns its
  /// result or rethrows its exception.
  template <class T>
  T run(Task<T> task) {
    std::optional<std::conditional_t<std::is_void_v<T>, bool, T>> result;
    std::exception_ptr error;
    if constexpr (std::is_void_v<T>) {
      auto on_done = [&](std::exception_ptr e) {
        error = e;
        result.emplace(true);
      };
      asio::co_spawn(*io_, std::move(task), asio::bind_cancellation_slot(stop_.slot(), on_done));
    } else {
      auto on_done = [&](std::exception_ptr e, T value) {
        error = e;
        result.emplace(std::move(value));
      };
      asio::co_spawn(*io_, std::move(task), asio::bind_cancellation_slot(stop_.slot(), on_done));
    }
    drive([&] { return result.has_value(); });
    if (error)
      std::rethrow_exception(error);
    if constexpr (!std::is_void_v<T>)
      return std::move(*result);
  }

  /// Cancels the task that `run` is running: its pending awaits throw CancelledError. Call it on the
  /// recipe executor (e.g. from a signal handler posted there).
  void request_stop();

  /// Whether request_stop was called.
  bool stop_requested() const noexcept {
    return stop_requested_.load();
  }

  /// Fails pending requests, lets their coroutines unwind, stops every actor spawned here and shuts
  /// the actor system down. Idempotent.
  void shutdown();

private:
  void track(caf::actor actor);

  // Waits until `detached` (this process's stopped detached actors) are released, then destroys the
  // actor system, ending the process if the two together stall past shutdown_timeout_.
  void stop_actor_system(const std::vector<caf::actor_addr>& detached);

  // Runs the executor until `done()` holds. @throws Error if it runs out of work first.
  void drive(const std::function<bool()>& done);

  std::unique_ptr<caf::actor_system_config> config_;
  std::unique_ptr<caf::actor_system> system_;
  std::unique_ptr<Bridge> bridge_;
  std::unique_ptr<asio::io_context> io_;
  asio::cancellation_signal stop_;
  std::atomic<bool> stop_requested_{false};
  std::mutex actors_mutex_;
  std::vector<caf::actor> actors_;
  std::chrono::milliseconds shutdown_timeout_;
  std::shared_ptr<const Cluster> cluster_;
  std::map<std::string, caf::actor> joined_nodes_;
  bool shut_down_ = false;
};

} // namespace chorus
