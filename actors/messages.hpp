// The requests that model actors answer, and CAF's view of the public types they carry. Valid C++17
// without LibTorch, so that both the actors (C++17, LibTorch) and the recipe-facing handles (C++20,
// coroutines) include it. Every type here is serialisable: it can cross processes unchanged.
#pragma once

#include <chorus/generation.hpp>
#include <chorus/training.hpp>

#include "runtime/message.hpp"

#include <caf/actor.hpp>
#include <caf/meta/load_callback.hpp>
#include <caf/type_id.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

// CAF's view of a JSON value (SamplingParams::json_schema): its text ("" for null).
namespace nlohmann {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, json& x) {
  std::string text = x.is_null() ? std::string() : x.dump(-1, ' ', false, json::error_handler_t::replace);
  auto parse = caf::meta::load_callback([&]() -> caf::error {
    x = text.empty() ? json() : json::parse(text, nullptr, /*allow_exceptions=*/false);
    return caf::none;
  });
  return f(text, parse);
}

} // namespace nlohmann

namespace chorus {

CHORUS_INSPECT(ToolCall, name, arguments, id)
CHORUS_INSPECT(ChatMessage, role, content, tool_calls, reasoning)
CHORUS_INSPECT(Tool, name, description, parameters)
CHORUS_INSPECT(SamplingParams, temperature, top_k, top_p, max_tokens, stop, seed, min_tokens, presence_penalty,
               frequency_penalty, repetition_penalty, logit_bias, logprobs, top_logprobs, prompt_logprobs, json_schema,
               choice, regex, tool_choice, parallel_tool_calls, enable_thinking)
CHORUS_INSPECT(TokenLogprob, token, text, logprob)
CHORUS_INSPECT(PositionLogprobs, chosen, top)
CHORUS_INSPECT(Generation, text, prompt_tokens, tokens, logprobs, finish_reason, weight_version, token_logprobs,
               prompt_logprobs)
CHORUS_INSPECT(TrainSample, prompt_tokens, completion_tokens, advantage, behaviour_logprobs, weight_version,
               completion_mask, token_advantages, old_values, returns, label)
CHORUS_INSPECT(PreferencePair, prompt_tokens, chosen_tokens, rejected_tokens)
CHORUS_INSPECT(TrainParams, lr, max_grad_norm, weight_decay, micro_batch_size, clip_range, clip_range_high,
               loss_aggregation, ratio_level, kl_beta, dpo_beta, dpo_loss, dpo_label_smoothing, value_coef,
               value_clip_range, on_policy_version)
CHORUS_INSPECT(TrainReport, loss, grad_norm, lr, tokens, tokens_per_second, logprob_gap, clip_fraction, kl,
               reward_accuracy, reward_margin, value_loss, weight_version)

} // namespace chorus

namespace chorus::actors {

/// What an actor hosting a model reports about it; asking for it is also how a spawner waits until
/// the model has loaded (a load failure comes back as the request's error).
struct ModelInfo {
  std::string model_type;
  std::int64_t vocab_size = 0;
  std::int64_t parameters = 0;
  /// Parameters that train: all of them, or a LoRA model's adapters.
  std::int64_t trained_parameters = 0;
  std::int64_t weight_version = 0;
  std::int32_t threads = 0;
  /// Generate requests queued or running (a policy or judge actor; 0 for a trainer).
  std::int64_t pending = 0;
  /// Rank 0 of a data-parallel trainer group: the port of its rendezvous store (else 0).
  std::int32_t data_parallel_port = 0;
  /// Its chat template is a thinking one (Qwen3's): turns hold reasoning before their content.
  bool thinks = false;
  /// Its generation prompt leaves a <think> block open, with enable_thinking off and on
  /// (Tokenizer::opens_thinking).
  bool opens_thinking_off = false;
  bool opens_thinking_on = false;
  /// How its chat template writes function calls: a ToolCallFormat, as its number.
  std::int32_t tool_calls = 0;
  /// Its folder's generation_config.json (the model's sampling defaults), as JSON text; empty if none.
  std::string generation_config;

