// co_await ref.ask(request): replies, and every way a request can fail, each surfacing as its own
// exception type whose message names the actor and the request.
#include <chorus/channel.hpp>
#include <chorus/gather.hpp>

#include "runtime/ask_words.hpp"
#include "tests/expect_error.hpp"
#include "tests/runtime/test_actors.hpp"
#include "tests/runtime/test_util.hpp"

#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <gtest/gtest.h>

using namespace chorus;
using namespace chorus::test;
using namespace std::chrono_literals;

namespace {

class Ask : public ::testing::Test {
protected:
  Runtime runtime{test_runtime_options()};
  ActorRef<> actor = runtime.spawn("echo-actor", test_actor);

  // Asking `request` must fail with an `Error` that names the actor and says each of `fragments`.
  template <class Error, class Request>
  void expect_failure(Request request, std::vector<std::string> fragments, std::chrono::nanoseconds timeout = 10s,
                      const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    auto ask = [&]() -> Task<void> {
      try {
        co_await actor.ask(std::move(request), timeout);
      } catch (const Error& error) {
        EXPECT_EQ(error.actor(), "echo-actor");
        throw;
      }
    };
    runtime.run(expect_error_containing<Error>(ask(), std::move(fragments), file, line));
  }
};

TEST_F(Ask, ReturnsTheReply) {
  auto reply = runtime.run([&]() -> Task<EchoReply> {
    EchoRequest request{"hello"};
    co_return co_await actor.ask(request);
  }());
  EXPECT_EQ(reply.text, "hello");
}

TEST_F(Ask, VoidReplyCompletes) {
  bool done = runtime.run([&]() -> Task<bool> {
    co_await actor.ask(PingRequest{});
    co_return true;
  }());
  EXPECT_TRUE(done);
}

TEST_F(Ask, ResumesOnTheRecipeExecutorNotOnTheActorThread) {
  auto caller = std::hash<std::thread::id>{}(std::this_thread::get_id());
  auto [reply, resumed_on] = runtime.run([&]() -> Task<std::pair<EchoReply, std::size_t>> {
    auto reply = co_await actor.ask(EchoRequest{"x"});
    co_return std::pair{reply, std::hash<std::thread::id>{}(std::this_thread::get_id())};
  }());
  EXPECT_NE(reply.thread_hash, caller) << "the actor should run on a CAF thread";
  EXPECT_EQ(resumed_on, caller);
}

TEST_F(Ask, TimeoutIsTimeoutErrorNamingActorAndRequest) {
  expect_failure<TimeoutError>(SilentRequest{}, {"actor 'echo-actor'", "handling a silent request", "within"}, 50ms);
  EXPECT_EQ(runtime.bridge().pending(), 0u);
}

TEST_F(Ask, HandlerExceptionIsActorErrorAndTheActorKeepsServing) {
  expect_failure<ActorError>(FailRequest{"disk on fire"},
                             {"disk on fire", "failed while handling a fail request: disk on fire"});
  auto reply = runtime.run([&]() -> Task<EchoReply> { co_return co_await actor.ask(EchoRequest{"still here"}); }());
  EXPECT_EQ(reply.text, "still here");
}

TEST_F(Ask, DeadActorIsActorDownError) {
  caf::anon_send_exit(actor.handle(), caf::exit_reason::kill);
  {
    caf::scoped_actor self{runtime.system()};
    self->wait_for(actor.handle());
  }
  expect_failure<ActorDownError>(EchoRequest{"anyone?"}, {"echo-actor", "handling an echo request"});
}

TEST_F(Ask, ActorDyingWithTheRequestInFlightIsActorDownError) {
  expect_failure<ActorDownError>(QuitRequest{}, {"handling a quit request"});
  EXPECT_EQ(runtime.bridge().pending(), 0u);
}

TEST_F(Ask, RequestsQueuedBehindADyingActorFailToo) {
  auto failures = runtime.run([&]() -> Task<int> {
    std::vector<Task<int>> asks;
    asks.push_back([](ActorRef<> a) -> Task<int> {
      try {
        co_await a.ask(QuitRequest{});
      } catch (const ActorDownError&) {
        co_return 1;
      }
      co_return 0;
    }(actor));
    for (int i = 0; i < 5; ++i)
      asks.push_back([](ActorRef<> a) -> Task<int> {
        try {
          co_await a.ask(EchoRequest{"queued"});
        } catch (const ActorDownError&) {
          co_return 1;
        }
        co_return 0;
      }(actor));
    auto results = co_await when_all(std::move(asks));
    co_return results[0] + (results[1] + results[2] + results[3] + results[4] + results[5] > 0 ? 1 : 0);
  }());
  // The quitting request always fails; the ones behind it either were answered before the actor
  // quit or fail with ActorDownError. None hangs.
  EXPECT_GE(failures, 1);
  EXPECT_EQ(runtime.bridge().pending(), 0u);
}

TEST_F(Ask, UnhandledRequestIsRemoteError) {
  expect_failure<RemoteError>(UnknownRequest{}, {"does not understand", "UnknownRequest"});
}

TEST_F(Ask, ManyConcurrentAsksAllGetTheirOwnReply) {
  constexpr int n = 2000;
  auto replies = runtime.run([&]() -> Task<std::vector<EchoReply>> {
    std::vector<Task<EchoReply>> asks;
    for (int i = 0; i < n; ++i)
      asks.push_back(actor.ask(EchoRequest{std::to_string(i)}));
    co_return co_await when_all(std::move(asks));
  }());
  ASSERT_EQ(replies.size(), static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i)
    EXPECT_EQ(replies[i].text, std::to_string(i));
  EXPECT_EQ(runtime.bridge().pending(), 0u);
}

TEST_F(Ask, CancellingTheAwaiterRemovesThePendingRequest) {
  auto outcome = runtime.run([&]() -> Task<std::string> {
    auto slow = [](ActorRef<> a) -> Task<void> { co_await a.ask(SilentRequest{}); };
    auto failing = []() -> Task<void> {
      co_await yield();
      throw std::logic_error("sibling failed");
    };
    try {
      co_await gather(slow(actor), failing());
    } catch (const std::logic_error& error) {
      co_return std::string(error.what());
    }
    co_return std::string("no exception");
  }());
  EXPECT_EQ(outcome, "sibling failed");
  EXPECT_EQ(runtime.bridge().pending(), 0u);
}

TEST_F(Ask, ShutdownWithRequestsInFlightFailsThemWithoutHanging) {
  auto silent = runtime.spawn_detached("silent-actor", test_actor);
  std::vector<std::string> errors;
  for (int i = 0; i < 20; ++i) {
    auto ask = [](ActorRef<> a, std::vector<std::string>& out) -> Task<void> {
      try {
        co_await a.ask(SilentRequest{});
      } catch (const ActorDownError& error) {
        out.push_back(error.what());
      }
    };
    asio::co_spawn(runtime.io(), ask(silent, errors), asio::detached);
  }
  // Let the requests go out, then shut down while they wait for replies that never come.
  while (runtime.bridge().pending() < 20)
    runtime.io().run_one();
  runtime.shutdown();
  ASSERT_EQ(errors.size(), 20u);
  EXPECT_NE(errors[0].find("shutting down"), std::string::npos) << errors[0];
}

TEST_F(Ask, AskOnADefaultHandleIsActorDownError) {
  ActorRef<> nobody;
  runtime.run([&]() -> Task<void> {
    co_await expect_error_containing<ActorDownError>(nobody.ask(EchoRequest{"?"}), {"is gone"});
  }());
}

} // namespace

