// with_deadline and sleep_for: a task that finishes in time returns its result or its own error; one
// that does not is cancelled, awaited until it stopped, and reported as a DeadlineError; an actor
// request inside it is withdrawn.
#include <chorus/channel.hpp>
#include <chorus/deadline.hpp>
#include <chorus/gather.hpp>

#include "tests/runtime/test_actors.hpp"
#include "tests/runtime/test_util.hpp"

#include <gtest/gtest.h>

using namespace chorus;
using namespace chorus::test;
using namespace std::chrono_literals;

namespace {

// Waits on a channel nobody sends to, until cancelled; notes the cancellation in `saw`.
Task<void> wait_until_cancelled(Channel<int>& never, bool& saw) {
  try {
    co_await never.receive();
  } catch (const CancelledError&) {
    saw = true;
    throw;
  }
}

class Deadline : public ::testing::Test {
protected:
  Runtime runtime{test_runtime_options()};
};

TEST_F(Deadline, ATaskThatFinishesInTimeGivesItsResultOrItsError) {
  auto value = runtime.run([]() -> Task<int> {
    co_return co_await with_deadline(
      []() -> Task<int> {
        co_await sleep_for(1ms);
        co_return 7;
      }(),
      10s);
  }());
  EXPECT_EQ(value, 7);
  auto what = runtime.run([]() -> Task<std::string> {
    try {
      co_await with_deadline([]() -> Task<void> { throw std::logic_error("own failure"); }(), 10s);
    } catch (const std::logic_error& error) {
      co_return error.what();
    }
    co_return "no exception";
  }());
  EXPECT_EQ(what, "own failure");
}

TEST_F(Deadline, ALateTaskIsCancelledAndHasStoppedWhenTheErrorArrives) {
  bool child_saw_cancel = false;
  auto start = std::chrono::steady_clock::now();
  auto what = runtime.run([&]() -> Task<std::string> {
    Channel<int> never(1);
    try {
      co_await with_deadline(wait_until_cancelled(never, child_saw_cancel), 50ms, "the waiter");
    } catch (const DeadlineError& error) {
      EXPECT_TRUE(child_saw_cancel); // stopped before the error reached us
      co_return error.what();
    }
    co_return "no exception";
  }());
  EXPECT_NE(what.find("the waiter"), std::string::npos) << what;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST_F(Deadline, AnActorRequestPastTheDeadlineIsWithdrawn) {
  ActorRef<> actor = runtime.spawn("echo-actor", test_actor);
  auto what = runtime.run([&]() -> Task<std::string> {
    try {
      co_await with_deadline(actor.ask(SilentRequest{}, 60s), 50ms, "silent request");
    } catch (const DeadlineError& error) {
      co_return error.what();
    }
    co_return "no exception";
  }());
  EXPECT_NE(what.find("silent request"), std::string::npos) << what;
  // The actor still answers: the withdrawn request left nothing behind.
  auto reply = runtime.run([&]() -> Task<EchoReply> { co_return co_await actor.ask(EchoRequest{"after"}); }());
  EXPECT_EQ(reply.text, "after");
}

TEST_F(Deadline, CancellingTheCallerCancelsTheTaskToo) {
  bool child_saw_cancel = false;
  auto outcome = runtime.run([&]() -> Task<std::string> {
    Channel<int> never(1);
    auto failing = []() -> Task<void> {
      co_await sleep_for(10ms);
      throw std::runtime_error("sibling failed");
    };
    try {
      co_await gather(with_deadline(wait_until_cancelled(never, child_saw_cancel), 60s), failing());
    } catch (const std::runtime_error& error) {
      co_return error.what();
    }
    co_return "no exception";
  }());
  EXPECT_EQ(outcome, "sibling failed");
  EXPECT_TRUE(child_saw_cancel);
}

} // namespace
