// Conversations in OpenAI's shapes (messages with tool_calls and reasoning_content, tools,
// add_generation_prompt, enable_thinking) that the chat template tests render with the models' own
// templates (tests/tokenizer_parity/render_chat.py: Python's Jinja2, as transformers runs it).
#pragma once

namespace chorus::test {

// Conversations with tools, in OpenAI's shapes: what render_chat.py gives the real template.
inline const char* const kToolConversations = R"j([
  {"add_generation_prompt": true,
   "tools": [
     {"type": "function", "function": {"name": "get_weather", "description": "The weather in a city, in °C.",
      "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                     "unit": {"enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}},
     {"type": "function", "function": {"name": "now"}}],
   "messages": [{"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Weather in Zürich?"}]},
  {"add_generation_prompt": true,
   "tools": [{"type": "function", "function": {"name": "add", "description": "Adds two numbers.",
              "parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}}}],
   "messages": [{"role": "user", "content": "What are 2+3 and 1.5+1?"},
                {"role": "assistant", "content": "",
                 "tool_calls": [{"type": "function", "function": {"name": "add", "arguments": "{\"a\": 2, \"b\": 3}"}},
                                {"type": "function", "function": {"name": "add", "arguments": "{\"a\": 1.5, \"b\": 1}"}}]},
                {"role": "tool", "content": "5"},
                {"role": "tool", "content": "{\n  \"sum\": 2.5\n}"}]},
  {"add_generation_prompt": true,
   "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}],
   "messages": [{"role": "system", "content": "\n\nLeading newlines."},
                {"role": "user", "content": "  Find x."},
                {"role": "assistant", "content": "Let me look.",
                 "tool_calls": [{"type": "function", "function": {"name": "lookup", "arguments": "{}"}}]},
                {"role": "tool", "content": "x = 4"},
                {"role": "assistant", "content": "x is 4."},
                {"role": "user", "content": "Thanks!\n"}]},
  {"add_generation_prompt": false,
   "tools": [],
   "messages": [{"role": "system", "content": "No tools offered."},
                {"role": "user", "content": "Go."},
                {"role": "assistant", "content": "",
                 "tool_calls": [{"type": "function", "function": {"name": "go", "arguments": "{\"far\": true}"}}]},
                {"role": "tool", "content": "went"},
                {"role": "user", "content": "Good."}]}
])j";

// Conversations with reasoning: given as reasoning_content or left in the content, in the turns
// after the last user message (written in a <think> block) and before it (left out), the last
// turn's empty block, a generation prompt that skips the thinking, and tool calls between.
inline const char* const kThinkingConversations = R"j([
  {"add_generation_prompt": false, "tools": [],
   "messages": [{"role": "user", "content": "2+2?"},
                {"role": "assistant", "reasoning_content": "\nTwo and two.\nFour.\n", "content": "\n4"}]},
  {"add_generation_prompt": false, "tools": [],
   "messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]},
  {"add_generation_prompt": true, "tools": [],
   "messages": [{"role": "user", "content": "2+2?"},
                {"role": "assistant", "content": "<think>\nTwo and two.\n</think>\n\n4"},
                {"role": "user", "content": "And 3+3?"}]},
  {"add_generation_prompt": true, "enable_thinking": false, "tools": [],
   "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]},
  {"add_generation_prompt": false, "tools": [],
   "messages": [{"role": "user", "content": "2+2?"},
                {"role": "assistant", "reasoning_content": "Easy.", "content": "4"},
                {"role": "user", "content": "And 3+3?"},
                {"role": "assistant", "content": "Hmm.<think>six</think>6"}]},
  {"add_generation_prompt": true,
   "tools": [{"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}],
   "messages": [{"role": "user", "content": "What is 2+3?"},
                {"role": "assistant", "reasoning_content": "I should add.", "content": "",
                 "tool_calls": [{"type": "function", "function": {"name": "add", "arguments": "{\"a\": 2, \"b\": 3}"}}]},
                {"role": "tool", "content": "5"},
                {"role": "assistant", "content": "Checking again.",
                 "tool_calls": [{"type": "function", "function": {"name": "add", "arguments": "{\"a\": 3, \"b\": 2}"}}]},
                {"role": "tool", "content": "5"},
                {"role": "assistant", "reasoning_content": "Both 5.", "content": "5"}]}
])j";

// Conversations without tools: system messages or none, several turns, contents with whitespace
// around them (the Llama templates trim it), an empty system message.
inline const char* const kPlainConversations = R"j([
  {"add_generation_prompt": true, "tools": [],
   "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi"}]},
  {"add_generation_prompt": true, "tools": [], "messages": [{"role": "user", "content": "2+2?"}]},
  {"add_generation_prompt": false, "tools": [],
   "messages": [{"role": "user", "content": "  What is 2+2?\n"},
                {"role": "assistant", "content": "4\n\n"},
                {"role": "user", "content": "\tAnd 3+3? \u00a0"},
                {"role": "assistant", "content": " \u3000Six."}]},
  {"add_generation_prompt": true, "tools": [],
   "messages": [{"role": "system", "content": "  \n"}, {"role": "user", "content": "Zürich?"},
                {"role": "assistant", "content": "A city."}, {"role": "user", "content": "Where?"}]}
])j";

// Llama 3.1's tool format: the tools in the first user message, a call as the turn's JSON object,
// results in ipython turns (as JSON strings).
inline const char* const kLlamaToolConversations = R"j([
  {"add_generation_prompt": true,
   "tools": [
     {"type": "function", "function": {"name": "book", "description": "Books a trip to a city, in €.",
      "parameters": {"type": "object", "properties": {"trip": {"type": "object", "properties": {
                     "cities": {"type": "array", "items": {"type": "string"}}, "budget": {"type": "number"}}},
                     "notes": {"type": ["string", "null"]}}, "required": []}}},
     {"type": "function", "function": {"name": "now"}}],
   "messages": [{"role": "user", "content": " Book Zürich and Köln.\n"}]},
  {"add_generation_prompt": true,
   "tools": [{"type": "function", "function": {"name": "add", "description": "Adds two numbers.",
              "parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                             "additionalProperties": false}}}],
   "messages": [{"role": "user", "content": "What is 2+3?"},
                {"role": "assistant", "content": "",
                 "tool_calls": [{"type": "function", "function": {"name": "add", "arguments": "{\"a\": 2, \"b\": 3.5}"}}]},
                {"role": "tool", "content": "5.5"},
                {"role": "assistant", "content": "It is 5.5."},
                {"role": "user", "content": "And the \"sum\" as JSON?"},
                {"role": "assistant", "content": "Let me call.",
                 "tool_calls": [{"type": "function", "function": {"name": "add", "arguments": "{}"}}]},
                {"role": "tool", "content": "{\n  \"sum\": \"ünïcode\"\n}"}]},
  {"add_generation_prompt": false, "tools": [],
   "messages": [{"role": "user", "content": "Go."},
                {"role": "assistant", "content": "",
                 "tool_calls": [{"type": "function", "function": {"name": "go", "arguments": "{\"far\": [true, null]}"}}]},
                {"role": "tool", "content": "went"},
                {"role": "user", "content": "Good."}]}
])j";

} // namespace chorus::test