  ToolCallFormat tool_call_format() const {
    return static_cast<ToolCallFormat>(tool_calls);
  }
  /// opens_thinking_off and _on, indexed by enable_thinking.
  std::array<bool, 2> opens_thinking() const {
    return {opens_thinking_off, opens_thinking_on};
  }
};

struct ModelInfoRequest {
  using Reply = ModelInfo;
  static constexpr const char* kDoing = "loading its model";
};

/// Generate from a chat (`messages`, rendered with the chat template), from plain `text`, or from
/// `tokens` as they are (whichever is not empty, in that order).
struct GenerateRequest {
  using Reply = Generation;
  static constexpr const char* kDoing = "generating";
  std::vector<ChatMessage> messages;
  std::string text;
  SamplingParams params;
  std::vector<std::int64_t> tokens;
  /// The functions the model may call, rendered with `messages` by the chat template.
  std::vector<Tool> tools;
  /// Names the request for CancelGeneration: unique per process that asks (0: cannot be cancelled).
  std::uint64_t id = 0;
  /// A replica of a training model generates it with this weight version or a newer one (the asker
  /// has seen the trainer publish it); a replica in another process waits until it has fetched it.
  std::int64_t min_weight_version = 0;
  /// Streaming: receives a GenerationDelta (tagged with `id`) each time the completion's text grows
  /// by text that is final (no partial UTF-8 character, nothing a stop string could still cut); the
  /// reply, which follows the last delta, carries the whole completion. Null: no deltas.
  caf::actor stream_to;
};

/// The text a streamed generation added since its previous delta (GenerateRequest::stream_to), and
/// with SamplingParams::logprobs the positions of the tokens whose text begins in it.
struct GenerationDelta {
  std::uint64_t id = 0;
  std::string text;
  std::vector<PositionLogprobs> logprobs;
};

/// Stops generate request `id` if it is still queued or running: its slot is freed at once and the
/// request is answered with an error. Sent (no reply) when the asker stopped waiting.
struct CancelGeneration {
  std::uint64_t id = 0;
};

struct LogprobsReply {
  std::vector<float> logprobs;
  std::int64_t weight_version = 0;
};

struct LogprobsRequest {
  using Reply = LogprobsReply;
  static constexpr const char* kDoing = "computing log-probabilities";
  std::vector<std::int64_t> prompt_tokens;
  std::vector<std::int64_t> completion_tokens;
};

struct TokenizeReply {
  std::vector<std::int64_t> tokens;
};

/// Tokenize a chat (with the chat template) when `messages` is not empty, else plain `text`.
struct TokenizeRequest {
  using Reply = TokenizeReply;
  static constexpr const char* kDoing = "tokenizing";
  std::vector<ChatMessage> messages;
  std::string text;
  bool add_generation_prompt = true;
  std::vector<Tool> tools;
  bool enable_thinking = true;
};

/// One optimizer step; `objective` is "sft", "policy", "ppo", "regression" or "value" (over `samples`),
/// or "dpo" or "reward" (over `pairs`).
struct TrainRequest {
  using Reply = TrainReport;
  static constexpr const char* kDoing = "taking a training step";
  std::string objective;
  std::vector<TrainSample> samples;
  TrainParams params;
  std::vector<PreferencePair> pairs;
};

struct ValuesReply {
  /// Per sample, the value head's estimate at each completion token.
  std::vector<std::vector<float>> values;
};

/// The trainer's value estimates for `samples` (PPO), without a step.
struct ValuesRequest {
  using Reply = ValuesReply;
  static constexpr const char* kDoing = "computing value estimates";
  std::vector<TrainSample> samples;
};

struct ScoresReply {
  /// Per sample, the scoring model's score at its last token.
  std::vector<float> scores;
  std::int64_t weight_version = 0;
};

/// A scoring model's scores of `samples` (prompt and completion tokens), without a step.
struct ScoresRequest {
  using Reply = ScoresReply;
  static constexpr const char* kDoing = "scoring";
  std::vector<TrainSample> samples;
};

/// Makes the trainer's current weights its frozen reference (e.g. the SFT model before RL).
struct ResetReferenceRequest {
  using Reply = void;
  static constexpr const char* kDoing = "resetting the reference model";
};

struct SaveRequest {
  using Reply = void;
  static constexpr const char* kDoing = "saving the model";
  std::string folder;
  bool merge_adapter = false; // a LoRA model: a full folder with the adapters merged in
};

/// Writes the trainer's whole state (weights, optimizer, reference, RNG, version) into `folder`: a
/// checkpoint's trainer part (actors/trainer_state.cpp has the files).
struct SaveStateRequest {
  using Reply = void;
  static constexpr const char* kDoing = "saving a checkpoint";
  std::string folder;
};

/// Restores what SaveStateRequest wrote and publishes the restored weights; replies with their version.
struct LoadStateRequest {
  using Reply = std::int64_t;
  static constexpr const char* kDoing = "restoring a checkpoint";
  std::string folder;
};

/// A policy actor's message to itself: run one continuous-batching step.
struct DecodeStep {};

CHORUS_INSPECT(ModelInfo, model_type, vocab_size, parameters, trained_parameters, weight_version, threads, pending,
               data_parallel_port, thinks, opens_thinking_off, opens_thinking_on, tool_calls, generation_config)
CHORUS_INSPECT(ModelInfoRequest)
CHORUS_INSPECT(GenerateRequest, messages, text, params, tokens, tools, id, min_weight_version, stream_to)
CHORUS_INSPECT(GenerationDelta, id, text, logprobs)
CHORUS_INSPECT(CancelGeneration, id)
CHORUS_INSPECT(LogprobsReply, logprobs, weight_version)
CHORUS_INSPECT(LogprobsRequest, prompt_tokens, completion_tokens)
CHORUS_INSPECT(TokenizeReply, tokens)
CHORUS_INSPECT(TokenizeRequest, messages, text, add_generation_prompt, tools, enable_thinking)
CHORUS_INSPECT(TrainRequest, objective, samples, params, pairs)
CHORUS_INSPECT(SaveRequest, folder, merge_adapter)
CHORUS_INSPECT(ResetReferenceRequest)
CHORUS_INSPECT(SaveStateRequest, folder)
CHORUS_INSPECT(LoadStateRequest, folder)
CHORUS_INSPECT(ValuesReply, values)
CHORUS_INSPECT(ValuesRequest, samples)
CHORUS_INSPECT(ScoresReply, scores, weight_version)
CHORUS_INSPECT(ScoresRequest, samples)
CHORUS_INSPECT(DecodeStep)

} // namespace chorus::actors

