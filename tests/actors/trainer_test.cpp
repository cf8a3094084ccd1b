// The trainer's steps without actors: SFT learns, micro-batching does not change the step, the
// policy-gradient step moves probability towards positive advantages, and bad samples are refused.
#include <chorus/errors.hpp>

#include "actors/trainer.hpp"
#include "models/generation.hpp"
#include "models/safetensors.hpp"
#include "tests/expect_error.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

using namespace chorus;
using chorus::actors::Objective;
using chorus::actors::Trainer;
using chorus::test::expect_error_containing;

namespace {

models::Pretrained tiny(std::int64_t num_labels = 0) {
  auto config = models::ModelConfig::tiny(64);
  config.num_labels = num_labels;
  config.num_hidden_layers = 2;
  config.hidden_size = 64;
  config.intermediate_size = 96;
  config.num_attention_heads = 4;
  config.num_key_value_heads = 2;
  config.head_dim = 16;
  return {models::Transformer(config, /*seed=*/3), nullptr};
}

std::vector<TrainSample> samples() {
  return {{{1, 2, 3}, {4, 5, 6, 7}, 1.0, {}, 0}, {{8, 9}, {10, 11}, -1.0, {}, 0}, {{12}, {13, 14, 15}, 0.5, {}, 0}};
}

double completion_logprob(models::Pretrained& model, const TrainSample& sample) {
  auto scores = models::score_logprobs(model.model, {sample.prompt_tokens}, {sample.completion_tokens});
  double total = 0;
  for (auto value : scores.front())
    total += value;
  return total;
}

} // namespace

TEST(Trainer, SftStepsLowerTheLoss) {
  Trainer trainer(tiny(), false);
  TrainParams params{.lr = 3e-3};
  auto first = trainer.step(Objective::sft, samples(), params);
  TrainReport last;
  for (int i = 0; i < 15; ++i)
    last = trainer.step(Objective::sft, samples(), params);
  EXPECT_LT(last.loss, 0.5 * first.loss);
  EXPECT_EQ(last.weight_version, 16);
  EXPECT_EQ(last.tokens, 9);
  EXPECT_GT(last.tokens_per_second, 0.0);
}

TEST(Trainer, MicroBatchingDoesNotChangeTheStep) {
  Trainer whole(tiny(), false), split(tiny(), false);
  auto a = whole.step(Objective::sft, samples(), {.lr = 1e-2, .micro_batch_size = 8});
  auto b = split.step(Objective::sft, samples(), {.lr = 1e-2, .micro_batch_size = 1});
  EXPECT_NEAR(a.loss, b.loss, 1e-5);
  EXPECT_NEAR(a.grad_norm, b.grad_norm, 1e-4);
  auto pa = whole.model().model->parameters(), pb = split.model().model->parameters();
  // Adam divides by the root of the squared gradient: where a gradient is close to zero, the last
  // bits of the accumulation order show up in its step. 1e-4 is a hundredth of this step's size.
  for (std::size_t i = 0; i < pa.size(); ++i)
    EXPECT_TRUE(torch::allclose(pa[i], pb[i], 0.0, 1e-4)) << (pa[i] - pb[i]).abs().max();
}

TEST(Trainer, PolicyStepsFollowTheAdvantages) {
  for (const std::string level : {"token", "sequence"}) {
    Trainer trainer(tiny(), true);
    auto batch = samples();
    for (auto& sample : batch) {
      auto scores = models::score_logprobs(trainer.model().model, {sample.prompt_tokens}, {sample.completion_tokens});
      sample.behaviour_logprobs = scores.front();
    }
    auto up_before = completion_logprob(trainer.model(), batch[0]);
    auto down_before = completion_logprob(trainer.model(), batch[1]);
    auto report = trainer.step(Objective::policy, batch, {.lr = 1e-2, .ratio_level = level, .kl_beta = 0.01});
    EXPECT_LT(report.logprob_gap, 1e-5) << level; // behaviour log-probs from these very weights
    EXPECT_GE(report.logprob_gap, 0.0) << level;
    for (int i = 0; i < 3; ++i) // later steps: behaviour log-probs are stale, as off-policy samples are
      report = trainer.step(Objective::policy, batch, {.lr = 1e-2, .ratio_level = level, .kl_beta = 0.01});
    EXPECT_GT(completion_logprob(trainer.model(), batch[0]), up_before) << level;
    EXPECT_LT(completion_logprob(trainer.model(), batch[1]), down_before) << level;
    EXPECT_GT(report.kl, 0.0) << level;
    EXPECT_GT(report.clip_fraction, 0.0) << level;
  }
}

