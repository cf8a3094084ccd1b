// Training primitives. Losses are computed in fp32 whatever the model's dtype.
#include "models/training.hpp"

#include <cmath>
#include <numeric>

namespace chorus::models {

torch::Tensor token_logprobs(const torch::Tensor& logits, const torch::Tensor& targets) {
  return logits.to(torch::kFloat32).log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1);
}

torch::Tensor masked_mean(const torch::Tensor& values, const torch::Tensor& mask) {
  auto weights = mask.to(values.scalar_type());
  return (values * weights).sum() / weights.sum().clamp_min(1.0);
}

torch::Tensor masked_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets,
                                   const torch::Tensor& mask) {
  return masked_mean(-token_logprobs(logits, targets), mask);
}

PolicyLoss clipped_policy_loss(const torch::Tensor& logprobs, const torch::Tensor& old_logprobs,
                               const torch::Tensor& advantages, const torch::Tensor& mask, double clip_low,
                               double clip_high) {
  auto per_token = advantages.dim() == 1 ? advantages.unsqueeze(1).expand_as(logprobs) : advantages;
  per_token = per_token.to(torch::kFloat32);
  auto ratio = (logprobs - old_logprobs).exp();
  auto clipped = ratio.clamp(1.0 - clip_low, 1.0 + clip_high);
  auto objective = torch::min(ratio * per_token, clipped * per_token);
  PolicyLoss result;
  result.loss = -masked_mean(objective, mask);
  torch::NoGradGuard no_grad;
  auto was_clipped = (ratio * per_token != objective).to(torch::kFloat32);
  result.clip_fraction = masked_mean(was_clipped, mask).item<double>();
  result.ratio_mean = masked_mean(ratio, mask).item<double>();
  return result;
}

std::unique_ptr<torch::optim::AdamW> make_adamw(torch::nn::Module& model, double lr, double weight_decay,
                                                double beta1, double beta2, double eps) {
  std::vector<torch::Tensor> decay, no_decay;
  for (auto& parameter : model.parameters()) {
    if (!parameter.requires_grad())
      continue;
    (parameter.dim() >= 2 ? decay : no_decay).push_back(parameter);
  }
  auto options = [&](double wd) {
    return std::make_unique<torch::optim::AdamWOptions>(
      torch::optim::AdamWOptions(lr).betas({beta1, beta2}).eps(eps).weight_decay(wd));
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, options(weight_decay));
  groups.emplace_back(no_decay, options(0.0));
  return std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(lr));
}

double LrSchedule::at(std::int64_t step) const {
  if (step < warmup_steps)
    return base_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  if (kind == Kind::constant)
    return base_lr;
  auto span = std::max<std::int64_t>(1, total_steps - warmup_steps);
  auto progress = std::min(1.0, static_cast<double>(step - warmup_steps) / static_cast<double>(span));
  auto floor = base_lr * min_ratio;
  return floor + (base_lr - floor) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups())
    group.options().set_lr(lr);
}

StepResult optimizer_step(torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                          const std::vector<double>& weights, const std::function<torch::Tensor(std::size_t)>& loss_of,
                          double max_grad_norm) {
  optimizer.zero_grad();
  auto total = std::accumulate(weights.begin(), weights.end(), 0.0);
  StepResult result;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    auto share = total > 0 ? weights[i] / total : 0.0;
    auto loss = loss_of(i);
    (loss * share).backward();
    result.loss += loss.item<double>() * share;
  }
  auto parameters = model.parameters();
  if (max_grad_norm > 0) {
    result.grad_norm = torch::nn::utils::clip_grad_norm_(parameters, max_grad_norm);
  } else {
    double squares = 0;
    for (const auto& parameter : parameters)
      if (parameter.grad().defined())
        squares += parameter.grad().pow(2).sum().item<double>();
    result.grad_norm = std::sqrt(squares);
  }
  optimizer.step();
  return result;
}

} // namespace chorus::models
