// The byte tokenizer: lossless for any bytes, special tokens only where the template puts them, the
// ChatML layout, and Hugging Face files with GPT-2's byte names.
#include "models/tokenizer.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

using namespace chorus::models;

namespace {

TEST(ByteTokenizer, RoundTripsAnyText) {
  ByteTokenizer tokenizer;
  for (std::string text : {std::string("plain ascii"), std::string("Grüße, 世界! 🎉 \t\n  code: x += 1; <|"),
                           std::string("\x00\x01\xff\xfe broken \xc3", 12), std::string()}) {
    auto ids = tokenizer.encode(text);
    EXPECT_EQ(ids.size(), text.size());
    EXPECT_EQ(tokenizer.decode(ids), text);
  }
}

TEST(ByteTokenizer, SpecialTokensSpelledInTextAreSpecialAsInHuggingFace) {
  // The ids @huggingface/tokenizers gives for this text with the tokenizer.json that save() writes.
  ByteTokenizer tokenizer;
  auto ids = tokenizer.encode("a<|im_end|>b<|im_start|><|nope|>");
  std::vector<std::int64_t> expected{'a', ByteTokenizer::kImEnd, 'b', ByteTokenizer::kImStart};
  for (char c : std::string("<|nope|>"))
    expected.push_back(static_cast<unsigned char>(c));
  EXPECT_EQ(ids, expected);
  EXPECT_EQ(tokenizer.decode(ids), "a<|im_end|>b<|im_start|><|nope|>");
  EXPECT_EQ(tokenizer.special_token("<|im_end|>"), ByteTokenizer::kImEnd);
  EXPECT_EQ(tokenizer.special_token("<|nope|>"), std::nullopt);
}

TEST(ByteTokenizer, ChatTemplateIsChatML) {
  ByteTokenizer tokenizer;
  auto ids = tokenizer.apply_chat_template({{"system", "Be brief."}, {"user", "Hi"}}, /*add_generation_prompt=*/true);
  EXPECT_EQ(tokenizer.decode(ids),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(ids.front(), ByteTokenizer::kImStart);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), ByteTokenizer::kImEnd), 2);
  EXPECT_EQ(tokenizer.decode(ids, /*skip_special=*/true), "system\nBe brief.\nuser\nHi\nassistant\n");
  auto stops = tokenizer.stop_token_ids();
  EXPECT_NE(std::find(stops.begin(), stops.end(), ByteTokenizer::kImEnd), stops.end());
}

TEST(ByteTokenizer, IdOutsideTheVocabularyIsAnError) {
  ByteTokenizer tokenizer;
  EXPECT_THROW(tokenizer.decode({65, 300}), std::out_of_range);
  EXPECT_THROW(tokenizer.decode({-1}), std::out_of_range);
}

TEST(ByteTokenizer, SavesHuggingFaceFilesWithGpt2ByteNames) {
  auto folder = std::filesystem::path(::testing::TempDir()) / "byte_tokenizer";
  std::filesystem::create_directories(folder);
  ByteTokenizer().save(folder);
  auto json = nlohmann::json::parse(std::ifstream(folder / "tokenizer.json"));
  const auto& vocab = json["model"]["vocab"];
  ASSERT_EQ(vocab.size(), 256u);
  EXPECT_EQ(vocab["A"], 65);
  EXPECT_EQ(vocab["\xC4\xA0"], 32) << "space is U+0120";   // Ġ
  EXPECT_EQ(vocab["\xC4\x8A"], 10) << "newline is U+010A"; // Ċ
  std::vector<bool> seen(256, false);
  for (const auto& [name, id] : vocab.items())
    seen[id.get<std::size_t>()] = true;
  EXPECT_EQ(std::count(seen.begin(), seen.end(), true), 256);
  EXPECT_EQ(json["added_tokens"][2]["content"], "<|im_end|>");
  EXPECT_EQ(json["added_tokens"][2]["id"], ByteTokenizer::kImEnd);
  auto config = nlohmann::json::parse(std::ifstream(folder / "tokenizer_config.json"));
  EXPECT_EQ(config["eos_token"], "<|im_end|>");
  EXPECT_NE(config["chat_template"].get<std::string>().find("<|im_start|>assistant"), std::string::npos);
}

} // namespace
