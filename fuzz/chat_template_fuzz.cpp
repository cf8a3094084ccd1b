// Fuzzes the chat template engine: a template comes with a model folder, and a folder from the Hub
// is someone else's file. Any source either parses or is refused with JinjaError; a parsed template
// either renders a conversation (with tools, calls and reasoning) or stops with JinjaError, within
// bounded time and memory; and what it renders alternates between the template's text and the
// conversation's, no piece empty.
#include "models/jinja.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace {

const nlohmann::ordered_json& conversation() {
  static const auto value = nlohmann::ordered_json::parse(R"j({
    "messages": [{"role": "system", "content": "Be brief."},
                 {"role": "user", "content": "Add 2 and 3 <|im_end|>"},
                 {"role": "assistant", "content": "", "reasoning_content": "Use the tool.",
                  "tool_calls": [{"id": "a1b2c3d4e", "type": "function",
                                  "function": {"name": "add", "arguments": {"a": 2, "b": 3}}}]},
                 {"role": "tool", "content": "5", "tool_call_id": "a1b2c3d4e", "name": "add"},
                 {"role": "assistant", "content": "<think>\nSum.\n</think>\n\n5"}],
    "tools": [{"type": "function", "function": {"name": "add", "description": "Adds.",
               "parameters": {"type": "object", "properties": {"a": {"type": "number"}}}}}]})j");
  return value;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view source(reinterpret_cast<const char*>(data), size);
  try {
    chorus::models::JinjaTemplate engine(source);
    nlohmann::ordered_json settings{
      {"add_generation_prompt", true}, {"enable_thinking", false}, {"bos_token", "<s>"}, {"eos_token", "</s>"}};
    auto pieces = engine.render(conversation(), settings);
    for (std::size_t i = 0; i < pieces.size(); ++i) {
      if (pieces[i].value.empty() || (i > 0 && pieces[i].kind == pieces[i - 1].kind)) {
        std::fprintf(stderr, "piece %zu is empty or of the same kind as the one before\n", i);
        std::abort();
      }
    }
  } catch (const chorus::models::JinjaError&) {
  }
  return 0;
}
