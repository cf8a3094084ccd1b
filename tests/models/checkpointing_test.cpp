// Gradient checkpointing: the same loss and gradients as without it, for every layer kind (dense,
// sliding windows and soft caps, norms after the blocks, a mixture of experts with its balance loss,
// LoRA with dropout), and a training pass that holds one layer's activations instead of all of them.
#include "models/checkpointing.hpp"
#include "models/training.hpp"
#include "tests/models/test_models.hpp"

#include <gtest/gtest.h>

using namespace chorus::models;
using test::heap_in_use;
using test::random_model;
using test::sample_tokens;

namespace {

// Next-token cross-entropy over `tokens`, plus a mixture of experts' balance loss when it keeps one.
torch::Tensor training_loss(Transformer& model, const torch::Tensor& tokens) {
  auto time = tokens.size(1);
  auto logits = model->forward(tokens.narrow(1, 0, time - 1));
  auto loss = torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}),
                                                   tokens.narrow(1, 1, time - 1).reshape(-1));
  if (auto balance = model->router_loss(); balance.defined())
    loss = loss + balance;
  return loss;
}

// Every gradient of `checkpointed` equals `plain`'s (both defined or both not), and some are not zero.
void expect_same_gradients(Transformer& plain, Transformer& checkpointed, const std::string& what) {
  auto expected = plain->named_parameters();
  auto found = checkpointed->named_parameters();
  double largest = 0;
  for (const auto& parameter : expected) {
    const auto& grad = parameter.value().grad();
    const auto& other = found[parameter.key()].grad();
    ASSERT_EQ(grad.defined(), other.defined()) << what << ": " << parameter.key();
    if (!grad.defined())
      continue;
    EXPECT_TRUE(torch::allclose(other, grad, 1e-5, 1e-7))
      << what << ": " << parameter.key() << " differs by " << (other - grad).abs().max().item<double>();
    largest = std::max(largest, grad.abs().max().item<double>());
  }
  EXPECT_GT(largest, 0) << what;
}

} // namespace

TEST(GradientCheckpointing, GradientsAreTheSameAsWithout) {
  auto moe = test::moe_config("qwen3_moe");
  moe.output_router_logits = true;
  moe.router_aux_loss_coef = 0.5;
  for (const auto& config : {test::small_config("qwen2"), test::gemma2_config(), test::olmo3_config(),
                             test::phi3_config(), moe, test::moe_config("qwen2_moe")}) {
    auto tokens = sample_tokens(config.vocab_size, 2, 24, 5);
    auto plain = random_model(config, 7);
    auto checkpointed = random_model(config, 7);
    checkpointed->set_gradient_checkpointing(true);
    auto expected = training_loss(plain, tokens);
    auto found = training_loss(checkpointed, tokens);
    EXPECT_NEAR(found.item<double>(), expected.item<double>(), 1e-6) << config.model_type;
    expected.backward();
    found.backward();
    expect_same_gradients(plain, checkpointed, config.model_type);
  }
}

// The router's gradient from the balance loss alone goes through the recomputed layer.
TEST(GradientCheckpointing, TheBalanceLossReachesTheRecomputedRouters) {
  auto config = test::moe_config("mixtral");
  config.output_router_logits = true;
  auto tokens = sample_tokens(config.vocab_size, 2, 12, 5);
  auto plain = random_model(config, 8);
  auto checkpointed = random_model(config, 8);
  checkpointed->set_gradient_checkpointing(true);
  for (auto* model : {&plain, &checkpointed}) {
    (*model)->hidden_states(tokens);
    (*model)->router_loss().backward();
  }
  expect_same_gradients(plain, checkpointed, "balance loss alone");
  auto gate = checkpointed->model->layers[1]->as<DecoderLayer>()->moe->gate->weight.grad();
  ASSERT_TRUE(gate.defined());
  EXPECT_GT(gate.abs().max().item<double>(), 0);

  // A pass's logits not yet taken survive an earlier pass's backward, which runs the layers again.
  auto earlier = checkpointed->hidden_states(tokens).sum() + checkpointed->router_loss();
  auto other = sample_tokens(config.vocab_size, 2, 12, 6);
  checkpointed->hidden_states(other);
  earlier.backward();
  plain->hidden_states(other);
  auto expected = plain->router_loss(), found = checkpointed->router_loss();
  ASSERT_TRUE(found.defined());
  EXPECT_NEAR(found.item<double>(), expected.item<double>(), 1e-6);
}

