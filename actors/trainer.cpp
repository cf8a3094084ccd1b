// The trainer's optimizer steps. Every micro-batch's loss is a mean over its tokens (or sequences),
// weighted by its share of the batch, so the accumulated gradient is that of the whole batch's mean.
#include "actors/trainer.hpp"

#include "actors/trainer_step.hpp"
#include "models/completion_logprobs.hpp"
#include "models/generation.hpp"
#include "models/packing.hpp"
#include "models/training.hpp"

#include <chrono>
#include <cmath>
#include <stdexcept>

namespace chorus::actors {

namespace {

using models::Transformer;

Transformer frozen_copy(Transformer& model) {
  Transformer copy(model->config(), /*seed=*/0); // its own generator: other threads may be drawing
  torch::NoGradGuard no_grad;
  // set_data keeps a tensor on its device
  copy->to(model->device(), model->model->embed_tokens->weight.scalar_type());
  auto source = model->parameters();
  auto target = copy->parameters();
  for (std::size_t i = 0; i < source.size(); ++i) {
    target[i].set_data(source[i].detach().clone());
    target[i].requires_grad_(false);
  }
  return copy;
}

// The completion tokens a sample trains on.
std::int64_t trained_tokens(const TrainSample& sample) {
  if (sample.completion_mask.empty())
    return static_cast<std::int64_t>(sample.completion_tokens.size());
  std::int64_t count = 0;
  for (auto bit : sample.completion_mask)
    count += bit ? 1 : 0;
  return count;
}

// Leaves out the completion tokens that samples [begin, end) mark as context only.
void apply_completion_masks(models::SequenceBatch& batch, const std::vector<TrainSample>& samples, std::size_t begin,
                            std::size_t end) {
  bool any = false;
  std::vector<std::vector<float>> masks;
  for (auto i = begin; i < end; ++i) {
    const auto& sample = samples[i];
    any = any || !sample.completion_mask.empty();
    masks.emplace_back(sample.completion_tokens.size(), 1.0f);
    for (std::size_t t = 0; t < sample.completion_mask.size(); ++t)
      masks.back()[t] = sample.completion_mask[t] ? 1.0f : 0.0f;
  }
  if (any)
    batch.completion_mask = batch.completion_mask * batch.at_completion(masks).to(torch::kInt64);
}

// A step's micro-batches: [begin, end) of each and its weight in the step's mean.
struct MicroBatches {
  std::vector<std::pair<std::size_t, std::size_t>> ranges;
  std::vector<double> weights;
  std::int64_t tokens = 0; // trained on, over the whole step

