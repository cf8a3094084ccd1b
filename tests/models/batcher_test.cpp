// Continuous batching: sequences that join a running batch, wait for a free slot or outgrow the
// cache give the same tokens and log-probs as generating each one alone.
#include "models/batcher.hpp"
#include "tests/models/test_models.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <map>

using namespace chorus::models;

namespace {

Transformer sharp_model() {
  auto config = test::small_config();
  config.max_position_embeddings = 600;
  torch::manual_seed(5);
  Transformer model(config);
  torch::NoGradGuard no_grad;
  model->model->embed_tokens->weight.mul_(20.0); // peaked distributions: no near-ties for argmax
  return model;
}

std::vector<std::int64_t> prompt_of(std::int64_t length, std::int64_t salt) {
  std::vector<std::int64_t> prompt;
  for (std::int64_t i = 0; i < length; ++i)
    prompt.push_back((i * 7 + salt * 13) % 97);
  return prompt;
}

GeneratedSequence alone(Transformer& model, const std::vector<std::int64_t>& prompt, SamplingOptions options) {
  return generate(model, {prompt}, options)[0];
}

// Runs the batcher until idle, collecting finished sequences by id.
void drain(ContinuousBatcher& batcher, std::map<ContinuousBatcher::Id, GeneratedSequence>& done) {
  while (!batcher.idle())
    for (auto& finished : batcher.step())
      done[finished.id] = std::move(finished.sequence);
}

} // namespace

TEST(ContinuousBatcher, SequencesJoiningARunningBatchMatchGeneratingAlone) {
  auto model = sharp_model();
  SamplingOptions greedy{.temperature = 0, .max_new_tokens = 10};
  ContinuousBatcher batcher(model, 4, 64);
  std::map<ContinuousBatcher::Id, GeneratedSequence> done;
  std::map<ContinuousBatcher::Id, std::vector<std::int64_t>> prompts;
  auto first = prompt_of(3, 1);
  prompts[batcher.add({first, greedy, {}})] = first;
  for (int i = 0; i < 4; ++i)
    for (auto& finished : batcher.step())
      done[finished.id] = std::move(finished.sequence);
  // Two more join while the first is half-way; one asks for fewer tokens and finishes early.
  auto second = prompt_of(9, 2), third = prompt_of(5, 3);
  prompts[batcher.add({second, greedy, {}})] = second;
  auto short_options = greedy;
  short_options.max_new_tokens = 3;
  auto short_id = batcher.add({third, short_options, {}});
  drain(batcher, done);

  ASSERT_EQ(done.size(), 3u);
  for (const auto& [id, prompt] : prompts) {
    auto expected = alone(model, prompt, greedy);
    EXPECT_EQ(done[id].tokens, expected.tokens);
    for (std::size_t i = 0; i < expected.logprobs.size(); ++i)
      EXPECT_NEAR(done[id].logprobs[i], expected.logprobs[i], 1e-5);
  }
  EXPECT_EQ(done[short_id].tokens, alone(model, third, short_options).tokens);
  EXPECT_EQ(done[short_id].finish, FinishReason::length);
}

TEST(ContinuousBatcher, MoreSequencesThanSlotsWaitForAFreeOne) {
  auto model = sharp_model();
  SamplingOptions greedy{.temperature = 0, .max_new_tokens = 6};
  ContinuousBatcher batcher(model, 2, 64);
  std::map<ContinuousBatcher::Id, std::vector<std::int64_t>> prompts;
  for (std::int64_t i = 0; i < 5; ++i) {
    auto prompt = prompt_of(2 + i, i);
    prompts[batcher.add({prompt, greedy, {}})] = prompt;
  }
  std::map<ContinuousBatcher::Id, GeneratedSequence> done;
  while (!batcher.idle()) {
    for (auto& finished : batcher.step())
      done[finished.id] = std::move(finished.sequence);
    EXPECT_LE(batcher.running(), 2u);
  }
  ASSERT_EQ(done.size(), 5u);
  for (const auto& [id, prompt] : prompts)
    EXPECT_EQ(done[id].tokens, alone(model, prompt, greedy).tokens);
}

TEST(ContinuousBatcher, TheCacheGrowsForLongSequencesWithoutChangingThem) {
  auto model = sharp_model();
  SamplingOptions greedy{.temperature = 0, .max_new_tokens = 8};
  ContinuousBatcher batcher(model, 3, 600);
  std::map<ContinuousBatcher::Id, GeneratedSequence> done;
  auto short_prompt = prompt_of(4, 1), long_prompt = prompt_of(300, 2);
  auto short_id = batcher.add({short_prompt, greedy, {}});
  batcher.step(); // the cache is sized for the short one
  auto long_id = batcher.add({long_prompt, greedy, {}});
  drain(batcher, done);
  EXPECT_EQ(done[short_id].tokens, alone(model, short_prompt, greedy).tokens);
  EXPECT_EQ(done[long_id].tokens, alone(model, long_prompt, greedy).tokens);
}

