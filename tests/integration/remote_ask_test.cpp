// co_await ref.ask() across processes over CAF's network transport: replies, a handler's exception
// and an unhandled request cross the wire as their own exception types, and a node that dies with a
// request in flight fails that request instead of hanging it.
#include <chorus/gather.hpp>

#include "tests/expect_error.hpp"
#include "tests/runtime/test_actors.hpp"
#include "tests/test_process.hpp"

#include <caf/io/middleman.hpp>
#include <gtest/gtest.h>

using namespace chorus;
using namespace chorus::test;
using namespace std::chrono_literals;

namespace {

class RemoteAsk : public ::testing::Test {
protected:
  void SetUp() override {
    auto line = node.wait_for_line("PORT ", 30s);
    ASSERT_TRUE(line) << node.output();
    unsigned port = 0;
    ASSERT_EQ(std::sscanf(line->c_str(), "PORT %u", &port), 1) << node.output();
    auto handle = runtime.system().middleman().remote_actor("127.0.0.1", static_cast<std::uint16_t>(port));
    ASSERT_TRUE(handle) << runtime.system().render(handle.error());
    remote = runtime.adopt("remote-echo", *handle);
  }

  // Asking `request` must fail with an `Error` that says each of `fragments`.
  template <class Error, class Request>
  void expect_failure(Request request, std::vector<std::string> fragments, std::chrono::nanoseconds timeout = 30s,
                      const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    runtime.run(
      expect_error_containing<Error>(remote.ask(std::move(request), timeout), std::move(fragments), file, line));
  }

  ChildProcess node{CHORUS_TEST_REMOTE_NODE, {}};
  Runtime runtime{{.network = true, .configure = [](caf::actor_system_config& config) {
                     config.add_message_types<caf::id_block::chorus_runtime_test>();
                   }}};
  ActorRef<> remote;
};

TEST_F(RemoteAsk, ReplyComesBackFromTheOtherProcess) {
  auto reply = runtime.run(
    [](ActorRef<> remote) -> Task<EchoReply> { co_return co_await remote.ask(EchoRequest{"over the wire"}); }(remote));
  EXPECT_EQ(reply.text, "over the wire");
}

TEST_F(RemoteAsk, HandlerExceptionCrossesTheWireAsActorError) {
  expect_failure<ActorError>(FailRequest{"remote disk on fire"}, {"remote disk on fire", "remote-echo"});
}

TEST_F(RemoteAsk, UnhandledRequestIsRemoteError) {
  expect_failure<RemoteError>(UnknownRequest{}, {"UnknownRequest"});
}

TEST_F(RemoteAsk, NodeDyingWithARequestInFlightIsActorDownError) {
  runtime.run([](ActorRef<> remote, ChildProcess& node) -> Task<void> {
    auto silent = [](ActorRef<> remote) -> Task<void> {
      co_await expect_error_containing<ActorDownError>(remote.ask(SilentRequest{}, 60s), {"went down"});
    };
    auto killer = [](ActorRef<> remote, ChildProcess& node) -> Task<void> {
      // Make sure the silent request reached the node before killing it.
      co_await remote.ask(EchoRequest{"still there"});
      node.signal(SIGKILL);
    };
    co_await gather(silent(remote), killer(remote, node));
  }(remote, node));
  EXPECT_EQ(runtime.bridge().pending(), 0u);
}

} // namespace