  double total_weight() const {
    double total = 0;
    for (auto w : weights)
      total += w;
    return total;
  }
};

// Items [0, count) in micro-batches of `size`; item i weighs weight(i) and trains tokens(i) tokens.
template <class Weight, class Tokens>
MicroBatches split_micro_batches(std::size_t count, std::int64_t size, Weight weight, Tokens tokens) {
  MicroBatches result;
  const auto chunk = static_cast<std::size_t>(size);
  for (std::size_t begin = 0; begin < count; begin += chunk) {
    auto end = std::min(count, begin + chunk);
    double batch_weight = 0;
    for (auto i = begin; i < end; ++i) {
      batch_weight += weight(i);
      result.tokens += tokens(i);
    }
    result.ranges.emplace_back(begin, end);
    result.weights.push_back(batch_weight);
  }
  return result;
}

// What every step reports; the objective's own figures are added by the caller.
TrainReport step_report(const models::StepResult& result, const MicroBatches& batches, const TrainParams& params,
                        std::int64_t version, std::chrono::steady_clock::time_point start) {
  auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  TrainReport report;
  report.loss = result.loss;
  report.grad_norm = result.grad_norm;
  report.lr = params.lr;
  report.tokens = batches.tokens;
  report.tokens_per_second = static_cast<double>(batches.tokens) / std::max(seconds, 1e-9);
  report.weight_version = version;
  return report;
}

// `samples` with equal prompts next to each other (models::grouped_by_prompt).
std::vector<TrainSample> in_prompt_groups(const std::vector<TrainSample>& samples) {
  std::vector<const std::vector<std::int64_t>*> prompts;
  for (const auto& sample : samples)
    prompts.push_back(&sample.prompt_tokens);
  std::vector<TrainSample> result;
  for (auto i : models::grouped_by_prompt(prompts))
    result.push_back(samples[i]);
  return result;
}

} // namespace

Trainer::Trainer(models::Pretrained model, bool keep_reference) : model_(std::move(model)) {
  if (auto master = std::make_unique<models::MasterWeights>(*model_.model); !master->empty())
    master_ = std::move(master);
  if (keep_reference && !model_.model->lora_config())
    reference_ = frozen_copy(model_.model);
}

void Trainer::reset_reference() {
  if (!model_.model->lora_config()) {
    reference_ = frozen_copy(model_.model);
    return;
  }
  torch::NoGradGuard no_grad;
  reference_adapters_.clear();
  for (const auto& [name, tensor] : model_.model->adapter_parameters())
    reference_adapters_.push_back(tensor.detach().clone());
}

bool Trainer::has_reference() const {
  return reference_ || model_.model->lora_config();
}

namespace {

// Puts a LoRA model's reference in place for one forward pass: its adapters switched off (and the
// modules trained beside them back at the base's values), or their values swapped for the
// reference's; puts the trained values back when it ends.
class ReferenceAdapters {
public:
  ReferenceAdapters(models::Transformer& model, const std::vector<torch::Tensor>& reference) : model_(model) {
    auto trained = model_->adapter_parameters();
    if (reference.empty()) { // the base: the adapters off, the modules trained beside them as they were
      model_->set_adapters_enabled(false);
      const auto& bases = model_->saved_module_bases();
      for (std::size_t i = 0; i < bases.size(); ++i)
        swap(trained[trained.size() - bases.size() + i].second, bases[i]);
      return;
    }
    for (std::size_t i = 0; i < trained.size(); ++i)
      swap(trained[i].second, reference[i]);
  }
  ~ReferenceAdapters() {
    model_->set_adapters_enabled(true);
    for (std::size_t i = 0; i < trained_.size(); ++i)
      adapters_[i].copy_(trained_[i]);
  }
  ReferenceAdapters(const ReferenceAdapters&) = delete;
  ReferenceAdapters& operator=(const ReferenceAdapters&) = delete;

private:
  // Puts `value` into `tensor`, keeping what it held to put back.
  void swap(torch::Tensor tensor, const torch::Tensor& value) {
    adapters_.push_back(tensor);
    trained_.push_back(tensor.clone());
    tensor.copy_(value);
  }

