// The trainer with LoRA adapters: it trains and keeps AdamW state for the adapters only, the base
// stays bit-identical, its KL and DPO reference is the base with the adapters off (no copy of the
// weights), and a checkpoint holds the adapters and restores the same next step.
#include "actors/trainer.hpp"
#include "actors/weight_board.hpp"
#include "models/generation.hpp"
#include "models/safetensors.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

using namespace chorus;
using chorus::actors::Objective;
using chorus::actors::Trainer;

namespace {

// A small model with adapters of rank `r` (and `modules_to_save` trained beside them).
models::Pretrained tiny_with_adapters(std::int64_t r = 4, std::vector<std::string> modules_to_save = {}) {
  auto config = models::ModelConfig::tiny(64);
  config.num_hidden_layers = 2;
  config.hidden_size = 64;
  config.intermediate_size = 96;
  config.num_attention_heads = 4;
  config.num_key_value_heads = 2;
  config.head_dim = 16;
  models::Transformer model(config, /*seed=*/3);
  models::LoraConfig lora;
  lora.r = r;
  lora.lora_alpha = 2.0 * static_cast<double>(r);
  lora.modules_to_save = std::move(modules_to_save);
  model->add_adapters(lora, /*seed=*/5);
  return {model, nullptr};
}

std::vector<TrainSample> samples() {
  return {{{1, 2, 3}, {4, 5, 6, 7}, 1.0, {}, 0}, {{8, 9}, {10, 11}, -1.0, {}, 0}, {{12}, {13, 14, 15}, 0.5, {}, 0}};
}

std::int64_t elements(const std::vector<torch::Tensor>& tensors) {
  std::int64_t total = 0;
  for (const auto& tensor : tensors)
    total += tensor.numel();
  return total;
}

} // namespace

TEST(TrainerLora, OnlyTheAdaptersTrainAndHoldOptimizerState) {
  auto pretrained = tiny_with_adapters(/*r=*/2);
  std::vector<torch::Tensor> base;
  std::vector<std::string> base_names;
  for (const auto& item : pretrained.model->named_parameters())
    if (item.key().find(".lora_") == std::string::npos) {
      base.push_back(item.value().detach().clone());
      base_names.push_back(item.key());
    }
  Trainer trainer(pretrained, /*keep_reference=*/true);
  auto first = trainer.step(Objective::sft, samples(), {.lr = 1e-2});
  TrainReport last;
  for (int i = 0; i < 10; ++i)
    last = trainer.step(Objective::sft, samples(), {.lr = 1e-2});
  EXPECT_LT(last.loss, first.loss);

  std::size_t index = 0;
  for (const auto& item : trainer.model().model->named_parameters()) {
    if (item.key().find(".lora_") != std::string::npos)
      continue;
    EXPECT_TRUE(torch::equal(item.value(), base[index])) << base_names[index] << " changed";
    ++index;
  }
  // AdamW holds two moments per trained element: the adapters', nothing for the base. The state
  // written to a checkpoint says so.
  auto folder = std::filesystem::path(::testing::TempDir()) / "trainer_lora_state";
  std::filesystem::remove_all(folder);
  trainer.save_state(folder);
  auto optimizer = models::SafetensorsFile::open(folder / "optimizer.safetensors");
  std::int64_t state = 0;
  for (const auto& entry : optimizer.entries()) {
    EXPECT_NE(entry.name.find(".lora_"), std::string::npos) << entry.name;
    state += optimizer.load(entry.name).numel();
  }
  std::vector<torch::Tensor> adapters;
  for (const auto& [name, tensor] : trainer.model().model->adapter_parameters())
    adapters.push_back(tensor);
  EXPECT_EQ(state, 2 * elements(adapters));
  EXPECT_LT(elements(adapters), elements(base) / 10);
  auto weights = models::SafetensorsFile::open(folder / "weights.safetensors");
  EXPECT_EQ(weights.entries().size(), adapters.size());                    // the frozen base is not checkpointed
  EXPECT_FALSE(std::filesystem::exists(folder / "reference.safetensors")); // the base is the reference
}

// The reference is the base: before any step the KL is 0 and DPO's margins are 0; after steps the
// KL grows, and resetting the reference (to the current adapters) brings it back to 0.
TEST(TrainerLora, TheReferenceIsTheBaseWithTheAdaptersOff) {
  Trainer trainer(tiny_with_adapters(), /*keep_reference=*/true);
  auto batch = samples();
  auto with_behaviour = [&](std::vector<TrainSample> batch) {
    for (auto& sample : batch)
      sample.behaviour_logprobs =
        models::score_logprobs(trainer.model().model, {sample.prompt_tokens}, {sample.completion_tokens}).front();
    return batch;
  };
  auto start = trainer.step(Objective::policy, with_behaviour(batch), {.lr = 0.0, .kl_beta = 0.1});
  EXPECT_NEAR(start.kl, 0.0, 1e-7);
  for (int i = 0; i < 5; ++i)
    trainer.step(Objective::sft, samples(), {.lr = 2e-2});
  auto far = trainer.step(Objective::policy, with_behaviour(batch), {.lr = 0.0, .kl_beta = 0.1});
  EXPECT_GT(far.kl, 1e-3);
  EXPECT_TRUE(trainer.model().model->adapters_enabled()); // switched back on after the reference pass
  trainer.reset_reference();
  auto near = trainer.step(Objective::policy, with_behaviour(batch), {.lr = 0.0, .kl_beta = 0.1});
  EXPECT_NEAR(near.kl, 0.0, 1e-6);

  Trainer dpo(tiny_with_adapters(), /*keep_reference=*/false); // no copy is needed for DPO either
  std::vector<PreferencePair> pairs{{{1, 2, 3}, {4, 5}, {6, 7, 8}}, {{9}, {10, 11, 12}, {13}}};
  auto first = dpo.pair_step(Objective::dpo, pairs, {.lr = 1e-2, .dpo_beta = 0.5});
  EXPECT_NEAR(first.loss, std::log(2.0), 1e-5);
  TrainReport last;
  for (int i = 0; i < 10; ++i)
    last = dpo.pair_step(Objective::dpo, pairs, {.lr = 1e-2, .dpo_beta = 0.5});
  EXPECT_GT(last.reward_margin, 0.0);
}

