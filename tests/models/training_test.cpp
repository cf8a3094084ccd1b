// Training primitives against numbers worked out by hand, and gradient accumulation against the
// whole batch at once.
#include "models/training.hpp"
#include "models/transformer.hpp"
#include "tests/models/test_models.hpp"

#include <gtest/gtest.h>

#include <cmath>

using namespace chorus::models;

namespace {

TEST(Losses, MaskedCrossEntropyByHand) {
  // Row 0, token 0: logits [0, ln 2, 0] -> probabilities [1/4, 1/2, 1/4]; the target 1 costs ln 2.
  // Token 1 is masked out and must not count, whatever its logits.
  auto logits = torch::tensor({0.0, std::log(2.0), 0.0, 5.0, -3.0, 1.0}, torch::kFloat32).view({1, 2, 3});
  logits.set_requires_grad(true);
  auto targets = torch::tensor({1, 2}, torch::kInt64).view({1, 2});
  auto mask = torch::tensor({1, 0}, torch::kInt64).view({1, 2});
  auto loss = masked_cross_entropy(logits, targets, mask);
  EXPECT_NEAR(loss.item<double>(), std::log(2.0), 1e-6);
  loss.backward();
  // d loss / d logits = softmax - one_hot(target) on the counted token, 0 elsewhere.
  auto expected = torch::tensor({0.25, -0.5, 0.25, 0.0, 0.0, 0.0}, torch::kFloat32).view({1, 2, 3});
  EXPECT_TRUE(torch::allclose(logits.grad(), expected, 1e-6, 1e-6)) << logits.grad();
}

TEST(Losses, ClippedPolicyLossByHand) {
  // ratio = exp(ln 0.5 - ln 0.25) = 2 on both tokens; clip range 0.2 -> clipped ratio 1.2.
  // A = +1: min(2, 1.2) = 1.2, clipped, no gradient. A = -1: min(-2, -1.2) = -2, unclipped,
  // d(-ratio * A)/d logprob = -ratio * A = 2, divided by the 2 masked tokens.
  auto logprobs = torch::full({1, 2}, std::log(0.5), torch::kFloat32).requires_grad_(true);
  auto old = torch::full({1, 2}, std::log(0.25), torch::kFloat32);
  auto advantages = torch::tensor({1.0f, -1.0f}).view({1, 2});
  auto mask = torch::ones({1, 2}, torch::kInt64);
  auto result = clipped_policy_loss(logprobs, old, advantages, mask, 0.2, 0.2);
  EXPECT_NEAR(result.loss.item<double>(), -(1.2 + -2.0) / 2, 1e-6);
  EXPECT_NEAR(result.clip_fraction, 0.5, 1e-9);
  EXPECT_NEAR(result.ratio_mean, 2.0, 1e-6);
  result.loss.backward();
  EXPECT_NEAR(logprobs.grad()[0][0].item<double>(), 0.0, 1e-7);
  EXPECT_NEAR(logprobs.grad()[0][1].item<double>(), 2.0 / 2, 1e-6);
}

TEST(Losses, SequenceAdvantagesBroadcastOverTokens) {
  auto logprobs = torch::zeros({2, 3});
  auto mask = torch::tensor({1, 1, 0, 1, 0, 0}, torch::kInt64).view({2, 3});
  auto per_sequence = clipped_policy_loss(logprobs, logprobs, torch::tensor({2.0f, -1.0f}), mask, 0.2, 0.2);
  // ratio 1 everywhere: loss = -mean(A over masked tokens) = -(2 + 2 - 1) / 3.
  EXPECT_NEAR(per_sequence.loss.item<double>(), -1.0, 1e-6);
}

TEST(Losses, AggregationsByHand) {
  // Row 0: values 1, 2, 3 (all counted); row 1: 4 (then two masked tokens).
  auto values = torch::tensor({1.0, 2.0, 3.0, 4.0, 100.0, 100.0}, torch::kFloat32).view({2, 3});
  auto mask = torch::tensor({1, 1, 1, 1, 0, 0}, torch::kInt64).view({2, 3});
  EXPECT_NEAR(aggregate(values, mask, Aggregation::token_mean).item<double>(), 10.0 / 4.0, 1e-6);
  EXPECT_NEAR(aggregate(values, mask, Aggregation::sequence_mean).item<double>(), (2.0 + 4.0) / 2.0, 1e-6);
  EXPECT_NEAR(aggregate(values, mask, Aggregation::sequence_sum).item<double>(), (6.0 + 4.0) / 2.0, 1e-6);
}

TEST(Losses, SequenceLevelRatioByHand) {
  // Row 0: token log-ratios 0.2 and 0.0 (the third token is masked) -> s = exp(0.1) = 1.10517, inside
  // [0.8, 1.2]: objective s * A = 1.10517 * 2. Row 1: log-ratios 0.5, 0.5 -> s = exp(0.5) = 1.64872,
  // clipped to 1.2 for A = 1 > 0: objective 1.2. Loss = -(2.21034 + 1.2) / 2.
  auto logprobs = torch::tensor({-1.0, -2.0, -9.0, -0.5, -0.5, -0.5}, torch::kFloat32).view({2, 3});
  auto old = torch::tensor({-1.2, -2.0, 0.0, -1.0, -1.0, 0.0}, torch::kFloat32).view({2, 3});
  auto mask = torch::tensor({1, 1, 0, 1, 1, 0}, torch::kInt64).view({2, 3});
  auto advantages = torch::tensor({2.0, 1.0}, torch::kFloat32);
  logprobs.set_requires_grad(true);
  auto result = sequence_policy_loss(logprobs, old, advantages, mask, 0.2, 0.2);
  EXPECT_NEAR(result.loss.item<double>(), -(std::exp(0.1) * 2.0 + 1.2) / 2.0, 1e-5);
  // Row 0 (unclipped): d/d logprob_t = -(1/2) * A * s / 2 for its two counted tokens, 0 for the
  // masked one. Row 1 is clipped: no gradient at all.
  result.loss.backward();
  auto expected =
    torch::tensor({-0.5 * 2.0 * std::exp(0.1) / 2, -0.5 * 2.0 * std::exp(0.1) / 2, 0.0, 0.0, 0.0, 0.0}, torch::kFloat32)
      .view({2, 3});
  EXPECT_TRUE(torch::allclose(logprobs.grad(), expected, 1e-5, 1e-6)) << logprobs.grad();
  EXPECT_NEAR(result.clip_fraction, 0.5, 1e-6);
  EXPECT_NEAR(result.ratio_mean, (std::exp(0.1) + std::exp(0.5)) / 2.0, 1e-5);
}

TEST(Losses, StaleSequencesCarryTheirWholeCompletionsTruncatedImportanceWeight) {
  // The rows of SequenceLevelRatioByHand, both stale, row 1 with A = -1 (unclipped: min(-s, -1.2)).
  // Row 0: w = exp(0.2 + 0.0) = 1.2214 < 2: objective w * A; each counted token's gradient is
  // -(1/2) * w * A / 2 (s's own factor is replaced by w). Row 1: w = exp(1.0) = 2.718, truncated to
  // kStaleImportanceCap = 2: objective 2 * A, token gradients -(1/2) * 2 * A / 2.
  auto logprobs = torch::tensor({-1.0, -2.0, -9.0, -0.5, -0.5, -0.5}, torch::kFloat32).view({2, 3});
  auto old = torch::tensor({-1.2, -2.0, 0.0, -1.0, -1.0, 0.0}, torch::kFloat32).view({2, 3});
  auto mask = torch::tensor({1, 1, 0, 1, 1, 0}, torch::kInt64).view({2, 3});
  auto advantages = torch::tensor({2.0, -1.0}, torch::kFloat32);
  logprobs.set_requires_grad(true);
  auto result = sequence_policy_loss(logprobs, old, advantages, mask, 0.2, 0.2, torch::tensor({1.0f, 1.0f}));
  double w0 = std::exp(0.2), w1 = kStaleImportanceCap;
  EXPECT_NEAR(result.loss.item<double>(), -(w0 * 2.0 + w1 * -1.0) / 2.0, 1e-5);
  EXPECT_EQ(result.clip_fraction, 0.0); // neither row's ratio was clipped; the weights are no clip
  result.loss.backward();
  auto expected =
    torch::tensor({-0.5 * w0 * 2.0 / 2, -0.5 * w0 * 2.0 / 2, 0.0, 0.5 * w1 / 2, 0.5 * w1 / 2, 0.0}, torch::kFloat32)
      .view({2, 3});
  EXPECT_TRUE(torch::allclose(logprobs.grad(), expected, 1e-5, 1e-6)) << logprobs.grad();

  // Rows that are not stale keep GSPO's objective exactly.
  auto fresh_logprobs = logprobs.detach().clone().requires_grad_(true);
  auto plain_logprobs = logprobs.detach().clone().requires_grad_(true);
  auto fresh = sequence_policy_loss(fresh_logprobs, old, advantages, mask, 0.2, 0.2, torch::tensor({0.0f, 0.0f}));
  auto plain = sequence_policy_loss(plain_logprobs, old, advantages, mask, 0.2, 0.2);
  EXPECT_EQ(fresh.loss.item<float>(), plain.loss.item<float>());
  fresh.loss.backward();
  plain.loss.backward();
  EXPECT_TRUE(torch::equal(fresh_logprobs.grad(), plain_logprobs.grad()));
}

TEST(Losses, DpoByHand) {
  // Pair 0: margin = 0.5 * ((-3 - -4) - (-6 - -5)) = 0.5 * (1 + 1) = 1 -> loss log(1 + e^-1) = 0.31326.
  // Pair 1: margin = 0.5 * ((-2 - -2) - (-1 - -3)) = -1 -> loss log(1 + e) = 1.31326.
  auto chosen = torch::tensor({-3.0, -2.0}), rejected = torch::tensor({-6.0, -1.0});
  auto ref_chosen = torch::tensor({-4.0, -2.0}), ref_rejected = torch::tensor({-5.0, -3.0});
  chosen.set_requires_grad(true);
  rejected.set_requires_grad(true);
  auto result = dpo_loss(chosen, rejected, ref_chosen, ref_rejected, 0.5);
  EXPECT_NEAR(result.loss.item<double>(), (std::log1p(std::exp(-1.0)) + std::log1p(std::exp(1.0))) / 2.0, 1e-5);
  EXPECT_NEAR(result.reward_accuracy, 0.5, 1e-6);
  EXPECT_NEAR(result.reward_margin, 0.0, 1e-6);
  // d loss / d chosen_i = -beta * (1 - sigmoid(margin_i)) / pairs; the rejected side is its negative.
  result.loss.backward();
  auto sigmoid = [](double x) { return 1.0 / (1.0 + std::exp(-x)); };
  EXPECT_NEAR(chosen.grad()[0].item<double>(), -0.5 * (1 - sigmoid(1.0)) / 2, 1e-6);
  EXPECT_NEAR(chosen.grad()[1].item<double>(), -0.5 * (1 - sigmoid(-1.0)) / 2, 1e-6);
  EXPECT_NEAR(rejected.grad()[0].item<double>(), 0.5 * (1 - sigmoid(1.0)) / 2, 1e-6);
}

// The same pairs (margins 1 and -1 at beta 0.5) under the other losses of a margin.
TEST(Losses, DpoVariantsByHand) {
  auto chosen = torch::tensor({-3.0, -2.0}), rejected = torch::tensor({-6.0, -1.0});
  auto ref_chosen = torch::tensor({-4.0, -2.0}), ref_rejected = torch::tensor({-5.0, -3.0});
  // Hinge (SLiC): max(0, 1 - m): 0 and 2; only the pair under the margin has a gradient, -beta / pairs.
  chosen.set_requires_grad(true);
  auto hinge = dpo_loss(chosen, rejected, ref_chosen, ref_rejected, 0.5, "hinge");
  EXPECT_NEAR(hinge.loss.item<double>(), 1.0, 1e-6);
  hinge.loss.backward();
  EXPECT_NEAR(chosen.grad()[0].item<double>(), 0.0, 1e-12);
  EXPECT_NEAR(chosen.grad()[1].item<double>(), -0.25, 1e-6);
  // IPO: (m / beta - 1 / (2 beta))^2 = (2 - 1)^2 and (-2 - 1)^2: mean 5.
  EXPECT_NEAR(dpo_loss(chosen, rejected, ref_chosen, ref_rejected, 0.5, "ipo").loss.item<double>(), 5.0, 1e-6);
  // Conservative DPO on pair 0 alone (m = 1): 0.9 log(1 + e^-1) + 0.1 log(1 + e).
  auto first = [](const torch::Tensor& t) { return t.narrow(0, 0, 1); };
  auto smoothed = dpo_loss(first(chosen), first(rejected), first(ref_chosen), first(ref_rejected), 0.5, "sigmoid", 0.1);
  EXPECT_NEAR(smoothed.loss.item<double>(), 0.9 * std::log1p(std::exp(-1.0)) + 0.1 * std::log1p(std::exp(1.0)), 1e-6);
  EXPECT_NEAR(smoothed.reward_margin, 1.0, 1e-6); // the margin is the same whatever the loss
  EXPECT_THROW(dpo_loss(chosen, rejected, ref_chosen, ref_rejected, 0.5, "kto"), std::invalid_argument);
}

TEST(Losses, BradleyTerryByHand) {
  // Scores: pair 0 chosen 2.0, rejected 1.0 -> margin 1 -> -log sigmoid(1) = log(1 + e^-1) = 0.31326;
  // pair 1 chosen 0.5, rejected 1.5 -> margin -1 -> log(1 + e) = 1.31326. Loss = their mean, 0.81326.
  auto chosen = torch::tensor({2.0, 0.5}), rejected = torch::tensor({1.0, 1.5});
  chosen.set_requires_grad(true);
  rejected.set_requires_grad(true);
  auto result = bradley_terry_loss(chosen, rejected);
  EXPECT_NEAR(result.loss.item<double>(), 0.8132617, 1e-6);
  EXPECT_NEAR(result.reward_accuracy, 0.5, 1e-6);
  EXPECT_NEAR(result.reward_margin, 0.0, 1e-6);
  // d loss / d chosen_i = -(1 - sigmoid(margin_i)) / pairs: -(1 - 0.7310586) / 2 and
  // -(1 - 0.2689414) / 2; the rejected side is the negative.
  result.loss.backward();
  EXPECT_NEAR(chosen.grad()[0].item<double>(), -0.1344707, 1e-6);
  EXPECT_NEAR(chosen.grad()[1].item<double>(), -0.3655293, 1e-6);
  EXPECT_NEAR(rejected.grad()[0].item<double>(), 0.1344707, 1e-6);
  EXPECT_NEAR(rejected.grad()[1].item<double>(), 0.3655293, 1e-6);
}

TEST(Losses, ClippedValueLossByHand) {
  // Token 0: V 1.0, V_old 0.5, R 0.0: clipped V = 0.5 + 0.2 = 0.7; max(1.0, 0.49) = 1.0.
  // Token 1: V 0.0, V_old 0.5, R 1.0: clipped V = 0.3; max(1.0, 0.49) = 1.0 (unclipped again).
  // Token 2: V 0.9, V_old 0.0, R 1.0: clipped V = 0.2; max(0.01, 0.64) = 0.64 (the clip bites).
  // Loss = 0.5 * (1.0 + 1.0 + 0.64) / 3.
  auto values = torch::tensor({1.0, 0.0, 0.9}, torch::kFloat32).view({1, 3});
  auto old_values = torch::tensor({0.5, 0.5, 0.0}, torch::kFloat32).view({1, 3});
  auto returns = torch::tensor({0.0, 1.0, 1.0}, torch::kFloat32).view({1, 3});
  auto mask = torch::ones({1, 3}, torch::kInt64);
  values.set_requires_grad(true);
  auto loss = clipped_value_loss(values, old_values, returns, mask, 0.2);
  EXPECT_NEAR(loss.item<double>(), 0.5 * 2.64 / 3.0, 1e-6);
  // Unclipped terms pull V towards R: (V - R) / 3; the clipped one has no gradient.
  loss.backward();
  auto expected = torch::tensor({1.0 / 3.0, -1.0 / 3.0, 0.0}, torch::kFloat32).view({1, 3});
  EXPECT_TRUE(torch::allclose(values.grad(), expected, 1e-6, 1e-6)) << values.grad();
}

TEST(Losses, KlToReferenceByHand) {
  // delta = ref - logprobs: 0 -> 0; ln 2 -> 2 - ln 2 - 1 = 0.30685; the masked token does not count.
  auto logprobs = torch::tensor({-1.0, -2.0, -3.0}, torch::kFloat32).view({1, 3});
  logprobs.set_requires_grad(true);
  auto reference = torch::tensor({-1.0, -2.0 + std::log(2.0), 5.0}, torch::kFloat32).view({1, 3});
  auto mask = torch::tensor({1, 1, 0}, torch::kInt64).view({1, 3});
  auto kl = kl_to_reference(logprobs, reference, mask);
  EXPECT_NEAR(kl.item<double>(), (2.0 - std::log(2.0) - 1.0) / 2.0, 1e-6);
  // d/d logprobs of exp(d) - d - 1 with d = ref - logprobs is 1 - exp(d), over 2 counted tokens.
  kl.backward();
  auto expected = torch::tensor({0.0, (1.0 - 2.0) / 2.0, 0.0}, torch::kFloat32).view({1, 3});
  EXPECT_TRUE(torch::allclose(logprobs.grad(), expected, 1e-6, 1e-6)) << logprobs.grad();
}

TEST(Losses, SequenceBatchMarksTheCompletionTargets) {
  std::vector<std::int64_t> p0{1, 2, 3}, c0{4, 5}, p1{6}, c1{7};
  auto batch = make_sequence_batch({&p0, &p1}, {&c0, &c1});
  // Row 0: tokens 1 2 3 4 5, targets 2 3 4 5, completion targets at 2 and 3 (positions 2, 3 predict 4, 5).
  EXPECT_TRUE(torch::equal(batch.tokens, torch::tensor({1, 2, 3, 4, 5, 6, 7, 0, 0, 0}, torch::kInt64).view({2, 5})));
  EXPECT_TRUE(torch::equal(batch.completion_mask, torch::tensor({0, 0, 1, 1, 1, 0, 0, 0}, torch::kInt64).view({2, 4})));
  EXPECT_TRUE(
    torch::equal(batch.attention_mask, torch::tensor({1, 1, 1, 1, 1, 1, 1, 0, 0, 0}, torch::kInt64).view({2, 5})));
  auto values = batch.at_completion({{-0.5f, -0.25f}, {-1.0f}});
  EXPECT_TRUE(torch::equal(values, torch::tensor({0.0f, 0.0f, -0.5f, -0.25f, -1.0f, 0.0f, 0.0f, 0.0f}).view({2, 4})));
}

TEST(Schedule, WarmupThenCosineByHand) {
  LrSchedule schedule{.base_lr = 1.0, .warmup_steps = 10, .total_steps = 110, .kind = LrSchedule::Kind::cosine};
  EXPECT_NEAR(schedule.at(0), 0.1, 1e-12);
  EXPECT_NEAR(schedule.at(9), 1.0, 1e-12);
  EXPECT_NEAR(schedule.at(10), 1.0, 1e-12);
  EXPECT_NEAR(schedule.at(60), 0.5, 1e-12);
  EXPECT_NEAR(schedule.at(110), 0.0, 1e-12);
  EXPECT_NEAR(schedule.at(500), 0.0, 1e-12);
  LrSchedule constant{.base_lr = 2.0, .warmup_steps = 4, .kind = LrSchedule::Kind::constant};
  EXPECT_NEAR(constant.at(1), 1.0, 1e-12);
  EXPECT_NEAR(constant.at(1000), 2.0, 1e-12);
  LrSchedule floor{.base_lr = 1.0, .total_steps = 10, .min_ratio = 0.1};
  EXPECT_NEAR(floor.at(10), 0.1, 1e-12);
}

TEST(Schedule, WarmupThenLinearByHand) {
  // Hugging Face's linear schedule: the rate falls by the same amount each step after the warm-up.
  LrSchedule schedule{.base_lr = 2.0, .warmup_steps = 2, .total_steps = 6, .kind = LrSchedule::Kind::linear};
  std::vector<double> rates;
  for (int step = 0; step < 7; ++step)
    rates.push_back(schedule.at(step));
  std::vector<double> expected{1.0, 2.0, 2.0, 1.5, 1.0, 0.5, 0.0};
  for (std::size_t i = 0; i < rates.size(); ++i)
    EXPECT_NEAR(rates[i], expected[i], 1e-12) << "step " << i;
  LrSchedule floor{.base_lr = 1.0, .total_steps = 4, .kind = LrSchedule::Kind::linear, .min_ratio = 0.2};
  EXPECT_NEAR(floor.at(2), 0.6, 1e-12);
  EXPECT_NEAR(floor.at(100), 0.2, 1e-12);
  EXPECT_EQ(LrSchedule::kind_named("linear"), LrSchedule::Kind::linear);
  EXPECT_EQ(LrSchedule::kind_named("cosine"), LrSchedule::Kind::cosine);
  EXPECT_EQ(LrSchedule::kind_named("constant"), LrSchedule::Kind::constant);
  EXPECT_FALSE(LrSchedule::kind_named("Linear").has_value());
}

ModelConfig small() {
  auto config = test::small_config("qwen2", /*tied=*/false, /*vocab=*/50);
  config.num_hidden_layers = 1;
  return config;
}

TEST(Optimizer, NormsAndBiasesDoNotDecay) {
  torch::manual_seed(0);
  Transformer model(small());
  auto optimizer = make_adamw(*model, /*lr=*/0.1, /*weight_decay=*/0.5);
  ASSERT_EQ(optimizer->param_groups().size(), 2u);
  auto weight = model->model->layers[0]->as<DecoderLayer>()->mlp->up_proj->weight;
  auto norm = model->model->norm->weight;
  auto weight_before = weight.detach().clone();
  auto norm_before = norm.detach().clone();
  // Zero gradients: only decoupled weight decay moves anything, by a factor (1 - lr * wd).
  optimizer->zero_grad();
  for (auto& parameter : model->parameters())
    parameter.mutable_grad() = torch::zeros_like(parameter);
  optimizer->step();
  EXPECT_TRUE(torch::allclose(weight, weight_before * (1 - 0.1 * 0.5), 1e-6, 1e-7));
  EXPECT_TRUE(torch::equal(norm, norm_before));
  set_learning_rate(*optimizer, 0.25);
  for (auto& group : optimizer->param_groups())
    EXPECT_DOUBLE_EQ(group.options().get_lr(), 0.25);
}

TEST(Optimizer, AccumulatedMicroBatchesEqualTheWholeBatch) {
  auto config = small();
  torch::manual_seed(1);
  auto tokens = torch::randint(config.vocab_size, {4, 9}, torch::kInt64);
  auto mask = torch::ones({4, 8}, torch::kInt64);
  mask[0].narrow(0, 0, 5).zero_(); // uneven token counts: weights must follow them
  auto loss_on = [&](Transformer& model, std::int64_t from, std::int64_t rows) {
    auto batch = tokens.narrow(0, from, rows);
    auto logits = model->forward(batch.narrow(1, 0, 8));
    return masked_cross_entropy(logits, batch.narrow(1, 1, 8), mask.narrow(0, from, rows));
  };
  auto grads_of = [&](bool split) {
    torch::manual_seed(2);
    Transformer model(config);
    torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(0.0));
    StepResult result;
    if (split) {
      std::vector<double> weights{mask.narrow(0, 0, 2).sum().item<double>(), mask.narrow(0, 2, 2).sum().item<double>()};
      result = optimizer_step(
        *model, optimizer, weights, [&](std::size_t i) { return loss_on(model, static_cast<std::int64_t>(i) * 2, 2); },
        0);
    } else {
      result = optimizer_step(*model, optimizer, {1.0}, [&](std::size_t) { return loss_on(model, 0, 4); }, 0);
    }
    std::vector<torch::Tensor> grads;
    for (auto& parameter : model->parameters())
      grads.push_back(parameter.grad().clone());
    return std::pair{result, grads};
  };
  auto [whole, whole_grads] = grads_of(false);
  auto [split, split_grads] = grads_of(true);
  EXPECT_NEAR(whole.loss, split.loss, 1e-5);
  EXPECT_NEAR(whole.grad_norm, split.grad_norm, 1e-5);
  for (std::size_t i = 0; i < whole_grads.size(); ++i)
    EXPECT_TRUE(torch::allclose(whole_grads[i], split_grads[i], 1e-4, 1e-6)) << "parameter " << i;
}