  models::Transformer& model_;
  std::vector<torch::Tensor> adapters_, trained_;
};

} // namespace

torch::Tensor Trainer::reference_logprobs(const models::SequenceBatch& batch) {
  torch::NoGradGuard no_grad;
  if (reference_)
    return models::completion_logprobs(reference_, batch);
  ReferenceAdapters swapped(model_.model, reference_adapters_);
  return models::completion_logprobs(model_.model, batch);
}

Objective parse_objective(const std::string& name) {
  if (name == "sft")
    return Objective::sft;
  if (name == "policy")
    return Objective::policy;
  if (name == "ppo")
    return Objective::ppo;
  if (name == "dpo")
    return Objective::dpo;
  if (name == "reward")
    return Objective::reward;
  if (name == "regression")
    return Objective::regression;
  if (name == "value")
    return Objective::value;
  throw std::invalid_argument("unknown objective '" + name
                              + "' (expected sft, policy, ppo, dpo, reward, regression or value)");
}

void Trainer::check_head(Objective objective) const {
  bool scoring_objective =
    objective == Objective::reward || objective == Objective::regression || objective == Objective::value;
  if (model_.model->is_scoring() && !scoring_objective)
    throw std::invalid_argument("a scoring model trains as a reward model (Bradley-Terry on pairs, regression on "
                                "labels) or a value model, not with this objective");
  if (!model_.model->is_scoring() && scoring_objective)
    throw std::invalid_argument("reward, regression and value steps train a scoring model (spawn_scoring), not a "
                                "language model");
}

void Trainer::check(Objective objective, const std::vector<TrainSample>& samples, const TrainParams& params) const {
  if (objective == Objective::dpo || objective == Objective::reward)
    throw std::invalid_argument("dpo and reward steps train on preference pairs, not samples (pair_step)");
  check_head(objective);
  if (samples.empty())
    throw std::invalid_argument("a train step needs at least one sample");
  if (params.micro_batch_size < 1)
    throw std::invalid_argument("micro_batch_size must be at least 1, got " + std::to_string(params.micro_batch_size));
  if (!(params.lr >= 0))
    throw std::invalid_argument("lr must be >= 0");
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const auto& sample = samples[i];
    auto where = sample_name(i);
    check_sequence(sample.prompt_tokens, sample.completion_tokens, where);
    auto n = sample.completion_tokens.size();
    if (!sample.completion_mask.empty() && sample.completion_mask.size() != n)
      throw std::invalid_argument(where + ": " + std::to_string(sample.completion_mask.size()) + " mask entries for "
                                  + std::to_string(n) + " completion tokens");
    if (objective == Objective::ppo
        && (sample.token_advantages.size() != n || sample.old_values.size() != n || sample.returns.size() != n))
      throw std::invalid_argument(where + ": PPO needs one token advantage, old value and return per completion token ("
                                  + std::to_string(n) + ")");
    if (objective == Objective::value && (sample.old_values.size() != n || sample.returns.size() != n))
      throw std::invalid_argument(where + ": a value step needs one old value and return per completion token ("
                                  + std::to_string(n) + ")");
    if (objective == Objective::regression && !std::isfinite(sample.label))
      throw std::invalid_argument(where + ": the label must be a finite number");
    bool policy = objective == Objective::policy || objective == Objective::ppo;
    if (policy && sample.behaviour_logprobs.size() != n)
      throw std::invalid_argument(where + ": " + std::to_string(sample.behaviour_logprobs.size())
                                  + " behaviour log-probs for " + std::to_string(n) + " completion tokens");
  }
  if (objective == Objective::policy || objective == Objective::ppo)
    check_policy_params(params);
}

void Trainer::check_policy_params(const TrainParams& params) const {
  if (params.ratio_level != "token" && params.ratio_level != "sequence")
    throw std::invalid_argument("ratio_level must be token or sequence, got '" + params.ratio_level + "'");
  if (params.loss_aggregation != "token_mean" && params.loss_aggregation != "sequence_mean"
      && params.loss_aggregation != "sequence_sum")
    throw std::invalid_argument("loss_aggregation must be token_mean, sequence_mean or sequence_sum, got '"
                                + params.loss_aggregation + "'");
  if (!(params.clip_range >= 0))
    throw std::invalid_argument("clip_range must be >= 0");
  if (params.kl_beta > 0 && !has_reference())
    throw std::invalid_argument("kl_beta > 0 needs a reference model: spawn_train with .keep_reference = true");
}

void Trainer::check_pairs(Objective objective, const std::vector<PreferencePair>& pairs,
                          const TrainParams& params) const {
  if (objective != Objective::dpo && objective != Objective::reward)
    throw std::invalid_argument("only dpo and reward steps train on preference pairs");
  check_head(objective);
  if (objective == Objective::dpo && !has_reference())
    throw std::invalid_argument("dpo needs a reference model: spawn_train with .keep_reference = true");
  if (pairs.empty())
    throw std::invalid_argument("a step over preference pairs needs at least one pair");
  if (params.micro_batch_size < 1)
    throw std::invalid_argument("micro_batch_size must be at least 1, got " + std::to_string(params.micro_batch_size));
  if (objective == Objective::dpo && !(params.dpo_beta > 0))
    throw std::invalid_argument("dpo_beta must be > 0");
  if (objective == Objective::dpo)
    models::check_dpo_loss(params.dpo_loss, params.dpo_label_smoothing);
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    auto where = "pair " + std::to_string(i);
    check_sequence(pairs[i].prompt_tokens, pairs[i].chosen_tokens, where + " (chosen)");
    check_sequence(pairs[i].prompt_tokens, pairs[i].rejected_tokens, where + " (rejected)");
  }
}

