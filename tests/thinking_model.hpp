// builtin:tiny saved as a Hugging Face folder with Qwen3's own chat template (from the tokenizer
// parity packages), or with its Thinking-2507 form (`opened`: the generation prompt opens the
// <think> block): a thinking model, as far as chat templates go, that runs anywhere.
#pragma once

#include <chorus/chorus.hpp>

#include "tests/qwen3_templates.hpp"

#include <filesystem>
#include <fstream>
#include <string>

namespace chorus::test {

inline Task<std::filesystem::path> save_thinking_tiny(RecipeContext& ctx, std::string name, bool opened = false) {
  auto tiny = co_await (co_await ModelRef{"builtin:tiny"}.to_builder(ctx, {})).spawn_train(name + "-source");
  auto folder = std::filesystem::path(co_await tiny.save(name, ctx));
  auto config = Json::parse(std::ifstream(folder / "tokenizer_config.json"));
  config["chat_template"] = opened ? qwen3_thinking_2507_chat_template() : qwen3_chat_template();
  std::ofstream(folder / "tokenizer_config.json") << config.dump();
  co_return folder;
}

} // namespace chorus::test
