// The OpenAI API's wire format, as chorus-serve speaks it: request bodies of /v1/chat/completions and
// /v1/completions parsed into what a policy actor generates, and the response, stream-chunk and error
// bodies built from what it generated. No HTTP and no actors here: pure functions, tested alone.
#pragma once

#include <chorus/generation.hpp>

#include "serve/turn_stream.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace chorus::serve {

/// A request the API refuses, answered with `status` and OpenAI's error body.
struct ApiError : std::runtime_error {
  ApiError(int status, const std::string& message, std::string param = {}, std::string code = {},
           std::string type = "invalid_request_error")
    : std::runtime_error(message), status(status), param(std::move(param)), code(std::move(code)),
      type(std::move(type)) {}
  int status;
  std::string param, code, type;
};

/// {"error": {"message", "type", "param", "code"}}: what OpenAI's clients parse an error from.
std::string error_body(const ApiError& error);

/// What the server allows in a request.
struct RequestLimits {
  /// The name the model is served under: a request's "model" must be it.
  std::string model;
  /// The most choices ("n") per request.
  std::int64_t max_choices = 16;
  /// max_tokens when a chat request gives none (a completions request's default is OpenAI's, 16).
  std::int64_t default_max_tokens = 256;
  /// The sampling settings a request that gives none gets: OpenAI's (temperature 1, top_p 1, no
  /// top_k), or the model's own (apply_generation_config).
  double default_temperature = 1.0;
  double default_top_p = 1.0;
  std::int64_t default_top_k = 0;
  double default_repetition_penalty = 1.0;
};

/// Takes the sampling defaults of a model's generation_config.json (`generation_config`, the file's
/// JSON) into `limits`, as vLLM serves by default: temperature, top_p, top_k (-1: none) and
/// repetition_penalty. Returns what it set ("temperature=0.6", ...) and, prefixed with "not
/// applied: ", the keys it leaves: min_p (unless 0) and max_new_tokens.
/// @throws std::invalid_argument naming the key for a value a request could not give.
std::vector<std::string> apply_generation_config(RequestLimits& limits, const nlohmann::json& generation_config);

/// A parsed generation request: its choices are generated independently (each with its own seed).
struct CompletionRequest {
  /// /v1/chat/completions (else /v1/completions).
  bool chat = true;
  std::string model;
  /// The conversation (chat).
  std::vector<ChatMessage> messages;
  /// The prompt (completions): text, or token ids when `prompt` was an array of integers.
  std::string prompt;
  std::vector<std::int64_t> prompt_tokens;
  SamplingParams sampling;
  std::int64_t n = 1;
  bool stream = false;
  /// stream_options.include_usage: a last chunk with the token counts.
  bool include_usage = false;
  /// The completions API's echo: each choice's text (and log-probs) begins with the prompt's.
  bool echo = false;
  /// The functions the model may call (chat; none when tool_choice is "none").
  std::vector<Tool> tools;
};

/// @throws ApiError (400, naming the field) for a body that is not a valid request, (404) for
/// another model than the one served.
CompletionRequest parse_chat_request(const std::string& body, const RequestLimits& limits);
CompletionRequest parse_completion_request(const std::string& body, const RequestLimits& limits);

/// The identity of one response: its id ("chatcmpl-..." or "cmpl-..."), time and model.
struct ResponseHeader {
  std::string id;
  std::int64_t created = 0;
  std::string model;
  bool chat = true;
  /// The request asked for log-probs: each choice and chunk carries them.
  bool logprobs = false;
  /// Echo: the prompt as given (empty for token ids: then the text of its tokens) goes before each
  /// choice's text, and its positions before the choice's.
  bool echo = false;
  std::string prompt;
  /// The request offered tools: each choice's calls (in the model's tool_call_format) become its
  /// message's tool_calls.
  bool tool_calls = false;
  ToolCallFormat tool_call_format = ToolCallFormat::tagged;
  /// The model thinks (InferenceModel::thinks): a chat choice's leading <think> block becomes its
  /// message's reasoning_content (parse_assistant_turn).
  bool reasoning = false;
  /// The request's prompt left the <think> block open (InferenceModel::opens_thinking): a chat
  /// choice starts inside its reasoning.
  bool reasoning_opened = false;
};

/// `prefix` and 24 random letters and digits: a response's or a tool call's id.
std::string random_id(std::string prefix);

/// A new response identity for `request`.
ResponseHeader make_header(const CompletionRequest& request);

/// The whole (non-streamed) response body: one choice per generation, in order.
std::string response_body(const ResponseHeader& header, const std::vector<Generation>& choices);

/// What a stream has sent of one choice so far.
struct StreamedChoice {
  /// Its first chunk went out (a chat choice's first chunk carries the assistant role).
  bool started = false;
  /// Positions whose log-probs went out, and their tokens' characters (the completions API's
  /// text_offset of the next one).
  std::size_t positions = 0;
  std::size_t characters = 0;
  /// The text so far, a chat choice's told apart into reasoning, content and calls as it comes.
  TurnStream turn;
};

/// One server-sent event of a streamed response ("data: {...}\n\n"): a piece of choice `index`'s
/// text, with the log-probs of `positions` if the request asked for them. Records it in `sent`.
/// A chat choice's reasoning goes out as `reasoning_content`; text that may still be another part
/// (TurnStream) is held back: "" when there is nothing to send.
std::string chunk_event(const ResponseHeader& header, std::int64_t index, const std::string& text,
                        const std::vector<PositionLogprobs>& positions, StreamedChoice& sent);

/// The event that ends choice `index` with its finish reason, after the text held back as reasoning,
/// content or the tool calls it makes (finish reason "tool_calls").
std::string finish_event(const ResponseHeader& header, std::int64_t index, const std::string& finish_reason,
                         StreamedChoice& sent);

/// The usage event (stream_options.include_usage): no choices, the token counts of all of them.
std::string usage_event(const ResponseHeader& header, const std::vector<Generation>& choices);

/// An error inside a stream that has already begun (the status line has gone out).
std::string error_event(const ApiError& error);

/// The end of a stream.
inline const char* const kDoneEvent = "data: [DONE]\n\n";

/// The body of /v1/models for the model served.
std::string models_body(const std::string& model, std::int64_t created);

} // namespace chorus::serve
