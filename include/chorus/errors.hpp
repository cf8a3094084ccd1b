// The error types of chorus. Each message says what went wrong, where (file:line, key path, actor
// and request) and what was expected, so that the text alone is enough to fix the cause.
#pragma once

#include <stdexcept>
#include <string>

namespace chorus {

/// Base class of every error chorus throws.
class Error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// A recipe config that does not fit its struct: unknown key, wrong type, missing required field.
/// The message names the source (file or `--set`), the key path and the expected type.
class ConfigError : public Error {
public:
  using Error::Error;
};

/// A command line that cannot be understood (unknown option, missing value).
class UsageError : public Error {
public:
  using Error::Error;
};

/// A data file that cannot be read: the message names the file and line.
class DatasetError : public Error {
public:
  using Error::Error;
};

/// A model checkpoint that cannot be read or written (safetensors, config.json, tokenizer files): the
/// message names the file and, where it applies, the tensor or key.
class CheckpointError : public Error {
public:
  using Error::Error;
};

/// A model's answers that never satisfied the JSON schema asked for (generate_and_validate), after
/// the retries; the message names the last problem.
class ValidationError : public Error {
public:
  using Error::Error;
};

/// A request to an actor that did not produce a reply. Base of the more specific actor errors;
/// thrown as itself when the actor's handler threw: the actor keeps serving other requests.
class ActorError : public Error {
public:
  // -- constructors -----------------------------------------------------------

  /// An error for request `request` to actor `actor`, with message `what`.
  ActorError(std::string actor, std::string request, const std::string& what)
    : Error(what), actor_(std::move(actor)), request_(std::move(request)) {
    // nop
  }

  // -- properties -------------------------------------------------------------

  /// The name of the actor the request went to.
  const std::string& actor() const noexcept {
    return actor_;
  }

  /// The type name of the request.
  const std::string& request() const noexcept {
    return request_;
  }

private:
  std::string actor_;
  std::string request_;
};

/// No reply arrived before the request's deadline.
class TimeoutError : public ActorError {
public:
  using ActorError::ActorError;
};

/// The actor was dead when the request was sent, or died before it replied.
class ActorDownError : public ActorError {
public:
  using ActorError::ActorError;
};

/// The actor, or the network between it and the caller, answered with an error instead of a reply:
/// a request the actor does not understand, a message that could not be serialised, a lost node.
class RemoteError : public ActorError {
public:
  using ActorError::ActorError;
};

/// The awaiting coroutine was cancelled (Ctrl-C, a failed sibling in `gather`, shutdown).
class CancelledError : public Error {
public:
  using Error::Error;
};

/// `Channel::send` on a channel that was closed.
class ChannelClosedError : public Error {
public:
  using Error::Error;
};

} // namespace chorus
