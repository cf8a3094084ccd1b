// bench_bridge: the cost of `co_await ref.ask(request)` against CAF's own actor-to-actor
// `request(...).then(...)`, in the same run, on the same echo actor.
//
//   BENCH bridge           sequential round-trip latency to a detached actor (how chorus hosts
//                          compute); ratio = raw time / ask time (target 1/1.5)
//   BENCH bridge_inflight  10,000 requests in flight at once, several rounds: heap bytes held per
//                          in-flight request, and whether the heap grows from round to round;
//                          ratio = heap after the first round / heap after the last (target 0.99)
#include <chorus/gather.hpp>

#include "runtime/actor_host.hpp"
#include "runtime/message.hpp"
#include "runtime/runtime.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <malloc.h>
#include <vector>

namespace bench {

struct Pong {
  std::int64_t value = 0;
};

struct Ping {
  using Reply = Pong;
  std::int64_t value = 0;
};

CHORUS_INSPECT(Pong, value)
CHORUS_INSPECT(Ping, value)

} // namespace bench

CAF_BEGIN_TYPE_ID_BLOCK(chorus_bench_bridge, caf::first_custom_type_id + 700)
  CAF_ADD_TYPE_ID(chorus_bench_bridge, (bench::Pong))
  CAF_ADD_TYPE_ID(chorus_bench_bridge, (bench::Ping))
CAF_END_TYPE_ID_BLOCK(chorus_bench_bridge)

