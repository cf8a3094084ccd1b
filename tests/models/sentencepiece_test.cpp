// SentencePiece-style BPE (Llama 2, Mistral 7B, Gemma): characters as symbols, "▁" for a space, byte
// fallback and the unknown token, the normalisers, pre-tokenizers and decoders that tokenizer.json
// spells it with. Real files are checked against @huggingface/tokenizers in bpe_tokenizer_test.cpp;
// these small vocabularies pin down each piece on its own.
#include <chorus/errors.hpp>

#include "models/bpe_tokenizer.hpp"
#include "tests/expect_error.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

using namespace chorus::models;
using chorus::test::expect_error_containing;
using nlohmann::json;

namespace {

const std::string kSpace = "\xE2\x96\x81"; // ▁

// Ids: <unk> 0, <s> 1, </s> 2, the byte tokens <0x00>..<0xFF> 3..258, then ▁ a b ▁a ab ▁ab aa.
json vocabulary() {
  json vocab = json::object();
  vocab["<unk>"] = 0;
  vocab["<s>"] = 1;
  vocab["</s>"] = 2;
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    vocab[name] = 3 + b;
  }
  std::int64_t next = 259;
  for (const auto& token : {kSpace, std::string("a"), std::string("b"), kSpace + "a", std::string("ab"), kSpace + "ab",
                            std::string("aa"), std::string("ba"), kSpace + kSpace})
    vocab[token] = next++;
  return vocab;
}
constexpr std::int64_t kUnk = 0, kBos = 1, kA = 260, kB = 261, kSpaceA = 262, kAB = 263, kSpaceAB = 264, kAA = 265,
                       kBA = 266, kTwoSpaces = 267;