// GSPO on samples older than the step's policy: each one weighs by exp(sum of its token log-ratios)
// (its whole completion's importance weight), not by their geometric mean; newer samples do not.
TEST(Trainer, StaleSamplesOfASequenceLevelStepWeighByTheirWholeImportanceRatio) {
  Trainer trainer(tiny(), false);
  auto batch = samples(); // made by weight version 0; advantages 1, -1, 0.5; 4, 2 and 3 tokens
  for (auto& sample : batch) {
    sample.behaviour_logprobs =
      models::score_logprobs(trainer.model().model, {sample.prompt_tokens}, {sample.completion_tokens}).front();
    for (auto& logprob : sample.behaviour_logprobs)
      logprob -= 0.1f; // the policy now gives each token e^0.1 times its sampling probability
  }
  TrainParams params{.lr = 0.0, .ratio_level = "sequence"};
  auto plain = trainer.step(Objective::policy, batch, params);
  params.on_policy_version = 0;
  auto fresh = trainer.step(Objective::policy, batch, params);
  params.on_policy_version = 1;
  auto stale = trainer.step(Objective::policy, batch, params);
  double s = std::exp(0.1);
  EXPECT_NEAR(plain.loss, -s * (1.0 - 1.0 + 0.5) / 3, 1e-4);
  EXPECT_EQ(fresh.loss, plain.loss);
  EXPECT_NEAR(stale.loss, -(std::exp(0.4) - std::exp(0.2) + 0.5 * std::exp(0.3)) / 3, 1e-4);
}

TEST(Trainer, DpoStepsPreferTheChosenCompletion) {
  Trainer trainer(tiny(), true);
  std::vector<PreferencePair> pairs{{{1, 2, 3}, {4, 5}, {6, 7, 8}}, {{9}, {10, 11, 12}, {13}}};
  auto first = trainer.pair_step(Objective::dpo, pairs, {.lr = 3e-3, .micro_batch_size = 1, .dpo_beta = 0.5});
  // Before any step the policy is the reference: every margin is 0, the loss log 2.
  EXPECT_NEAR(first.loss, std::log(2.0), 1e-5);
  EXPECT_NEAR(first.reward_margin, 0.0, 1e-6);
  TrainReport last;
  for (int i = 0; i < 10; ++i)
    last = trainer.pair_step(Objective::dpo, pairs, {.lr = 3e-3, .dpo_beta = 0.5});
  EXPECT_LT(last.loss, first.loss);
  EXPECT_GT(last.reward_margin, 0.0);
  EXPECT_EQ(last.reward_accuracy, 1.0);
  Trainer without_reference(tiny(), false);
  EXPECT_THROW(without_reference.pair_step(Objective::dpo, pairs, {}), std::invalid_argument);
}

