// The trainer's log-probs: computed for completion targets only, in chunks of rows, with the values
// and gradients of the whole batch's logits and without holding them.
#include "models/completion_logprobs.hpp"
#include "tests/models/test_models.hpp"

#include <gtest/gtest.h>

using namespace chorus::models;
using test::heap_in_use;

namespace {

// The gradient of every parameter of `model` after `loss`'s backward pass, in parameters() order.
std::vector<torch::Tensor> gradients_of(Transformer& model, const std::function<torch::Tensor()>& loss) {
  model->zero_grad();
  loss().backward();
  std::vector<torch::Tensor> result;
  for (const auto& parameter : model->parameters())
    result.push_back(parameter.grad().defined() ? parameter.grad().clone() : torch::Tensor());
  return result;
}

} // namespace

TEST(CompletionLogprobs, ChunksGiveTheWholeBatchsLogprobsAndGradients) {
  for (bool tied : {true, false}) {
    torch::manual_seed(6);
    auto model = test::random_model(test::gemma2_config(tied), 6); // a final soft cap too
    auto tokens = torch::randint(model->config().vocab_size, {3, 10}, torch::kInt64);
    auto targets = torch::randint(model->config().vocab_size, {30}, torch::kInt64);
    auto weights = torch::rand({30});
    auto logprobs = [&](std::int64_t chunk_rows) {
      auto states = model->hidden_states(tokens).reshape({30, -1});
      return state_logprobs(model, states, targets, chunk_rows);
    };
    auto whole = token_logprobs(model->logits(model->hidden_states(tokens).reshape({30, -1})), targets);
    for (std::int64_t chunk_rows : {7, 30, 1000}) {
      torch::NoGradGuard no_grad;
      EXPECT_TRUE(torch::allclose(logprobs(chunk_rows), whole, 1e-6, 1e-6)) << chunk_rows;
    }
    auto expected = gradients_of(model, [&] { return (logprobs(1000) * weights).sum(); });
    auto found = gradients_of(model, [&] { return (logprobs(7) * weights).sum(); });
    ASSERT_EQ(found.size(), expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
      ASSERT_EQ(found[i].defined(), expected[i].defined()) << i;
      // Summed chunk by chunk, a weight's gradient rounds differently: 1e-6 of gradients near 1.
      EXPECT_TRUE(torch::allclose(found[i], expected[i], 1e-5, 1e-5))
        << "parameter " << i << ", tied " << tied << ": " << (found[i] - expected[i]).abs().max().item<double>();
    }
  }
}

// Rows of their own prompts (not packed): the completion targets' log-probs, 0 elsewhere.
TEST(CompletionLogprobs, OnlyCompletionTargetsAreScored) {
  torch::manual_seed(7);
  Transformer model(test::small_config());
  std::vector<std::int64_t> p1{1, 2, 3}, p2{4, 5}, c1{6, 7}, c2{8, 9, 10, 11};
  auto batch = make_sequence_batch({&p1, &p2}, {&c1, &c2});
  torch::NoGradGuard no_grad;
  auto expected = batch_logprobs(model->forward(batch.tokens, batch.attention_mask), batch);
  auto found = completion_logprobs(model, batch);
  auto mask = batch.completion_mask.to(torch::kFloat32);
  EXPECT_TRUE(torch::allclose(found, expected * mask, 1e-5, 1e-6)) << (found - expected * mask).abs().max();
  EXPECT_EQ((found * (1 - mask)).abs().max().item<float>(), 0.0f);
  EXPECT_EQ(found.ne(0).sum().item<std::int64_t>(), 6);
}

// The point of the chunks: a recorded pass holds the states and the log-probs, not the logits and
// their softmax (here 2,048 states over a vocabulary of 8,192: 64 MB of fp32 logits).
TEST(CompletionLogprobs, AChunkedPassHoldsNoLogitsForTheBackwardPass) {
  auto config = test::small_config("qwen2", /*tied=*/false, /*vocab=*/8192);
  config.num_hidden_layers = 1;
  auto model = test::random_model(config, 8);
  torch::manual_seed(8);
  auto states = torch::randn({2048, config.hidden_size}).requires_grad_();
  auto targets = torch::randint(config.vocab_size, {2048}, torch::kInt64);
  std::vector<std::size_t> held;
  std::vector<torch::Tensor> state_gradients;
  for (std::int64_t chunk_rows : {4096, 256}) {
    auto before = heap_in_use();
    auto loss = state_logprobs(model, states, targets, chunk_rows).sum();
    held.push_back(heap_in_use() - before);
    loss.backward();
    state_gradients.push_back(states.grad().clone());
    states.mutable_grad().reset();
  }
  EXPECT_TRUE(torch::allclose(state_gradients[0], state_gradients[1], 1e-5, 1e-7));
  if (held[0] < (1u << 20))
    GTEST_SKIP() << "malloc does not see LibTorch's blocks here (a sanitizer's allocator)";
  std::cout << "held after the log-probs: " << held[0] / 1024 << " KiB in one chunk, " << held[1] / 1024
            << " KiB in chunks of 256 rows\n";
  EXPECT_LT(held[1] * 8, held[0]);
}
