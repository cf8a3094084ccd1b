// LoRA on the transformer: projections that add their adapters' low-rank terms to the frozen product,
// and the model's adapters: adding them (the base frozen), switching them off and on, listing them.
#include "models/checkpoint.hpp"
#include "models/fused_ops.hpp"
#include "models/transformer.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <stdexcept>

namespace chorus::models {

torch::Tensor adapted_linear(const torch::Tensor& x, FusedParameter& fused, const std::vector<torch::Tensor>& bases,
                             const std::vector<LoraAdapter*>& adapters, const LoraState* lora,
                             const torch::Tensor& bias) {
  bool adapted = lora && lora->enabled
    && std::any_of(adapters.begin(), adapters.end(), [](const LoraAdapter* adapter) { return adapter != nullptr; });
  if (!adapted)
    return fused_linear(x, fused, bases, bias);
  bool training = torch::GradMode::is_enabled();
  if (!training && x.device().is_cpu()) { // a replica, a log-prob pass: the merged weights, kept
    std::vector<torch::Tensor> merged;
    for (std::size_t i = 0; i < bases.size(); ++i)
      merged.push_back(adapters[i] ? adapters[i]->merged(bases[i], lora->scale) : bases[i]);
    return fused_linear(x, fused, merged, bias);
  }
  // Training, and every pass off the CPU (where a kept merged copy would double the adapted weights'
  // memory): the frozen product, each adapter's low-rank term added into its columns in place,
  // s (x A^T) B^T, with no [tokens, out] temporary beside the output; dropout only while training.
  auto out = fused_linear(x, fused, bases, bias);
  std::vector<std::int64_t> widths;
  for (const auto& base : bases)
    widths.push_back(base.size(0));
  add_group_deltas(x.reshape({-1, x.size(-1)}), out.view({-1, out.size(-1)}), adapters, widths, lora->scale,
                   training ? lora->dropout : 0.0);
  return out;
}

void AttentionImpl::add_adapters(const LoraConfig& config, std::shared_ptr<const LoraState> state,
                                 std::optional<at::Generator>& generator) {
  lora_ = std::move(state);
  std::array<torch::nn::Linear*, 4> projections = {&q_proj, &k_proj, &v_proj, &o_proj};
  std::array<const char*, 4> names = {"q_proj", "k_proj", "v_proj", "o_proj"};
  for (std::size_t i = 0; i < projections.size(); ++i)
    if (std::find(config.target_modules.begin(), config.target_modules.end(), names[i]) != config.target_modules.end())
      adapters_[i] = std::make_unique<LoraAdapter>(*projections[i], config.r, generator);
}

void MlpImpl::add_adapters(const LoraConfig& config, std::shared_ptr<const LoraState> state,
                           std::optional<at::Generator>& generator) {
  lora_ = std::move(state);
  std::array<torch::nn::Linear*, 3> projections = {&gate_proj, &up_proj, &down_proj};
  std::array<const char*, 3> names = {"gate_proj", "up_proj", "down_proj"};
  for (std::size_t i = 0; i < projections.size(); ++i)
    if (std::find(config.target_modules.begin(), config.target_modules.end(), names[i]) != config.target_modules.end())
      adapters_[i] = std::make_unique<LoraAdapter>(*projections[i], config.r, generator);
}

void SparseMoeImpl::add_adapters(const LoraConfig& config, std::shared_ptr<const LoraState> state,
                                 std::optional<at::Generator>& generator) {
  for (auto& expert : experts_)
    expert->add_adapters(config, state, generator);
  if (shared_expert)
    shared_expert->add_adapters(config, state, generator);
}

void TransformerImpl::add_adapters(const LoraConfig& given, std::optional<std::uint64_t> seed) {
  if (lora_config_)
    throw std::invalid_argument("the model has adapters already");
  check_lora_config(given);
  // Phi-3 stores q, k and v as one projection and gate and up as another; PEFT adapts each as one,
  // so an adapter saved for it covers all of a fused projection's parts or none.
  for (const auto& fused : fused_projections(config_)) {
    std::string names;
    std::size_t targeted = 0;
    for (std::size_t i = 0; i < fused.parts.size(); ++i) {
      names += (i == 0 ? "" : i + 1 == fused.parts.size() ? " and " : ", ") + fused.parts[i];
      targeted += std::count(given.target_modules.begin(), given.target_modules.end(), fused.parts[i]);
    }
    if (targeted != 0 && targeted != fused.parts.size())
      throw std::invalid_argument("lora.target_modules: Phi-3 stores " + names + " as one projection (" + fused.name
                                  + "): target all of them or none");
  }
  // A scoring model's head is new: it trains in full beside the adapters and is saved with them, as
  // PEFT does for sequence classification.
  auto config = given;
  if (score
      && std::find(config.modules_to_save.begin(), config.modules_to_save.end(), "score")
        == config.modules_to_save.end())
    config.modules_to_save.push_back("score");
  // The base is frozen: no gradients, no optimizer state.
  for (auto& parameter : parameters())
    parameter.requires_grad_(false);
  lora_ = std::make_shared<LoraState>(LoraState{config.scale(), config.lora_dropout, true});
  std::optional<at::Generator> generator;
  if (seed)
    generator = at::detail::createCPUGenerator(*seed);
  for (const auto& layer : *model->layers) {
    auto* decoder_layer = layer->as<DecoderLayer>();
    decoder_layer->self_attn->add_adapters(config, lora_, generator);
    if (decoder_layer->moe)
      decoder_layer->moe->add_adapters(config, lora_, generator);
    else
      decoder_layer->mlp->add_adapters(config, lora_, generator);
  }
  // Modules trained in full: every module whose name ends with an entry, as PEFT matches them.
  for (const auto& wanted : config.modules_to_save) {
    bool found = false;
    for (const auto& item : named_modules("", /*include_self=*/false)) {
      const auto& name = item.key();
      if (name.size() < wanted.size() || name.compare(name.size() - wanted.size(), wanted.size(), wanted) != 0)
        continue;
      for (auto& parameter : item.value()->parameters(/*recurse=*/false))
        parameter.requires_grad_(true);
      found = true;
    }
    if (!found)
      throw std::invalid_argument("lora.modules_to_save: no module of this model is named '" + wanted
                                  + "' or ends with it");
  }
  lora_config_ = config;
  torch::NoGradGuard no_grad;
  for (const auto& [name, tensor] : adapter_parameters())
    if (!is_lora_parameter(name))
      saved_module_bases_.push_back(tensor.detach().clone());
}

bool TransformerImpl::is_lora_parameter(const std::string& name) {
  return name.find(".lora_A.") != std::string::npos || name.find(".lora_B.") != std::string::npos;
}

void TransformerImpl::set_adapters_enabled(bool enabled) {
  if (!lora_)
    throw std::invalid_argument("the model has no adapters to switch");
  lora_->enabled = enabled;
}

std::vector<std::pair<std::string, torch::Tensor>> TransformerImpl::adapter_parameters() const {
  std::vector<std::pair<std::string, torch::Tensor>> adapters, modules;
  if (!lora_config_)
    return adapters;
  for (const auto& item : named_parameters()) {
    if (is_lora_parameter(item.key()))
      adapters.emplace_back(item.key(), item.value());
    else if (item.value().requires_grad())
      modules.emplace_back(item.key(), item.value());
  }
  adapters.insert(adapters.end(), modules.begin(), modules.end());
  return adapters;
}

} // namespace chorus::models
