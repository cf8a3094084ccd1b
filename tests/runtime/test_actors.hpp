// Small actors and request types for the runtime tests: each one exercises one path of the bridge.
#pragma once

#include "runtime/actor_host.hpp"
#include "runtime/message.hpp"
#include "runtime/runtime.hpp"

#include <caf/all.hpp>
#include <caf/type_id.hpp>

#include <stdexcept>
#include <string>
#include <thread>

namespace chorus::test {

struct EchoReply {
  std::string text;
  std::size_t thread_hash = 0;
};

/// Answered with its text.
struct EchoRequest {
  using Reply = EchoReply;
  std::string text;
};

/// The handler throws `why`.
struct FailRequest {
  using Reply = EchoReply;
  std::string why;
};

/// Never answered: the actor keeps the promise and drops it.
struct SilentRequest {
  using Reply = EchoReply;
};

/// The actor terminates without answering.
struct QuitRequest {
  using Reply = EchoReply;
};

/// Not handled by any test actor.
struct UnknownRequest {
  using Reply = EchoReply;
};

/// Answered by an empty message.
struct PingRequest {
  using Reply = void;
};

CHORUS_INSPECT(EchoReply, text, thread_hash)
CHORUS_INSPECT(EchoRequest, text)
CHORUS_INSPECT(FailRequest, why)
CHORUS_INSPECT(SilentRequest)
CHORUS_INSPECT(QuitRequest)
CHORUS_INSPECT(UnknownRequest)
CHORUS_INSPECT(PingRequest)

/// Handles Echo, Fail, Silent, Quit and Ping.
inline caf::behavior test_actor(OrderedActor* self) {
  return {
    guarded([](const EchoRequest& request) {
      return EchoReply{request.text, std::hash<std::thread::id>{}(std::this_thread::get_id())};
    }),
    guarded([](const FailRequest& request) -> EchoReply { throw std::runtime_error(request.why); }),
    [self](const SilentRequest&) -> caf::result<EchoReply> {
      self->make_response_promise<EchoReply>(); // dropped unanswered
      return caf::delegated<EchoReply>{};
    },
    [self](const QuitRequest&) -> caf::result<EchoReply> {
      self->quit(caf::exit_reason::user_shutdown);
      return caf::delegated<EchoReply>{};
    },
    guarded([](const PingRequest&) {}),
  };
}

} // namespace chorus::test

CAF_BEGIN_TYPE_ID_BLOCK(chorus_runtime_test, caf::first_custom_type_id + 900)
  CAF_ADD_TYPE_ID(chorus_runtime_test, (chorus::test::EchoReply))
  CAF_ADD_TYPE_ID(chorus_runtime_test, (chorus::test::EchoRequest))
  CAF_ADD_TYPE_ID(chorus_runtime_test, (chorus::test::FailRequest))
  CAF_ADD_TYPE_ID(chorus_runtime_test, (chorus::test::SilentRequest))
  CAF_ADD_TYPE_ID(chorus_runtime_test, (chorus::test::QuitRequest))
  CAF_ADD_TYPE_ID(chorus_runtime_test, (chorus::test::UnknownRequest))
  CAF_ADD_TYPE_ID(chorus_runtime_test, (chorus::test::PingRequest))
CAF_END_TYPE_ID_BLOCK(chorus_runtime_test)

namespace chorus::test {

/// Options for a Runtime that can carry the test request types above.
inline RuntimeOptions test_runtime_options() {
  return {.configure = [](caf::actor_system_config& config) {
    config.add_message_types<caf::id_block::chorus_runtime_test>();
  }};
}

} // namespace chorus::test