TEST(Optimizer, ClippingBoundsTheGradientNorm) {
  torch::manual_seed(3);
  Transformer model(small());
  auto optimizer = make_adamw(*model, 1e-3, 0.0);
  auto tokens = torch::randint(50, {2, 6}, torch::kInt64);
  auto loss_of = [&](std::size_t) {
    return masked_cross_entropy(model->forward(tokens.narrow(1, 0, 5)), tokens.narrow(1, 1, 5),
                                torch::ones({2, 5}, torch::kInt64))
      * 100.0;
  };
  auto result = optimizer_step(*model, *optimizer, {1.0}, loss_of, /*max_grad_norm=*/0.5);
  EXPECT_GT(result.grad_norm, 0.5) << "the reported norm is the one before clipping";
  double squares = 0;
  for (auto& parameter : model->parameters())
    squares += parameter.grad().pow(2).sum().item<double>();
  EXPECT_NEAR(std::sqrt(squares), 0.5, 1e-4);
}

// Qwen2's layout, Gemma 2's (its caps, at Gemma 2's values, in the backward pass), Gemma 3's (its
// GeGLU, four norms per layer and sliding window) and OLMo 3's (norms after, across heads; a window).
TEST(Training, AFewStepsLowerTheLoss) {
  auto gemma2 = test::gemma2_config(/*tied=*/true, /*vocab=*/50);
  gemma2.attn_logit_softcapping = 50.0;
  gemma2.final_logit_softcapping = 30.0;
  for (const auto& config :
       {small(), gemma2, test::gemma3_config(/*tied=*/true, /*vocab=*/50), test::olmo3_config(false, 50)}) {
    torch::manual_seed(4);
    Transformer model(config);
    auto optimizer = make_adamw(*model, 1e-2, 0.0);
    auto tokens = torch::randint(50, {4, 12}, torch::kInt64);
    auto mask = torch::ones({4, 11}, torch::kInt64);
    auto loss_of = [&](std::size_t) {
      return masked_cross_entropy(model->forward(tokens.narrow(1, 0, 11)), tokens.narrow(1, 1, 11), mask);
    };
    auto first = optimizer_step(*model, *optimizer, {1.0}, loss_of, 1.0).loss;
    double last = first;
    for (int step = 0; step < 20; ++step)
      last = optimizer_step(*model, *optimizer, {1.0}, loss_of, 1.0).loss;
    EXPECT_LT(last, first * 0.7) << config.model_type << ": first " << first << " last " << last;
  }
}

} // namespace

