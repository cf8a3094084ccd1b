// The arithmetic loops behind fused_ops and the fused AdamW, compiled twice: for the x86-64 baseline
// (SSE2) and for AVX2 with FMA, picked once at run time by what the processor supports. LibTorch
// dispatches its own kernels the same way; a baseline-only build of these loops ran SwiGLU at half of
// LibTorch's speed. The loops work on raw pointers and include no LibTorch header, so that nothing
// compiled with AVX2 can end up shared with the baseline code.
#pragma once

#include <cstdint>

namespace chorus::models {

/// The element type of the tensors a kernel reads and writes; arithmetic is always fp32.
enum class Element { f32, bf16 };

/// One AdamW step's scalars (decoupled weight decay; bias corrections already folded in).
struct AdamWScalars {
  float lr, beta1, beta2, eps, weight_decay;
  float bias_correction1, bias_correction2_sqrt;
};

struct CpuKernels {
  /// Rows [begin, end) of `dim` elements: y = w * round(x r), r = 1 / sqrt(mean(x^2) + eps) into inv[row].
  void (*rms_norm)(Element, const void* x, const void* weight, void* y, float* inv, std::int64_t begin,
                   std::int64_t end, std::int64_t dim, float eps);
  /// Rows [begin, end): dx, and the weight's gradient added into `dw` [dim] (fp32).
  void (*rms_norm_backward)(Element, const void* grad, const void* x, const void* weight, const float* inv, void* dx,
                            float* dw, std::int64_t begin, std::int64_t end, std::int64_t dim);
  /// Rows [begin, end) of `gate_up` [rows, 2n]: out [rows, n] = silu(gate) * up.
  void (*swiglu)(Element, const void* gate_up, void* out, std::int64_t begin, std::int64_t end, std::int64_t n);
  /// Rows [begin, end): d_gate_up [rows, 2n] from grad [rows, n].
  void (*swiglu_backward)(Element, const void* grad, const void* gate_up, void* d_gate_up, std::int64_t begin,
                          std::int64_t end, std::int64_t n);
  /// One row of `dim` elements turned by its angles (rotate_half convention); `inverse` applies the
  /// transpose (the backward pass).
  void (*rotate)(Element, const void* src, void* dst, const void* cos, const void* sin, std::int64_t dim, bool inverse);
  /// n fp32 parameters: decoupled decay, moment updates and the step, in one pass.
  void (*adamw)(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, std::int64_t n,
                const AdamWScalars& scalars);
  /// Rows [begin, end) of attention scores, `keys` long: out = softmax(scale * scores + mask), where
  /// row r adds mask row (r / rows_per_batch) * time + r % time (the mask is [batch, time, keys]).
  void (*masked_softmax)(const float* scores, const float* mask, float* out, std::int64_t begin, std::int64_t end,
                         std::int64_t keys, std::int64_t time, std::int64_t rows_per_batch, float scale);
  /// Rows [begin, end): d scores = scale * p * (grad - sum(grad * p)).
  void (*masked_softmax_backward)(const float* grad, const float* probs, float* d_scores, std::int64_t begin,
                                  std::int64_t end, std::int64_t keys, float scale);
  /// Decode attention of one key/value head's group of `group` query heads over `keys` cached
  /// positions: out[g] = softmax(scale * q[g] . k[t]) over t, times v[t]; `q` and `out` [group, dim]
  /// fp32, `k` and `v` [keys, dim] in the cache's element type, `scratch` room for `keys` floats.
  void (*attend_group)(Element, const float* q, const void* k, const void* v, std::int64_t keys, std::int64_t dim,
                       std::int64_t group, float scale, float* out, float* scratch);
  /// The sum of the squares of n fp32 values (in fp32 over blocks, the blocks summed in fp64).
  double (*sum_of_squares)(const float* x, std::int64_t n);
};

/// The kernels for this processor.
const CpuKernels& cpu_kernels();

/// Both builds, for the tests that compare them.
const CpuKernels& baseline_cpu_kernels();
const CpuKernels* avx2_cpu_kernels(); // null where the processor lacks AVX2 or FMA

} // namespace chorus::models