namespace {

// Shutdown looks at each tracked actor (is it a detached actor of this process?): a handle adopted
// empty, e.g. from a lookup that found nothing, must not be dereferenced.
TEST(RuntimeShutdown, AnAdoptedEmptyHandleShutsDownCleanly) {
  Runtime runtime;
  auto nobody = runtime.adopt("nobody", caf::actor{});
  auto echo = runtime.spawn_detached("echo", test_actor);
  runtime.shutdown();
  SUCCEED();
}

TEST(RuntimeShutdown, ALeakedHandleEndsTheProcessWithAMessageInsteadOfHanging) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
    {
      Runtime runtime{{.shutdown_timeout = std::chrono::milliseconds(300)}};
      auto actor = runtime.spawn_detached("leaky", test_actor);
      auto* leaked = new caf::actor(actor.handle()); // never released: keeps the actor alive
      (void)leaked;
      runtime.shutdown();
      std::exit(0);
    },
    ::testing::ExitedWithCode(kShutdownStalledExitCode), "shutdown stalled");
}

// -- how requests are worded in errors (runtime/ask_words.hpp) ------------------------------------------

struct RequestWithWords {
  static constexpr const char* kDoing = "weighing the options";
};

TEST(AskWords, AModelsActorIsNamedAsTheModelAndItsRole) {
  EXPECT_EQ(chorus::detail::describe_actor("sft/trainer"), "model 'sft' (trainer)");
  EXPECT_EQ(chorus::detail::describe_actor("judge/replica1"), "model 'judge' (replica1)");
  EXPECT_EQ(chorus::detail::describe_actor("echo-actor"), "actor 'echo-actor'");
  EXPECT_EQ(chorus::detail::describe_actor("/odd"), "actor '/odd'");
  EXPECT_EQ(chorus::detail::describe_actor("sft/replica1@gen-1"), "model 'sft' (replica1 on node 'gen-1')");
  EXPECT_EQ(chorus::detail::describe_actor("echo@node-2"), "actor 'echo' on node 'node-2'");
}

TEST(AskWords, ARequestIsWhatTheActorDoesInWordsNotItsTypeName) {
  EXPECT_EQ(chorus::detail::request_doing<RequestWithWords>(), "weighing the options");
  EXPECT_EQ(chorus::detail::doing_from_type_name("chorus::actors::ModelInfoRequest"), "handling a model info request");
  EXPECT_EQ(chorus::detail::doing_from_type_name("EchoRequest"), "handling an echo request");
  EXPECT_EQ(chorus::detail::doing_from_type_name("ns::HTTPRequest"), "handling a http request");
  EXPECT_EQ(chorus::detail::doing_from_type_name("env_step"), "handling an env step");
  EXPECT_EQ(chorus::detail::request_doing<SilentRequest>(), "handling a silent request");
}

} // namespace