// Without master copies a bf16 weight does not move under updates below half its spacing; with
// them the same updates accumulate in fp32 and the bf16 weight is their rounding.
TEST(MasterWeights, SmallUpdatesAccumulateInTheFp32CopiesAndRoundIntoTheModel) {
  torch::manual_seed(11);
  auto weight = torch::full({64}, 1.0f).to(torch::kBFloat16).requires_grad_(true); // bf16 spacing at 1: 2^-7
  auto direct_optimizer = make_adamw(std::vector<torch::Tensor>{weight}, 1e-3, 0.0);
  torch::nn::Linear layer(torch::nn::LinearOptions(64, 1).bias(false));
  layer->to(torch::kBFloat16);
  torch::NoGradGuard setup;
  layer->weight.fill_(1.0);
  MasterWeights master(*layer);
  ASSERT_FALSE(master.empty());
  EXPECT_EQ(master.trained()[0].scalar_type(), torch::kFloat32);
  auto optimizer = make_adamw(master.trained(), 1e-3, 0.0);
  auto input = torch::ones({1, 64}, torch::kBFloat16);
  for (int step = 0; step < 10; ++step) {
    torch::AutoGradMode grad(true);
    optimizer_step(
      *layer, *optimizer, {1.0}, [&](std::size_t) { return layer(input).sum().to(torch::kFloat32); }, 0.0, {}, &master);
    (weight.to(torch::kFloat32).sum()).backward();
    direct_optimizer->step();
    weight.mutable_grad() = torch::Tensor();
  }
  // 10 steps of 1e-3 each (AdamW's normalised step, against a gradient of 1): 1 - 0.01 in fp32.
  EXPECT_NEAR(master.trained()[0][0][0].item<double>(), 0.99, 1e-4);
  EXPECT_EQ(layer->weight[0][0].item<double>(), torch::tensor(0.99).to(torch::kBFloat16).item<double>());
  EXPECT_EQ(weight[0].item<double>(), 1.0);     // each 1e-3 step rounded away
  EXPECT_FALSE(layer->weight.grad().defined()); // moved to the copy
}
