// Training primitives. Losses are computed in fp32 whatever the model's dtype.
#include "models/training.hpp"

#include "models/cpu_kernels.hpp"
#include "models/fused_adamw.hpp"
#include "models/transformer.hpp"

#include <cmath>
#include <numeric>
#include <stdexcept>

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

torch::Tensor aggregate(const torch::Tensor& values, const torch::Tensor& mask, Aggregation aggregation) {
  if (aggregation == Aggregation::token_mean)
    return masked_mean(values, mask);
  auto weights = mask.to(values.scalar_type());
  auto sums = (values * weights).sum(1);
  if (aggregation == Aggregation::sequence_sum)
    return sums.mean();
  return (sums / weights.sum(1).clamp_min(1.0)).mean();
}

PolicyLoss clipped_policy_loss(const torch::Tensor& logprobs, const torch::Tensor& old_logprobs,
                               const torch::Tensor& advantages, const torch::Tensor& mask, double clip_low,
                               double clip_high, Aggregation aggregation) {
  auto per_token = advantages.dim() == 1 ? advantages.unsqueeze(1).expand_as(logprobs) : advantages;
  per_token = per_token.to(torch::kFloat32);
  auto ratio = (logprobs - old_logprobs).exp();
  auto clipped = ratio.clamp(1.0 - clip_low, 1.0 + clip_high);
  auto objective = torch::min(ratio * per_token, clipped * per_token);
  PolicyLoss result;
  result.loss = -aggregate(objective, mask, aggregation);
  torch::NoGradGuard no_grad;
  auto was_clipped = (ratio * per_token != objective).to(torch::kFloat32);
  result.clip_fraction = masked_mean(was_clipped, mask).item<double>();
  result.ratio_mean = masked_mean(ratio, mask).item<double>();
  return result;
}

PolicyLoss sequence_policy_loss(const torch::Tensor& logprobs, const torch::Tensor& old_logprobs,
                                const torch::Tensor& advantages, const torch::Tensor& mask, double clip_low,
                                double clip_high, const torch::Tensor& stale) {
  auto weights = mask.to(torch::kFloat32);
  auto lengths = weights.sum(1).clamp_min(1.0);
  auto log_ratio_sum = ((logprobs - old_logprobs) * weights).sum(1);
  auto ratio = (log_ratio_sum / lengths).exp();
  auto advantage = advantages.to(torch::kFloat32);
  auto objective = torch::min(ratio * advantage, ratio.clamp(1.0 - clip_low, 1.0 + clip_high) * advantage);
  PolicyLoss result;
  {
    torch::NoGradGuard no_grad;
    result.clip_fraction = (ratio * advantage != objective).to(torch::kFloat32).mean().item<double>();
    result.ratio_mean = ratio.mean().item<double>();
  }
  if (stale.defined()) {
    torch::Tensor correction;
    {
      torch::NoGradGuard no_grad;
      // min(w, cap) / s in logarithms: w and s alone can overflow or vanish, their quotient cannot.
      auto log_correction = log_ratio_sum.clamp_max(std::log(kStaleImportanceCap)) - log_ratio_sum / lengths;
      correction = torch::where(stale.to(torch::kBool), log_correction.exp(), torch::ones_like(log_correction));
    }
    objective = objective * correction;
  }
  result.loss = -objective.mean();
  return result;
}

torch::Tensor kl_to_reference(const torch::Tensor& logprobs, const torch::Tensor& reference_logprobs,
                              const torch::Tensor& mask) {
  auto delta = reference_logprobs - logprobs;
  return masked_mean(delta.exp() - delta - 1.0, mask);
}

namespace {

PairLoss pair_loss_of(const torch::Tensor& margin) {
  PairLoss result;
  result.loss = -torch::nn::functional::logsigmoid(margin).mean();
  torch::NoGradGuard no_grad;
  result.reward_accuracy = (margin > 0).to(torch::kFloat32).mean().item<double>();
  result.reward_margin = margin.mean().item<double>();
  return result;
}

} // namespace

PairLoss dpo_loss(const torch::Tensor& chosen, const torch::Tensor& rejected, const torch::Tensor& reference_chosen,
                  const torch::Tensor& reference_rejected, double beta, const std::string& kind,
                  double label_smoothing) {
  check_dpo_loss(kind, label_smoothing);
  auto margin = beta * ((chosen - reference_chosen) - (rejected - reference_rejected));
  auto result = pair_loss_of(margin);
  if (kind == "hinge")
    result.loss = torch::relu(1.0 - margin).mean();
  else if (kind == "ipo")
    result.loss = (margin / beta - 1.0 / (2.0 * beta)).pow(2).mean();
  else if (label_smoothing > 0)
    result.loss =
      (1.0 - label_smoothing) * result.loss - label_smoothing * torch::nn::functional::logsigmoid(-margin).mean();
  return result;
}