// IPO and hinge steps: at the first step (margin 0) IPO's loss is (1 / (2 beta))^2 = 1 and the
// hinge's 1; IPO's steps then lower it. Unknown losses and smoothing out of range are refused.
TEST(Trainer, IpoAndHingeDpoStepsStartAtTheLossOfAZeroMargin) {
  std::vector<PreferencePair> pairs{{{1, 2, 3}, {4, 5}, {6, 7, 8}}, {{9}, {10, 11, 12}, {13}}};
  Trainer hinge(tiny(), true);
  EXPECT_NEAR(hinge.pair_step(Objective::dpo, pairs, {.lr = 0.0, .dpo_beta = 0.5, .dpo_loss = "hinge"}).loss, 1.0,
              1e-5);
  Trainer ipo(tiny(), true);
  TrainParams params{.lr = 3e-3, .dpo_beta = 0.5, .dpo_loss = "ipo"};
  auto first = ipo.pair_step(Objective::dpo, pairs, params);
  EXPECT_NEAR(first.loss, 1.0, 1e-5);
  TrainReport last;
  for (int i = 0; i < 10; ++i)
    last = ipo.pair_step(Objective::dpo, pairs, params);
  EXPECT_LT(last.loss, first.loss);
  EXPECT_GT(last.reward_margin, 0.0);
  EXPECT_THROW(ipo.pair_step(Objective::dpo, pairs, {.dpo_loss = "kto"}), std::invalid_argument);
  EXPECT_THROW(ipo.pair_step(Objective::dpo, pairs, {.dpo_label_smoothing = 0.5}), std::invalid_argument);
}

// A reward model: its Bradley-Terry step's loss is the loss of the scores it gives before the step
// (read at each sequence's last token, whatever the padding), and the steps rank the pairs right.
TEST(Trainer, RewardStepsOfAScoringModelRankTheChosenCompletionAbove) {
  Trainer trainer(tiny(/*num_labels=*/1), false);
  std::vector<PreferencePair> pairs{{{1, 2, 3}, {4, 5}, {6, 7, 8, 9}}, {{10}, {11, 12, 13}, {14}}};
  auto scores_of = [&] {
    std::vector<TrainSample> sequences;
    for (const auto& pair : pairs) {
      sequences.push_back({pair.prompt_tokens, pair.chosen_tokens});
      sequences.push_back({pair.prompt_tokens, pair.rejected_tokens});
    }
    return trainer.scores(sequences);
  };
  auto before = scores_of();
  auto loss = [](double margin) { return std::log1p(std::exp(-margin)); };
  auto first = trainer.pair_step(Objective::reward, pairs, {.lr = 3e-3, .micro_batch_size = 1});
  EXPECT_NEAR(first.loss, (loss(before[0] - before[1]) + loss(before[2] - before[3])) / 2, 1e-5);
  EXPECT_NEAR(first.reward_margin, ((before[0] - before[1]) + (before[2] - before[3])) / 2, 1e-5);
  TrainReport last;
  for (int i = 0; i < 10; ++i)
    last = trainer.pair_step(Objective::reward, pairs, {.lr = 3e-3});
  EXPECT_LT(last.loss, first.loss);
  EXPECT_EQ(last.reward_accuracy, 1.0);
  auto after = scores_of();
  EXPECT_GT(after[0], after[1]);
  EXPECT_GT(after[2], after[3]);
}

TEST(Trainer, RegressionAndValueStepsOfAScoringModelFitTheirTargets) {
  Trainer trainer(tiny(/*num_labels=*/1), false);
  std::vector<TrainSample> labelled{{{1, 2}, {3, 4}}, {{5}, {6, 7, 8}}};
  labelled[0].label = 1.0;
  labelled[1].label = -1.0;
  auto before = trainer.scores(labelled);
  auto first = trainer.step(Objective::regression, labelled, {.lr = 3e-3, .micro_batch_size = 1});
  // The mean squared error of the scores before the step, each sample weighing the same.
  EXPECT_NEAR(first.loss, (std::pow(before[0] - 1.0, 2) + std::pow(before[1] + 1.0, 2)) / 2, 1e-5);
  TrainReport last;
  for (int i = 0; i < 30; ++i)
    last = trainer.step(Objective::regression, labelled, {.lr = 3e-3});
  EXPECT_LT(last.loss, 0.05);
  auto fitted = trainer.scores(labelled);
  EXPECT_GT(fitted[0], 0.5);
  EXPECT_LT(fitted[1], -0.5);

  // As PPO's value model: the score at every completion token, trained towards the returns.
  auto sample = labelled[0];
  sample.old_values = trainer.values({sample}).front();
  ASSERT_EQ(sample.old_values.size(), 2u);
  sample.returns = {2.0f, 2.0f};
  auto value_first = trainer.step(Objective::value, {sample}, {.lr = 3e-3, .value_clip_range = 10.0});
  EXPECT_GT(value_first.value_loss, 0.0);
  TrainReport value_last;
  for (int i = 0; i < 20; ++i) {
    sample.old_values = trainer.values({sample}).front();
    value_last = trainer.step(Objective::value, {sample}, {.lr = 3e-3, .value_clip_range = 10.0});
  }
  EXPECT_LT(value_last.value_loss, 0.2 * value_first.value_loss);

  expect_error_containing<std::invalid_argument>([&] { trainer.step(Objective::sft, labelled, {}); },
                                                 {"a scoring model trains as a reward model"});
  Trainer language_model(tiny(), false);
  expect_error_containing<std::invalid_argument>([&] { language_model.scores(labelled); }, {"no score head"});
}

