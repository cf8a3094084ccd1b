#include "models/lora.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <set>
#include <stdexcept>

namespace chorus::models {

double lora_scale(double lora_alpha, std::int64_t r, bool use_rslora) {
  auto rank = static_cast<double>(r);
  return use_rslora ? lora_alpha / std::sqrt(rank) : lora_alpha / rank;
}

double LoraConfig::scale() const {
  return lora_scale(lora_alpha, r, use_rslora);
}

const std::vector<std::string>& lora_target_names() {
  static const std::vector<std::string> names = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                                 "gate_proj", "up_proj", "down_proj"};
  return names;
}

void check_lora_config(const LoraConfig& config) {
  if (config.r <= 0)
    throw std::invalid_argument("lora.r must be > 0 (0 or absent: full fine-tuning), got " + std::to_string(config.r));
  if (!(config.lora_alpha > 0))
    throw std::invalid_argument("lora.lora_alpha must be > 0");
  if (!(config.lora_dropout >= 0 && config.lora_dropout < 1))
    throw std::invalid_argument("lora.lora_dropout must be in [0, 1)");
  if (config.target_modules.empty())
    throw std::invalid_argument("lora.target_modules is empty: name at least one projection");
  const auto& known = lora_target_names();
  std::set<std::string> seen;
  for (const auto& name : config.target_modules) {
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      std::string list;
      for (const auto& k : known)
        list += (list.empty() ? "" : ", ") + k;
      throw std::invalid_argument("lora.target_modules: unknown module '" + name + "' (expected " + list + ")");
    }
    if (!seen.insert(name).second)
      throw std::invalid_argument("lora.target_modules names '" + name + "' twice");
  }
  for (const auto& name : config.modules_to_save) {
    if (name.empty())
      throw std::invalid_argument("lora.modules_to_save names an empty module");
    if (std::find(known.begin(), known.end(), name) != known.end())
      throw std::invalid_argument("lora.modules_to_save: '" + name
                                  + "' is adapted (target_modules), not trained in full");
  }
}

LoraAdapter::LoraAdapter(torch::nn::Linear& base, std::int64_t r, std::optional<at::Generator> generator) {
  auto in = base->weight.size(1), out = base->weight.size(0);
  lora_A = base->register_module("lora_A", torch::nn::Linear(torch::nn::LinearOptions(in, r).bias(false)));
  lora_B = base->register_module("lora_B", torch::nn::Linear(torch::nn::LinearOptions(r, out).bias(false)));
  {
    // Drawn on the CPU in fp32 (a seeded generator is a CPU one), then moved where the base is.
    torch::NoGradGuard no_grad;
    // PEFT's init: A ~ kaiming_uniform(a = sqrt(5)), which is U(-1/sqrt(in), 1/sqrt(in)); B = 0.
    auto bound = 1.0 / std::sqrt(static_cast<double>(in));
    if (generator)
      lora_A->weight.uniform_(-bound, bound, *generator);
    else
      lora_A->weight.uniform_(-bound, bound);
    lora_B->weight.zero_();
  }
  lora_A->to(base->weight.device(), base->weight.scalar_type());
  lora_B->to(base->weight.device(), base->weight.scalar_type());
}

torch::Tensor LoraAdapter::merged(const torch::Tensor& weight, double scale) {
  auto compute = [&] { return torch::addmm(weight, lora_B->weight, lora_A->weight, /*beta=*/1.0, /*alpha=*/scale); };
  if (torch::GradMode::is_enabled())
    return compute();
  // Kept across passes, some of which run in inference mode: made a normal tensor, whose version
  // counter a fused weight reads and which later passes may update in place.
  c10::InferenceMode normal_tensors(false);
  std::vector<std::pair<const void*, std::uint32_t>> sources;
  const std::array<const torch::Tensor*, 3> tensors = {&weight, &lora_A->weight, &lora_B->weight};
  for (const auto* tensor : tensors)
    sources.emplace_back(tensor->data_ptr(), tensor->_version());
  if (!merged_.defined() || merged_.sizes() != weight.sizes() || merged_.scalar_type() != weight.scalar_type()) {
    merged_ = compute();
  } else if (sources != sources_) {
    merged_.copy_(compute()); // in place: a fused weight built from it sees a new version
  }
  sources_ = std::move(sources);
  return merged_;
}

void LoraAdapter::add_delta(const torch::Tensor& rows, torch::Tensor out, double scale, double dropout) {
  auto input = dropout > 0 ? torch::dropout(rows, dropout, /*train=*/true) : rows;
  auto low_rank = torch::mm(input, lora_A->weight.t()); // [n, r]
  out.addmm_(low_rank, lora_B->weight.t(), /*beta=*/1.0, /*alpha=*/scale);
}

void add_group_deltas(const torch::Tensor& rows, torch::Tensor out, const std::vector<LoraAdapter*>& adapters,
                      const std::vector<std::int64_t>& widths, double scale, double dropout) {
  std::vector<torch::Tensor> a_matrices;
  for (const auto* adapter : adapters)
    if (adapter)
      a_matrices.push_back(adapter->lora_A->weight);
  // Dropout draws a mask per adapter, as PEFT does: no shared product then.
  const bool one_product = dropout == 0 && a_matrices.size() > 1;
  torch::Tensor low_rank;
  if (one_product)
    low_rank = torch::mm(rows, torch::cat(a_matrices, 0).t()); // [n, sum of ranks]
  std::int64_t column = 0, rank = 0;
  for (std::size_t i = 0; i < adapters.size(); ++i) {
    if (auto* adapter = adapters[i]) {
      auto columns = out.narrow(1, column, widths[i]);
      if (one_product) {
        auto r = adapter->lora_A->weight.size(0);
        columns.addmm_(low_rank.narrow(1, rank, r), adapter->lora_B->weight.t(), /*beta=*/1.0, /*alpha=*/scale);
        rank += r;
      } else {
        adapter->add_delta(rows, columns, scale, dropout);
      }
    }
    column += widths[i];
  }
}

} // namespace chorus::models