void check_dpo_loss(const std::string& kind, double label_smoothing) {
  if (kind != "sigmoid" && kind != "hinge" && kind != "ipo")
    throw std::invalid_argument("dpo_loss must be sigmoid, hinge or ipo, got '" + kind + "'");
  if (!(label_smoothing >= 0 && label_smoothing < 0.5))
    throw std::invalid_argument("dpo_label_smoothing must be in [0, 0.5), got " + std::to_string(label_smoothing));
}

PairLoss bradley_terry_loss(const torch::Tensor& chosen, const torch::Tensor& rejected) {
  return pair_loss_of(chosen - rejected);
}

torch::Tensor clipped_value_loss(const torch::Tensor& values, const torch::Tensor& old_values,
                                 const torch::Tensor& returns, const torch::Tensor& mask, double clip_range) {
  auto clipped = old_values + (values - old_values).clamp(-clip_range, clip_range);
  auto worst = torch::max((values - returns).pow(2), (clipped - returns).pow(2));
  return 0.5 * masked_mean(worst, mask);
}

SequenceBatch make_sequence_batch(const std::vector<const std::vector<std::int64_t>*>& prompts,
                                  const std::vector<const std::vector<std::int64_t>*>& completions,
                                  torch::Device device) {
  auto batch = static_cast<std::int64_t>(prompts.size());
  std::int64_t longest = 2;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i]->empty())
      throw std::invalid_argument("a training sequence has an empty prompt");
    longest = std::max<std::int64_t>(longest, static_cast<std::int64_t>(prompts[i]->size() + completions[i]->size()));
  }
  SequenceBatch result;
  auto tokens = torch::zeros({batch, longest}, torch::kInt64);
  auto mask = torch::zeros({batch, longest}, torch::kInt64);
  auto completion = torch::zeros({batch, longest - 1}, torch::kInt64);
  for (std::int64_t row = 0; row < batch; ++row) {
    const auto& prompt = *prompts[static_cast<std::size_t>(row)];
    const auto& tail = *completions[static_cast<std::size_t>(row)];
    auto p = static_cast<std::int64_t>(prompt.size()), c = static_cast<std::int64_t>(tail.size());
    tokens[row].narrow(0, 0, p).copy_(torch::tensor(prompt, torch::kInt64));
    if (c > 0) {
      tokens[row].narrow(0, p, c).copy_(torch::tensor(tail, torch::kInt64));
      completion[row].narrow(0, p - 1, c).fill_(1); // position t predicts token t + 1
    }
    mask[row].narrow(0, 0, p + c).fill_(1);
    result.prompt_lengths.push_back(p);
    result.completion_lengths.push_back(c);
  }
  // Built on the host and copied over once.
  result.tokens = tokens.to(device);
  result.attention_mask = mask.to(device);
  result.targets = result.tokens.narrow(1, 1, longest - 1);
  result.completion_mask = completion.to(device);
  return result;
}

torch::Tensor SequenceBatch::at_completion(const std::vector<std::vector<float>>& values) const {
  auto out = torch::zeros(targets.sizes(), torch::kFloat32);
  for (std::size_t row = 0; row < values.size(); ++row) {
    if (values[row].empty())
      continue;
    out[static_cast<std::int64_t>(row)]
      .narrow(0, prompt_lengths[row] - 1, static_cast<std::int64_t>(values[row].size()))
      .copy_(torch::tensor(values[row], torch::kFloat32));
  }
  return out.to(targets.device());
}

torch::Tensor batch_logprobs(const torch::Tensor& logits, const SequenceBatch& batch) {
  return token_logprobs(logits.narrow(1, 0, logits.size(1) - 1), batch.targets);
}

std::unique_ptr<torch::optim::AdamW> make_adamw(torch::nn::Module& model, double lr, double weight_decay, double beta1,
                                                double beta2, double eps) {
  return make_adamw(model.parameters(), lr, weight_decay, beta1, beta2, eps);
}

std::unique_ptr<torch::optim::AdamW> make_adamw(const std::vector<torch::Tensor>& parameters, double lr,
                                                double weight_decay, double beta1, double beta2, double eps) {
  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& parameter : parameters) {
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
  return std::make_unique<FusedAdamW>(groups, torch::optim::AdamWOptions(lr));
}

MasterWeights::MasterWeights(torch::nn::Module& model) : parameters_(model.parameters()) {
  torch::NoGradGuard no_grad;
  for (const auto& parameter : parameters_) {
    if (parameter.requires_grad() && parameter.is_floating_point() && parameter.scalar_type() != torch::kFloat32) {
      trained_.push_back(parameter.detach().to(torch::kFloat32).clone().requires_grad_(parameter.requires_grad()));
      ++copies_;
    } else {
      trained_.push_back(parameter);
    }
  }
}