TEST(Trainer, MaskedCompletionTokensAreContextOnly) {
  Trainer trainer(tiny(), false);
  TrainSample sample{{1, 2}, {3, 4, 5, 6}, 0.0, {}, 0, {0, 1, 0, 0}}; // only token 4 is trained
  auto scores = models::score_logprobs(trainer.model().model, {sample.prompt_tokens}, {sample.completion_tokens});
  auto report = trainer.step(Objective::sft, {sample}, {.lr = 0.0});
  EXPECT_NEAR(report.loss, -scores.front()[1], 1e-5);
  EXPECT_EQ(report.tokens, 1);
  sample.completion_mask = {1, 0};
  EXPECT_THROW(trainer.step(Objective::sft, {sample}, {}), std::invalid_argument);
}

TEST(Trainer, ResettingTheReferenceMakesTheKlStartFromZero) {
  Trainer trainer(tiny(), true);
  for (int i = 0; i < 5; ++i)
    trainer.step(Objective::sft, samples(), {.lr = 1e-2}); // moves away from the initial weights
  auto batch = samples();
  for (auto& sample : batch)
    sample.behaviour_logprobs =
      models::score_logprobs(trainer.model().model, {sample.prompt_tokens}, {sample.completion_tokens}).front();
  auto far = trainer.step(Objective::policy, batch, {.lr = 0.0, .kl_beta = 0.1});
  EXPECT_GT(far.kl, 0.01); // measured against the initial weights
  trainer.reset_reference();
  auto near = trainer.step(Objective::policy, batch, {.lr = 0.0, .kl_beta = 0.1});
  EXPECT_NEAR(near.kl, 0.0, 1e-6);
}

TEST(Trainer, BadRequestsAreRefusedWithoutAStep) {
  Trainer trainer(tiny(), false);
  auto expect_refused = [&](Objective objective, std::vector<TrainSample> batch, TrainParams params,
                            const std::string& message) {
    SCOPED_TRACE(message);
    expect_error_containing<std::invalid_argument>([&] { trainer.step(objective, batch, params); }, {message});
  };
  expect_error_containing<std::invalid_argument>([] { actors::parse_objective("rlhf"); },
                                                 {"unknown objective 'rlhf'", "sft, policy, ppo, dpo, reward"});
  expect_refused(Objective::dpo, samples(), {}, "dpo and reward steps train on preference pairs");
  expect_refused(Objective::regression, samples(), {}, "train a scoring model (spawn_scoring)");
  expect_refused(Objective::sft, {}, {}, "at least one sample");
  expect_refused(Objective::sft, {{{1}, {}, 0.0, {}, 0}}, {}, "sample 0: prompt and completion must both have tokens");
  expect_refused(Objective::sft, {{{1}, {2}, 0.0, {}, 0}, {{1}, {99}, 0.0, {}, 0}}, {}, "sample 1: token id 99");
  expect_refused(Objective::policy, samples(), {}, "sample 0: 0 behaviour log-probs for 4 completion tokens");
  auto batch = samples();
  for (auto& sample : batch)
    sample.behaviour_logprobs.assign(sample.completion_tokens.size(), -1.0f);
  expect_refused(Objective::policy, batch, {.kl_beta = 0.1}, "keep_reference");
  expect_refused(Objective::policy, batch, {.ratio_level = "word"}, "ratio_level must be token or sequence");
  EXPECT_EQ(trainer.version(), 0);
}

