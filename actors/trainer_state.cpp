// The trainer's part of a checkpoint. Tensors go to safetensors files by parameter name (never by
// position or address), so a checkpoint names what it holds and a mismatch names the tensor:
//
//   weights.safetensors     the trained parameters in their own dtype (a LoRA model's adapters, not
//                           its frozen base), "value_head.*" for PPO's head
//   reference.safetensors   the frozen reference, when there is one (a LoRA model's: its adapters)
//   optimizer.safetensors   "exp_avg/<name>", "exp_avg_sq/<name>"; metadata "step/<name>" (AdamW)
//   rng.safetensors         "torch.cpu": the default CPU generator's state
//   trainer.json            {"version": N}
#include <chorus/errors.hpp>

#include "actors/trainer.hpp"
#include "models/fused_adamw.hpp"
#include "models/safetensors.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <map>
#include <mutex>

namespace chorus::actors {

namespace fs = std::filesystem;

namespace {

using Named = std::vector<std::pair<std::string, torch::Tensor>>;

Named named_parameters(const torch::nn::Module& module, const std::string& prefix = "") {
  Named result;
  for (const auto& item : module.named_parameters())
    result.emplace_back(prefix + item.key(), item.value());
  return result;
}

// Everything the optimizer trains, by name: the model's trained parameters (their fp32 master copies
// where the model keeps some; a LoRA model's adapters, not its frozen base), then PPO's value head.
Named trained_parameters(const torch::nn::Module& model, const models::MasterWeights* master,
                         const torch::nn::Linear& value_head) {
  Named result;
  auto all = named_parameters(model);
  for (std::size_t i = 0; i < all.size(); ++i)
    if (all[i].second.requires_grad())
      result.emplace_back(all[i].first, master ? master->trained()[i] : all[i].second);
  if (value_head) {
    auto head = named_parameters(*value_head, "value_head.");
    result.insert(result.end(), head.begin(), head.end());
  }
  return result;
}

// AdamW keys its per-parameter state by the parameter's address (as text before LibTorch 2.2).
models::OptimizerStateKey state_key(const torch::Tensor& parameter) {
  return models::optimizer_state_key(parameter);
}

// Copies `file`'s tensor `name` into `target` (same shape; converted to its dtype).
void restore_tensor(const models::SafetensorsFile& file, const std::string& name, torch::Tensor& target) {
  auto source = file.load(name);
  if (source.sizes() != target.sizes())
    throw CheckpointError(file.path().string() + ": tensor '" + name + "' has shape " + c10::str(source.sizes())
                          + ", the model's is " + c10::str(target.sizes()));
  torch::NoGradGuard no_grad;
  target.copy_(source);
}

void restore_all(const models::SafetensorsFile& file, const Named& targets) {
  for (auto [name, tensor] : targets)
    restore_tensor(file, name, tensor);
}

} // namespace

std::vector<std::pair<std::string, torch::Tensor>> Trainer::reference_adapter_names() const {
  std::vector<std::pair<std::string, torch::Tensor>> result;
  auto adapters = model_.model->adapter_parameters();
  for (std::size_t i = 0; i < adapters.size() && i < reference_adapters_.size(); ++i)
    result.emplace_back(adapters[i].first, reference_adapters_[i]);
  return result;
}

std::int64_t Trainer::optimizer_state_bytes() const {
  if (!optimizer_)
    return 0;
  std::int64_t bytes = 0;
  for (const auto& [key, state] : optimizer_->state()) {
    const auto& adam = static_cast<const torch::optim::AdamWParamState&>(*state);
    bytes += static_cast<std::int64_t>(adam.exp_avg().nbytes() + adam.exp_avg_sq().nbytes());
  }
  return bytes;
}

void Trainer::save_state(const fs::path& folder) const {
  std::error_code ec;
  fs::create_directories(folder, ec);
  if (ec)
    throw CheckpointError(folder.string() + ": cannot create: " + ec.message());
  auto weights = trained_parameters(*model_.model, master_.get(), value_head_);
  models::save_safetensors(folder / "weights.safetensors", weights);
  if (reference_)
    models::save_safetensors(folder / "reference.safetensors", named_parameters(*reference_));
  if (!reference_adapters_.empty())
    models::save_safetensors(folder / "reference.safetensors", reference_adapter_names());

  if (optimizer_) {
    Named moments;
    std::map<std::string, std::string> metadata{{"format", "pt"}};
    for (const auto& [name, parameter] : weights) {
      auto found = optimizer_->state().find(state_key(parameter));
      if (found == optimizer_->state().end())
        continue; // not stepped yet
      auto& adam = static_cast<torch::optim::AdamWParamState&>(*found->second);
      moments.emplace_back("exp_avg/" + name, adam.exp_avg());
      moments.emplace_back("exp_avg_sq/" + name, adam.exp_avg_sq());
      metadata["step/" + name] = std::to_string(adam.step());
    }
    models::save_safetensors(folder / "optimizer.safetensors", moments, metadata);
  }

  auto generator = at::detail::getDefaultCPUGenerator();
  torch::Tensor rng;
  {
    std::lock_guard<std::mutex> lock(generator.mutex());
    rng = generator.get_state();
  }
  models::save_safetensors(folder / "rng.safetensors", {{"torch.cpu", rng}});

  std::ofstream out(folder / "trainer.json");
  out << nlohmann::json{{"version", version_}}.dump() << "\n";
  out.flush();
  if (!out)
    throw CheckpointError((folder / "trainer.json").string() + ": cannot write (disk full or not writable?)");
}

void Trainer::load_state(const fs::path& folder) {
  auto info_file = folder / "trainer.json";
  std::ifstream in(info_file);
  auto info = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!in.is_open() || info.is_discarded() || !info.is_object() || !info.contains("version")
      || !info["version"].is_number_integer())
    throw CheckpointError(info_file.string() + ": missing, or without an integer \"version\"");
  auto version = info["version"].get<std::int64_t>();
  if (version < version_)
    throw CheckpointError(info_file.string() + ": holds weight version " + std::to_string(version)
                          + ", older than the trainer's current " + std::to_string(version_)
                          + ": a resumed recipe must reach this stage before training further");

