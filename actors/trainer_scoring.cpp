// The trainer's scoring steps and values: a scoring model's losses (regression, value), the value
// estimates PPO's advantages come from (a scoring model's or the policy's value head), and scores.
#include "actors/trainer_step.hpp"
#include "models/training.hpp"

#include <stdexcept>

namespace chorus::actors {

torch::Tensor Trainer::scoring_loss(SampleStep& step, const models::SequenceBatch& batch, std::size_t begin,
                                    std::size_t end, double share) {
  auto scores = model_.model->scores(model_.model->hidden_states(batch.tokens, batch.attention_mask));
  if (step.objective == Objective::value)
    return value_loss(step, batch, scores.narrow(1, 0, batch.targets.size(1)), begin, end, share);
  std::vector<float> labels;
  for (auto i = begin; i < end; ++i)
    labels.push_back(static_cast<float>(step.samples[i].label));
  auto target = torch::tensor(labels, torch::kFloat32).to(scores.device());
  return (at_last_token(scores, batch) - target).pow(2).mean();
}

torch::Tensor Trainer::value_estimates(const torch::Tensor& hidden) {
  if (model_.model->is_scoring())
    return model_.model->scores(hidden);
  return value_head_(hidden.to(torch::kFloat32)).squeeze(-1);
}

torch::Tensor Trainer::value_loss(SampleStep& step, const models::SequenceBatch& batch, const torch::Tensor& values,
                                  std::size_t begin, std::size_t end, double share) {
  const auto& samples = step.samples;
  auto loss =
    models::clipped_value_loss(values, batch.at_completion(rows_of(samples, begin, end, &TrainSample::old_values)),
                               batch.at_completion(rows_of(samples, begin, end, &TrainSample::returns)),
                               batch.completion_mask, step.params.value_clip_range);
  step.value_loss_sum += loss.item<double>() * share;
  return loss;
}

void Trainer::ensure_value_head(const TrainParams& params) {
  if (value_head_)
    return;
  prepare_optimizer(params);
  // Zero-initialised: every value starts at 0, so the first advantages are the rewards themselves.
  value_head_ = torch::nn::Linear(model_.model->config().hidden_size, 1);
  value_head_->to(model_.model->device());
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
  if (!model_.model->is_scoring())
    ensure_value_head(TrainParams{});
  torch::NoGradGuard no_grad;
  std::vector<std::vector<float>> result;
  for (const auto& sample : samples) {
    auto batch =
      models::make_sequence_batch({&sample.prompt_tokens}, {&sample.completion_tokens}, model_.model->device());
    auto hidden = model_.model->hidden_states(batch.tokens, batch.attention_mask);
    auto values = value_estimates(hidden)[0].to(torch::kCPU);
    auto start = static_cast<std::int64_t>(sample.prompt_tokens.size()) - 1;
    auto n = static_cast<std::int64_t>(sample.completion_tokens.size());
    auto slice = values.narrow(0, start, n).contiguous();
    result.emplace_back(slice.data_ptr<float>(), slice.data_ptr<float>() + n);
  }
  return result;
}

std::vector<float> Trainer::scores(const std::vector<TrainSample>& samples) {
  if (!model_.model->is_scoring())
    throw std::invalid_argument("a language model has no score head: spawn a scoring model to score");
  for (std::size_t i = 0; i < samples.size(); ++i)
    check_sequence(samples[i].prompt_tokens, samples[i].completion_tokens, sample_name(i));
  torch::NoGradGuard no_grad;
  std::vector<float> result;
  constexpr std::size_t kRows = 16; // sequences per forward pass
  for (std::size_t begin = 0; begin < samples.size(); begin += kRows) {
    std::vector<const std::vector<std::int64_t>*> prompts, completions;
    for (auto i = begin; i < std::min(samples.size(), begin + kRows); ++i) {
      prompts.push_back(&samples[i].prompt_tokens);
      completions.push_back(&samples[i].completion_tokens);
    }
    auto batch = models::make_sequence_batch(prompts, completions, model_.model->device());
    auto hidden = model_.model->hidden_states(batch.tokens, batch.attention_mask);
    auto last = at_last_token(model_.model->scores(hidden), batch).to(torch::kCPU).contiguous();
    result.insert(result.end(), last.data_ptr<float>(), last.data_ptr<float>() + last.numel());
  }
  return result;
}

} // namespace chorus::actors