void Trainer::check_sequence(const std::vector<std::int64_t>& prompt, const std::vector<std::int64_t>& completion,
                             const std::string& where) const {
  if (prompt.empty() || completion.empty())
    throw std::invalid_argument(where + ": prompt and completion must both have tokens");
  auto vocab = model_.model->config().vocab_size;
  models::check_token_ids(prompt, vocab, where.c_str());
  models::check_token_ids(completion, vocab, where.c_str());
  auto length = static_cast<std::int64_t>(prompt.size() + completion.size());
  auto positions = model_.model->config().max_position_embeddings;
  if (length > positions)
    throw std::invalid_argument(where + ": " + std::to_string(length) + " tokens exceed the model's "
                                + std::to_string(positions) + " positions");
}

void Trainer::prepare_optimizer(const TrainParams& params) {
  if (!optimizer_)
    optimizer_ = master_ ? models::make_adamw(master_->trained(), params.lr, params.weight_decay)
                         : models::make_adamw(*model_.model, params.lr, params.weight_decay);
  models::set_learning_rate(*optimizer_, params.lr);
  // Group 0 holds the matrices and embeddings, the parameters that decay (make_adamw).
  static_cast<torch::optim::AdamWOptions&>(optimizer_->param_groups()[0].options()).weight_decay(params.weight_decay);
}

TrainReport Trainer::step(Objective objective, const std::vector<TrainSample>& samples, const TrainParams& params) {
  check(objective, samples, params);
  auto start = std::chrono::steady_clock::now();
  prepare_optimizer(params);
  if (objective == Objective::ppo && params.value_coef > 0) // 0: a separate value model learns the values
    ensure_value_head(params);
  // A group's completions in the same micro-batches, which then score their shared prompt once
  // (models/packing.hpp). Each micro-batch's loss weighs its share of the step, so the policy term
  // does not depend on how the samples are cut.
  std::vector<TrainSample> grouped;
  if (objective == Objective::policy)
    grouped = in_prompt_groups(samples);
  SampleStep step(objective, objective == Objective::policy ? grouped : samples, params);
  const auto& ordered = step.samples;
  auto batches = split_micro_batches(
    ordered.size(), params.micro_batch_size,
    [&](std::size_t i) { return step.per_sequence() ? 1.0 : static_cast<double>(trained_tokens(ordered[i])); },
    [&](std::size_t i) { return trained_tokens(ordered[i]); });
  auto result = take_step(
    batches.weights,
    [&](std::size_t index) {
      auto [begin, end] = batches.ranges[index];
      return sample_loss(step, begin, end, batches.weights[index]);
    },
    params);
  sum_metrics({&step.gap_sum, &step.gap_count, &step.clip_sum, &step.kl_sum, &step.value_loss_sum});

  auto report = step_report(result, batches, params, version_, start);
  auto total_weight = batches.total_weight();
  report.logprob_gap = step.gap_count > 0 ? step.gap_sum / step.gap_count : -1.0;
  report.clip_fraction = total_weight > 0 ? step.clip_sum / total_weight : 0.0;
  report.kl = total_weight > 0 ? step.kl_sum / total_weight : 0.0;
  report.value_loss = total_weight > 0 ? step.value_loss_sum / total_weight : 0.0;
  return report;
}

models::StepResult Trainer::take_step(const std::vector<double>& weights,
                                      const std::function<torch::Tensor(std::size_t)>& loss_of,
                                      const TrainParams& params) {
  auto each = [&](std::size_t index) {
    if (before_micro_batch_)
      before_micro_batch_();
    return loss_of(index);
  };
  auto result =
    models::optimizer_step(*model_.model, *optimizer_, weights, each, params.max_grad_norm, shard(), master_.get());
  ++version_;
  return result;
}

