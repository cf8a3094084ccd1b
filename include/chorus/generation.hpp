// What a recipe sends to a model and gets back from it: chat messages, sampling parameters and the
// generated completion with its token ids and log-probs.
#pragma once

#include <chorus/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace chorus {

/// A function call an assistant turn makes (OpenAI's `tool_calls[i].function`).
struct ToolCall {
  /// The function's name.
  std::string name;
  /// Its arguments: a JSON object's text, as the model wrote it.
  std::string arguments;
  /// The call's id, for an API that pairs calls with results (chorus-serve); "" inside a recipe.
  std::string id;
};

/// One turn of a conversation: `role` is "system", "user", "assistant" or "tool".
struct ChatMessage {
  /// "system", "user", "assistant", or "tool" (a function's result, answering the calls of the
  /// assistant turn before it in order).
  std::string role;
  /// The message's text.
  std::string content;
  /// An assistant turn's function calls (rendered after its content).
  std::vector<ToolCall> tool_calls;
  /// An assistant turn's thinking (OpenAI-compatible servers' `reasoning_content`): a thinking
  /// model's chat template (Qwen3's) writes it in a `<think>` block before the content of the turns
  /// after the last user message, and leaves it out of earlier turns; other templates leave it out.
  std::string reasoning;
};

/// A function the model may call: a chat template renders the list of them into the prompt
/// (OpenAI's `tools[i].function`; ChatML models such as Qwen write calls as Hermes-style
/// `<tool_call>` blocks, Llama 3.1 and later as a JSON object, which parse_assistant_turn reads back).
struct Tool {
  /// The function's name: what a call names.
  std::string name;
  /// What it does, for the model ("" leaves it out).
  std::string description;
  /// The JSON Schema of its arguments object, as text (its keys keep their order in the prompt);
  /// "" leaves it out.
  std::string parameters;
};

/// How a model's chat template writes an assistant turn's function calls, and so how they are read
/// back (InferenceModel::tool_call_format).
enum class ToolCallFormat {
  /// ChatML models (Qwen2.5, Qwen3, Hermes-style): `<tool_call>` blocks after the turn's content.
  tagged,
  /// Llama 3.1, 3.2 and 3.3: the turn is the call, a JSON object `{"name": ..., "parameters": {...}}`
  /// (one call a turn; results come back in "ipython" turns).
  json,
  /// Mistral's models (Nemo, Small 3, Devstral, Magistral): `[TOOL_CALLS]` after the turn's content,
  /// then a JSON list of `{"name": ..., "arguments": {...}, "id": ...}`, or (tokenizer v11 on)
  /// `name[ARGS]{...}` for each call, each after its own `[TOOL_CALLS]`. Call ids are nine letters
  /// and digits, as their templates require.
  mistral,
};

/// The assistant turn that completion `text` makes.
/// - `tagged`: the text before its first `<tool_call>` block as content (trailing white space
///   dropped), and each block as a call; a block holds `{"name": ..., "arguments": {...}}` and ends
///   with `</tool_call>` (the last may lack it, as when generation stopped there).
/// - `json`: a text that is one JSON object `{"name": ..., "parameters": {...}}` ("arguments" is
///   read too), or several separated by ";" (as vLLM's Llama 3 parser reads them), white space
///   around, is calls and no content.
/// - `mistral`: the text before `[TOOL_CALLS]` as content (trailing white space dropped), and the
///   calls after it in either of Mistral's forms. A call keeps the id the model wrote; one without
///   gets nine letters and digits drawn from the call (the same completion, the same ids).
///
/// Either way, a call that is not such JSON leaves the whole text as content with no calls (as
/// vLLM's parsers do): a malformed call is then visible to whoever reads it. The arguments are
/// spelled as Python's json.dumps spells them.
ChatMessage parse_tool_calls(const std::string& text, ToolCallFormat format = ToolCallFormat::tagged);

/// The assistant turn that completion `text` makes, read as chorus-serve reads it: with
/// `reasoning` (a thinking model, InferenceModel::thinks), a completion that begins with `<think>`
/// is reasoning up to `</think>` (all of it if cut before; the newlines around it dropped, as
/// Qwen3's template writes them) and content after it; with `opened` too (the prompt left the block
/// open, InferenceModel::opens_thinking) the completion starts inside it, the reasoning running to
/// `</think>` without an opening tag. With `tool_calls`, the content is read by parse_tool_calls in
/// `format` (the model's, InferenceModel::tool_call_format). Neither: the text is the content.
ChatMessage parse_assistant_turn(const std::string& text, bool reasoning, bool tool_calls,
                                 ToolCallFormat format = ToolCallFormat::tagged, bool opened = false);

