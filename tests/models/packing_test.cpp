// Shared-prompt packing gives every completion the log-probs and gradients of its own row.
#include "models/completion_logprobs.hpp"
#include "models/packing.hpp"
#include "tests/models/test_models.hpp"

#include <gtest/gtest.h>

using namespace chorus::models;

namespace {

struct Rows {
  std::vector<std::vector<std::int64_t>> prompts, completions;

  SequenceBatch batch() const {
    std::vector<const std::vector<std::int64_t>*> p, c;
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      p.push_back(&prompts[i]);
      c.push_back(&completions[i]);
    }
    return make_sequence_batch(p, c);
  }
};

// Two groups sharing prompts, interleaved, with completions of different lengths, and a prompt of
// its own; the second group's prompt is the first's extended by a token (not the same prompt).
Rows mixed_rows() {
  std::vector<std::int64_t> a{5, 6, 7, 8}, b{5, 6, 7, 8, 9}, c{11, 12};
  return {{a, b, a, c, b, a}, {{20, 21, 22}, {30}, {23}, {40, 41, 42, 43}, {31, 32, 33, 34, 35}, {24, 25}}};
}

// Also with a sliding window of 3 (Gemma 3's layout): a later completion sits further from the shared
// prompt in the packed row than in its own, and the window counts positions, not columns.
TEST(Packing, CompletionsThatShareAPromptAreScoredAsOnTheirOwnRows) {
  auto windowed = test::gemma3_config();
  windowed.sliding_window = 3;
  for (const auto& config : {test::small_config(), windowed}) {
    torch::manual_seed(3);
    Transformer model(config);
    auto batch = mixed_rows().batch();
    auto packed = pack_shared_prompts(batch);
    ASSERT_TRUE(packed.has_value());
    EXPECT_EQ(packed->tokens.size(0), 3); // one row per distinct prompt
    EXPECT_EQ(packed->targets.size(0), 3 + 1 + 1 + 4 + 5 + 2);

    auto plain = batch_logprobs(model->forward(batch.tokens, batch.attention_mask), batch);
    auto shared = completion_logprobs(model, batch);
    auto mask = batch.completion_mask.to(torch::kFloat32);
    EXPECT_TRUE(torch::allclose(plain * mask, shared, 1e-5, 1e-5))
      << config.model_type << ": " << (plain * mask - shared).abs().max();
    EXPECT_EQ((shared * (1 - mask)).abs().max().item<float>(), 0.0f); // nothing outside the completions
  }
}

TEST(Packing, GradientsMatchTheUnpackedRows) {
  torch::manual_seed(4);
  Transformer model(test::small_config());
  auto batch = mixed_rows().batch();
  auto mask = batch.completion_mask.to(torch::kFloat32);
  // Different weights per token, so that a misplaced log-prob changes the gradient.
  auto weights = torch::rand(mask.sizes()) * mask;
  auto gradients = [&](bool packed) {
    model->zero_grad();
    auto logprobs = packed ? completion_logprobs(model, batch)
                           : batch_logprobs(model->forward(batch.tokens, batch.attention_mask), batch);
    (logprobs * weights).sum().backward();
    std::vector<torch::Tensor> result;
    for (const auto& parameter : model->parameters())
      result.push_back(parameter.grad().clone());
    return result;
  };
  auto plain = gradients(false), shared = gradients(true);
  ASSERT_EQ(plain.size(), shared.size());
  for (std::size_t i = 0; i < plain.size(); ++i)
    EXPECT_TRUE(torch::allclose(plain[i], shared[i], 1e-4, 1e-5)) << "parameter " << i;
}

TEST(Packing, LongCompletionsOfAShortPromptAreSplitOverRows) {
  // Prompt 2, completions 30: one row of 2 + 4 * 30 = 122 tokens would attend over 122^2 = 14,884
  // positions against 4 * 32^2 = 4,096 on their own rows; two per row (62^2 = 3,844 <= 2 * 2,048).
  std::vector<std::int64_t> prompt{1, 2}, completion(30, 7);
  Rows rows{{prompt, prompt, prompt, prompt}, {completion, completion, completion, completion}};
  auto batch = rows.batch();
  auto packed = pack_shared_prompts(batch);
  ASSERT_TRUE(packed.has_value());
  EXPECT_EQ(packed->tokens.size(0), 2);
  EXPECT_EQ(packed->tokens.size(1), 62);
  torch::manual_seed(5);
  Transformer model(test::small_config());
  auto plain = batch_logprobs(model->forward(batch.tokens, batch.attention_mask), batch);
  auto mask = batch.completion_mask.to(torch::kFloat32);
  EXPECT_TRUE(torch::allclose(plain * mask, completion_logprobs(model, batch), 1e-5, 1e-5));
}

TEST(Packing, DistinctPromptsAreLeftAsTheyAre) {
  Rows rows{{{1, 2}, {1, 3}, {2}}, {{4}, {5, 6}, {7}}};
  EXPECT_FALSE(pack_shared_prompts(rows.batch()).has_value());
}

TEST(Packing, GroupsKeepTheOrderTheirPromptsFirstAppearIn) {
  std::vector<std::int64_t> a{1}, b{2}, c{3};
  EXPECT_EQ(grouped_by_prompt({&b, &a, &b, &c, &a, &b}), (std::vector<std::size_t>{0, 2, 5, 1, 4, 3}));
}

} // namespace
