// The chat formats chorus writes itself, rendered into pieces a tokenizer turns into ids (ChatML with
// tools, Llama 3's headers: for tokenizers without a template of their own); the conversation as
// Hugging Face templates receive it; reading and guiding tool calls; and the spellings templates
// write text in (Python's JSON, Python's strip).
#pragma once

#include <chorus/generation.hpp>

#include "models/grammar.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chorus::models {

/// The tags of Qwen's format: a function call's block and a thinking model's reasoning block.
inline constexpr std::string_view kCallOpen = "<tool_call>";
inline constexpr std::string_view kCallClose = "</tool_call>";
inline constexpr std::string_view kThinkOpen = "<think>";
inline constexpr std::string_view kThinkClose = "</think>";
/// What Llama 3.1 may write before a call (its turn is then the call's JSON object).
inline constexpr std::string_view kPythonTag = "<|python_tag|>";
/// Mistral's markers: the calls that end a turn, and (tokenizer v11 on) a call's arguments and id.
/// Special tokens that decoding keeps in a completion's text, so that its calls can be read back.
inline constexpr std::string_view kMistralCalls = "[TOOL_CALLS]";
inline constexpr std::string_view kMistralArgs = "[ARGS]";
inline constexpr std::string_view kMistralCallId = "[CALL_ID]";

/// A rendered conversation's part: a special token by name, the template's own text, or a
/// message's text. A tokenizer reads the template's text as Hugging Face reads rendered text (an
/// added token spelled there, such as <tool_call>, is that token) and message text as plain text.
struct ChatPiece {
  enum class Kind { special, markup, text };
  Kind kind;
  std::string value;
};

/// The conversation in ChatML as Qwen's templates write it, for a tokenizer without a template of
/// its own (the built-in byte tokenizer, a tokenizer.json alone): the tools (if any) in the system
/// turn, an assistant turn's calls as <tool_call> blocks, consecutive "tool" messages as one user
/// turn of <tool_response> blocks. A model's own template runs in the Jinja engine instead.
/// @throws std::invalid_argument naming the tool whose parameters are not a JSON object's text, or
/// a message of another role.
std::vector<ChatPiece> render_chatml(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                     const std::vector<Tool>& tools);

/// The conversation in Llama 3's first format: <|begin_of_text|>, then each message under its role's
/// header with its content trimmed (Python's strip), and the assistant's header when asked; unlike
/// Meta's first template, which writes that header even when not asked.
/// @throws std::invalid_argument for tools, tool calls or tool messages (the format has none).
std::vector<ChatPiece> render_llama3(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                     const std::vector<Tool>& tools);

/// The length of the whitespace character Python's str.isspace accepts at the start (end) of `text`
/// (0: none): ASCII's, the separators 0x1c-0x1f, and Unicode's spaces and line breaks, in UTF-8.
std::size_t python_leading_space(std::string_view text);
std::size_t python_trailing_space(std::string_view text);

/// `text` without the whitespace Python's str.strip() removes (the templates' `trim`).
std::string python_strip(std::string_view text);

/// The completions SamplingParams::tool_choice allows: "required", one or more calls of `tools` in
/// <tool_call> blocks as Qwen's template writes them (one per line; one only unless `parallel`), or
/// in the `json` format one call as Llama 3.1's template writes it (`{"name": ..., "parameters":
/// ...}`), in the `mistral` format one `[TOOL_CALLS][...]` list of calls (", " between them), each
/// call's arguments a JSON object satisfying its tool's parameters (any object
/// without); a tool's name, one call of it.
/// @throws std::invalid_argument for no tools, a name that is none of them, or parameters that
/// guided decoding cannot follow (naming the tool and where in its schema).
Grammar tool_call_grammar(const std::vector<Tool>& tools, const std::string& tool_choice, bool parallel = true,
                          ToolCallFormat format = ToolCallFormat::tagged);

/// `tool` as OpenAI's API and Hugging Face's templates hold it: {"type": "function", "function":
/// {"name", "description", "parameters"}} (those it has).
/// @throws std::invalid_argument naming the tool if its parameters are not a JSON object's text.
nlohmann::ordered_json tool_json(const Tool& tool);

/// The conversation as Hugging Face chat templates receive it (apply_chat_template's variables, with
/// calls' arguments parsed into objects as vLLM gives them): {"messages": [...], "tools": [...] or
/// null}. A message is {"role", "content"}, an assistant turn's `reasoning_content` and `tool_calls`
/// ([{"id" if any, "type": "function", "function": {"name", "arguments": {...}}}]) when it has them, a
/// tool message's `tool_call_id` and `name` those of the call it answers (the calls of the assistant
/// turn before, in order).
/// @throws std::invalid_argument naming the message and call whose arguments are not a JSON
/// object, or the tool whose parameters are not.
nlohmann::ordered_json openai_conversation(const std::vector<ChatMessage>& messages, const std::vector<Tool>& tools);

/// `value` as Python's json.dumps writes it (", " and ": " between items, UTF-8 as is): what the
/// `tojson` filter of Hugging Face's chat templates gives.
std::string python_json(const nlohmann::ordered_json& value);

} // namespace chorus::models