CAF_BEGIN_TYPE_ID_BLOCK(chorus_model_actors, caf::first_custom_type_id + 100)
  CAF_ADD_TYPE_ID(chorus_model_actors, (chorus::ChatMessage))
  CAF_ADD_TYPE_ID(chorus_model_actors, (chorus::SamplingParams))
  CAF_ADD_TYPE_ID(chorus_model_actors, (chorus::Generation))
  CAF_ADD_TYPE_ID(chorus_model_actors, (chorus::TrainSample))
  CAF_ADD_TYPE_ID(chorus_model_actors, (chorus::PreferencePair))
  CAF_ADD_TYPE_ID(chorus_model_actors, (chorus::TrainParams))
  CAF_ADD_TYPE_ID(chorus_model_actors, (chorus::TrainReport))
  CAF_ADD_TYPE_ID(chorus_model_actors, (chorus::actors::ModelInfo))
  CAF_ADD_TYPE_ID(chorus_model_actors, (chorus::actors::ModelInfoRequest))
  CAF_ADD_TYPE_ID(chorus_model_actors, (chorus::actors::GenerateRequest))
  CAF_ADD_TYPE_ID(chorus_model_actors, (chorus::actors::LogprobsReply))
  CAF_ADD_TYPE_ID(chorus_model_actors, (chorus::actors::LogprobsRequest))
  CAF_ADD_TYPE_ID(chorus_model_actors, (chorus::actors::TokenizeReply))
  CAF_ADD_TYPE_ID(chorus_model_actors, (chorus::actors::TokenizeRequest))
  CAF_ADD_TYPE_ID(chorus_model_actors, (chorus::actors::TrainRequest))
  CAF_ADD_TYPE_ID(chorus_model_actors, (chorus::actors::SaveRequest))
  CAF_ADD_TYPE_ID(chorus_model_actors, (chorus::actors::DecodeStep))
  CAF_ADD_TYPE_ID(chorus_model_actors, (chorus::actors::ValuesReply))
  CAF_ADD_TYPE_ID(chorus_model_actors, (chorus::actors::ResetReferenceRequest))
  CAF_ADD_TYPE_ID(chorus_model_actors, (chorus::actors::ValuesRequest))
  CAF_ADD_TYPE_ID(chorus_model_actors, (chorus::actors::CancelGeneration))
  CAF_ADD_TYPE_ID(chorus_model_actors, (chorus::actors::SaveStateRequest))
  CAF_ADD_TYPE_ID(chorus_model_actors, (chorus::actors::LoadStateRequest))
  CAF_ADD_TYPE_ID(chorus_model_actors, (chorus::actors::GenerationDelta))
  CAF_ADD_TYPE_ID(chorus_model_actors, (chorus::actors::ScoresReply))
  CAF_ADD_TYPE_ID(chorus_model_actors, (chorus::actors::ScoresRequest))
  CAF_ADD_TYPE_ID(chorus_model_actors, (chorus::TokenLogprob))
  CAF_ADD_TYPE_ID(chorus_model_actors, (chorus::PositionLogprobs))
  CAF_ADD_TYPE_ID(chorus_model_actors, (chorus::ToolCall))
  CAF_ADD_TYPE_ID(chorus_model_actors, (chorus::Tool))
CAF_END_TYPE_ID_BLOCK(chorus_model_actors)