/// How to sample a completion. The defaults sample from the model's full distribution.
struct SamplingParams {
  /// 0 picks the most likely token (greedy); otherwise the logits are divided by it.
  double temperature = 1.0;
  /// Sample among the k most likely tokens only; 0: all.
  std::int64_t top_k = 0;
  /// Sample among the most likely tokens whose probabilities add up to top_p; 1: all.
  double top_p = 1.0;
  /// The most tokens to generate.
  std::int64_t max_tokens = 256;
  /// Text that ends the completion where it appears (the completion's text stops before it).
  std::vector<std::string> stop;
  /// The same seed, prompt and weights give the same completion; negative: a fresh seed per request.
  std::int64_t seed = -1;
  /// The fewest tokens to generate: end-of-turn tokens are not drawn, and stop strings do not end
  /// the completion, before this many (the text is still cut before a stop string's first match).
  /// Log-probs stay those of the model's whole distribution, as a trainer computes them.
  std::int64_t min_tokens = 0;
  /// Subtracted from the logit of every token the completion already holds (OpenAI's
  /// presence_penalty: positive values steer towards new tokens).
  double presence_penalty = 0.0;
  /// Subtracted from a token's logit once for each time the completion already holds it (OpenAI's
  /// frequency_penalty: positive values curb repetition).
  double frequency_penalty = 0.0;
  /// transformers' and vLLM's repetition penalty: the logit of every token the prompt or the
  /// completion already holds is divided by it where positive and multiplied by it where negative,
  /// before the penalties above (> 1 curbs repetition; 1: none; Qwen2.5's models ship 1.05).
  double repetition_penalty = 1.0;
  /// Added to the logits of these token ids before sampling (OpenAI's logit_bias: -100 bans a
  /// token, +100 all but forces it). Penalties and biases change what is drawn, not the log-probs.
  std::map<std::int64_t, double> logit_bias;
  /// Fill Generation::token_logprobs: each token's text and log-prob, with top_logprobs alternatives.
  bool logprobs = false;
  /// With logprobs: how many of the most likely tokens to report at each position (0: none).
  std::int64_t top_logprobs = 0;
  /// Fill Generation::prompt_logprobs: each prompt token's log-prob given the tokens before it, with
  /// top_logprobs alternatives (vLLM's prompt_logprobs; one more forward pass over the prompt).
  bool prompt_logprobs = false;
  /// Guided decoding (structured output): only tokens that keep the completion on its way to JSON
  /// satisfying this JSON Schema are drawn, and an end-of-turn token only once the JSON is whole
  /// (OpenAI's response_format, vLLM's guided_json); {"type": "object"} asks for any JSON object.
  /// The keywords understood, and the order fields are written in, are in docs/models.md; a schema
  /// with any other keyword is refused. null: no constraint. Log-probs stay the model's.
  Json json_schema;
  /// Guided decoding: the completion is exactly one of these strings (vLLM's guided_choice); empty:
  /// no constraint.
  std::vector<std::string> choice;
  /// Guided decoding: the whole completion matches this regular expression (vLLM's guided_regex), in
  /// the syntax ECMAScript and Python share ("(yes|no): [^\n]{1,200}"; docs/structured-output.md says
  /// what is understood and refused); "": no constraint. At most one of json_schema, choice and regex.
  std::string regex;
  /// Guided decoding of function calls, with tools in the request (OpenAI's tool_choice):
  /// "required": the completion is one or more calls of them, as the model's chat format writes
  /// calls (`<tool_call>` blocks; Llama 3.1's JSON object, one call), with arguments that satisfy
  /// each tool's parameters schema; a tool's name: one call of it; "": the model chooses (no
  /// constraint). At most one of this, json_schema, choice and regex.
  std::string tool_choice;
  /// With tool_choice "required": false allows exactly one call (OpenAI's parallel_tool_calls).
  bool parallel_tool_calls = true;
  /// A thinking model's chat template (Qwen3's) lets the model think first; false writes an empty
  /// `<think>` block into the generation prompt so that it answers at once (the template's
  /// `enable_thinking`). Other templates ignore it.
  bool enable_thinking = true;
};

/// A token, its text and its log-probability at a position of a completion.
struct TokenLogprob {
  /// The token id.
  std::int64_t token = 0;
  /// The bytes the token decodes to on its own (a token may hold part of a UTF-8 character).
  std::string text;
  /// log p(token | everything before it) at temperature 1.
  float logprob = 0.0f;
};

/// One position of a completion: the token generated there and the most likely ones.
struct PositionLogprobs {
  /// The token generated there.
  TokenLogprob chosen;
  /// SamplingParams::top_logprobs tokens, most likely first.
  std::vector<TokenLogprob> top;
};

/// A generated completion.
struct Generation {
  /// The completion's text, cut before a stop string; special tokens left out.
  std::string text;
  /// The prompt as the model saw it (after the chat template).
  std::vector<std::int64_t> prompt_tokens;
  /// The generated tokens, the stop token included.
  std::vector<std::int64_t> tokens;
  /// log p(token | everything before it) at temperature 1, one per token: what a trainer recomputes.
  std::vector<float> logprobs;
  /// "stop" (a stop token or stop string) or "length" (max_tokens reached).
  std::string finish_reason;
  /// The weight version that generated it (0: the weights the model was loaded with).
  std::int64_t weight_version = 0;
  /// With SamplingParams::logprobs: one entry per token that `text` is made of (an end-of-turn token
  /// and the tokens after a stop string are left out), else empty.
  std::vector<PositionLogprobs> token_logprobs;
  /// With SamplingParams::prompt_logprobs: one entry per prompt token, with the weights the request
  /// found; the first token has nothing before it, so its log-prob is NaN and it has no alternatives.
  std::vector<PositionLogprobs> prompt_logprobs;
};

} // namespace chorus
