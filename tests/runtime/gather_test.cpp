// gather, when_all and for_each_concurrent: results in order, real concurrency, and failures that
// cancel the siblings and are rethrown only after every task has stopped.
#include <chorus/channel.hpp>
#include <chorus/gather.hpp>

#include "runtime/runtime.hpp"
#include "tests/runtime/test_util.hpp"

#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <gtest/gtest.h>

#include <numeric>

using namespace chorus;
using chorus::test::yield;

namespace {

class Gather : public ::testing::Test {
protected:
  Runtime runtime;
};

TEST_F(Gather, ReturnsEachResultInOrder) {
  auto [a, b, c] = runtime.run([]() -> Task<std::tuple<int, std::string, std::monostate>> {
    auto number = []() -> Task<int> {
      co_await yield();
      co_return 42;
    };
    auto text = []() -> Task<std::string> { co_return "text"; };
    auto nothing = []() -> Task<void> { co_await yield(); };
    co_return co_await gather(number(), text(), nothing());
  }());
  EXPECT_EQ(a, 42);
  EXPECT_EQ(b, "text");
  (void)c;
}

TEST_F(Gather, TasksRunConcurrently) {
  // Each task needs the other to make progress: a sequential run would wait forever.
  auto received = runtime.run([]() -> Task<int> {
    Channel<int> ping(1), pong(1);
    auto left = [](Channel<int>& ping, Channel<int>& pong) -> Task<int> {
      co_await ping.send(1);
      co_return *co_await pong.receive();
    };
    auto right = [](Channel<int>& ping, Channel<int>& pong) -> Task<int> {
      auto value = *co_await ping.receive();
      co_await pong.send(value + 1);
      co_return value;
    };
    auto [from_pong, from_ping] = co_await gather(left(ping, pong), right(ping, pong));
    co_return from_pong * 10 + from_ping;
  }());
  EXPECT_EQ(received, 21);
}

TEST_F(Gather, FirstFailureCancelsSiblingsAndIsRethrownAfterTheyStop) {
  std::vector<std::string> events;
  auto what = runtime.run([&]() -> Task<std::string> {
    Channel<int> never(1);
    auto waiter = [](Channel<int>& never, std::vector<std::string>& events) -> Task<void> {
      try {
        co_await never.receive();
      } catch (const CancelledError&) {
        events.push_back("sibling cancelled");
        throw;
      }
    };
    auto failing = [](std::vector<std::string>& events) -> Task<void> {
      co_await yield();
      events.push_back("failing");
      throw std::logic_error("first failure");
    };
    try {
      co_await gather(waiter(never, events), failing(events));
    } catch (const std::logic_error& error) {
      events.push_back("gather threw");
      co_return std::string(error.what());
    }
    co_return std::string("no exception");
  }());
  EXPECT_EQ(what, "first failure");
  EXPECT_EQ(events, (std::vector<std::string>{"failing", "sibling cancelled", "gather threw"}));
}

TEST_F(Gather, WhenAllKeepsTheOrderOfTheInput) {
  auto results = runtime.run([]() -> Task<std::vector<int>> {
    std::vector<Task<int>> tasks;
    for (int i = 0; i < 10; ++i)
      tasks.push_back([](int i) -> Task<int> {
        for (int k = 0; k < 10 - i; ++k)
          co_await yield(); // later tasks finish first
        co_return i* i;
      }(i));
    co_return co_await when_all(std::move(tasks));
  }());
  ASSERT_EQ(results.size(), 10u);
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(results[i], i * i);
}

TEST_F(Gather, EmptyWhenAllCompletes) {
  auto results =
    runtime.run([]() -> Task<std::vector<int>> { co_return co_await when_all(std::vector<Task<int>>{}); }());
  EXPECT_TRUE(results.empty());
}

TEST_F(Gather, CancellingTheAwaiterCancelsEveryTask) {
  int cancelled = 0;
  auto task = [&]() -> Task<void> {
    Channel<int> never(1);
    auto waiter = [](Channel<int>& never, int& cancelled) -> Task<void> {
      try {
        co_await never.receive();
      } catch (const CancelledError&) {
        ++cancelled;
        throw;
      }
    };
    co_await gather(waiter(never, cancelled), waiter(never, cancelled));
  };
  auto stopper = [&]() -> Task<void> {
    for (int i = 0; i < 5; ++i)
      co_await yield();
    runtime.request_stop();
  };
  asio::co_spawn(runtime.io(), stopper(), asio::detached);
  EXPECT_THROW(runtime.run(task()), CancelledError);
  EXPECT_EQ(cancelled, 2);
}

TEST_F(Gather, ForEachConcurrentRespectsTheLimitAndVisitsEveryItem) {
  std::vector<int> items(25);
  std::iota(items.begin(), items.end(), 0);
  int in_flight = 0, most = 0;
  long sum = 0;
  runtime.run(for_each_concurrent(items, 4, [&](int item) -> Task<void> {
    ++in_flight;
    most = std::max(most, in_flight);
    co_await yield();
    co_await yield();
    sum += item;
    --in_flight;
  }));
  EXPECT_EQ(most, 4);
  EXPECT_EQ(sum, 24 * 25 / 2);
}

TEST_F(Gather, ForEachConcurrentTakesTemporaryRanges) {
  long sum = 0;
  runtime.run(for_each_concurrent(std::vector<int>{1, 2, 3}, 2, [&](int item) -> Task<void> {
    co_await yield();
    sum += item;
  }));
  EXPECT_EQ(sum, 6);
}

TEST_F(Gather, ForEachConcurrentStopsAtTheFirstFailure) {
  std::vector<int> items(100);
  std::iota(items.begin(), items.end(), 0);
  int started = 0;
  EXPECT_THROW(runtime.run(for_each_concurrent(items, 3,
                                               [&](int item) -> Task<void> {
                                                 ++started;
                                                 co_await yield();
                                                 if (item == 4)
                                                   throw std::runtime_error("item 4 is bad");
                                               })),
               std::runtime_error);
  EXPECT_LT(started, 100) << "items after a failure must not be started";
}

} // namespace
