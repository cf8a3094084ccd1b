// The requests an environment host answers: the episodes of a registered environment, run on the node
// that hosts it for a recipe in another process (actors/environment_host.hpp).
#pragma once

#include <chorus/environment.hpp>

#include "actors/messages.hpp" // ChatMessage's inspect
#include "runtime/message.hpp"

#include <caf/type_id.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace chorus {

CHORUS_INSPECT(EnvReply, message, done, reward, explanation, tool_results)

} // namespace chorus

namespace chorus::actors {

struct EnvResetReply {
  std::vector<ChatMessage> messages;
};

/// Starts episode `episode` (unique per recipe process) with a fresh environment; the prompt's
/// metadata travels as JSON text.
struct EnvResetRequest {
  using Reply = EnvResetReply;
  static constexpr const char* kDoing = "starting an episode";
  std::uint64_t episode = 0;
  std::vector<ChatMessage> prompt;
  std::string metadata;
};

/// The model's turn in episode `episode`: the last message of `conversation`.
struct EnvStepRequest {
  using Reply = EnvReply;
  static constexpr const char* kDoing = "taking an environment step";
  std::uint64_t episode = 0;
  std::vector<ChatMessage> conversation;
};

/// Episode `episode` is over: its environment is dropped (no reply).
struct EnvCloseEpisode {
  std::uint64_t episode = 0;
};

/// The host's message to itself when an environment coroutine finished request `key`.
struct EnvCompleted {
  std::uint64_t key = 0;
  std::string error; // empty: it succeeded
  std::vector<ChatMessage> messages;
  EnvReply reply;
};

CHORUS_INSPECT(EnvResetReply, messages)
CHORUS_INSPECT(EnvResetRequest, episode, prompt, metadata)
CHORUS_INSPECT(EnvStepRequest, episode, conversation)
CHORUS_INSPECT(EnvCloseEpisode, episode)
CHORUS_INSPECT(EnvCompleted, key, error, messages, reply)

} // namespace chorus::actors

CAF_BEGIN_TYPE_ID_BLOCK(chorus_environments, caf::first_custom_type_id + 300)
  CAF_ADD_TYPE_ID(chorus_environments, (chorus::EnvReply))
  CAF_ADD_TYPE_ID(chorus_environments, (chorus::actors::EnvResetReply))
  CAF_ADD_TYPE_ID(chorus_environments, (chorus::actors::EnvResetRequest))
  CAF_ADD_TYPE_ID(chorus_environments, (chorus::actors::EnvStepRequest))
  CAF_ADD_TYPE_ID(chorus_environments, (chorus::actors::EnvCloseEpisode))
  CAF_ADD_TYPE_ID(chorus_environments, (chorus::actors::EnvCompleted))
CAF_END_TYPE_ID_BLOCK(chorus_environments)
