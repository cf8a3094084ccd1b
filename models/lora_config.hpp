// The shape of LoRA adapters, as PEFT's LoraConfig names it; without LibTorch, so that option checks
// outside the model engine use the same rules (models/lora.hpp has the adapters themselves).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace chorus::models {

/// An adapter's shape and scale, as PEFT's LoraConfig names them.
struct LoraConfig {
  /// The rank of A and B (> 0).
  std::int64_t r = 16;
  /// The scale's numerator: s = lora_alpha / r.
  double lora_alpha = 32.0;
  /// Dropout on an adapter's input while training (0: none).
  double lora_dropout = 0.0;
  /// The projections adapted, by name: any of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj and
  /// down_proj.
  std::vector<std::string> target_modules = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                             "gate_proj", "up_proj", "down_proj"};
  /// rsLoRA's scale, lora_alpha / sqrt(r), which keeps updates the same size as r grows.
  bool use_rslora = false;
  /// Modules trained in full beside the adapters (PEFT's modules_to_save): each entry names every
  /// module whose name ends with it, e.g. "norm" for the RMSNorm weights.
  std::vector<std::string> modules_to_save = {};

  /// s, the factor of B A.
  double scale() const;
};

/// The scale of B A for an adapter of rank `r` and `lora_alpha`: lora_alpha / r, or lora_alpha /
/// sqrt(r) with rsLoRA.
double lora_scale(double lora_alpha, std::int64_t r, bool use_rslora);

/// The projections an adapter can target.
const std::vector<std::string>& lora_target_names();

/// @throws std::invalid_argument naming the field that is out of range (r <= 0, a negative alpha,
/// dropout outside [0, 1), an unknown or repeated target module, no target).
void check_lora_config(const LoraConfig& config);

} // namespace chorus::models
