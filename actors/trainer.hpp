// Trainer: the trainable weights, their optimizer and an optional frozen reference copy, and the
// optimizer steps a trainer actor runs: SFT (cross-entropy over completion tokens), the clipped
// policy gradient (token-level ratio for GRPO, sequence-level for GSPO), PPO with a value head and
// DPO against the frozen reference, with gradient accumulation over micro-batches. A scoring model
// (a score head instead of the language-model head) trains as a reward model (Bradley-Terry on
// pairs, squared error on labels) or as PPO's value model. No actor code here: the actor
// (trainer_actor.cpp) wraps it.
#pragma once

#include <chorus/training.hpp>

#include "actors/data_parallel.hpp"
#include "models/pretrained.hpp"
#include "models/training.hpp"

#include <torch/torch.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace chorus::actors {

/// What a train step minimises. A TrainRequest names it in words ("sft", "policy", "ppo", "dpo").
enum class Objective {
  sft,    ///< cross-entropy over the completion tokens
  policy, ///< the clipped policy gradient: token-level ratio (GRPO) or sequence-level (GSPO)
  ppo,    ///< the clipped policy gradient with per-token advantages, plus the value head's loss
  dpo,    ///< DPO over preference pairs, against the frozen reference
  // A scoring model's objectives:
  reward,     ///< Bradley-Terry over preference pairs: the chosen completion should score higher
  regression, ///< squared error between each sample's score and its label
  value,      ///< PPO's clipped value loss at every completion token, towards the samples' returns
};

/// The objective named `name` ("sft", "policy", "ppo", "dpo", "reward", "regression", "value").
/// @throws std::invalid_argument naming it and the objectives there are.
Objective parse_objective(const std::string& name);

class Trainer {
public:
  /// Trains `model`; keeps a frozen copy of its current weights when `keep_reference`. A model with
  /// LoRA adapters needs no copy: its reference is its base, the adapters switched off.
  Trainer(models::Pretrained model, bool keep_reference);

  /// One optimizer step over `samples` (every objective but dpo and reward, which train on pairs:
  /// pair_step).
  /// @throws std::invalid_argument naming the sample and what is wrong with it.
  TrainReport step(Objective objective, const std::vector<TrainSample>& samples, const TrainParams& params);

  /// The value estimate at each completion token of each sample (PPO), without a step: a scoring
  /// model's score there, or else the value head's (on the model's last hidden states,
  /// zero-initialised, created on first use).
  std::vector<std::vector<float>> values(const std::vector<TrainSample>& samples);

  /// A scoring model's score of each sample (at its last token), without a step.
  /// @throws std::invalid_argument for a language model, or naming a sample that cannot be scored.
  std::vector<float> scores(const std::vector<TrainSample>& samples);

  /// One step over preference pairs: DPO against the frozen reference (needs keep_reference), or a
  /// scoring model's Bradley-Terry step (reward).
  /// @throws std::invalid_argument naming the pair and what is wrong with it.
  TrainReport pair_step(Objective objective, const std::vector<PreferencePair>& pairs, const TrainParams& params);

  /// Makes the current weights the frozen reference (creating one if there was none). With LoRA
  /// adapters only the adapters' values are kept: the reference is the base with them.
  void reset_reference();

  /// Writes everything a resumed run needs to take the same next step into `folder` (created):
  /// weights.safetensors (the exact trained weights, value head included; a bf16 model's fp32 master
  /// copies), reference.safetensors,
  /// optimizer.safetensors (AdamW's moments and step counts), rng.safetensors, trainer.json (version).
  /// @throws CheckpointError naming the file that could not be written.
  void save_state(const std::filesystem::path& folder) const;

  /// Restores what save_state wrote. @throws CheckpointError naming the file and the tensor that is
  /// missing or misshapen, or if the state is older than the current weights (resuming never goes
  /// back in versions).
  void load_state(const std::filesystem::path& folder);

  /// Bytes of optimizer state (AdamW's two moments of every trained element; 0 before a step).
  std::int64_t optimizer_state_bytes() const;

  /// The version of the current weights: the number of steps taken.
  std::int64_t version() const noexcept {
    return version_;
  }

  models::Pretrained& model() noexcept {
    return model_;
  }

  /// Makes this trainer one rank of `group`: each step then computes this rank's micro-batches and
  /// sums gradients with the other ranks, which must receive the same requests in the same order.
  void join(std::unique_ptr<GradientGroup> group) {
    group_ = std::move(group);
  }