TEST(ContinuousBatcher, TheCacheGrowsInSequencesWhileOthersRun) {
  auto model = sharp_model();
  SamplingOptions greedy{.temperature = 0, .max_new_tokens = 6};
  ContinuousBatcher batcher(model, 1000, 64); // a limit, not an allocation of 1000 slots
  std::map<ContinuousBatcher::Id, std::vector<std::int64_t>> prompts;
  std::map<ContinuousBatcher::Id, GeneratedSequence> done;
  for (std::int64_t i = 0; i < 3; ++i) {
    auto prompt = prompt_of(3 + i, i);
    prompts[batcher.add({prompt, greedy, {}})] = prompt;
  }
  batcher.step();
  for (std::int64_t i = 3; i < 20; ++i) { // 20 running: past the first 8 slots and their doubling
    auto prompt = prompt_of(3 + i % 5, i);
    prompts[batcher.add({prompt, greedy, {}})] = prompt;
  }
  drain(batcher, done);
  ASSERT_EQ(done.size(), 20u);
  for (const auto& [id, prompt] : prompts)
    EXPECT_EQ(done[id].tokens, alone(model, prompt, greedy).tokens);
}

TEST(ContinuousBatcher, SampledSequencesDependOnTheirOwnSeedOnly) {
  auto model = sharp_model();
  SamplingOptions sampled{.temperature = 1.0, .seed = 42, .max_new_tokens = 12};
  auto prompt = prompt_of(4, 9);
  ContinuousBatcher lonely(model, 4, 64), crowded(model, 4, 64);
  std::map<ContinuousBatcher::Id, GeneratedSequence> a, b;
  auto id_a = lonely.add({prompt, sampled, {}});
  drain(lonely, a);
  crowded.add({prompt_of(6, 1), SamplingOptions{.temperature = 1.0, .seed = 7, .max_new_tokens = 5}, {}});
  auto id_b = crowded.add({prompt, sampled, {}});
  drain(crowded, b);
  EXPECT_EQ(a[id_a].tokens, b[id_b].tokens);
}

TEST(ContinuousBatcher, ARequestBeyondTheSequenceLimitIsRejected) {
  auto model = sharp_model();
  ContinuousBatcher batcher(model, 2, 16);
  EXPECT_THROW(batcher.add({prompt_of(10, 1), SamplingOptions{.max_new_tokens = 10}, {}}), std::invalid_argument);
  EXPECT_THROW(batcher.add({{}, SamplingOptions{}, {}}), std::invalid_argument);
  EXPECT_THROW(batcher.add({{500}, SamplingOptions{}, {}}), std::invalid_argument);
  const auto nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW(batcher.add({{1}, SamplingOptions{.presence_penalty = nan}, {}}), std::invalid_argument);
  EXPECT_THROW(batcher.add({{1}, SamplingOptions{.logit_bias = {{3, std::numeric_limits<float>::infinity()}}}, {}}),
               std::invalid_argument);
  EXPECT_TRUE(batcher.idle());
}

TEST(ContinuousBatcher, ASequenceAskingForNoTokensGetsNoneWhereverItWaits) {
  auto model = sharp_model();
  ContinuousBatcher batcher(model, 2, 64);
  auto first = batcher.add({prompt_of(5, 1), SamplingOptions{.temperature = 0, .max_new_tokens = 3}, {}});
  auto scoring_only = batcher.add({prompt_of(6, 2), SamplingOptions{.temperature = 0, .max_new_tokens = 0}, {}});
  std::map<ContinuousBatcher::Id, GeneratedSequence> done;
  drain(batcher, done);
  EXPECT_EQ(done.at(first).tokens.size(), 3u);
  EXPECT_TRUE(done.at(scoring_only).tokens.empty());
}

