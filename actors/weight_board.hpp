// WeightBoard: where a trainer publishes each new weight version for the inference replicas in its
// process. The trainer copies its parameters into a fresh snapshot after a step (never letting a
// replica read tensors that optimizer.step() is writing: a data race); a replica copies the newest
// snapshot into its own model between batches.
#pragma once

#include <torch/torch.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace chorus::actors {

/// The parameters a weight version carries, by name: a model's LoRA adapters and the modules trained
/// beside them when it has adapters (its frozen base never changes), else all its parameters.
std::vector<std::pair<std::string, torch::Tensor>> synced_parameters(const torch::nn::Module& model);

/// Copies `tensors` (in synced_parameters(model) order) into `model`'s parameters, converting the
/// dtype (a bf16 replica of an fp32 trainer works). @throws std::invalid_argument if the count or a
/// shape differs, naming the tensor.
void copy_into_parameters(torch::nn::Module& model, const std::vector<torch::Tensor>& tensors);

class WeightBoard {
public:
  /// Snapshots `model`'s synced parameters (synced_parameters) as `version`.
  void publish(std::int64_t version, torch::nn::Module& model);

  /// The newest published version (0 before any).
  std::int64_t version() const noexcept {
    return version_.load();
  }

  /// Copies the newest snapshot into `model` if it is newer than `have`; returns the version `model`
  /// holds afterwards.
  std::int64_t adopt(torch::nn::Module& model, std::int64_t have) const;

  /// One published version: the synced parameters in order (synced_parameters), and their names.
  struct Snapshot {
    std::int64_t version = 0;
    std::shared_ptr<const std::vector<torch::Tensor>> tensors; // null before any publish
    std::shared_ptr<const std::vector<std::string>> names;
  };

  /// The newest version (for the weight server, which streams it to other processes).
  Snapshot newest() const;

private:
  mutable std::mutex mutex_;
  std::shared_ptr<const std::vector<torch::Tensor>> snapshot_;
  std::shared_ptr<const std::vector<std::string>> names_;
  std::atomic<std::int64_t> version_{0};
};

} // namespace chorus::actors
