// The trainer's optimizer steps. Every micro-batch's loss is a mean over its tokens (or sequences),
// weighted by its share of the batch, so the accumulated gradient is that of the whole batch's mean.
#include "actors/trainer.hpp"

#include "models/generation.hpp"
#include "models/training.hpp"

#include <chrono>
#include <stdexcept>

namespace chorus::actors {

namespace {

using models::Transformer;

Transformer frozen_copy(Transformer& model) {
  Transformer copy(model->config(), /*seed=*/0); // its own generator: other threads may be drawing
  torch::NoGradGuard no_grad;
  auto source = model->parameters();
  auto target = copy->parameters();
  for (std::size_t i = 0; i < source.size(); ++i) {
    target[i].set_data(source[i].detach().clone());
    target[i].requires_grad_(false);
  }
  return copy;
}

std::string sample_name(std::size_t index) {
  return "sample " + std::to_string(index);
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

} // namespace

Trainer::Trainer(models::Pretrained model, bool keep_reference) : model_(std::move(model)) {
  if (keep_reference)
    reference_ = frozen_copy(model_.model);
}

void Trainer::reset_reference() {
  reference_ = frozen_copy(model_.model);
}

void Trainer::check(const std::string& objective, const std::vector<TrainSample>& samples,
                    const TrainParams& params) const {
  if (objective != "sft" && objective != "policy" && objective != "ppo")
    throw std::invalid_argument("unknown objective '" + objective + "' (expected sft, policy or ppo)");
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
    if (!sample.completion_mask.empty() && sample.completion_mask.size() != sample.completion_tokens.size())
      throw std::invalid_argument(where + ": " + std::to_string(sample.completion_mask.size()) + " mask entries for "
                                  + std::to_string(sample.completion_tokens.size()) + " completion tokens");
    if (objective == "ppo") {
      auto n = sample.completion_tokens.size();
      if (sample.token_advantages.size() != n || sample.old_values.size() != n || sample.returns.size() != n)
        throw std::invalid_argument(where
                                    + ": PPO needs one token advantage, old value and return per completion "
                                      "token ("
                                    + std::to_string(n) + ")");
    }
    if (objective != "sft" && sample.behaviour_logprobs.size() != sample.completion_tokens.size())
      throw std::invalid_argument(where + ": " + std::to_string(sample.behaviour_logprobs.size())
                                  + " behaviour log-probs for " + std::to_string(sample.completion_tokens.size())
                                  + " completion tokens");
  }
  if (objective != "sft") {
    if (params.ratio_level != "token" && params.ratio_level != "sequence")
      throw std::invalid_argument("ratio_level must be token or sequence, got '" + params.ratio_level + "'");
    if (params.loss_aggregation != "token_mean" && params.loss_aggregation != "sequence_mean"
        && params.loss_aggregation != "sequence_sum")
      throw std::invalid_argument("loss_aggregation must be token_mean, sequence_mean or sequence_sum, got '"
                                  + params.loss_aggregation + "'");
    if (!(params.clip_range >= 0))
      throw std::invalid_argument("clip_range must be >= 0");
    if (params.kl_beta > 0 && !reference_)
      throw std::invalid_argument("kl_beta > 0 needs a reference model: spawn_train with .keep_reference = true");
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
    optimizer_ = models::make_adamw(*model_.model, params.lr, params.weight_decay);
  models::set_learning_rate(*optimizer_, params.lr);
  // Group 0 holds the matrices and embeddings, the parameters that decay (make_adamw).
  static_cast<torch::optim::AdamWOptions&>(optimizer_->param_groups()[0].options()).weight_decay(params.weight_decay);
}

TrainReport Trainer::step(const std::string& objective, const std::vector<TrainSample>& samples,
                          const TrainParams& params) {
  check(objective, samples, params);
  auto start = std::chrono::steady_clock::now();
  auto& model = model_.model;
  prepare_optimizer(params);

  const bool ppo = objective == "ppo", policy = objective == "policy" || ppo;
  const bool sequence_level = !ppo && params.ratio_level == "sequence";
  if (ppo)
    ensure_value_head(params);
  const auto aggregation = params.loss_aggregation == "sequence_mean" ? models::Aggregation::sequence_mean
    : params.loss_aggregation == "sequence_sum"                       ? models::Aggregation::sequence_sum
                                                                      : models::Aggregation::token_mean;
  // Micro-batches weigh by what the loss averages over: tokens, or sequences.
  const bool per_sequence = policy && (sequence_level || aggregation != models::Aggregation::token_mean);
  const double clip_high = params.clip_range_high >= 0 ? params.clip_range_high : params.clip_range;
  const auto chunk = static_cast<std::size_t>(params.micro_batch_size);
  std::vector<std::pair<std::size_t, std::size_t>> ranges; // [begin, end) of each micro-batch
  std::vector<double> weights;
  std::int64_t tokens = 0;
  for (std::size_t begin = 0; begin < samples.size(); begin += chunk) {
    auto end = std::min(samples.size(), begin + chunk);
    std::int64_t chunk_tokens = 0;
    for (auto i = begin; i < end; ++i)
      chunk_tokens += trained_tokens(samples[i]);
    ranges.emplace_back(begin, end);
    weights.push_back(per_sequence ? static_cast<double>(end - begin) : static_cast<double>(chunk_tokens));
    tokens += chunk_tokens;
  }

  double gap_sum = 0, gap_count = 0, clip_sum = 0, kl_sum = 0, value_loss_sum = 0;
  auto loss_of = [&](std::size_t index) {
    auto [begin, end] = ranges[index];
    std::vector<const std::vector<std::int64_t>*> prompts, completions;
    for (auto i = begin; i < end; ++i) {
      prompts.push_back(&samples[i].prompt_tokens);
      completions.push_back(&samples[i].completion_tokens);
    }
    auto batch = models::make_sequence_batch(prompts, completions);
    apply_completion_masks(batch, samples, begin, end);
    auto hidden = model->hidden_states(batch.tokens, batch.attention_mask);
    auto logprobs = models::batch_logprobs(model->logits(hidden), batch);
    const auto& mask = batch.completion_mask;
    if (!policy)
      return models::masked_mean(-logprobs, mask);

    std::vector<std::vector<float>> behaviour;
    std::vector<float> advantages;
    for (auto i = begin; i < end; ++i) {
      behaviour.push_back(samples[i].behaviour_logprobs);
      advantages.push_back(static_cast<float>(samples[i].advantage));
    }
    auto old_logprobs = batch.at_completion(behaviour);
    auto advantage = torch::tensor(advantages, torch::kFloat32);
    if (ppo) { // per-token advantages (GAE)
      std::vector<std::vector<float>> per_token;
      for (auto i = begin; i < end; ++i)
        per_token.push_back(samples[i].token_advantages);
      advantage = batch.at_completion(per_token);
    }
    {
      // The sampler-trainer gap, over samples generated by exactly these weights.
      torch::NoGradGuard no_grad;
      auto difference = ((logprobs - old_logprobs).abs() * mask.to(torch::kFloat32)).sum(1);
      for (auto i = begin; i < end; ++i) {
        if (samples[i].weight_version != version_)
          continue;
        gap_sum += difference[static_cast<std::int64_t>(i - begin)].item<double>();
        gap_count += static_cast<double>(trained_tokens(samples[i]));
      }
    }
    torch::Tensor stale;
    if (sequence_level && params.on_policy_version >= 0) {
      std::vector<float> rows;
      for (auto i = begin; i < end; ++i)
        rows.push_back(samples[i].weight_version < params.on_policy_version ? 1.0f : 0.0f);
      stale = torch::tensor(rows, torch::kFloat32);
    }
    auto surrogate = sequence_level
      ? models::sequence_policy_loss(logprobs, old_logprobs, advantage, mask, params.clip_range, clip_high, stale)
      : models::clipped_policy_loss(logprobs, old_logprobs, advantage, mask, params.clip_range, clip_high, aggregation);
    auto share = weights[index];
    clip_sum += surrogate.clip_fraction * share;
    auto loss = surrogate.loss;
    if (params.kl_beta > 0) {
      torch::Tensor reference_logprobs;
      {
        torch::NoGradGuard no_grad;
        reference_logprobs = models::batch_logprobs(reference_->forward(batch.tokens, batch.attention_mask), batch);
      }
      auto kl = models::kl_to_reference(logprobs, reference_logprobs, mask);
      kl_sum += kl.item<double>() * share;
      loss = loss + params.kl_beta * kl;
    }
    if (ppo) {
      std::vector<std::vector<float>> old_values, returns;
      for (auto i = begin; i < end; ++i) {
        old_values.push_back(samples[i].old_values);
        returns.push_back(samples[i].returns);
      }
      auto values = value_head_(hidden.to(torch::kFloat32)).squeeze(-1).narrow(1, 0, logprobs.size(1));
      auto value_loss = models::clipped_value_loss(values, batch.at_completion(old_values),
                                                   batch.at_completion(returns), mask, params.value_clip_range);
      value_loss_sum += value_loss.item<double>() * share;
      loss = loss + params.value_coef * value_loss;
    }
    return loss;
  };
  auto result = models::optimizer_step(*model, *optimizer_, weights, loss_of, params.max_grad_norm, shard());
  ++version_;
  sum_metrics({&gap_sum, &gap_count, &clip_sum, &kl_sum, &value_loss_sum});

  double total_weight = 0;
  for (auto w : weights)
    total_weight += w;
  auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  TrainReport report;
  report.loss = result.loss;
  report.grad_norm = result.grad_norm;
  report.lr = params.lr;
  report.tokens = tokens;
  report.tokens_per_second = static_cast<double>(tokens) / std::max(seconds, 1e-9);
  report.logprob_gap = gap_count > 0 ? gap_sum / gap_count : -1.0;
  report.clip_fraction = total_weight > 0 ? clip_sum / total_weight : 0.0;
  report.kl = total_weight > 0 ? kl_sum / total_weight : 0.0;
  report.value_loss = total_weight > 0 ? value_loss_sum / total_weight : 0.0;
  report.weight_version = version_;
  return report;
}

models::Shard Trainer::shard() {
  if (!group_ || group_->size() == 1)
    return {};
  if (!group_->connected()) {
    group_->connect(model_.model->parameters());
    if (reference_)
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

void Trainer::ensure_value_head(const TrainParams& params) {
  if (value_head_)
    return;
  prepare_optimizer(params);
  // Zero-initialised: every value starts at 0, so the first advantages are the rewards themselves.
  value_head_ = torch::nn::Linear(model_.model->config().hidden_size, 1);
  torch::NoGradGuard no_grad;
  value_head_->weight.zero_();
  value_head_->bias.zero_();
  // Trained by the same optimizer (and clipped together with the model): one more parameter group.
  auto options = std::make_unique<torch::optim::AdamWOptions>(
    static_cast<torch::optim::AdamWOptions&>(optimizer_->param_groups()[1].options()));
  optimizer_->add_param_group(torch::optim::OptimizerParamGroup(value_head_->parameters(), std::move(options)));
}

std::vector<std::vector<float>> Trainer::values(const std::vector<TrainSample>& samples) {
  for (std::size_t i = 0; i < samples.size(); ++i)
    check_sequence(samples[i].prompt_tokens, samples[i].completion_tokens, sample_name(i));
  ensure_value_head(TrainParams{});
  torch::NoGradGuard no_grad;
  std::vector<std::vector<float>> result;
  for (const auto& sample : samples) {
    auto batch = models::make_sequence_batch({&sample.prompt_tokens}, {&sample.completion_tokens});
    auto hidden = model_.model->hidden_states(batch.tokens, batch.attention_mask);
    auto values = value_head_(hidden.to(torch::kFloat32)).squeeze(-1)[0];
    auto start = static_cast<std::int64_t>(sample.prompt_tokens.size()) - 1;
    auto n = static_cast<std::int64_t>(sample.completion_tokens.size());
    auto slice = values.narrow(0, start, n).contiguous();
    result.emplace_back(slice.data_ptr<float>(), slice.data_ptr<float>() + n);
  }
  return result;
}

TrainReport Trainer::dpo_step(const std::vector<PreferencePair>& pairs, const TrainParams& params) {
  if (!reference_)
    throw std::invalid_argument("dpo needs a reference model: spawn_train with .keep_reference = true");
  if (pairs.empty())
    throw std::invalid_argument("a DPO step needs at least one preference pair");
  if (params.micro_batch_size < 1)
    throw std::invalid_argument("micro_batch_size must be at least 1, got " + std::to_string(params.micro_batch_size));
  if (!(params.dpo_beta > 0))
    throw std::invalid_argument("dpo_beta must be > 0");
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    auto where = "pair " + std::to_string(i);
    check_sequence(pairs[i].prompt_tokens, pairs[i].chosen_tokens, where + " (chosen)");
    check_sequence(pairs[i].prompt_tokens, pairs[i].rejected_tokens, where + " (rejected)");
  }
  auto start = std::chrono::steady_clock::now();
  auto& model = model_.model;
  prepare_optimizer(params);
  const auto chunk = static_cast<std::size_t>(params.micro_batch_size);
  std::vector<std::pair<std::size_t, std::size_t>> ranges;
  std::vector<double> weights;
  std::int64_t tokens = 0;
  for (std::size_t begin = 0; begin < pairs.size(); begin += chunk) {
    auto end = std::min(pairs.size(), begin + chunk);
    ranges.emplace_back(begin, end);
    weights.push_back(static_cast<double>(end - begin));
    for (auto i = begin; i < end; ++i)
      tokens += static_cast<std::int64_t>(pairs[i].chosen_tokens.size() + pairs[i].rejected_tokens.size());
  }
  double accuracy = 0, margin = 0;
  auto loss_of = [&](std::size_t index) {
    auto [begin, end] = ranges[index];
    // Chosen completions in the first half of the batch, rejected ones in the second.
    std::vector<const std::vector<std::int64_t>*> prompts, completions;
    for (auto i = begin; i < end; ++i) {
      prompts.push_back(&pairs[i].prompt_tokens);
      completions.push_back(&pairs[i].chosen_tokens);
    }
    for (auto i = begin; i < end; ++i) {
      prompts.push_back(&pairs[i].prompt_tokens);
      completions.push_back(&pairs[i].rejected_tokens);
    }
    auto batch = models::make_sequence_batch(prompts, completions);
    auto mask = batch.completion_mask.to(torch::kFloat32);
    auto sums = (models::batch_logprobs(model->forward(batch.tokens, batch.attention_mask), batch) * mask).sum(1);
    torch::Tensor reference_sums;
    {
      torch::NoGradGuard no_grad;
      reference_sums =
        (models::batch_logprobs(reference_->forward(batch.tokens, batch.attention_mask), batch) * mask).sum(1);
    }
    auto n = static_cast<std::int64_t>(end - begin);
    auto result = models::dpo_loss(sums.narrow(0, 0, n), sums.narrow(0, n, n), reference_sums.narrow(0, 0, n),
                                   reference_sums.narrow(0, n, n), params.dpo_beta);
    accuracy += result.reward_accuracy * static_cast<double>(n);
    margin += result.reward_margin * static_cast<double>(n);
    return result.loss;
  };
  auto result = models::optimizer_step(*model, *optimizer_, weights, loss_of, params.max_grad_norm, shard());
  ++version_;
  sum_metrics({&accuracy, &margin});
  auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  TrainReport report;
  report.loss = result.loss;
  report.grad_norm = result.grad_norm;
  report.lr = params.lr;
  report.tokens = tokens;
  report.tokens_per_second = static_cast<double>(tokens) / std::max(seconds, 1e-9);
  report.reward_accuracy = accuracy / static_cast<double>(pairs.size());
  report.reward_margin = margin / static_cast<double>(pairs.size());
  report.weight_version = version_;
  return report;
}

} // namespace chorus::actors