torch::Tensor Trainer::sample_loss(SampleStep& step, std::size_t begin, std::size_t end, double share) {
  const auto& samples = step.samples;
  std::vector<const std::vector<std::int64_t>*> prompts, completions;
  for (auto i = begin; i < end; ++i) {
    prompts.push_back(&samples[i].prompt_tokens);
    completions.push_back(&samples[i].completion_tokens);
  }
  auto batch = models::make_sequence_batch(prompts, completions, model_.model->device());
  apply_completion_masks(batch, samples, begin, end);
  if (model_.model->is_scoring())
    return scoring_loss(step, batch, begin, end, share);
  // The reference pass comes before the policy's: a LoRA reference swaps adapter values in place,
  // which must not happen to tensors a recorded graph holds.
  torch::Tensor reference;
  if (step.objective != Objective::sft && step.params.kl_beta > 0)
    reference = reference_logprobs(batch);
  torch::Tensor hidden, logprobs;
  if (step.objective == Objective::ppo) { // the value head reads every position's state
    hidden = model_.model->hidden_states(batch.tokens, batch.attention_mask);
    logprobs = models::completion_logprobs(model_.model, hidden, batch);
  } else {
    logprobs = models::completion_logprobs(model_.model, batch);
  }
  if (step.objective == Objective::sft)
    return models::masked_mean(-logprobs, batch.completion_mask);

  auto old_logprobs = batch.at_completion(rows_of(samples, begin, end, &TrainSample::behaviour_logprobs));
  auto loss = surrogate_loss(step, batch, logprobs, old_logprobs, begin, end, share);
  if (step.params.kl_beta > 0)
    loss = loss + step.params.kl_beta * kl_penalty(step, batch, logprobs, reference, share);
  if (step.objective == Objective::ppo && step.params.value_coef > 0)
    loss = loss
      + step.params.value_coef
        * value_loss(step, batch, value_estimates(hidden).narrow(1, 0, logprobs.size(1)), begin, end, share);
  return loss;
}

torch::Tensor Trainer::surrogate_loss(SampleStep& step, const models::SequenceBatch& batch,
                                      const torch::Tensor& logprobs, const torch::Tensor& old_logprobs,
                                      std::size_t begin, std::size_t end, double share) {
  const auto& samples = step.samples;
  const auto& params = step.params;
  const auto& mask = batch.completion_mask;
  std::vector<float> advantages;
  for (auto i = begin; i < end; ++i)
    advantages.push_back(static_cast<float>(samples[i].advantage));
  auto advantage = step.objective == Objective::ppo // per-token advantages (GAE)
    ? batch.at_completion(rows_of(samples, begin, end, &TrainSample::token_advantages))
    : torch::tensor(advantages, torch::kFloat32).to(logprobs.device());
  {
    // The sampler-trainer gap, over samples generated by exactly these weights.
    torch::NoGradGuard no_grad;
    auto difference = ((logprobs - old_logprobs).abs() * mask.to(torch::kFloat32)).sum(1).to(torch::kCPU);
    auto differences = difference.accessor<float, 1>();
    for (auto i = begin; i < end; ++i) {
      if (samples[i].weight_version != version_)
        continue;
      step.gap_sum += differences[static_cast<std::int64_t>(i - begin)];
      step.gap_count += static_cast<double>(trained_tokens(samples[i]));
    }
  }
  models::PolicyLoss surrogate;
  if (step.sequence_level) {
    torch::Tensor stale; // rows made by weights older than the step's on-policy version
    if (params.on_policy_version >= 0) {
      std::vector<float> rows;
      for (auto i = begin; i < end; ++i)
        rows.push_back(samples[i].weight_version < params.on_policy_version ? 1.0f : 0.0f);
      stale = torch::tensor(rows, torch::kFloat32).to(logprobs.device());
    }
    surrogate =
      models::sequence_policy_loss(logprobs, old_logprobs, advantage, mask, params.clip_range, step.clip_high, stale);
  } else {
    surrogate = models::clipped_policy_loss(logprobs, old_logprobs, advantage, mask, params.clip_range, step.clip_high,
                                            step.aggregation);
  }
  step.clip_sum += surrogate.clip_fraction * share;
  return surrogate.loss;
}

torch::Tensor Trainer::kl_penalty(SampleStep& step, const models::SequenceBatch& batch, const torch::Tensor& logprobs,
                                  const torch::Tensor& reference, double share) {
  auto kl = models::kl_to_reference(logprobs, reference, batch.completion_mask);
  step.kl_sum += kl.item<double>() * share;
  return kl;
}

