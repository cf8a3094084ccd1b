// Generation with the KV cache against recomputation from scratch, batching against one-at-a-time,
// and the sampler's log-probs against a scoring pass over the same tokens.
#include "models/generation.hpp"
#include "models/tokenizer.hpp"
#include "tests/models/test_models.hpp"

#include <gtest/gtest.h>

using namespace chorus::models;

namespace {

// `sharpness` scales the embeddings: a peaked distribution keeps greedy choices clear of near-ties.
Transformer test_model(double sharpness = 20.0, std::uint64_t seed = 11, ModelConfig config = test::small_config()) {
  torch::manual_seed(seed);
  Transformer model(config);
  torch::NoGradGuard no_grad;
  model->model->embed_tokens->weight.mul_(sharpness);
  return model;
}

const std::vector<std::vector<std::int64_t>> kPrompts{{5, 17, 3}, {9, 1, 44, 60, 2, 8, 31}, {70, 70, 12, 4, 96}};

TEST(Generation, GreedyWithTheCacheEqualsRecomputingFromScratch) {
  auto model = test_model();
  SamplingOptions options{.temperature = 0, .max_new_tokens = 12};
  auto generated = generate(model, {kPrompts[1]}, options);
  ASSERT_EQ(generated[0].tokens.size(), 12u);
  torch::NoGradGuard no_grad;
  std::vector<std::int64_t> sequence = kPrompts[1];
  for (int step = 0; step < 12; ++step) {
    auto logits = model->forward(torch::tensor(sequence, torch::kInt64).unsqueeze(0));
    sequence.push_back(logits[0][-1].argmax().item<std::int64_t>());
  }
  std::vector<std::int64_t> expected(sequence.begin() + static_cast<long>(kPrompts[1].size()), sequence.end());
  EXPECT_EQ(generated[0].tokens, expected);
}

// The cached paths (prefill and the decode kernel) of Qwen3's query/key norms, scaled rotary
// embeddings, Gemma 2's soft-capping, Gemma 3's layout, OLMo 2's and 3's (norms after, across heads;
// YaRN in the full layer only), SmolLM3's layer without rotation, Granite's multipliers, Phi-4 mini's partial rotation, the mixtures of experts and sliding
// windows (8 columns, passed by the longer rows), against the full forward pass.
TEST(Generation, EachFamilysCacheEqualsRecomputingFromScratch) {
  auto mistral_windowed = test::small_config("mistral", false);
  mistral_windowed.sliding_window = 8;
  mistral_windowed.sliding_layers = {true, true};
  for (const auto& config :
       {test::small_config("qwen3"), test::rope_scaled(test::small_config("llama"), "llama3"),
        test::rope_scaled(test::small_config("qwen3"), "yarn"), test::gemma2_config(), test::gemma3_config(),
        mistral_windowed, test::olmo2_config(), test::olmo3_config(), test::smollm3_config(), test::granite_config(),
        test::phi3_config(), test::moe_config("qwen3_moe"), test::moe_config("qwen2_moe"), test::moe_config("mixtral"),
        test::moe_config("olmoe")}) {
    auto model = test_model(20.0, 11, config);
    SamplingOptions options{.temperature = 0, .max_new_tokens = 12};
    auto generated = generate(model, kPrompts, options);
    torch::NoGradGuard no_grad;
    for (std::size_t row = 0; row < kPrompts.size(); ++row) {
      auto sequence = kPrompts[row];
      for (std::size_t step = 0; step < generated[row].tokens.size(); ++step) {
        auto logits = model->forward(torch::tensor(sequence, torch::kInt64).unsqueeze(0));
        sequence.push_back(logits[0][-1].argmax().item<std::int64_t>());
      }
      std::vector<std::int64_t> expected(sequence.begin() + static_cast<long>(kPrompts[row].size()), sequence.end());
      EXPECT_EQ(generated[row].tokens, expected)
        << config.model_type << " " << config.rope_scaling.type << " row " << row;
    }
  }
}

TEST(Generation, ABatchOfDifferentLengthsEqualsOneAtATime) {
  auto model = test_model();
  SamplingOptions options{.temperature = 0, .max_new_tokens = 10};
  auto batched = generate(model, kPrompts, options);
  for (std::size_t i = 0; i < kPrompts.size(); ++i) {
    auto alone = generate(model, {kPrompts[i]}, options);
    EXPECT_EQ(batched[i].tokens, alone[0].tokens) << "row " << i;
    for (std::size_t t = 0; t < alone[0].logprobs.size(); ++t)
      EXPECT_NEAR(batched[i].logprobs[t], alone[0].logprobs[t], 1e-5) << "row " << i << " token " << t;
  }
}

TEST(Generation, SamplerLogprobsMatchAScoringPassWithin1e5) {
  auto model = test_model();
  SamplingOptions options{.temperature = 1.0, .seed = 3, .max_new_tokens = 16};
  auto generated = generate(model, kPrompts, options);
  std::vector<std::vector<std::int64_t>> completions;
  for (const auto& sequence : generated)
    completions.push_back(sequence.tokens);
  auto scored = score_logprobs(model, kPrompts, completions);
  double worst = 0;
  for (std::size_t i = 0; i < generated.size(); ++i) {
    ASSERT_EQ(scored[i].size(), generated[i].logprobs.size());
    for (std::size_t t = 0; t < scored[i].size(); ++t)
      worst = std::max(worst, std::abs(static_cast<double>(scored[i][t] - generated[i].logprobs[t])));
  }
  EXPECT_LT(worst, 1e-5);
}

TEST(Generation, TheSameSeedGivesTheSameSampleAndAnotherSeedAnother) {
  auto model = test_model(/*sharpness=*/1.0); // nearly uniform: two seeds all but surely differ
  SamplingOptions options{.temperature = 1.5, .seed = 1, .max_new_tokens = 20};
  auto first = generate(model, {kPrompts[0]}, options);
  auto again = generate(model, {kPrompts[0]}, options);
  options.seed = 2;
  auto other = generate(model, {kPrompts[0]}, options);
  EXPECT_EQ(first[0].tokens, again[0].tokens);
  EXPECT_NE(first[0].tokens, other[0].tokens);
}

TEST(Generation, TopKOfOneIsGreedy) {
  auto model = test_model();
  auto greedy = generate(model, kPrompts, {.temperature = 0, .max_new_tokens = 8});
  auto top1 = generate(model, kPrompts, {.temperature = 1.0, .top_k = 1, .seed = 9, .max_new_tokens = 8});
  for (std::size_t i = 0; i < kPrompts.size(); ++i)
    EXPECT_EQ(greedy[i].tokens, top1[i].tokens);
}

TEST(Generation, TinyTopPIsGreedy) {
  auto model = test_model();
  auto greedy = generate(model, kPrompts, {.temperature = 0, .max_new_tokens = 8});
  auto nucleus = generate(model, kPrompts, {.temperature = 1.0, .top_p = 1e-6, .seed = 4, .max_new_tokens = 8});
  for (std::size_t i = 0; i < kPrompts.size(); ++i)
    EXPECT_EQ(greedy[i].tokens, nucleus[i].tokens);
}

TEST(Generation, AStopTokenEndsItsRowAndIsKept) {
  auto model = test_model();
  auto greedy = generate(model, kPrompts, {.temperature = 0, .max_new_tokens = 6});
  auto stop = greedy[1].tokens[2];
  auto stopped = generate(model, kPrompts, {.temperature = 0, .max_new_tokens = 6, .stop_token_ids = {stop}});
  auto end = std::find(greedy[1].tokens.begin(), greedy[1].tokens.end(), stop) + 1;
  EXPECT_EQ(stopped[1].tokens, std::vector<std::int64_t>(greedy[1].tokens.begin(), end));
  EXPECT_EQ(stopped[1].finish, FinishReason::stop);
  for (std::size_t i : {0u, 2u}) {
    bool has_stop = std::find(greedy[i].tokens.begin(), greedy[i].tokens.end(), stop) != greedy[i].tokens.end();
    if (!has_stop) {
      EXPECT_EQ(stopped[i].tokens, greedy[i].tokens) << "other rows run on";
      EXPECT_EQ(stopped[i].finish, FinishReason::length);
    }
  }
}

TEST(Generation, AStopCheckEndsItsRow) {
  auto model = test_model();
  auto generated =
    generate(model, kPrompts, {.temperature = 0, .max_new_tokens = 10},
             [](std::size_t row, const std::vector<std::int64_t>& tokens) { return row == 2 && tokens.size() == 3; });
  EXPECT_EQ(generated[2].tokens.size(), 3u);
  EXPECT_EQ(generated[2].finish, FinishReason::stop);
  EXPECT_EQ(generated[0].tokens.size(), 10u);
}

TEST(Generation, BadInputIsRejected) {
  auto model = test_model();
  EXPECT_THROW(generate(model, {{}}, {}), std::invalid_argument);
  EXPECT_THROW(generate(model, {{1, 2}}, {.max_new_tokens = 500}), std::invalid_argument);
  EXPECT_THROW(score_logprobs(model, {{1}}, {}), std::invalid_argument);
  EXPECT_THROW(generate(model, {{1, 97}}, {}), std::invalid_argument);
  EXPECT_THROW(score_logprobs(model, {{1}}, {{-1}}), std::invalid_argument);
}

} // namespace