// LoRA: the input of the first layer needs no gradient (the embeddings are frozen), yet the adapters
// get theirs; dropout draws the same masks when the layer runs again, and the generator is left as
// it would be without checkpointing.
TEST(GradientCheckpointing, LoraWithDropoutGetsTheSameGradients) {
  auto config = test::small_config("llama", /*tied=*/false);
  LoraConfig lora;
  lora.r = 4;
  lora.lora_dropout = 0.3;
  lora.target_modules = {"q_proj", "v_proj", "down_proj"};
  auto tokens = sample_tokens(config.vocab_size, 2, 16, 5);
  auto plain = random_model(config, 9);
  auto checkpointed = random_model(config, 9);
  std::vector<double> next_draws;
  for (auto* model : {&plain, &checkpointed}) {
    (*model)->add_adapters(lora, 4);
    // B starts at zero, which would leave A without gradients: move it off.
    torch::NoGradGuard no_grad;
    torch::manual_seed(11);
    for (auto& parameter : (*model)->adapter_parameters())
      if (parameter.first.find("lora_B") != std::string::npos)
        parameter.second.copy_(torch::randn_like(parameter.second) * 0.1);
  }
  checkpointed->set_gradient_checkpointing(true);
  for (auto* model : {&plain, &checkpointed}) {
    torch::manual_seed(21);
    training_loss(*model, tokens).backward();
    next_draws.push_back(torch::rand({1}).item<double>());
  }
  expect_same_gradients(plain, checkpointed, "lora");
  EXPECT_EQ(next_draws[0], next_draws[1]);
  EXPECT_FALSE(checkpointed->model->layers[0]->as<DecoderLayer>()->self_attn->q_proj->weight.grad().defined());

  // Dropout matters here: another seed's masks give other gradients.
  torch::manual_seed(22);
  plain->zero_grad();
  training_loss(plain, tokens).backward();
  auto a = plain->adapter_parameters().front();
  auto other = checkpointed->named_parameters()[a.first].grad();
  EXPECT_FALSE(torch::allclose(a.second.grad(), other, 1e-5, 1e-7));
}

TEST(GradientCheckpointing, ParametersGetGradientsWhenTheInputNeedsNone) {
  torch::manual_seed(1);
  auto weight = torch::randn({3, 3}).requires_grad_();
  auto input = torch::randn({2, 3});
  auto block = [&](const torch::Tensor& x) {
    return std::vector<torch::Tensor>{torch::tanh(x.matmul(weight)), (x * 2).sum()};
  };
  auto outputs = checkpointed(block, input, {weight});
  ASSERT_EQ(outputs.size(), 2u);
  EXPECT_TRUE(outputs[0].requires_grad());
  EXPECT_TRUE(torch::equal(outputs[0], block(input)[0]));
  (outputs[0].sum() + outputs[1]).backward();
  auto found = weight.grad().clone();
  weight.mutable_grad().reset();
  block(input)[0].sum().backward();
  EXPECT_TRUE(torch::allclose(found, weight.grad()));
}

// The point of it: after the forward pass a checkpointed model holds its layers' inputs, not their
// activations (attention scores and probabilities, MLP products).
TEST(GradientCheckpointing, AForwardPassHoldsOneLayersActivations) {
  auto config = test::small_config("qwen2");
  config.num_hidden_layers = 8;
  config.max_position_embeddings = 512;
  auto tokens = sample_tokens(config.vocab_size, 2, 257, 5);
  std::vector<std::size_t> held;
  for (bool on : {false, true}) {
    auto model = random_model(config, 3);
    model->set_gradient_checkpointing(on);
    auto before = heap_in_use();
    auto loss = training_loss(model, tokens);
    held.push_back(heap_in_use() - before);
    loss.backward();
  }
  if (held[0] < (1u << 20))
    GTEST_SKIP() << "malloc does not see LibTorch's blocks here (a sanitizer's allocator)";
  std::cout << "held after the forward pass: " << held[0] / 1024 << " KiB without checkpointing, " << held[1] / 1024
            << " KiB with\n";
  EXPECT_LT(held[1] * 4, held[0]);
}
