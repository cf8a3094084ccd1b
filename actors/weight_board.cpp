#include "actors/weight_board.hpp"

#include "models/transformer.hpp"

#include <stdexcept>

namespace chorus::actors {

std::vector<std::pair<std::string, torch::Tensor>> synced_parameters(const torch::nn::Module& model) {
  if (const auto* transformer = dynamic_cast<const models::TransformerImpl*>(&model))
    if (transformer->lora_config())
      return transformer->adapter_parameters();
  std::vector<std::pair<std::string, torch::Tensor>> all;
  for (const auto& parameter : model.named_parameters())
    all.emplace_back(parameter.key(), parameter.value());
  return all;
}

void copy_into_parameters(torch::nn::Module& model, const std::vector<torch::Tensor>& tensors) {
  torch::NoGradGuard no_grad;
  auto parameters = synced_parameters(model);
  if (parameters.size() != tensors.size())
    throw std::invalid_argument("weight sync: the trainer sends " + std::to_string(tensors.size())
                                + " tensors, this replica's model has " + std::to_string(parameters.size()));
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    auto& parameter = parameters[i].second;
    if (!parameter.sizes().equals(tensors[i].sizes()))
      throw std::invalid_argument("weight sync: tensor '" + parameters[i].first + "' has shape "
                                  + c10::str(parameter.sizes()) + " here and " + c10::str(tensors[i].sizes())
                                  + " in the trainer");
    parameter.copy_(tensors[i]);
  }
}

void WeightBoard::publish(std::int64_t version, torch::nn::Module& model) {
  torch::NoGradGuard no_grad;
  auto snapshot = std::make_shared<std::vector<torch::Tensor>>();
  auto names = std::make_shared<std::vector<std::string>>();
  for (const auto& [name, parameter] : synced_parameters(model)) {
    snapshot->push_back(parameter.detach().clone());
    names->push_back(name);
  }
  std::lock_guard<std::mutex> guard{mutex_};
  snapshot_ = std::move(snapshot);
  names_ = std::move(names);
  version_.store(version);
}

std::int64_t WeightBoard::adopt(torch::nn::Module& model, std::int64_t have) const {
  if (version_.load() <= have)
    return have;
  std::shared_ptr<const std::vector<torch::Tensor>> snapshot;
  std::int64_t version;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    snapshot = snapshot_;
    version = version_.load();
  }
  copy_into_parameters(model, *snapshot);
  return version;
}

WeightBoard::Snapshot WeightBoard::newest() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return {version_.load(), snapshot_, names_};
}

} // namespace chorus::actors