namespace {

TEST(Generation, SeesWeightsUpdatedInPlace) {
  // Inference keeps fused copies of the q/k/v and gate/up weights; an optimizer step or a weight
  // sync updates the weights in place, and the next forward must use the new values.
  auto model = test_model(/*sharpness=*/1.0); // log-probs well away from 0, so changes show
  auto tokens = torch::tensor(kPrompts[1], torch::kInt64).unsqueeze(0);
  auto before = generate(model, {kPrompts[1]}, {.temperature = 0, .max_new_tokens = 4});
  {
    torch::NoGradGuard no_grad;
    for (auto& parameter : model->parameters())
      parameter.add_(torch::randn_like(parameter) * 0.05);
  }
  torch::Tensor cached, fresh;
  {
    torch::NoGradGuard no_grad;
    cached = model->forward(tokens);
  }
  fresh = model->forward(tokens).detach(); // with autograd: concatenates anew
  EXPECT_TRUE(torch::allclose(cached, fresh, 1e-6, 1e-6));
  auto after = score_logprobs(model, {kPrompts[1]}, {before[0].tokens});
  for (std::size_t t = 0; t < after[0].size(); ++t)
    EXPECT_GT(std::abs(after[0][t] - before[0].logprobs[t]), 1e-6) << "token " << t << " scored with stale weights";
}

} // namespace

