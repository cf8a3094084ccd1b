#include "actors/weight_board.hpp"

#include <stdexcept>

namespace chorus::actors {

void WeightBoard::publish(std::int64_t version, torch::nn::Module& model) {
  torch::NoGradGuard no_grad;
  auto snapshot = std::make_shared<std::vector<torch::Tensor>>();
  auto names = std::make_shared<std::vector<std::string>>();
  for (const auto& parameter : model.named_parameters()) {
    snapshot->push_back(parameter.value().detach().clone());
    names->push_back(parameter.key());
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
  torch::NoGradGuard no_grad;
  auto parameters = model.parameters();
  if (parameters.size() != snapshot->size())
    throw std::logic_error("weight sync: the replica's model has a different parameter list than the trainer's");
  for (std::size_t i = 0; i < parameters.size(); ++i)
    parameters[i].copy_((*snapshot)[i]); // copy_ converts dtype: a bf16 replica of an fp32 trainer works
  return version;
}

WeightBoard::Snapshot WeightBoard::newest() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return {version_.load(), snapshot_, names_};
}

} // namespace chorus::actors