// Llama 2's tokenizer.json: Prepend and Replace normalisers, no pre-tokenizer, and the decoder chain.
json llama2_style() {
  return {{"normalizer",
           {{"type", "Sequence"},
            {"normalizers",
             {{{"type", "Prepend"}, {"prepend", kSpace}},
              {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSpace}}}}}},
          {"pre_tokenizer", nullptr},
          {"decoder",
           {{"type", "Sequence"},
            {"decoders",
             {{{"type", "Replace"}, {"pattern", {{"String", kSpace}}}, {"content", " "}},
              {{"type", "ByteFallback"}},
              {{"type", "Fuse"}},
              {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
          {"model",
           {{"type", "BPE"},
            {"unk_token", "<unk>"},
            {"byte_fallback", true},
            {"fuse_unk", true},
            {"vocab", vocabulary()},
            // "a a" is ranked last: "▁aab" must become ▁a + ab, not ▁ + aa + b.
            {"merges", {kSpace + " a", "a b", kSpace + "a b", "a a"}}}},
          {"added_tokens",
           {{{"id", 0}, {"content", "<unk>"}, {"special", true}},
            {{"id", 1}, {"content", "<s>"}, {"special", true}},
            {{"id", 2}, {"content", "</s>"}, {"special", true}}}}};
}

std::unique_ptr<BpeTokenizer> load(const json& file, const std::string& name) {
  auto folder = std::filesystem::path(::testing::TempDir()) / name;
  std::filesystem::create_directories(folder);
  std::ofstream(folder / "tokenizer.json") << file.dump();
  return BpeTokenizer::load(folder);
}

TEST(SentencePiece, CharactersMergeByRankAndSpacesAreMetaspaces) {
  auto tokenizer = load(llama2_style(), "sp_llama2");
  EXPECT_EQ(tokenizer->encode("ab ab"), (std::vector<std::int64_t>{kSpaceAB, kSpaceAB}));
  EXPECT_EQ(tokenizer->encode("aab"), (std::vector<std::int64_t>{kSpaceA, kAB}));
  // Of equal pairs the leftmost merges first: "aaa" is aa + a.
  EXPECT_EQ(tokenizer->encode("baaa"), (std::vector<std::int64_t>{259, kB, kAA, kA}));
  // The Prepend normaliser runs on each run of text between added tokens.
  EXPECT_EQ(tokenizer->encode("<s>b"), (std::vector<std::int64_t>{kBos, 259, kB}));
}

TEST(SentencePiece, MissingCharactersAreTheirBytesAndDecodeBack) {
  auto tokenizer = load(llama2_style(), "sp_bytes");
  // "é" is not in the vocabulary: its two UTF-8 bytes' tokens.
  auto ids = tokenizer->encode("aé");
  EXPECT_EQ(ids, (std::vector<std::int64_t>{kSpaceA, 3 + 0xC3, 3 + 0xA9}));
  // The decoder drops the space the normaliser put before the first word, and only that one.
  EXPECT_EQ(tokenizer->decode(ids), "aé");
  EXPECT_EQ(tokenizer->decode({kSpaceAB, kSpaceAB}), "ab ab");
  EXPECT_EQ(tokenizer->decode({kBos, kSpaceAB}, /*skip_special=*/false), "<s> ab");
  // A token alone adds its space inside a sequence: what grammars and log-prob listings need.
  EXPECT_EQ(tokenizer->token_text(kSpaceAB), " ab");
  EXPECT_EQ(tokenizer->token_text(3 + 0xC3), "\xC3");
  EXPECT_EQ(tokenizer->token_text(kBos, /*skip_special=*/true), "");
}

TEST(SentencePiece, WithoutByteFallbackARunOfUnknownCharactersIsOneUnknownToken) {
  auto file = llama2_style();
  file["model"]["byte_fallback"] = false;
  auto fused = load(file, "sp_unk");
  EXPECT_EQ(fused->encode("aéü b"), (std::vector<std::int64_t>{kSpaceA, kUnk, 259, kB}));
  file["model"]["fuse_unk"] = false;
  auto unfused = load(file, "sp_unk_unfused");
  EXPECT_EQ(unfused->encode("aéü"), (std::vector<std::int64_t>{kSpaceA, kUnk, kUnk}));
}

TEST(SentencePiece, MetaspacePreTokenizerPrependsAtTheStartAndSplitsWords) {
  auto file = llama2_style();
  file["normalizer"] = nullptr;
  file["pre_tokenizer"] = {
    {"type", "Metaspace"}, {"replacement", kSpace}, {"prepend_scheme", "first"}, {"split", true}};
  file["decoder"] = {{"type", "Metaspace"}, {"replacement", kSpace}, {"prepend_scheme", "first"}};
  auto tokenizer = load(file, "sp_metaspace");
  // Decoding, as Hugging Face's library does: the first token written loses its markers, the others
  // are spaces (a skipped special token is not the first).
  EXPECT_EQ(tokenizer->decode({kTwoSpaces, kSpaceAB}), " ab");
  EXPECT_EQ(tokenizer->decode({259, kTwoSpaces, kSpaceAB}), "   ab");
  EXPECT_EQ(tokenizer->decode({kBos, kSpaceAB, kSpaceAB}, /*skip_special=*/true), "ab ab");
  EXPECT_EQ(tokenizer->token_text(kSpaceAB), " ab");
  EXPECT_EQ(tokenizer->encode("ab ab"), (std::vector<std::int64_t>{kSpaceAB, kSpaceAB}));
  // "first": only text at the very start gets the space; after <s> it does not.
  EXPECT_EQ(tokenizer->encode("<s>ab"), (std::vector<std::int64_t>{kBos, kAB}));
  // Split into words: "a" and "▁a" are separate pieces, so "▁a" + "▁a" never merge across them.
  EXPECT_EQ(tokenizer->encode("a a"), (std::vector<std::int64_t>{kSpaceA, kSpaceA}));
  EXPECT_EQ(tokenizer->decode({kSpaceAB, kSpaceAB}), "ab ab");
}

TEST(SentencePiece, GemmasNormaliserReplacesSpacesWithoutAddingOne) {
  auto file = llama2_style();
  file["normalizer"] = {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSpace}};
  file["pre_tokenizer"] = {
    {"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "MergedWithPrevious"}, {"invert", false}};
  file["decoder"]["decoders"].erase(3); // no Strip: Gemma adds no space, so removes none
  auto tokenizer = load(file, "sp_gemma");
  EXPECT_EQ(tokenizer->encode("ab ab"), (std::vector<std::int64_t>{kAB, kSpaceAB}));
  EXPECT_EQ(tokenizer->decode({kSpaceAB, kAB}), " abab");
}

// A pair listed twice takes its last rank, as Hugging Face's map of merges does: "b a" (rank 1)
// then comes before "a a" (ranks 0 and 2).
TEST(SentencePiece, APairListedTwiceTakesItsLastRank) {
  auto file = llama2_style();
  file["normalizer"] = nullptr;
  file["model"]["merges"] = {"a a", "b a", "a a"};
  EXPECT_EQ(load(file, "sp_duplicate_merge")->encode("baa"), (std::vector<std::int64_t>{kBA, kA}));
}

TEST(SentencePiece, WhatCannotBeHonouredIsAnErrorNamingTheKey) {
  auto no_unknown = llama2_style();
  no_unknown["model"]["byte_fallback"] = false;
  no_unknown["model"].erase("unk_token");
  expect_error_containing<chorus::CheckpointError>([&] { load(no_unknown, "sp_no_unk"); },
                                                   {"tokenizer.json", "key 'model.unk_token'", "byte_fallback"});
  auto regex_split = llama2_style();
  regex_split["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "\\s+"}}}, {"behavior", "Isolated"}};
  expect_error_containing<chorus::CheckpointError>([&] { load(regex_split, "sp_regex"); }, {"key 'pre_tokenizer'"});
  auto strip_end = llama2_style();
  strip_end["decoder"]["decoders"][3]["stop"] = 1;
  expect_error_containing<chorus::CheckpointError>([&] { load(strip_end, "sp_strip"); }, {"key 'decoder'", "Strip"});
  auto empty_split = llama2_style();
  empty_split["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"String", ""}}}, {"behavior", "Isolated"}};
  expect_error_containing<chorus::CheckpointError>([&] { load(empty_split, "sp_empty_split"); },
                                                   {"key 'pre_tokenizer.pattern'", "empty string"});
  auto long_replacement = llama2_style();
  long_replacement["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "__"}};
  expect_error_containing<chorus::CheckpointError>([&] { load(long_replacement, "sp_replacement"); },
                                                   {"key 'pre_tokenizer.replacement'", "one character"});
  auto wrong_type = llama2_style();
  wrong_type["pre_tokenizer"] = {{"type", "Metaspace"}, {"split", "yes"}};
  expect_error_containing<chorus::CheckpointError>([&] { load(wrong_type, "sp_wrong_type"); },
                                                   {"tokenizer.json", "unexpected JSON"});
  auto scheme = llama2_style();
  scheme["pre_tokenizer"] = {{"type", "Metaspace"}, {"prepend_scheme", "sometimes"}};
  expect_error_containing<chorus::CheckpointError>([&] { load(scheme, "sp_scheme"); },
                                                   {"key 'pre_tokenizer.prepend_scheme'", "'sometimes'"});
  // A folder with only SentencePiece's own model file says how to get a tokenizer.json.
  auto folder = std::filesystem::path(::testing::TempDir()) / "sp_model_only";
  std::filesystem::create_directories(folder);
  std::ofstream(folder / "tokenizer.model") << "not read";
  expect_error_containing<chorus::CheckpointError>([&] { BpeTokenizer::load(folder); },
                                                   {"tokenizer.model", "save_pretrained"});
}

} // namespace