namespace bench {

using Clock = std::chrono::steady_clock;
using chorus::ActorRef;
using chorus::Task;

constexpr auto kTimeout = std::chrono::minutes(10); // both paths arm a deadline per request

std::size_t heap_in_use() {
  auto info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

caf::behavior echo(caf::event_based_actor*) {
  return {chorus::guarded([](const Ping& ping) { return Pong{ping.value}; })};
}

// Holds every request until `expected` are waiting, measures the heap with all of them in flight,
// then answers them all.
caf::behavior gate(caf::event_based_actor* self, std::size_t expected, std::atomic<std::size_t>* heap_at_full) {
  auto held = std::make_shared<std::vector<std::pair<caf::response_promise, std::int64_t>>>();
  return {[=](const Ping& ping) -> caf::result<Pong> {
    held->emplace_back(self->make_response_promise(), ping.value);
    if (held->size() == expected) {
      heap_at_full->store(heap_in_use());
      for (auto& [promise, value] : *held)
        promise.deliver(Pong{value});
      held->clear();
    }
    return caf::delegated<Pong>{};
  }};
}

// The competitor: an actor that sends `n` requests to `target`, one after the other (`parallel` =
// false) or all at once, and fulfils `done` when every reply is in.
struct RawProgress {
  caf::actor target;
  std::int64_t n = 0;
  std::int64_t received = 0;
  bool parallel = false;
  std::promise<void>* done = nullptr;
};

void raw_send(caf::event_based_actor* self, std::shared_ptr<RawProgress> progress, std::int64_t i) {
  self->request(progress->target, kTimeout, Ping{i}).then([=](const Pong&) {
    if (++progress->received == progress->n) {
      progress->done->set_value();
      self->quit();
    } else if (!progress->parallel) {
      raw_send(self, progress, i + 1);
    }
  });
}

caf::behavior raw_client(caf::event_based_actor* self, caf::actor target, std::int64_t n, bool parallel,
                         std::promise<void>* done) {
  auto progress = std::make_shared<RawProgress>(RawProgress{std::move(target), n, 0, parallel, done});
  for (std::int64_t i = 0; i < (parallel ? n : 1); ++i)
    raw_send(self, progress, i);
  return {[](const std::string&) {}};
}

double raw_seconds(caf::actor_system& system, const caf::actor& target, std::int64_t n, bool parallel) {
  std::promise<void> done;
  auto finished = done.get_future();
  auto start = Clock::now();
  system.spawn(raw_client, target, n, parallel, &done);
  finished.wait();
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double ask_seconds(chorus::Runtime& runtime, const ActorRef<>& target, std::int64_t n, bool parallel) {
  auto start = Clock::now();
  if (parallel) {
    runtime.run([](ActorRef<> target, std::int64_t n) -> Task<void> {
      std::vector<Task<Pong>> asks;
      asks.reserve(static_cast<std::size_t>(n));
      for (std::int64_t i = 0; i < n; ++i)
        asks.push_back(target.ask(Ping{i}, kTimeout));
      co_await chorus::when_all(std::move(asks));
    }(target, n));
  } else {
    runtime.run([](ActorRef<> target, std::int64_t n) -> Task<void> {
      for (std::int64_t i = 0; i < n; ++i) {
        Ping ping{i};
        co_await target.ask(ping, kTimeout);
      }
    }(target, n));
  }
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

} // namespace bench

int main() {
  using namespace bench;
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  chorus::Runtime runtime({.configure = [](caf::actor_system_config& config) {
    config.add_message_types<caf::id_block::chorus_bench_bridge>();
  }});
  auto& system = runtime.system();

  // -- latency: one request at a time -------------------------------------------------------------
  // Against a detached echo actor, the way chorus hosts every compute actor (a thread of its own),
  // and, for information, against a cooperatively scheduled one: there raw CAF's requester and
  // replier share one worker thread and hand off nothing, while a coroutine always runs on the
  // recipe executor's thread, by design.
  constexpr std::int64_t round_trips = 20'000;
  constexpr int rounds = 7;
  auto latency = [&](const ActorRef<>& target) {
    ask_seconds(runtime, target, 2'000, false); // warm-up
    raw_seconds(system, target.handle(), 2'000, false);
    std::vector<double> raw_us, ask_us;
    for (int round = 0; round < rounds; ++round) { // alternate, so both see the same machine state
      raw_us.push_back(raw_seconds(system, target.handle(), round_trips, false) * 1e6 / round_trips);
      ask_us.push_back(ask_seconds(runtime, target, round_trips, false) * 1e6 / round_trips);
    }
    return std::pair{median(raw_us), median(ask_us)};
  };
  auto [raw_latency, ask_latency] = latency(runtime.spawn_detached("detached-echo", echo));
  std::printf("round trip to a detached actor, one at a time (median of %d rounds of %lld): "
              "raw CAF %.2f us, co_await ask %.2f us\n",
              rounds, static_cast<long long>(round_trips), raw_latency, ask_latency);
  auto [raw_shared, ask_shared] = latency(runtime.spawn("cooperative-echo", echo));
  std::printf("round trip to a cooperative actor (raw CAF requester on the same worker thread): "
              "raw CAF %.2f us, co_await ask %.2f us\n",
              raw_shared, ask_shared);

  // -- 10,000 in flight at once -----------------------------------------------------------------------
  constexpr std::size_t in_flight = 10'000;
  constexpr int inflight_rounds = 5;
  std::atomic<std::size_t> heap_at_full{0};
  auto held = runtime.spawn("gate", gate, in_flight, &heap_at_full);
  auto inflight = [&](auto&& one_round) {
    std::vector<double> millis, bytes;
    std::vector<std::size_t> heap_after;
    one_round(); // warm-up: let allocators and caches settle
    for (int round = 0; round < inflight_rounds; ++round) {
      auto before = heap_in_use();
      millis.push_back(one_round() * 1e3);
      bytes.push_back((static_cast<double>(heap_at_full.load()) - static_cast<double>(before)) / in_flight);
      heap_after.push_back(heap_in_use());
    }
    return std::tuple{median(millis), median(bytes), heap_after};
  };
  auto [raw_ms, raw_per, raw_heap] = inflight([&] { return raw_seconds(system, held.handle(), in_flight, true); });
  auto [ask_ms, ask_per, ask_heap] = inflight([&] { return ask_seconds(runtime, held, in_flight, true); });
  double growth = (static_cast<double>(ask_heap.back()) - static_cast<double>(ask_heap.front()))
    / static_cast<double>((inflight_rounds - 1) * in_flight);
  std::printf("%zu in flight at once (median of %d rounds): raw CAF %.1f ms, %.0f heap bytes per request; "
              "co_await ask %.1f ms, %.0f heap bytes per request\n",
              in_flight, inflight_rounds, raw_ms, raw_per, ask_ms, ask_per);
  std::printf("heap in use after each co_await ask round (bytes):");
  for (auto bytes : ask_heap)
    std::printf(" %zu", bytes);
  std::printf("\n");

  std::printf("BENCH bridge raw_us=%.2f ask_us=%.2f ratio=%.2f target=0.67\n", raw_latency, ask_latency,
              raw_latency / ask_latency);
  std::printf("BENCH bridge_inflight requests=%zu rounds=%d raw_bytes_per_request=%.0f ask_bytes_per_request=%.0f "
              "growth_bytes_per_request=%.2f ratio=%.4f target=0.99\n",
              in_flight, inflight_rounds, raw_per, ask_per, growth,
              static_cast<double>(ask_heap.front()) / static_cast<double>(ask_heap.back()));
  return 0;
}