// A checkpoint is only as good as the step after it: a trainer restored from one takes exactly the
// step the saved trainer takes (AdamW's moments, the reference and the version all came back).
TEST(Trainer, ARestoredTrainerTakesTheSameNextStep) {
  auto folder = std::filesystem::path(::testing::TempDir()) / "trainer_state";
  std::filesystem::remove_all(folder);
  Trainer original(tiny(), true);
  for (int i = 0; i < 3; ++i)
    original.step(Objective::sft, samples(), {.lr = 1e-2, .weight_decay = 0.1});
  original.save_state(folder);
  for (const char* file :
       {"weights.safetensors", "reference.safetensors", "optimizer.safetensors", "rng.safetensors", "trainer.json"})
    EXPECT_TRUE(std::filesystem::exists(folder / file)) << file;

  auto fresh = tiny();
  {
    torch::NoGradGuard no_grad;
    for (auto& parameter : fresh.model->parameters())
      parameter.add_(0.5); // not the saved weights: the restore must overwrite every one
  }
  Trainer restored(std::move(fresh), false);
  restored.load_state(folder);
  EXPECT_EQ(restored.version(), 3);

  auto batch = samples();
  for (auto& sample : batch)
    sample.behaviour_logprobs =
      models::score_logprobs(original.model().model, {sample.prompt_tokens}, {sample.completion_tokens}).front();
  TrainParams params{.lr = 1e-2, .weight_decay = 0.1, .kl_beta = 0.1};
  auto a = original.step(Objective::policy, batch, params);
  auto b = restored.step(Objective::policy, batch, params);
  EXPECT_EQ(a.loss, b.loss);
  EXPECT_EQ(a.kl, b.kl); // the reference came back too
  EXPECT_EQ(a.weight_version, b.weight_version);
  auto pa = original.model().model->parameters(), pb = restored.model().model->parameters();
  for (std::size_t i = 0; i < pa.size(); ++i)
    EXPECT_TRUE(torch::equal(pa[i], pb[i])) << "parameter " << i;
}

