// How actors report failures to the coroutines that asked them. Only runtime/ and actors/ include
// this: it is the one place where chorus errors are spelled as CAF errors.
#pragma once

#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/make_message.hpp>

#include <cstdint>
#include <string>

namespace chorus {

/// The CAF error category of errors raised by chorus code inside actors.
constexpr caf::atom_value kChorusErrorCategory = caf::atom("chorus");

/// Codes within kChorusErrorCategory.
enum class ActorFault : std::uint8_t {
  /// A request handler threw; the context holds the exception's message.
  handler_threw = 1,
  /// As handler_threw, for a request that is invalid as asked (a prompt too long, a token outside the
  /// vocabulary): the asker's mistake rather than the actor's failure.
  bad_request = 2,
};

/// The error reply for a handler that threw `what`. Serialisable, so it crosses processes.
inline caf::error make_handler_error(std::string what) {
  return caf::error(static_cast<std::uint8_t>(ActorFault::handler_threw), kChorusErrorCategory,
                    caf::make_message(std::move(what)));
}

/// The error reply for a request that is invalid as asked, `what` saying why.
inline caf::error make_bad_request_error(std::string what) {
  return caf::error(static_cast<std::uint8_t>(ActorFault::bad_request), kChorusErrorCategory,
                    caf::make_message(std::move(what)));
}

/// The message of an error made by make_handler_error or make_bad_request_error; empty for others.
inline std::string handler_error_message(const caf::error& err) {
  if (err.category() != kChorusErrorCategory || !err.context().match_elements<std::string>())
    return {};
  return err.context().get_as<std::string>(0);
}

} // namespace chorus