TEST(ContinuousBatcher, ACancelledSequenceFreesItsSlotAndTheOthersAreUnchanged) {
  auto model = sharp_model();
  SamplingOptions greedy{.temperature = 0, .max_new_tokens = 8};
  ContinuousBatcher batcher(model, 2, 64);
  auto kept_prompt = prompt_of(4, 1), late_prompt = prompt_of(6, 3);
  auto kept = batcher.add({kept_prompt, greedy, {}});
  auto cancelled_running = batcher.add({prompt_of(5, 2), greedy, {}});
  auto late = batcher.add({late_prompt, greedy, {}}); // waits: two slots
  auto cancelled_waiting = batcher.add({prompt_of(3, 4), greedy, {}});
  std::map<ContinuousBatcher::Id, GeneratedSequence> done;
  for (int i = 0; i < 3; ++i)
    for (auto& finished : batcher.step())
      done[finished.id] = std::move(finished.sequence);
  EXPECT_EQ(batcher.running(), 2u);
  EXPECT_TRUE(batcher.cancel(cancelled_running));
  EXPECT_TRUE(batcher.cancel(cancelled_waiting));
  EXPECT_FALSE(batcher.cancel(cancelled_running)); // gone already
  EXPECT_EQ(batcher.running(), 1u);
  EXPECT_EQ(batcher.waiting(), 1u);
  drain(batcher, done); // `late` takes the freed slot and reuses its stale cache rows
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done.count(cancelled_running) + done.count(cancelled_waiting), 0u);
  EXPECT_EQ(done[kept].tokens, alone(model, kept_prompt, greedy).tokens);
  EXPECT_EQ(done[late].tokens, alone(model, late_prompt, greedy).tokens);
}

TEST(ContinuousBatcher, PromptsOfVeryDifferentLengthsPrefilledInGroupsMatchGeneratingAlone) {
  auto model = sharp_model();
  SamplingOptions greedy{.temperature = 0, .max_new_tokens = 6};
  ContinuousBatcher batcher(model, 8, 128);
  // 2 to 60 tokens: several prefill groups in one admission, given out of length order.
  std::vector<std::vector<std::int64_t>> prompts{prompt_of(40, 1), prompt_of(2, 2), prompt_of(60, 3),
                                                 prompt_of(9, 4),  prompt_of(3, 5), prompt_of(41, 6)};
  std::map<ContinuousBatcher::Id, std::size_t> index;
  for (std::size_t i = 0; i < prompts.size(); ++i)
    index[batcher.add({prompts[i], greedy, {}})] = i;
  std::map<ContinuousBatcher::Id, GeneratedSequence> done;
  drain(batcher, done);
  ASSERT_EQ(done.size(), prompts.size());
  for (const auto& [id, i] : index) {
    auto expected = alone(model, prompts[i], greedy);
    EXPECT_EQ(done[id].tokens, expected.tokens) << "prompt " << i;
    for (std::size_t t = 0; t < expected.logprobs.size(); ++t)
      EXPECT_NEAR(done[id].logprobs[t], expected.logprobs[t], 1e-4) << "prompt " << i << " token " << t;
  }
}

// Before min_new_tokens a row cannot draw a stop token and its stop check does not end it; its
// log-probs stay those of the whole distribution. After, it stops as usual.
TEST(ContinuousBatcher, MinNewTokensHoldsStopTokensAndStopChecksBack) {
  torch::manual_seed(8);
  Transformer model(test::small_config());
  auto prompt = prompt_of(4, 7);
  SamplingOptions sampled{.temperature = 1.0, .seed = 3, .max_new_tokens = 16};
  auto free_run = alone(model, prompt, sampled);
  // A token the run first draws at position k > 0, as a stop token: without min_new_tokens the run
  // ends there.
  std::size_t k = 1;
  auto seen_before = [&](std::size_t i) {
    auto end = free_run.tokens.begin() + static_cast<std::ptrdiff_t>(i);
    return std::find(free_run.tokens.begin(), end, free_run.tokens[i]) != end;
  };
  while (k < free_run.tokens.size() && seen_before(k))
    ++k;
  ASSERT_LT(k, free_run.tokens.size());
  auto stop = free_run.tokens[k];
  auto stopping = sampled;
  stopping.stop_token_ids = {stop};
  EXPECT_EQ(alone(model, prompt, stopping).tokens.size(), k + 1);
  auto held = stopping;
  held.min_new_tokens = static_cast<std::int64_t>(k) + 4;
  ContinuousBatcher batcher(model, 4, 64);
  int checks = 0;
  batcher.add({prompt, held, [&](const GeneratedSequence&) {
                 ++checks;
                 return true; // a stop string in every token: obeyed from min_new_tokens on
               }});
  std::map<ContinuousBatcher::Id, GeneratedSequence> done;
  drain(batcher, done);
  const auto& generated = done.begin()->second;
  ASSERT_EQ(generated.tokens.size(), k + 4);
  for (std::size_t i = 0; i + 1 < generated.tokens.size(); ++i)
    EXPECT_NE(generated.tokens[i], stop) << "token " << i;
  EXPECT_EQ(checks, static_cast<int>(k + 4)); // checked on every token (a stream sends text there)
  // The log-probs are the whole distribution's, as the trainer recomputes them.
  auto scored = score_logprobs(model, {prompt}, {generated.tokens}).front();
  for (std::size_t i = 0; i < scored.size(); ++i)
    EXPECT_NEAR(generated.logprobs[i], scored[i], 1e-5) << "token " << i;
}
