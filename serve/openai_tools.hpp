// Function calling in the OpenAI API's wire format: a chat request's `tools`, `tool_choice` and the
// tool messages of its conversation, and the `tool_calls` of a response read back from the text the
// model wrote (parse_tool_calls in the model's format: `<tool_call>` blocks, or Llama 3.1's JSON call).
#pragma once

#include <chorus/generation.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace chorus::serve {

/// `tools`: [{"type": "function", "function": {"name", "description", "parameters", "strict"}}, ...],
/// read keeping the parameters' key order (the prompt shows them as given).
/// @throws ApiError (400, naming the field) for anything else.
std::vector<Tool> parse_tools(const nlohmann::ordered_json& tools);

/// `tool_choice` ("none", "auto", "required" or {"type": "function", "function": {"name": ...}}) as
/// SamplingParams::tool_choice has it: "" for "auto", "none" kept (the caller leaves the tools out).
/// A choice that guided decoding must follow is compiled here, so that a tool it cannot follow is a
/// 400 naming it.
/// @throws ApiError (400) for another value, a name that is none of `tools`, or a choice without tools.
std::string parse_tool_choice(const nlohmann::json* choice, const std::vector<Tool>& tools);

/// An assistant message's `tool_calls`: [{"id", "type": "function", "function": {"name", "arguments"}}].
/// @throws ApiError (400) naming `where` for anything else.
std::vector<ToolCall> parse_message_tool_calls(const nlohmann::json& calls, const std::string& where);

/// `calls` as a response's message holds them (with `index` as a stream's delta does).
nlohmann::json tool_calls_value(const std::vector<ToolCall>& calls, bool with_index);

} // namespace chorus::serve
