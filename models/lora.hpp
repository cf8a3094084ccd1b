// LoRA adapters (Hu et al. 2021) on a transformer's projections: W x + s B A x, with A [r, in] and
// B [out, r] trained and W frozen, s = lora_alpha / r (or lora_alpha / sqrt(r) with rsLoRA). Named
// as PEFT names them: lora_A and lora_B are registered under the projection they adapt, so a
// parameter reads `model.layers.0.self_attn.q_proj.lora_A.weight`.
#pragma once

#include "models/lora_config.hpp"

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace chorus::models {

/// What every adapter of one model shares: its scale and dropout, and whether the adapters apply
/// (off: the base model, which is the reference of a KL penalty or of DPO).
struct LoraState {
  double scale = 1.0;
  double dropout = 0.0;
  bool enabled = true;
};

/// One projection's adapter: A and B registered under the projection's module, and the weight with
/// B A merged in, kept between forwards that do not record gradients (replicas, log-prob passes) and
/// recomputed in place when W, A or B changed (an optimizer step or a weight sync bumps their
/// versions), so that a fused weight built from it sees the change.
class LoraAdapter {
public:
  /// Registers lora_A (PEFT's kaiming-uniform init, drawn from `generator` when given) and lora_B
  /// (zeros: the adapted model starts as the base) on `base`, in its dtype and device.
  LoraAdapter(torch::nn::Linear& base, std::int64_t r, std::optional<at::Generator> generator);

  /// W + s B A, the projection's weight with the adapter merged in. Without autograd the result is
  /// cached (the same tensor, updated in place); with it, computed afresh so gradients reach A and B.
  torch::Tensor merged(const torch::Tensor& weight, double scale);

  /// Adds s B A dropout(rows) to `out` [n, out] in place (autograd records it): the projection's
  /// output columns, with no temporary of its size.
  void add_delta(const torch::Tensor& rows, torch::Tensor out, double scale, double dropout);

  torch::nn::Linear lora_A{nullptr}, lora_B{nullptr};

private:
  torch::Tensor merged_;
  std::vector<std::pair<const void*, std::uint32_t>> sources_; // W, A, B: data pointer and version
};

/// add_delta for a fused projection (q, k and v; gate and up): `out` [n, sum of widths] holds the
/// projections side by side, `widths` their output sizes, `adapters` theirs (null: not adapted).
/// Without dropout the group's A matrices go into one product: a small model's step is bound by the
/// number of products, not their size.
void add_group_deltas(const torch::Tensor& rows, torch::Tensor out, const std::vector<LoraAdapter*>& adapters,
                      const std::vector<std::int64_t>& widths, double scale, double dropout);

} // namespace chorus::models