  GradientGroup* group() noexcept {
    return group_.get();
  }

  /// Runs `hook` before each micro-batch of every step (the actor reads its share of the cores there).
  void before_micro_batch(std::function<void()> hook) {
    before_micro_batch_ = std::move(hook);
  }

private:
  struct SampleStep; // one step over samples: its settings and metric totals (trainer.cpp)

  void check(Objective objective, const std::vector<TrainSample>& samples, const TrainParams& params) const;
  void check_policy_params(const TrainParams& params) const;
  void check_pairs(Objective objective, const std::vector<PreferencePair>& pairs, const TrainParams& params) const;
  // That `objective` fits the model: a scoring model's objectives for a scoring model, the others not.
  void check_head(Objective objective) const;
  // Checks that `tokens` may be trained on; `where` names the sample or pair in errors.
  void check_sequence(const std::vector<std::int64_t>& prompt, const std::vector<std::int64_t>& completion,
                      const std::string& where) const;
  // Creates the optimizer on first use and sets this step's rate and weight decay.
  void prepare_optimizer(const TrainParams& params);
  void ensure_value_head(const TrainParams& params);
  // This step's share of the micro-batches (all of them without a group); forms the group first.
  models::Shard shard();
  // Sums a step's metric totals across the ranks (no-op without a group).
  void sum_metrics(std::vector<double*> totals);
  // One optimizer step over micro-batches weighted by `weights`; the version goes up by one.
  models::StepResult take_step(const std::vector<double>& weights,
                               const std::function<torch::Tensor(std::size_t)>& loss_of, const TrainParams& params);

  // The loss of samples [begin, end) of `step`, a micro-batch weighing `share` of it.
  torch::Tensor sample_loss(SampleStep& step, std::size_t begin, std::size_t end, double share);
  // The policy-gradient terms of that loss: the clipped surrogate, the KL penalty, the value loss.
  torch::Tensor surrogate_loss(SampleStep& step, const models::SequenceBatch& batch, const torch::Tensor& logprobs,
                               const torch::Tensor& old_logprobs, std::size_t begin, std::size_t end, double share);
  torch::Tensor kl_penalty(SampleStep& step, const models::SequenceBatch& batch, const torch::Tensor& logprobs,
                           const torch::Tensor& reference, double share);
  torch::Tensor value_loss(SampleStep& step, const models::SequenceBatch& batch, const torch::Tensor& values,
                           std::size_t begin, std::size_t end, double share);
  // Whether a KL or DPO reference exists: a frozen copy, or a LoRA model's base.
  bool has_reference() const;
  // log p of the batch's target tokens under the reference ([batch, time - 1], no gradient). Call it
  // before the step's own forward pass: a LoRA reference swaps the adapters' values in place.
  torch::Tensor reference_logprobs(const models::SequenceBatch& batch);
  // The reference adapters under their parameters' names (for checkpoints).
  std::vector<std::pair<std::string, torch::Tensor>> reference_adapter_names() const;
  // A scoring model's terms: squared error to the labels, or the value loss.
  torch::Tensor scoring_loss(SampleStep& step, const models::SequenceBatch& batch, std::size_t begin, std::size_t end,
                             double share);
  // The value estimates [batch, time] of final hidden states: the score head, or the value head.
  torch::Tensor value_estimates(const torch::Tensor& hidden);
  // The loss of pairs [begin, end): chosen completions in the first half of one batch, rejected ones
  // in the second; adds the pairs' reward accuracy and margin to the totals.
  torch::Tensor pair_loss(Objective objective, const std::vector<PreferencePair>& pairs, std::size_t begin,
                          std::size_t end, const TrainParams& params, double& accuracy, double& margin);

  models::Pretrained model_;
  models::Transformer reference_{nullptr};
  // With LoRA adapters: their values when the reference was last reset (empty: the bare base).
  std::vector<torch::Tensor> reference_adapters_;
  // fp32 copies of a bf16 model's weights, which the optimizer updates (null for an fp32 model).
  std::unique_ptr<models::MasterWeights> master_;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  torch::nn::Linear value_head_{nullptr}; // PPO only
  std::int64_t version_ = 0;
  std::unique_ptr<GradientGroup> group_;
  std::function<void()> before_micro_batch_;
};

} // namespace chorus::actors
