// Model references: builtin:tiny from a seed, and a saved folder that loads back as the same model
// with a tokenizer that gives the same ids.
#include <chorus/errors.hpp>

#include "models/pretrained.hpp"

#include <gtest/gtest.h>

#include <fstream>

using namespace chorus::models;

namespace {

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

TEST(Pretrained, BadReferencesAreErrorsThatSayWhatWasExpected) {
  auto error_of = [](const std::string& reference) {
    try {
      load_pretrained_model(reference);
    } catch (const chorus::CheckpointError& error) {
      return std::string(error.what());
    }
    return std::string("no CheckpointError");
  };
  EXPECT_NE(error_of("builtin:huge").find("expected builtin:tiny"), std::string::npos);
  EXPECT_NE(error_of("/nonexistent/model").find("not a folder"), std::string::npos);
  auto folder = std::filesystem::path(::testing::TempDir()) / "no_tokenizer";
  std::filesystem::remove_all(folder);
  auto tiny = builtin_tiny();
  auto model = tiny.model;
  chorus::models::save_pretrained_model(tiny, folder);
  std::filesystem::remove(folder / "tokenizer.json");
  EXPECT_NE(error_of(folder.string()).find("no tokenizer.json"), std::string::npos);

  // The tokenizer.json of another model: more tokens than the embedding has rows.
  std::filesystem::copy_file(std::filesystem::path(CHORUS_SOURCE_DIR) / "fuzz/corpus/tokenizer/qwen3-small.json",
                             folder / "tokenizer.json");
  EXPECT_NE(error_of(folder.string()).find("tokenizer.json has 409 tokens but config.json's vocab_size is 264"),
            std::string::npos)
    << error_of(folder.string());

  // Weights missing, then torn: a header that claims more than the file holds.
  chorus::models::save_pretrained_model(tiny, folder);
  auto weights = folder / "model.safetensors";
  auto size = std::filesystem::file_size(weights);
  std::filesystem::rename(weights, folder / "elsewhere.safetensors");
  EXPECT_NE(error_of(folder.string()).find("no model.safetensors or model.safetensors.index.json"), std::string::npos)
    << error_of(folder.string());
  std::filesystem::rename(folder / "elsewhere.safetensors", weights);
  std::filesystem::resize_file(weights, size / 2);
  EXPECT_NE(error_of(folder.string()).find("model.safetensors"), std::string::npos) << error_of(folder.string());
  EXPECT_NE(error_of(folder.string()).find("outside the data section"), std::string::npos) << error_of(folder.string());
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