TEST(TrainerLora, ARestoredTrainerTakesTheSameNextStep) {
  auto folder = std::filesystem::path(::testing::TempDir()) / "trainer_lora_restore";
  std::filesystem::remove_all(folder);
  Trainer original(tiny_with_adapters(), true);
  for (int i = 0; i < 3; ++i)
    original.step(Objective::sft, samples(), {.lr = 1e-2});
  original.reset_reference(); // a reference of trained adapters, which the checkpoint must keep
  original.step(Objective::sft, samples(), {.lr = 1e-2});
  original.save_state(folder);
  EXPECT_TRUE(std::filesystem::exists(folder / "reference.safetensors"));

  Trainer restored(tiny_with_adapters(), true);
  restored.load_state(folder);
  auto batch = samples();
  for (auto& sample : batch)
    sample.behaviour_logprobs =
      models::score_logprobs(original.model().model, {sample.prompt_tokens}, {sample.completion_tokens}).front();
  TrainParams params{.lr = 1e-2, .kl_beta = 0.1};
  auto a = original.step(Objective::policy, batch, params);
  auto b = restored.step(Objective::policy, batch, params);
  EXPECT_EQ(a.loss, b.loss);
  EXPECT_EQ(a.kl, b.kl);
  auto pa = original.model().model->parameters(), pb = restored.model().model->parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (std::size_t i = 0; i < pa.size(); ++i)
    EXPECT_TRUE(torch::equal(pa[i], pb[i])) << "parameter " << i;
}

// A weight version carries the adapters only; a replica with the same base adopts it and computes
// as the trainer does.
TEST(TrainerLora, AWeightVersionCarriesOnlyTheAdapters) {
  Trainer trainer(tiny_with_adapters(), false);
  for (int i = 0; i < 3; ++i)
    trainer.step(Objective::sft, samples(), {.lr = 1e-2});
  actors::WeightBoard board;
  board.publish(trainer.version(), *trainer.model().model);
  auto snapshot = board.newest();
  ASSERT_TRUE(snapshot.names);
  EXPECT_EQ(snapshot.names->size(), trainer.model().model->adapter_parameters().size());
  for (const auto& name : *snapshot.names)
    EXPECT_NE(name.find(".lora_"), std::string::npos) << name;

  auto replica = tiny_with_adapters();
  EXPECT_EQ(board.adopt(*replica.model, 0), 3);
  auto sample = samples().front();
  auto expected = models::score_logprobs(trainer.model().model, {sample.prompt_tokens}, {sample.completion_tokens});
  auto adopted = models::score_logprobs(replica.model, {sample.prompt_tokens}, {sample.completion_tokens});
  for (std::size_t t = 0; t < expected.front().size(); ++t)
    EXPECT_NEAR(adopted.front()[t], expected.front()[t], 1e-5);
}

// With modules trained beside the adapters, the reference is still the base: the norms go back to
// their base values for the reference pass, and the trained values come back after it.
TEST(TrainerLora, TheReferenceOfAModelWithModulesToSaveIsTheBase) {
  Trainer trainer(tiny_with_adapters(4, {"norm"}), true);
  for (int i = 0; i < 5; ++i)
    trainer.step(Objective::sft, samples(), {.lr = 2e-2});
  auto norm = trainer.model().model->model->norm->weight.detach().clone();
  EXPECT_GT((norm - 1.0).abs().max().item<double>(), 1e-3); // trained
  auto batch = samples();
  for (auto& sample : batch)
    sample.behaviour_logprobs =
      models::score_logprobs(trainer.model().model, {sample.prompt_tokens}, {sample.completion_tokens}).front();
  auto far = trainer.step(Objective::policy, batch, {.lr = 0.0, .kl_beta = 0.1});
  EXPECT_GT(far.kl, 1e-3);
  EXPECT_TRUE(torch::equal(trainer.model().model->model->norm->weight, norm)); // put back
  trainer.reset_reference();
  auto near = trainer.step(Objective::policy, batch, {.lr = 0.0, .kl_beta = 0.1});
  EXPECT_NEAR(near.kl, 0.0, 1e-6);
}
