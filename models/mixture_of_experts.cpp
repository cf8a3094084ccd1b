// The mixture of experts of Qwen2-MoE, Qwen3-MoE, Mixtral and OLMoE: a router picks each token's
// experts, each expert runs once over the tokens routed to it, and the routers' load-balancing loss.
#include "models/transformer.hpp"

namespace chorus::models {

SparseMoeImpl::SparseMoeImpl(const ModelConfig& config)
  : top_k_(config.num_experts_per_tok), normalise_(config.norm_topk_prob),
    keep_router_logits_(config.output_router_logits && config.router_aux_loss_coef > 0) {
  gate = register_module(
    "gate", torch::nn::Linear(torch::nn::LinearOptions(config.hidden_size, config.num_experts).bias(false)));
  experts = register_module("experts", torch::nn::ModuleList());
  auto names = config.model_type == "mixtral" ? kMixtralExpertNames : MlpNames{};
  for (std::int64_t e = 0; e < config.num_experts; ++e) {
    experts_.emplace_back(config, config.moe_intermediate_size, names);
    experts->push_back(experts_.back());
  }
  if (config.shared_expert_intermediate_size > 0) {
    shared_expert = register_module("shared_expert", Mlp(config, config.shared_expert_intermediate_size));
    shared_expert_gate = register_module(
      "shared_expert_gate", torch::nn::Linear(torch::nn::LinearOptions(config.hidden_size, 1).bias(false)));
  }
}

torch::Tensor SparseMoeImpl::forward(const torch::Tensor& x) {
  auto rows = x.reshape({-1, x.size(-1)});
  // The router's logits in the model's dtype, its softmax in fp32, the chosen experts' weights
  // rounded back: transformers' order of roundings.
  auto logits = torch::nn::functional::linear(rows, gate->weight);
  if (keep_router_logits_ && torch::GradMode::is_enabled())
    router_logits_ = logits;
  auto [weights, chosen] = torch::softmax(logits, -1, torch::kFloat32).topk(top_k_, -1);
  if (normalise_)
    weights = weights / weights.sum(-1, /*keepdim=*/true);
  weights = weights.to(x.scalar_type());
  // The (token, choice) pairs grouped by expert, so that each expert multiplies all its tokens at
  // once; experts no token chose do not run.
  auto flat = chosen.reshape(-1);
  auto order = flat.argsort();
  auto tokens = torch::div(order, top_k_, "floor");
  auto pair_weights = weights.reshape(-1).index_select(0, order);
  auto counts = torch::bincount(flat, {}, static_cast<std::int64_t>(experts_.size())).to(torch::kCPU);
  const auto* count = counts.data_ptr<std::int64_t>();
  auto out = torch::zeros_like(rows);
  std::int64_t begin = 0;
  for (std::size_t e = 0; e < experts_.size(); ++e) {
    auto n = count[e];
    if (n == 0)
      continue;
    auto picked = tokens.narrow(0, begin, n);
    auto y = experts_[e]->forward(rows.index_select(0, picked)) * pair_weights.narrow(0, begin, n).unsqueeze(1);
    out.index_add_(0, picked, y);
    begin += n;
  }
  if (shared_expert)
    out = out + torch::sigmoid(torch::nn::functional::linear(rows, shared_expert_gate->weight)) * shared_expert(rows);
  return out.view(x.sizes());
}

torch::Tensor SparseMoeImpl::take_router_logits() {
  return std::exchange(router_logits_, torch::Tensor());
}

void SparseMoeImpl::keep_router_logits(torch::Tensor logits) {
  router_logits_ = std::move(logits);
}

torch::Tensor router_load_balancing_loss(const torch::Tensor& router_logits, std::int64_t top_k,
                                         const torch::Tensor& token_weights) {
  auto experts = router_logits.size(-1);
  auto probs = torch::softmax(router_logits, -1, torch::kFloat32);
  auto picks = torch::one_hot(std::get<1>(probs.topk(top_k, -1)), experts).to(torch::kFloat32);
  // f: the share of the tokens' choices each expert got, per choice rank [top_k, experts]; P: the
  // mean probability the router gave each expert.
  torch::Tensor share, probability;
  if (token_weights.defined()) {
    auto weights = token_weights.to(probs.device(), torch::kFloat32);
    auto total = weights.sum();
    share = (picks * weights.view({-1, 1, 1})).sum(0) / total;
    probability = (probs * weights.unsqueeze(1)).sum(0) / total;
  } else {
    share = picks.mean(0);
    probability = probs.mean(0);
  }
  return (share * probability.unsqueeze(0)).sum() * static_cast<double>(experts);
}

bool TransformerImpl::keeps_router_logits() const {
  return config_.moe() && config_.output_router_logits && config_.router_aux_loss_coef > 0
    && torch::GradMode::is_enabled();
}

torch::Tensor TransformerImpl::router_loss() {
  std::vector<torch::Tensor> logits;
  for (std::int64_t i = 0; i < config_.num_hidden_layers; ++i)
    if (auto moe = model->layers[i]->as<DecoderLayer>()->moe)
      if (auto kept = moe->take_router_logits(); kept.defined())
        logits.push_back(kept);
  auto mask = std::exchange(router_token_mask_, torch::Tensor());
  if (logits.empty())
    return {};
  auto all = torch::cat(logits);
  // The pass's token mask, once per sparse layer (each layer's rows are the pass's tokens).
  torch::Tensor weights;
  if (mask.defined() && mask.numel() * static_cast<std::int64_t>(logits.size()) == all.size(0))
    weights = mask.repeat({static_cast<std::int64_t>(logits.size())});
  return router_load_balancing_loss(all, config_.num_experts_per_tok, weights) * config_.router_aux_loss_coef;
}

} // namespace chorus::models
