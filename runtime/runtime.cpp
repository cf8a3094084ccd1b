// Runtime start-up and the shutdown order that CAF 0.17 needs: pending requests are failed and their
// coroutines unwound first, then every actor gets an explicit exit (0.17 can hang on detached actors
// otherwise, CAF issues 1110 and 1196), then the executor's leftover frames are destroyed while the
// actor system still exists (they may hold actor handles), and only then the system stops.
#include "runtime/runtime.hpp"

#include <caf/io/middleman.hpp>
#include <caf/send.hpp>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace chorus {

namespace {

std::mutex& installers_mutex() {
  static std::mutex mutex;
  return mutex;
}

std::vector<std::function<void(caf::actor_system_config&)>>& installers() {
  static std::vector<std::function<void(caf::actor_system_config&)>> list;
  return list;
}

} // namespace

void add_message_types(std::function<void(caf::actor_system_config&)> installer) {
  std::lock_guard<std::mutex> guard{installers_mutex()};
  installers().push_back(std::move(installer));
}

void configure_scheduler(caf::actor_system_config& config) {
  // An idle CAF worker polls its queue with 50 us sleeps for 500 rounds before it waits on its
  // condition variable. Requests from the recipe executor arrive from outside CAF, so each one would
  // wait out a sleep (~90 us per round trip, measured by bench_bridge); waiting on the condition
  // variable right after the short busy-poll phase answers in ~15 us and burns less idle CPU.
  config.set("work-stealing.moderate-poll-attempts", 0);
}

Runtime::Runtime(RuntimeOptions options)
  : config_(std::make_unique<caf::actor_system_config>()), shutdown_timeout_(options.shutdown_timeout),
    cluster_(std::move(options.cluster)) {
  {
    std::lock_guard<std::mutex> guard{installers_mutex()};
    for (const auto& install : installers())
      install(*config_);
  }
  configure_scheduler(*config_);
  if (options.network || cluster_)
    config_->load<caf::io::middleman>();
  if (cluster_)
    configure_cluster_network(*config_);
  if (options.configure)
    options.configure(*config_);
  system_ = std::make_unique<caf::actor_system>(*config_);
  bridge_ = std::make_unique<Bridge>(*system_);
  io_ = std::make_unique<asio::io_context>(1);
}

Runtime::~Runtime() {
  shutdown();
}

void Runtime::track(caf::actor actor) {
  std::lock_guard<std::mutex> guard{actors_mutex_};
  actors_.push_back(std::move(actor));
}

void Runtime::drive(const std::function<bool()>& done) {
  // Replies arrive from CAF threads. Blocking at once would make every reply pay a thread wake-up
  // (tens of microseconds on a VM): poll for a short while first, then block.
  constexpr auto spin = std::chrono::microseconds(50);
  io_->restart();
  while (!done()) {
    if (io_->poll_one() > 0)
      continue;
    auto until = std::chrono::steady_clock::now() + spin;
    bool ran = false;
    while (!ran && std::chrono::steady_clock::now() < until)
      ran = io_->poll_one() > 0;
    if (!ran && io_->run_one() == 0)
      throw Error("the recipe executor ran out of work before the task completed");
  }
}

void Runtime::request_stop() {
  stop_requested_ = true;
  stop_.emit(asio::cancellation_type::terminal);
}

void Runtime::shutdown() {
  if (shut_down_)
    return;
  shut_down_ = true;
  bridge_->close();
  io_->restart();
  io_->poll();
  std::vector<caf::actor> actors;
  {
    std::lock_guard<std::mutex> guard{actors_mutex_};
    actors.swap(actors_);
  }
  std::vector<caf::actor_addr> detached;
  for (auto& actor : actors) {
    caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
    if (actor && actor.node() == system_->node()
        && caf::actor_cast<caf::abstract_actor*>(actor)->getf(caf::abstract_actor::is_detached_flag))
      detached.push_back(actor.address());
  }
  actors.clear();
  joined_nodes_.clear();
  io_.reset();
  bridge_.reset();
  stop_actor_system(detached);
}

void Runtime::stop_actor_system(const std::vector<caf::actor_addr>& detached) {
  std::mutex mutex;
  std::condition_variable stopped;
  bool done = false;
  std::thread watchdog([&] {
    std::unique_lock<std::mutex> lock{mutex};
    if (!stopped.wait_for(lock, shutdown_timeout_, [&] { return done; })) {
      std::fprintf(stderr,
                   "chorus: shutdown stalled: actors still running or referenced after %lld ms "
                   "(a busy actor, or a leaked actor handle); exiting\n",
                   static_cast<long long>(shutdown_timeout_.count()));
      std::fflush(stderr);
      std::_Exit(kShutdownStalledExitCode);
    }
  });
  // CAF 0.17's actor_system destructor stops the middleman, then waits for each detached actor's
  // last reference to go. An actor that a node holds a handle to is monitored by the middleman's
  // broker, and its exit sends the broker a down message that references it; if that message is
  // still in the broker's mailbox when the middleman stops, nothing ever releases it and the
  // destructor waits forever (about once in 10 runs of a trainer on a node, under load). So wait here,
  // while the broker still runs, until this process's detached actors are gone.
  for (const auto& address : detached)
    while (caf::actor_cast<caf::strong_actor_ptr>(address))
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  system_.reset();
  {
    std::lock_guard<std::mutex> lock{mutex};
    done = true;
  }
  stopped.notify_one();
  watchdog.join();
}

} // namespace chorus