void MasterWeights::gradients_to_copies() {
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    auto& parameter = parameters_[i];
    if (trained_[i].is_same(parameter) || !parameter.grad().defined())
      continue;
    trained_[i].mutable_grad() = parameter.grad().to(torch::kFloat32);
    parameter.mutable_grad() = torch::Tensor();
  }
}

void MasterWeights::copies_to_model() {
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < parameters_.size(); ++i)
    if (!trained_[i].is_same(parameters_[i]))
      parameters_[i].copy_(trained_[i]);
}

void MasterWeights::model_to_copies() {
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < parameters_.size(); ++i)
    if (!trained_[i].is_same(parameters_[i]))
      trained_[i].copy_(parameters_[i]);
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups())
    group.options().set_lr(lr);
}

namespace {

// The gradients' global L2 norm: one pass per fp32 CPU gradient, without a tensor op or a
// synchronisation per parameter; elsewhere (a GPU) sums on the device and one copy back.
double gradient_norm(const std::vector<torch::Tensor>& parameters) {
  const auto& kernels = cpu_kernels();
  double squares = 0;
  std::vector<torch::Tensor> on_device;
  for (const auto& parameter : parameters) {
    const auto& grad = parameter.grad();
    if (!grad.defined())
      continue;
    if (grad.device().is_cpu() && grad.scalar_type() == torch::kFloat32 && grad.is_contiguous())
      squares += kernels.sum_of_squares(grad.data_ptr<float>(), grad.numel());
    else
      on_device.push_back(grad.to(torch::kFloat32).pow(2).sum().to(torch::kFloat64));
  }
  if (!on_device.empty())
    squares += torch::stack(on_device).sum().item<double>();
  return std::sqrt(squares);
}

} // namespace

StepResult optimizer_step(torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                          const std::vector<double>& weights, const std::function<torch::Tensor(std::size_t)>& loss_of,
                          double max_grad_norm, const Shard& shard, MasterWeights* master) {
  // Every parameter the optimizer updates, including any added to it besides the model's (a value head).
  std::vector<torch::Tensor> parameters;
  for (auto& group : optimizer.param_groups())
    for (auto& parameter : group.params())
      parameters.push_back(parameter);
  // Gradients start undefined rather than zero: the first backward pass then keeps its gradient
  // buffers instead of adding them into zero-filled ones. A parameter no loss reached keeps none,
  // and the optimizer leaves it as it is.
  for (auto& parameter : parameters)
    parameter.mutable_grad() = torch::Tensor();
  if (master)
    for (auto& parameter : model.parameters())
      parameter.mutable_grad() = torch::Tensor();
  auto total = std::accumulate(weights.begin(), weights.end(), 0.0);
  StepResult result;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    if (static_cast<int>(i % static_cast<std::size_t>(shard.ranks)) != shard.rank)
      continue;
    auto share = total > 0 ? weights[i] / total : 0.0;
    auto loss = loss_of(i);
    // A mixture of experts trained with output_router_logits: its routers' load-balancing term too.
    if (auto* transformer = dynamic_cast<TransformerImpl*>(&model))
      if (auto balance = transformer->router_loss(); balance.defined())
        loss = loss + balance.to(loss.device());
    (loss * share).backward();
    result.loss += loss.item<double>() * share;
  }
  if (master)
    master->gradients_to_copies();
  if (shard.ranks > 1) {
    // One collective for all gradients and the loss: a rank without micro-batches sends zeros.
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> flat;
    for (auto& parameter : parameters) {
      if (!parameter.grad().defined())
        parameter.mutable_grad() = torch::zeros_like(parameter);
      flat.push_back(parameter.grad().reshape(-1).to(torch::kFloat32));
    }
    flat.push_back(torch::tensor({result.loss}, torch::kFloat32).to(flat.front().device()));
    auto buffer = torch::cat(flat);
    shard.sum_across_ranks(buffer);
    std::int64_t offset = 0;
    for (auto& parameter : parameters) {
      auto n = parameter.numel();
      parameter.mutable_grad().copy_(buffer.narrow(0, offset, n).view_as(parameter));
      offset += n;
    }
    result.loss = buffer[offset].item<double>();
  }
  result.grad_norm = gradient_norm(parameters);
  if (max_grad_norm > 0) {
    // As torch.nn.utils.clip_grad_norm_: scale by max / (norm + 1e-6) when that is below 1.
    auto scale = max_grad_norm / (result.grad_norm + 1e-6);
    if (scale < 1) {
      torch::NoGradGuard no_grad;
      for (auto& parameter : parameters)
        if (parameter.grad().defined())
          parameter.mutable_grad().mul_(scale);
    }
  }
  optimizer.step();
  if (master)
    master->copies_to_model();
  return result;
}

} // namespace chorus::models