TEST(Trainer, RestoringAMisshapenOrOlderStateIsACheckpointErrorNamingTheTensor) {
  auto folder = std::filesystem::path(::testing::TempDir()) / "trainer_state_bad";
  std::filesystem::remove_all(folder);
  Trainer saved(tiny(), false);
  saved.step(Objective::sft, samples(), {.lr = 1e-2});
  saved.save_state(folder);

  auto config = models::ModelConfig::tiny(64);
  config.num_hidden_layers = 2;
  config.hidden_size = 32; // another shape of every matrix
  config.intermediate_size = 48;
  config.num_attention_heads = 2;
  config.num_key_value_heads = 1;
  config.head_dim = 16;
  Trainer other({models::Transformer(config, 3), nullptr}, false);
  try {
    other.load_state(folder);
    FAIL() << "loaded a state of another shape";
  } catch (const CheckpointError& error) {
    EXPECT_NE(std::string(error.what()).find("weights.safetensors"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("has shape"), std::string::npos) << error.what();
  }

  Trainer ahead(tiny(), false);
  for (int i = 0; i < 2; ++i)
    ahead.step(Objective::sft, samples(), {.lr = 1e-2});
  EXPECT_THROW(ahead.load_state(folder), CheckpointError); // version 1 is older than 2

  std::filesystem::remove(folder / "trainer.json");
  EXPECT_THROW(Trainer(tiny(), false).load_state(folder), CheckpointError);
}

// PPO's value head is part of a checkpoint: its weights and its AdamW moments come back, and the
// restored trainer's next PPO step is the saved one's.
TEST(Trainer, ARestoredPpoTrainerKeepsItsValueHead) {
  auto folder = std::filesystem::path(::testing::TempDir()) / "trainer_state_ppo";
  std::filesystem::remove_all(folder);
  auto ppo_batch = [](Trainer& trainer) {
    auto batch = samples();
    auto values = trainer.values(batch);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      auto& sample = batch[i];
      sample.behaviour_logprobs =
        models::score_logprobs(trainer.model().model, {sample.prompt_tokens}, {sample.completion_tokens}).front();
      sample.old_values = values[i];
      sample.returns.assign(sample.completion_tokens.size(), static_cast<float>(sample.advantage));
      sample.token_advantages.assign(sample.completion_tokens.size(), static_cast<float>(sample.advantage));
    }
    return batch;
  };
  TrainParams params{.lr = 1e-2, .loss_aggregation = "token_mean", .value_coef = 0.5};
  Trainer original(tiny(), false);
  for (int i = 0; i < 2; ++i)
    original.step(Objective::ppo, ppo_batch(original), params);
  original.save_state(folder);

  Trainer restored(tiny(), false);
  restored.load_state(folder);
  auto batch = ppo_batch(original);
  EXPECT_EQ(restored.values(batch), original.values(batch)); // the value head's weights
  auto a = original.step(Objective::ppo, batch, params);
  auto b = restored.step(Objective::ppo, batch, params);
  EXPECT_EQ(a.loss, b.loss);
  EXPECT_EQ(a.value_loss, b.value_loss);
  EXPECT_EQ(restored.values(batch), original.values(batch)); // and its optimizer state
}

// A bf16 model trains through fp32 master copies: updates too small for a bf16 weight's spacing
// accumulate in the copies (and reach the bf16 weights once they add up), the AdamW state is fp32,
// and a restored trainer holds the same copies, so it takes the same next step.
TEST(Trainer, ABf16ModelTrainsThroughFp32MasterCopiesThatCheckpointsKeep) {
  auto bf16 = [] {
    auto model = tiny();
    model.model->to(torch::kBFloat16);
    return model;
  };
  // Updates of about lr = 1e-5 each: below half the bf16 spacing of weights ~0.02 (6e-5).
  TrainParams params{.lr = 1e-5};
  Trainer plain_bf16(bf16(), false);
  std::vector<torch::Tensor> before;
  for (const auto& parameter : plain_bf16.model().model->parameters())
    before.push_back(parameter.detach().clone());
  Trainer trainer(bf16(), false);
  for (int i = 0; i < 30; ++i)
    trainer.step(Objective::sft, samples(), params);
  std::int64_t changed = 0, total = 0;
  auto after = trainer.model().model->parameters();
  for (std::size_t i = 0; i < after.size(); ++i) {
    EXPECT_EQ(after[i].scalar_type(), torch::kBFloat16);
    changed += (after[i] != before[i]).sum().item<std::int64_t>();
    total += after[i].numel();
  }
  // 30 steps of ~1e-5 add up to a few bf16 spacings on most matrix weights.
  EXPECT_GT(changed, total / 4) << changed << " of " << total << " weights moved";

  auto folder = std::filesystem::path(::testing::TempDir()) / "bf16_trainer_state";
  std::filesystem::remove_all(folder);
  trainer.save_state(folder);
  auto saved = models::SafetensorsFile::open(folder / "weights.safetensors");
  EXPECT_EQ(saved.load("model.embed_tokens.weight").scalar_type(), torch::kFloat32); // the master copy
  Trainer restored(bf16(), false);
  restored.load_state(folder);
  auto a = trainer.step(Objective::sft, samples(), params);
  auto b = restored.step(Objective::sft, samples(), params);
  EXPECT_EQ(a.loss, b.loss);
  auto pa = trainer.model().model->parameters(), pb = restored.model().model->parameters();
  for (std::size_t i = 0; i < pa.size(); ++i)
    EXPECT_TRUE(torch::equal(pa[i], pb[i])) << "parameter " << i;
}
