// What a client may ask of the sampler besides temperature, top-k and top-p: OpenAI's presence and
// frequency penalties and logit_bias move what is drawn but not the log-probs; top_logprobs reports
// the most likely tokens at each position; and which tokens a completion's text is made of.
#include "models/generation.hpp"
#include "models/position_logprobs.hpp"
#include "models/tokenizer.hpp"
#include "tests/models/test_models.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

using namespace chorus::models;

namespace {

const std::vector<std::int64_t> kPrompt{9, 1, 44, 60, 2, 8, 31};

// Peaked distributions (no near-ties for greedy); their logits span hundreds, so the biases and
// penalties below are larger than OpenAI's +-100, which the library does not limit.
Transformer peaked_model() {
  return test::random_model(test::small_config(), 11, 20.0);
}

GeneratedSequence greedy(Transformer& model, SamplingOptions options, std::int64_t tokens = 24) {
  options.temperature = 0;
  options.max_new_tokens = tokens;
  return generate(model, {kPrompt}, options)[0];
}

bool repeats(const std::vector<std::int64_t>& tokens) {
  return std::set<std::int64_t>(tokens.begin(), tokens.end()).size() < tokens.size();
}

} // namespace

TEST(LogitShaping, APresenceOrFrequencyPenaltyStopsGreedyRepeats) {
  auto model = peaked_model();
  auto plain = greedy(model, {});
  ASSERT_TRUE(repeats(plain.tokens)) << "the test needs a model whose greedy completion repeats itself";
  auto present = greedy(model, {.presence_penalty = 1e4});
  EXPECT_FALSE(repeats(present.tokens));
  auto frequent = greedy(model, {.frequency_penalty = 1e4});
  EXPECT_FALSE(repeats(frequent.tokens));
  // The log-probs stay the model's own: what a scoring pass over the same tokens gives (relative to
  // their size: a penalised completion holds tokens the model finds very unlikely).
  auto scored = score_logprobs(model, {kPrompt}, {present.tokens})[0];
  for (std::size_t i = 0; i < scored.size(); ++i)
    EXPECT_NEAR(present.logprobs[i], scored[i], 1e-5 * std::max(1.0f, std::abs(scored[i]))) << "token " << i;
  // A negative penalty favours what is already there.
  auto sticky = greedy(model, {.presence_penalty = -1e4});
  EXPECT_EQ(std::set<std::int64_t>(sticky.tokens.begin() + 1, sticky.tokens.end()).size(), 1u);
}

TEST(LogitShaping, LogitBiasBansOrForcesATokenButNotItsLogprob) {
  auto model = peaked_model();
  auto plain = greedy(model, {}, 8);
  auto banned = greedy(model, {.logit_bias = {{plain.tokens[0], -1e4f}}}, 8);
  EXPECT_NE(banned.tokens[0], plain.tokens[0]);
  for (auto token : banned.tokens)
    EXPECT_NE(token, plain.tokens[0]);
  const std::int64_t forced_token = 42;
  auto forced = greedy(model, {.logit_bias = {{forced_token, 1e4f}}}, 8);
  EXPECT_EQ(forced.tokens, std::vector<std::int64_t>(8, forced_token));
  auto scored = score_logprobs(model, {kPrompt}, {forced.tokens})[0];
  for (std::size_t i = 0; i < scored.size(); ++i)
    EXPECT_NEAR(forced.logprobs[i], scored[i], 1e-5 * std::max(1.0f, std::abs(scored[i]))) << "token " << i;
  // Both at once add up: the penalty holds the forced token back after its first draw.
  auto both = greedy(model, {.presence_penalty = 2e4, .logit_bias = {{forced_token, 1e4f}}}, 8);
  EXPECT_EQ(both.tokens[0], forced_token);
  EXPECT_NE(both.tokens[1], forced_token);
}

TEST(LogitShaping, TopLogprobsAreTheModelsMostLikelyTokens) {
  auto model = peaked_model();
  SamplingOptions options{.temperature = 1.0, .seed = 4, .max_new_tokens = 10, .sample_below = 90, .top_logprobs = 5};
  auto sampled = generate(model, {kPrompt}, options)[0];
  ASSERT_EQ(sampled.top_logprobs.size(), sampled.tokens.size());
  torch::NoGradGuard no_grad;
  auto sequence = kPrompt;
  for (std::size_t i = 0; i < sampled.tokens.size(); ++i) {
    auto logits = model->forward(torch::tensor(sequence, torch::kInt64).unsqueeze(0))[0][-1];
    auto expected = torch::log_softmax(logits, -1).narrow(0, 0, 90).topk(5);
    const auto& top = sampled.top_logprobs[i];
    ASSERT_EQ(top.size(), 5u);
    for (std::int64_t k = 0; k < 5; ++k) {
      EXPECT_EQ(top[k].first, std::get<1>(expected)[k].item<std::int64_t>()) << "position " << i << " rank " << k;
      EXPECT_NEAR(top[k].second, std::get<0>(expected)[k].item<float>(), 1e-5);
    }
    sequence.push_back(sampled.tokens[i]);
  }
  // Rows that ask for fewer (or none) get that many, in the same batch.
  auto few = generate(model, {kPrompt, kPrompt}, {.max_new_tokens = 3, .top_logprobs = 2});
  EXPECT_EQ(few[0].top_logprobs.front().size(), 2u);
  EXPECT_TRUE(generate(model, {kPrompt}, {.max_new_tokens = 3})[0].top_logprobs.empty());
  EXPECT_THROW(generate(model, {kPrompt}, {.max_new_tokens = 3, .top_logprobs = -1}), std::invalid_argument);
  EXPECT_THROW(generate(model, {kPrompt}, {.max_new_tokens = 3, .logit_bias = {{97, 1.0f}}}), std::invalid_argument);
}