namespace {

TEST(Generation, StopStringsEndTheRowWhereTheTextAppears) {
  auto model = test_model(/*sharpness=*/1.0);
  auto tokenizer = std::make_shared<ByteTokenizer>();
  // Greedy continuation first, then pick a stop string from inside it.
  std::vector<std::int64_t> prompt{72, 65, 33}; // "HA!"; the test model's vocabulary is 97
  auto free_run = generate(model, {prompt}, {.temperature = 0, .max_new_tokens = 12});
  std::vector<std::int64_t> bytes;
  for (auto id : free_run[0].tokens)
    if (id < 256)
      bytes.push_back(id);
  ASSERT_GE(bytes.size(), 6u);
  auto full_text = tokenizer->decode(bytes);
  auto stop = full_text.substr(3, 2);
  auto stopped =
    generate(model, {prompt}, {.temperature = 0, .max_new_tokens = 12}, stop_at_strings(tokenizer, {stop}));
  EXPECT_EQ(stopped[0].finish, FinishReason::stop);
  auto text = tokenizer->decode(stopped[0].tokens);
  EXPECT_NE(text.find(stop), std::string::npos);
  EXPECT_EQ(text.find(stop) + stop.size(), text.size()) << "generation ends right after the stop string appears";
  EXPECT_EQ(text_before_stop(text, {stop}), text.substr(0, text.find(stop)));
  EXPECT_EQ(text_before_stop("no stop here", {"zz", ""}), "no stop here");
}

} // namespace

namespace {

TEST(Generation, RunsInBfloat16) {
  auto model = test_model(/*sharpness=*/1.0);
  model->to(torch::kBFloat16);
  auto generated = generate(model, kPrompts, {.temperature = 1.0, .seed = 5, .max_new_tokens = 8});
  std::vector<std::vector<std::int64_t>> completions;
  for (const auto& sequence : generated) {
    ASSERT_EQ(sequence.tokens.size(), 8u);
    for (float logprob : sequence.logprobs) {
      EXPECT_TRUE(std::isfinite(logprob));
      EXPECT_LE(logprob, 0.0f);
    }
    completions.push_back(sequence.tokens);
  }
  auto scored = score_logprobs(model, kPrompts, completions);
  for (std::size_t i = 0; i < scored.size(); ++i)
    for (std::size_t t = 0; t < scored[i].size(); ++t)
      EXPECT_NEAR(scored[i][t], generated[i].logprobs[t], 0.05) << "bf16 rounding only";
}

} // namespace
