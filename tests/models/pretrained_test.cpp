// Model references: builtin:tiny from a seed, and a saved folder that loads back as the same model
// with a tokenizer that gives the same ids.
#include <chorus/errors.hpp>

#include "models/pretrained.hpp"
#include "tests/expect_error.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <initializer_list>
#include <string_view>

using namespace chorus::models;
using chorus::test::expect_error_containing;

namespace {

// Loading `reference` must fail with a CheckpointError saying each of `fragments`.
void expect_load_error(const std::string& reference, std::initializer_list<std::string_view> fragments,
                       const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  expect_error_containing<chorus::CheckpointError>([&] { load_pretrained_model(reference); }, fragments, file, line);
}

TEST(Pretrained, BuiltinTinyIsDeterministicPerSeed) {
  auto a = load_pretrained_model("builtin:tiny", torch::kFloat32, 7);
  auto b = load_pretrained_model("builtin:tiny", torch::kFloat32, 7);
  auto c = load_pretrained_model("builtin:tiny", torch::kFloat32, 8);
  auto tokens = torch::tensor(a.tokenizer->encode("hello"), torch::kInt64).unsqueeze(0);
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(a.model->forward(tokens), b.model->forward(tokens)));
  EXPECT_FALSE(torch::equal(a.model->forward(tokens), c.model->forward(tokens)));
  EXPECT_GE(a.model->config().vocab_size, a.tokenizer->vocab_size());
  std::int64_t parameters = 0;
  for (const auto& p : a.model->parameters())
    parameters += p.numel();
  EXPECT_GT(parameters, 1'000'000);
  EXPECT_LT(parameters, 10'000'000) << "a few million parameters";
}

TEST(Pretrained, SavedFolderLoadsAsTheSameModelAndTokenizer) {
  auto original = builtin_tiny(3);
  auto folder = std::filesystem::path(::testing::TempDir()) / "saved_tiny";
  std::filesystem::remove_all(folder);
  save_pretrained_model(original, folder);
  auto loaded = load_pretrained_model(folder.string());
  std::vector<ChatMessage> chat{{"user", "Grüße! <|im_end|> 2+2=?"}};
  auto ids = original.tokenizer->apply_chat_template(chat, true);
  EXPECT_EQ(loaded.tokenizer->apply_chat_template(chat, true), ids);
  EXPECT_EQ(loaded.tokenizer->stop_token_ids(), original.tokenizer->stop_token_ids());
  auto tokens = torch::tensor(ids, torch::kInt64).unsqueeze(0);
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(original.model->forward(tokens), loaded.model->forward(tokens)));
  // Saving a loaded model again keeps its tokenizer files.
  auto again = std::filesystem::path(::testing::TempDir()) / "saved_tiny_again";
  std::filesystem::remove_all(again);
  save_pretrained_model(loaded, again);
  EXPECT_TRUE(std::filesystem::exists(again / "tokenizer.json"));
  EXPECT_TRUE(std::filesystem::exists(again / "tokenizer_config.json"));
}

// transformers' generate stops at generation_config.json's end-of-sequence ids too (Phi-3's names
// <|end|> there, its config.json <|endoftext|> only): they join the model's stop ids.
TEST(Pretrained, GenerationConfigsEndOfSequenceIdsStopGeneration) {
  auto tiny = builtin_tiny(3);
  auto folder = std::filesystem::path(::testing::TempDir()) / "tiny_generation_config";
  std::filesystem::remove_all(folder);
  save_pretrained_model(tiny, folder);
  // A model that had none gets what transformers writes then: its ids, taken from config.json.
  auto written = nlohmann::json::parse(std::ifstream(folder / "generation_config.json"));
  EXPECT_EQ(written["_from_model_config"], true);
  EXPECT_EQ(written["eos_token_id"], tiny.model->config().to_json()["eos_token_id"]);
  std::ofstream(folder / "generation_config.json")
    << R"({"bos_token_id": 1, "eos_token_id": [7, 9], "temperature": 0.6, "top_p": 0.95, "do_sample": true})";
  auto loaded = load_pretrained_model(folder.string());
  auto ids = loaded.model->config().eos_token_ids;
  for (auto id : {7, 9})
    EXPECT_NE(std::find(ids.begin(), ids.end(), id), ids.end()) << id;
  EXPECT_EQ(ids.size(), tiny.model->config().eos_token_ids.size() + 2);
  // A save writes the folder's generation defaults back as they were.
  auto saved = std::filesystem::path(::testing::TempDir()) / "tiny_generation_config_saved";
  std::filesystem::remove_all(saved);
  save_pretrained_model(loaded, saved);
  EXPECT_EQ(nlohmann::json::parse(std::ifstream(saved / "generation_config.json")),
            nlohmann::json::parse(std::ifstream(folder / "generation_config.json")));
  // ... whatever it holds: ids are not added to a folder's own file.
  std::ofstream(folder / "generation_config.json") << R"({"temperature": 0.7})";
  save_pretrained_model(load_pretrained_model(folder.string()), saved);
  EXPECT_EQ(nlohmann::json::parse(std::ifstream(saved / "generation_config.json")),
            nlohmann::json({{"temperature", 0.7}}));
  std::ofstream(folder / "generation_config.json") << R"({"eos_token_id": "<|end|>"})";
  expect_load_error(folder.string(), {"generation_config.json", "key 'eos_token_id'", "expected token ids"});
}