TEST(LogitShaping, APromptIsScoredAsIfGenerated) {
  auto model = peaked_model();
  auto scored = score_prompt(model, kPrompt, 3, 90);
  ASSERT_EQ(scored.tokens, std::vector<std::int64_t>(kPrompt.begin() + 1, kPrompt.end()));
  auto expected = score_logprobs(model, {{kPrompt.front()}}, {scored.tokens}).front();
  ASSERT_EQ(scored.logprobs.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i)
    EXPECT_NEAR(scored.logprobs[i], expected[i], 1e-5 * std::max(1.0f, std::abs(expected[i]))) << "token " << i;
  ASSERT_EQ(scored.top_logprobs.size(), scored.tokens.size());
  torch::NoGradGuard no_grad;
  auto logits = model->forward(torch::tensor(kPrompt, torch::kInt64).unsqueeze(0))[0];
  for (std::size_t i = 0; i < scored.tokens.size(); ++i) {
    auto best = torch::log_softmax(logits[static_cast<std::int64_t>(i)], -1).narrow(0, 0, 90).topk(3);
    ASSERT_EQ(scored.top_logprobs[i].size(), 3u);
    for (std::int64_t k = 0; k < 3; ++k)
      EXPECT_EQ(scored.top_logprobs[i][k].first, std::get<1>(best)[k].item<std::int64_t>()) << "token " << i;
  }
  EXPECT_TRUE(score_prompt(model, {5}, 3).tokens.empty()); // nothing to predict
  EXPECT_TRUE(score_prompt(model, kPrompt, 0).top_logprobs.empty());
  EXPECT_THROW(score_prompt(model, {5, 97}, 0), std::invalid_argument);
}

TEST(LogitShaping, TheTokensATextIsMadeOf) {
  ByteTokenizer tokenizer;
  // "hé" then end of turn: the text is 3 bytes of 3 tokens; the end-of-turn token adds none.
  std::vector<std::int64_t> tokens{'h', 0xC3, 0xA9, ByteTokenizer::kImEnd};
  EXPECT_EQ(tokens_in_text(tokenizer, tokens, 3), 3u);
  EXPECT_EQ(tokens_in_text(tokenizer, tokens, 1), 1u);
  EXPECT_EQ(tokens_in_text(tokenizer, tokens, 2), 2u); // a text cut inside "é" holds the token that starts it
  EXPECT_EQ(tokens_in_text(tokenizer, tokens, 0), 0u);
  EXPECT_EQ(tokens_in_text(tokenizer, tokens, 3, 2), 3u);
  GeneratedSequence sequence{tokens, {-0.5f, -1.0f, -0.25f, -2.0f}, {{{'h', -0.5f}, {'x', -0.75f}}}, {}};
  auto positions = position_logprobs(tokenizer, sequence, 0, 3);
  ASSERT_EQ(positions.size(), 3u);
  EXPECT_EQ(positions[0].chosen.text, "h");
  EXPECT_EQ(positions[0].top.size(), 2u);
  EXPECT_EQ(positions[0].top[1].text, "x");
  EXPECT_EQ(positions[1].chosen.text, "\xC3"); // a token's own bytes, part of a character
  EXPECT_EQ(positions[1].chosen.logprob, -1.0f);
  EXPECT_TRUE(positions[2].top.empty());
  // An id the tokenizer cannot decode shows as "" rather than failing the position.
  GeneratedSequence unknown{{ByteTokenizer::kVocabSize + 3}, {-1.0f}, {}, {}};
  EXPECT_EQ(position_logprobs(tokenizer, unknown, 0, 1).front().chosen.text, "");
}

// transformers' and vLLM's repetition penalty, step by step: each greedy token is the argmax of the
// model's logits for everything before it with every token seen so far (the prompt's too) divided by
// the penalty where positive and multiplied by it where negative. The log-probs stay the model's.
TEST(LogitShaping, ARepetitionPenaltyScalesTheLogitsOfEveryTokenSeen) {
  auto model = peaked_model();
  auto plain = greedy(model, {}, 12);
  bool changed = false;
  for (double penalty : {1.3, 4.0, 0.5}) {
    auto penalised = greedy(model, {.repetition_penalty = penalty}, 12);
    changed = changed || penalised.tokens != plain.tokens;
    auto sequence = kPrompt;
    for (std::size_t step = 0; step < penalised.tokens.size(); ++step) {
      torch::NoGradGuard no_grad;
      auto logits = model->forward(torch::tensor(sequence).unsqueeze(0))[0][-1].clone();
      auto shaped = logits.clone();
      for (auto id : std::set<std::int64_t>(sequence.begin(), sequence.end())) {
        auto value = logits[id].item<float>();
        shaped[id] = value > 0 ? value / penalty : value * penalty;
      }
      EXPECT_EQ(penalised.tokens[step], shaped.argmax().item<std::int64_t>())
        << "penalty " << penalty << ", step " << step;
      auto logprob = torch::log_softmax(logits, -1)[penalised.tokens[step]].item<float>();
      EXPECT_NEAR(penalised.logprobs[step], logprob, 1e-4 * std::max(1.0f, std::abs(logprob)));
      sequence.push_back(penalised.tokens[step]);
    }
  }
  EXPECT_TRUE(changed) << "no penalty changed the greedy completion: the test shows nothing";
  EXPECT_THROW(greedy(model, {.repetition_penalty = 0.0}), std::invalid_argument);
}