models::Shard Trainer::shard() {
  if (!group_ || group_->size() == 1)
    return {};
  if (!group_->connected()) {
    group_->connect(model_.model->parameters());
    if (master_)
      master_->model_to_copies(); // rank 0's weights, now everyone's
    if (reference_ || !reference_adapters_.empty())
      reset_reference(); // the reference of rank 0's weights, now everyone's
  }
  return {group_->rank(), group_->size(), [group = group_.get()](torch::Tensor& t) { group->all_reduce_sum(t); }};
}

void Trainer::sum_metrics(std::vector<double*> totals) {
  if (!group_ || group_->size() == 1)
    return;
  auto buffer = torch::zeros({static_cast<std::int64_t>(totals.size())}, torch::kFloat64);
  for (std::size_t i = 0; i < totals.size(); ++i)
    buffer[static_cast<std::int64_t>(i)] = *totals[i];
  group_->all_reduce_sum(buffer);
  for (std::size_t i = 0; i < totals.size(); ++i)
    *totals[i] = buffer[static_cast<std::int64_t>(i)].item<double>();
}

TrainReport Trainer::pair_step(Objective objective, const std::vector<PreferencePair>& pairs,
                               const TrainParams& params) {
  check_pairs(objective, pairs, params);
  auto start = std::chrono::steady_clock::now();
  prepare_optimizer(params);
  auto batches = split_micro_batches(
    pairs.size(), params.micro_batch_size, [](std::size_t) { return 1.0; },
    [&](std::size_t i) {
      return static_cast<std::int64_t>(pairs[i].chosen_tokens.size() + pairs[i].rejected_tokens.size());
    });
  double accuracy = 0, margin = 0;
  auto result = take_step(
    batches.weights,
    [&](std::size_t index) {
      auto [begin, end] = batches.ranges[index];
      return pair_loss(objective, pairs, begin, end, params, accuracy, margin);
    },
    params);
  sum_metrics({&accuracy, &margin});
  auto report = step_report(result, batches, params, version_, start);
  report.reward_accuracy = accuracy / static_cast<double>(pairs.size());
  report.reward_margin = margin / static_cast<double>(pairs.size());
  return report;
}

torch::Tensor Trainer::pair_loss(Objective objective, const std::vector<PreferencePair>& pairs, std::size_t begin,
                                 std::size_t end, const TrainParams& params, double& accuracy, double& margin) {
  std::vector<const std::vector<std::int64_t>*> prompts, completions;
  for (auto i = begin; i < end; ++i) {
    prompts.push_back(&pairs[i].prompt_tokens);
    completions.push_back(&pairs[i].chosen_tokens);
  }
  for (auto i = begin; i < end; ++i) {
    prompts.push_back(&pairs[i].prompt_tokens);
    completions.push_back(&pairs[i].rejected_tokens);
  }
  auto batch = models::make_sequence_batch(prompts, completions, model_.model->device());
  auto n = static_cast<std::int64_t>(end - begin);
  auto count = [&](const models::PairLoss& result) {
    accuracy += result.reward_accuracy * static_cast<double>(n);
    margin += result.reward_margin * static_cast<double>(n);
    return result.loss;
  };
  if (objective == Objective::reward) {
    auto hidden = model_.model->hidden_states(batch.tokens, batch.attention_mask);
    auto scores = at_last_token(model_.model->scores(hidden), batch);
    return count(models::bradley_terry_loss(scores.narrow(0, 0, n), scores.narrow(0, n, n)));
  }
  auto mask = batch.completion_mask.to(torch::kFloat32);
  // A pair's two completions share its prompt: scored packed, the prompt once.
  auto reference_sums = (reference_logprobs(batch) * mask).sum(1); // first: see sample_loss
  auto sums = (models::completion_logprobs(model_.model, batch) * mask).sum(1);
  if (params.dpo_loss == "ipo") { // IPO compares mean log-probabilities per token
    auto lengths = mask.sum(1).clamp_min(1.0);
    reference_sums = reference_sums / lengths;
    sums = sums / lengths;
  }
  return count(models::dpo_loss(sums.narrow(0, 0, n), sums.narrow(0, n, n), reference_sums.narrow(0, 0, n),
                                reference_sums.narrow(0, n, n), params.dpo_beta, params.dpo_loss,
                                params.dpo_label_smoothing));
}

} // namespace chorus::actors