// Gemma 3 1B's tokenizer lists the multimodal models' image token one id past its embedding: an
// added token past the model's vocabulary is dropped, and text that spells it stays text.
TEST(Pretrained, AddedTokensPastTheEmbeddingAreDroppedNotProduced) {
  auto tiny = builtin_tiny(3);
  auto folder = std::filesystem::path(::testing::TempDir()) / "tiny_extra_token";
  std::filesystem::remove_all(folder);
  save_pretrained_model(tiny, folder);
  auto json = nlohmann::json::parse(std::ifstream(folder / "tokenizer.json"));
  auto past = tiny.model->config().vocab_size;
  json["added_tokens"].push_back({{"id", past}, {"content", "<image>"}, {"special", true}});
  std::ofstream(folder / "tokenizer.json") << json.dump();
  auto loaded = load_pretrained_model(folder.string());
  EXPECT_LE(loaded.tokenizer->vocab_size(), past);
  EXPECT_FALSE(loaded.tokenizer->special_token("<image>"));
  auto ids = loaded.tokenizer->encode("a<image>");
  EXPECT_EQ(ids.size(), 8u); // one per byte
  EXPECT_EQ(loaded.tokenizer->decode(ids), "a<image>");
}

TEST(Pretrained, BadReferencesAreErrorsThatSayWhatWasExpected) {
  expect_load_error("builtin:huge", {"expected builtin:tiny"});
  expect_load_error("/nonexistent/model", {"not a folder"});
  auto folder = std::filesystem::path(::testing::TempDir()) / "no_tokenizer";
  std::filesystem::remove_all(folder);
  auto tiny = builtin_tiny();
  auto model = tiny.model;
  chorus::models::save_pretrained_model(tiny, folder);
  std::filesystem::remove(folder / "tokenizer.json");
  expect_load_error(folder.string(), {"no tokenizer.json"});

  // The tokenizer.json of another model: more tokens than the embedding has rows.
  std::filesystem::copy_file(std::filesystem::path(CHORUS_SOURCE_DIR) / "fuzz/corpus/tokenizer/qwen3-small.json",
                             folder / "tokenizer.json");
  expect_load_error(folder.string(), {"tokenizer.json has 409 tokens but config.json's vocab_size is 264"});

  // Weights missing, then torn: a header that claims more than the file holds.
  chorus::models::save_pretrained_model(tiny, folder);
  auto weights = folder / "model.safetensors";
  auto size = std::filesystem::file_size(weights);
  std::filesystem::rename(weights, folder / "elsewhere.safetensors");
  expect_load_error(folder.string(), {"no model.safetensors or model.safetensors.index.json"});
  std::filesystem::rename(folder / "elsewhere.safetensors", weights);
  std::filesystem::resize_file(weights, size / 2);
  expect_load_error(folder.string(), {"model.safetensors", "outside the data section"});
}

TEST(Pretrained, ASaveReplacesTheFolderWholeAndLeavesNoPartialFolder) {
  auto folder = std::filesystem::path(::testing::TempDir()) / "atomic_save";
  std::filesystem::remove_all(folder);
  std::filesystem::create_directories(folder);
  std::ofstream(folder / "stale.txt") << "from an older save";
  auto tiny = builtin_tiny();
  chorus::models::save_pretrained_model(tiny, folder);
  EXPECT_TRUE(std::filesystem::exists(folder / "model.safetensors"));
  EXPECT_FALSE(std::filesystem::exists(folder / "stale.txt")); // replaced, not merged into
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(folder.string() + ".partial")));
  EXPECT_NO_THROW(load_pretrained_model(folder.string()));
}

} // namespace
