// Fused CPU kernels for the transformer's element-wise steps: RMSNorm, the SwiGLU gate and the split of
// q, k and v with the rotary embedding, each with its backward. Written as LibTorch ops they take 3 to
// 12 ops apiece, and on a small model per-op dispatch and the extra passes over memory cost as much as
// the arithmetic (a decode step of the tiny model ran over 200 ops). Here each is one pass, inside
// autograd as one node.
// Other devices and dtypes (a GPU, fp16) take the reference composition of LibTorch ops.
#pragma once

#include <torch/torch.h>

#include <array>

namespace chorus::models {

/// weight * (x / sqrt(mean(x^2) + eps)) over the last dimension, the mean in fp32 whatever x's dtype
/// (the normalised value is rounded to x's dtype before the weight multiplies it, as the reference
/// does). `weight` [dim], `x` [..., dim].
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);

/// silu(gate) * up for `gate_up` [..., 2 * n] holding gate then up: [..., n].
torch::Tensor swiglu(const torch::Tensor& gate_up);

/// Splits the fused q/k/v projection `qkv` [batch, time, heads + 2 * kv_heads, head_dim] into q
/// [batch, heads, time, head_dim] and k, v [batch, kv_heads, time, head_dim], contiguous, heads first
/// (the layout attention multiplies in), turning q and k by the rotary embedding (rotate_half) with
/// `cos`/`sin` broadcastable to [batch, time, rotary_dim]: the first rotary_dim dimensions of each
/// head turn, the rest (Phi-4 mini's last quarter) pass as they are. Forward and backward are one
/// pass each; as LibTorch ops the split, rotation and transposes took a dozen passes and as many
/// gradient buffers.
std::array<torch::Tensor, 3> split_heads_rotary(const torch::Tensor& qkv, std::int64_t heads, std::int64_t kv_heads,
                                                const torch::Tensor& cos, const torch::Tensor& sin);

/// Attention weights softmax(scale * scores + mask) in fp32 for `scores` [batch, kv_heads, group,
/// time, keys] and an additive `mask` [batch, 1, time, keys] shared by every head (-inf: not attended).
/// One pass forward and one backward, where LibTorch ops took a scaling, a mask addition and the
/// softmax, each over the whole score tensor.
torch::Tensor masked_softmax(const torch::Tensor& scores, const torch::Tensor& mask, double scale);

/// Rows of `weight` [vocab, hidden] for `tokens` (int64): as an embedding lookup, with a backward
/// pass that adds the gradient rows into the weight's gradient in one index_add instead of a loop
/// over tokens.
torch::Tensor embedding_rows(const torch::Tensor& weight, const torch::Tensor& tokens);

} // namespace chorus::models
