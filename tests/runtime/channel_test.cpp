// Channel<T>: bounded, FIFO, and closing never loses a buffered item.
#include <chorus/channel.hpp>
#include <chorus/gather.hpp>

#include "runtime/runtime.hpp"
#include "tests/runtime/test_util.hpp"

#include <asio/post.hpp>
#include <gtest/gtest.h>

using namespace chorus;
using chorus::test::yield;

namespace {

class ChannelTest : public ::testing::Test {
protected:
  Runtime runtime;
};

TEST_F(ChannelTest, CloseKeepsBufferedItems) {
  auto received = runtime.run([]() -> Task<std::vector<int>> {
    Channel<int> channel(4);
    co_await channel.send(1);
    co_await channel.send(2);
    co_await channel.send(3);
    channel.close();
    std::vector<int> items;
    while (auto item = co_await channel.receive())
      items.push_back(*item);
    co_return items;
  }());
  EXPECT_EQ(received, (std::vector<int>{1, 2, 3}));
}

TEST_F(ChannelTest, SendWaitsWhileFull) {
  auto trace = runtime.run([]() -> Task<std::vector<std::string>> {
    Channel<int> channel(2);
    std::vector<std::string> trace;
    auto producer = [](Channel<int>& channel, std::vector<std::string>& trace) -> Task<void> {
      for (int i = 0; i < 4; ++i) {
        co_await channel.send(i);
        trace.push_back("sent " + std::to_string(i));
      }
      channel.close();
    };
    auto consumer = [](Channel<int>& channel, std::vector<std::string>& trace) -> Task<void> {
      // Let the producer run ahead as far as the capacity allows before taking anything.
      for (int i = 0; i < 5; ++i)
        co_await yield();
      trace.push_back("buffered " + std::to_string(channel.size()));
      while (auto item = co_await channel.receive())
        trace.push_back("received " + std::to_string(*item));
    };
    co_await gather(producer(channel, trace), consumer(channel, trace));
    co_return trace;
  }());
  ASSERT_GE(trace.size(), 3u);
  EXPECT_EQ(trace[0], "sent 0");
  EXPECT_EQ(trace[1], "sent 1");
  EXPECT_EQ(trace[2], "buffered 2") << "the producer must wait while the channel is full";
  std::vector<std::string> received;
  for (const auto& line : trace)
    if (line.starts_with("received"))
      received.push_back(line);
  EXPECT_EQ(received, (std::vector<std::string>{"received 0", "received 1", "received 2", "received 3"}));
}

TEST_F(ChannelTest, ReceiveOnClosedEmptyChannelReturnsNothing) {
  auto item = runtime.run([]() -> Task<std::optional<int>> {
    Channel<int> channel(1);
    channel.close();
    co_return co_await channel.receive();
  }());
  EXPECT_FALSE(item.has_value());
}

TEST_F(ChannelTest, SendOnClosedChannelThrows) {
  EXPECT_THROW(runtime.run([]() -> Task<void> {
    Channel<int> channel(1);
    channel.close();
    co_await channel.send(1);
  }()),
               ChannelClosedError);
}

TEST_F(ChannelTest, WaitingSenderFailsWhenClosedAndBufferedItemsSurvive) {
  auto [outcome, drained] = runtime.run([]() -> Task<std::pair<std::string, std::vector<int>>> {
    Channel<int> channel(1);
    std::string outcome = "no exception";
    auto sender = [](Channel<int>& channel, std::string& outcome) -> Task<void> {
      co_await channel.send(1);
      try {
        co_await channel.send(2); // waits: the channel is full
      } catch (const ChannelClosedError&) {
        outcome = "closed";
      }
    };
    auto closer = [](Channel<int>& channel) -> Task<void> {
      co_await yield();
      co_await yield();
      channel.close();
    };
    co_await gather(sender(channel, outcome), closer(channel));
    std::vector<int> drained;
    while (auto item = co_await channel.receive())
      drained.push_back(*item);
    co_return std::pair{outcome, drained};
  }());
  EXPECT_EQ(outcome, "closed");
  EXPECT_EQ(drained, std::vector<int>{1});
}

TEST_F(ChannelTest, WaitingReceiversWakeWithNothingOnClose) {
  auto ends = runtime.run([]() -> Task<int> {
    Channel<int> channel(1);
    int ends = 0;
    auto receiver = [](Channel<int>& channel, int& ends) -> Task<void> {
      if (!co_await channel.receive())
        ++ends;
    };
    auto closer = [](Channel<int>& channel) -> Task<void> {
      co_await yield();
      channel.close();
    };
    co_await gather(receiver(channel, ends), receiver(channel, ends), closer(channel));
    co_return ends;
  }());
  EXPECT_EQ(ends, 2);
}

TEST_F(ChannelTest, ManyProducersLoseNothing) {
  auto total = runtime.run([]() -> Task<long> {
    Channel<int> channel(3);
    std::vector<Task<void>> producers;
    for (int p = 0; p < 8; ++p)
      producers.push_back([](Channel<int>& channel, int p) -> Task<void> {
        for (int i = 0; i < 100; ++i)
          co_await channel.send(p * 1000 + i);
      }(channel, p));
    long total = 0;
    auto produce_then_close = [](Channel<int>& channel, std::vector<Task<void>> producers) -> Task<void> {
      co_await when_all(std::move(producers));
      channel.close();
    };
    auto consume = [](Channel<int>& channel, long& total) -> Task<void> {
      while (auto item = co_await channel.receive())
        total += *item;
    };
    co_await gather(produce_then_close(channel, std::move(producers)), consume(channel, total));
    co_return total;
  }());
  long expected = 0;
  for (int p = 0; p < 8; ++p)
    for (int i = 0; i < 100; ++i)
      expected += p * 1000 + i;
  EXPECT_EQ(total, expected);
}

TEST_F(ChannelTest, CancelledReceiverLeavesTheQueue) {
  auto [outcome, later] = runtime.run([]() -> Task<std::pair<std::string, int>> {
    Channel<int> channel(1);
    std::string outcome;
    auto receiver = [](Channel<int>& channel, std::string& outcome) -> Task<void> {
      try {
        co_await channel.receive();
        outcome = "received";
      } catch (const CancelledError&) {
        outcome = "cancelled";
        throw;
      }
    };
    auto failing = []() -> Task<void> {
      co_await yield();
      throw std::runtime_error("boom");
    };
    try {
      co_await gather(receiver(channel, outcome), failing());
    } catch (const std::runtime_error&) {
    }
    // The cancelled receiver must not swallow the next item.
    co_await channel.send(7);
    auto item = co_await channel.receive();
    co_return std::pair{outcome, item.value_or(-1)};
  }());
  EXPECT_EQ(outcome, "cancelled");
  EXPECT_EQ(later, 7);
}

TEST(Channel, ZeroCapacityIsRejected) {
  EXPECT_THROW(Channel<int>(0), std::invalid_argument);
}

} // namespace
