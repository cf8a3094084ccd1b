// The chat formats, rendered into pieces a tokenizer turns into ids: ChatML (Qwen's template) with
// tools and reasoning, and Llama 3's headers; and the spellings Hugging Face templates write text in
// (Python's JSON, Python's strip).
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

/// A rendered conversation's part: a special token by name, the template's own text, or a
/// message's text. A tokenizer reads the template's text as Hugging Face reads rendered text (an
/// added token spelled there, such as <tool_call>, is that token) and message text as plain text.
struct ChatPiece {
  enum class Kind { special, markup, text };
  Kind kind;
  std::string value;
};

/// The conversation in ChatML as Qwen3's template writes it: the tools (if any) in the system turn,
/// an assistant turn's calls as <tool_call> blocks, consecutive "tool" messages as one user turn of
/// <tool_response> blocks. A `thinking` template (Qwen3's own, not Qwen2.5's) also writes the
/// reasoning of the assistant turns after the last user message in a <think> block (the last turn
/// always has one, empty if need be), reads a reasoning left in an earlier turn's content out of
/// it, and with `enable_thinking` false ends the generation prompt with an empty <think> block.
/// @throws std::invalid_argument naming the tool whose parameters are not a JSON object's text, or
/// a message of another role.
std::vector<ChatPiece> render_chatml(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                     const std::vector<Tool>& tools, bool thinking = false,
                                     bool enable_thinking = true);

/// The conversation in Llama 3's format as Meta's templates write it: <|begin_of_text|>, then each
/// message under its role's header with its content trimmed (Python's strip). With a `date` (the
/// Llama 3.1 template, which 3.2 and 3.3 keep) a system turn always comes first, holding the
/// knowledge cutoff, "Today Date: " `date` and the conversation's system message if it opens with
/// one; and tools as that template writes them by default: "Environment: ipython" in the system
/// turn, the tools (indented JSON) and how to call them opening the first message after it, a call
/// as the assistant turn `{"name": ..., "parameters": ...}`, a "tool" message as an "ipython" turn
/// holding its content as a JSON string.
/// @throws std::invalid_argument for tools or tool messages without a `date` (Llama 3's first
/// template has none), tools and no first message, a turn with several calls (the template takes
/// one), arguments that are not a JSON object.
std::vector<ChatPiece> render_llama3(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                     const std::vector<Tool>& tools, const std::optional<std::string>& date);

/// Today's date as Llama 3.2's template writes it (strftime_now("%d %b %Y") in transformers: the
/// local date, "07 Dec 2026").
std::string today_for_chat_template();

/// `text` without the whitespace Python's str.strip() removes (the templates' `trim`).
std::string python_strip(std::string_view text);

/// The completions SamplingParams::tool_choice allows: "required", one or more calls of `tools` in
/// <tool_call> blocks as Qwen's template writes them (one per line; one only unless `parallel`), or
/// in the `json` format one call as Llama 3.1's template writes it (`{"name": ..., "parameters":
/// ...}`), each call's arguments a JSON object satisfying its tool's parameters (any object
/// without); a tool's name, one call of it.
/// @throws std::invalid_argument for no tools, a name that is none of them, or parameters that
/// guided decoding cannot follow (naming the tool and where in its schema).
Grammar tool_call_grammar(const std::vector<Tool>& tools, const std::string& tool_choice, bool parallel = true,
                          ToolCallFormat format = ToolCallFormat::tagged);

/// `tool` as OpenAI's API and Hugging Face's templates hold it: {"type": "function", "function":
/// {"name", "description", "parameters"}} (those it has).
/// @throws std::invalid_argument naming the tool if its parameters are not a JSON object's text.
nlohmann::ordered_json tool_json(const Tool& tool);

/// `value` as Python's json.dumps writes it (", " and ": " between items, UTF-8 as is): what the
/// `tojson` filter of Hugging Face's chat templates gives.
std::string python_json(const nlohmann::ordered_json& value);

} // namespace chorus::models