  auto weights_file = models::SafetensorsFile::open(folder / "weights.safetensors");
  if (weights_file.contains("value_head.weight"))
    ensure_value_head(TrainParams{});
  auto weights = trained_parameters(*model_.model, master_.get(), value_head_);
  restore_all(weights_file, weights);
  if (master_)
    master_->copies_to_model();

  if (fs::exists(folder / "reference.safetensors")) {
    if (!reference_ && reference_adapters_.empty())
      reset_reference(); // a frozen copy (or adapters) to restore into
    auto file = models::SafetensorsFile::open(folder / "reference.safetensors");
    restore_all(file, reference_ ? named_parameters(*reference_) : reference_adapter_names());
  }

  if (fs::exists(folder / "optimizer.safetensors")) {
    auto file = models::SafetensorsFile::open(folder / "optimizer.safetensors");
    prepare_optimizer(TrainParams{}); // each step sets its own rate and decay
    optimizer_->state().clear();
    for (const auto& [name, parameter] : weights) {
      if (!file.contains("exp_avg/" + name))
        continue;
      auto step = file.metadata().find("step/" + name);
      if (step == file.metadata().end())
        throw CheckpointError(file.path().string() + ": no \"step/" + name + "\" in the metadata");
      auto adam = std::make_unique<torch::optim::AdamWParamState>();
      auto exp_avg = torch::zeros_like(parameter), exp_avg_sq = torch::zeros_like(parameter);
      restore_tensor(file, "exp_avg/" + name, exp_avg);
      restore_tensor(file, "exp_avg_sq/" + name, exp_avg_sq);
      adam->step(std::stoll(step->second));
      adam->exp_avg(exp_avg);
      adam->exp_avg_sq(exp_avg_sq);
      optimizer_->state()[state_key(parameter)] = std::move(adam);
    }
  } else {
    optimizer_.reset(); // the checkpointed trainer had not stepped: the next step starts AdamW afresh
  }

  auto rng_file = models::SafetensorsFile::open(folder / "rng.safetensors");
  auto generator = at::detail::getDefaultCPUGenerator();
  {
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(rng_file.load("torch.cpu"));
  }
  version_ = version;
}

} // namespace chorus::actors
