// The fused ops of fused_ops.hpp: autograd functions around the loops of cpu_kernels.hpp, split over
// rows with at::parallel_for. Each has a LibTorch composition beside it for what the loops do not
// cover; the model tests compare the two.
#include "models/fused_ops.hpp"

#include "models/cpu_kernels.hpp"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>

namespace chorus::models {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr std::int64_t kElementsPerTask = 16384; // below this, splitting over threads costs more than it saves

bool fusable(const torch::Tensor& t) {
  return t.device().is_cpu() && (t.scalar_type() == torch::kFloat32 || t.scalar_type() == torch::kBFloat16);
}

bool needs_autograd(const torch::Tensor& a, const torch::Tensor& b = {}) {
  return torch::GradMode::is_enabled() && (a.requires_grad() || (b.defined() && b.requires_grad()));
}

std::int64_t grain_rows(std::int64_t row_length) {
  return std::max<std::int64_t>(1, kElementsPerTask / std::max<std::int64_t>(row_length, 1));
}

// -- RMSNorm ------------------------------------------------------------------

Element element(const torch::Tensor& t) {
  return t.scalar_type() == torch::kFloat32 ? Element::f32 : Element::bf16;
}

// y = w * round(x * r) per row, r = 1 / sqrt(mean(x^2) + eps) kept for the backward pass.
std::pair<torch::Tensor, torch::Tensor> rms_norm_forward(const torch::Tensor& x, const torch::Tensor& weight,
                                                         double eps) {
  const auto dim = x.size(-1), rows = x.numel() / std::max<std::int64_t>(dim, 1);
  auto y = torch::empty_like(x);
  auto inverse = torch::empty({rows}, x.options().dtype(torch::kFloat32));
  const auto& kernels = cpu_kernels();
  at::parallel_for(0, rows, grain_rows(dim), [&](std::int64_t begin, std::int64_t end) {
    kernels.rms_norm(element(x), x.data_ptr(), weight.data_ptr(), y.data_ptr(), inverse.data_ptr<float>(), begin, end,
                     dim, static_cast<float>(eps));
  });
  return {y, inverse};
}

std::pair<torch::Tensor, torch::Tensor> rms_norm_backward(const torch::Tensor& grad, const torch::Tensor& x,
                                                          const torch::Tensor& weight, const torch::Tensor& inverse) {
  const auto dim = x.size(-1), rows = x.numel() / std::max<std::int64_t>(dim, 1);
  auto dx = torch::empty_like(x);
  // The weight's gradient sums over rows: each block of rows sums into its own row of `partial`.
  const auto blocks = std::max<std::int64_t>(1, std::min<std::int64_t>(rows, at::get_num_threads()));
  auto partial = torch::zeros({blocks, dim}, x.options().dtype(torch::kFloat32));
  const auto& kernels = cpu_kernels();
  at::parallel_for(0, blocks, 1, [&](std::int64_t first_block, std::int64_t last_block) {
    for (auto block = first_block; block < last_block; ++block)
      kernels.rms_norm_backward(element(x), grad.data_ptr(), x.data_ptr(), weight.data_ptr(), inverse.data_ptr<float>(),
                                dx.data_ptr(), partial.data_ptr<float>() + block * dim, block * rows / blocks,
                                (block + 1) * rows / blocks, dim);
  });
  return {dx, partial.sum(0).to(weight.scalar_type())};
}

struct RmsNormFunction : torch::autograd::Function<RmsNormFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& weight, double eps) {
    auto [y, inverse] = rms_norm_forward(x, weight, eps);
    ctx->save_for_backward({x, weight, inverse});
    return y;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    auto [dx, dw] = rms_norm_backward(grads[0].contiguous(), saved[0], saved[1], saved[2]);
    return {dx, dw, torch::Tensor()};
  }
};

torch::Tensor reference_rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  auto x32 = x.to(torch::kFloat32);
  auto normed = x32 * torch::rsqrt(x32.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * normed.to(x.scalar_type());
}

// -- SwiGLU -------------------------------------------------------------------

torch::Tensor swiglu_forward(const torch::Tensor& gate_up) {
  const auto n = gate_up.size(-1) / 2, rows = gate_up.numel() / std::max<std::int64_t>(2 * n, 1);
  auto sizes = gate_up.sizes().vec();
  sizes.back() = n;
  auto out = torch::empty(sizes, gate_up.options());
  const auto& kernels = cpu_kernels();
  at::parallel_for(0, rows, grain_rows(2 * n), [&](std::int64_t begin, std::int64_t end) {
    kernels.swiglu(element(gate_up), gate_up.data_ptr(), out.data_ptr(), begin, end, n);
  });
  return out;
}

torch::Tensor swiglu_backward(const torch::Tensor& grad, const torch::Tensor& gate_up) {
  const auto n = gate_up.size(-1) / 2, rows = gate_up.numel() / std::max<std::int64_t>(2 * n, 1);
  auto d_gate_up = torch::empty_like(gate_up);
  const auto& kernels = cpu_kernels();
  at::parallel_for(0, rows, grain_rows(2 * n), [&](std::int64_t begin, std::int64_t end) {
    kernels.swiglu_backward(element(gate_up), grad.data_ptr(), gate_up.data_ptr(), d_gate_up.data_ptr(), begin, end, n);
  });
  return d_gate_up;
}

struct SwigluFunction : torch::autograd::Function<SwigluFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& gate_up) {
    ctx->save_for_backward({gate_up});
    return swiglu_forward(gate_up);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return {swiglu_backward(grads[0].contiguous(), ctx->get_saved_variables()[0])};
  }
};

// -- q, k, v with the rotary embedding ---------------------------------------

// Between the projection's layout [batch, time, heads + 2 kv_heads, head_dim] and the heads-first
// q [batch, heads, time, head_dim], k and v [batch, kv_heads, time, head_dim]: the first
// cos.size(2) dimensions of q and k turned by their position's angles, the rest and v copied.
// `backward` goes the other way with the transposed rotation, writing every element of `packed`
// (zeros where a gradient is undefined).
void convert_heads(const torch::Tensor& packed, const std::array<torch::Tensor, 3>& split, std::int64_t heads,
                   std::int64_t kv_heads, const torch::Tensor& cos, const torch::Tensor& sin, bool backward) {
  const auto batch = packed.size(0), time = packed.size(1), all = packed.size(2), dim = packed.size(3);
  const auto turned = cos.size(2), kept = dim - turned; // Phi-4 mini turns 3/4 of each head
  const auto& kernels = cpu_kernels();
  const auto e = element(packed);
  const auto size = static_cast<std::int64_t>(packed.element_size());
  auto* pack = static_cast<char*>(packed.data_ptr());
  std::array<char*, 3> parts{};
  for (std::size_t i = 0; i < 3; ++i)
    parts[i] = split[i].defined() ? static_cast<char*>(split[i].data_ptr()) : nullptr;
  const auto* c = static_cast<const char*>(cos.data_ptr());
  const auto* s = static_cast<const char*>(sin.data_ptr());
  const auto angle_batch = cos.stride(0), angle_time = cos.stride(1);
  at::parallel_for(0, batch * time, grain_rows(all * dim), [&](std::int64_t begin, std::int64_t end) {
    for (auto bt = begin; bt < end; ++bt) {
      const auto b = bt / time, t = bt % time;
      const auto angle = (b * angle_batch + t * angle_time) * size;
      for (std::int64_t h = 0; h < all; ++h) {
        const std::size_t part = h < heads ? 0 : (h < heads + kv_heads ? 1 : 2);
        const auto part_heads = part == 0 ? heads : kv_heads;
        const auto head = h - (part == 0 ? 0 : (part == 1 ? heads : heads + kv_heads));
        char* packed_row = pack + ((bt * all) + h) * dim * size;
        char* split_row = parts[part] ? parts[part] + (((b * part_heads + head) * time) + t) * dim * size : nullptr;
        if (backward && !split_row)
          std::memset(packed_row, 0, static_cast<std::size_t>(dim * size));
        else if (part == 2)
          std::memcpy(backward ? packed_row : split_row, backward ? split_row : packed_row,
                      static_cast<std::size_t>(dim * size));
        else {
          const char* from = backward ? split_row : packed_row;
          char* to = backward ? packed_row : split_row;
          kernels.rotate(e, from, to, c + angle, s + angle, turned, backward);
          if (kept > 0)
            std::memcpy(to + turned * size, from + turned * size, static_cast<std::size_t>(kept * size));
        }
      }
    }
  });
}

std::array<torch::Tensor, 3> split_forward(const torch::Tensor& qkv, std::int64_t heads, std::int64_t kv_heads,
                                           const torch::Tensor& cos, const torch::Tensor& sin) {
  const auto batch = qkv.size(0), time = qkv.size(1), dim = qkv.size(3);
  std::array<torch::Tensor, 3> split{torch::empty({batch, heads, time, dim}, qkv.options()),
                                     torch::empty({batch, kv_heads, time, dim}, qkv.options()),
                                     torch::empty({batch, kv_heads, time, dim}, qkv.options())};
  convert_heads(qkv, split, heads, kv_heads, cos, sin, false);
  return split;
}

struct SplitHeadsFunction : torch::autograd::Function<SplitHeadsFunction> {
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& qkv, std::int64_t heads,
                               std::int64_t kv_heads, const torch::Tensor& cos, const torch::Tensor& sin) {
    ctx->save_for_backward({cos, sin});
    ctx->saved_data["heads"] = heads;
    ctx->saved_data["kv_heads"] = kv_heads;
    ctx->saved_data["shape"] = qkv.sizes();
    auto split = split_forward(qkv, heads, kv_heads, cos, sin);
    return {split[0], split[1], split[2]};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    std::array<torch::Tensor, 3> split;
    torch::TensorOptions options;
    for (std::size_t i = 0; i < 3; ++i)
      if (grads[i].defined()) {
        split[i] = grads[i].contiguous();
        options = split[i].options();
      }
    auto packed = torch::empty(ctx->saved_data["shape"].toIntVector(), options);
    convert_heads(packed, split, ctx->saved_data["heads"].toInt(), ctx->saved_data["kv_heads"].toInt(), saved[0],
                  saved[1], true);
    return {packed, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

// [batch, time, head_dim] views of cos and sin with a contiguous last dimension (strides may be 0).
std::pair<torch::Tensor, torch::Tensor> broadcast_angles(const torch::Tensor& cos, const torch::Tensor& sin,
                                                         std::int64_t batch, std::int64_t time, std::int64_t dim,
                                                         torch::ScalarType dtype) {
  auto shape = [&](const torch::Tensor& t) {
    auto v = t.to(dtype).expand({batch, time, dim});
    return v.stride(2) == 1 ? v : v.contiguous();
  };
  return {shape(cos), shape(sin)};
}

std::array<torch::Tensor, 3> reference_split_heads(const torch::Tensor& qkv, std::int64_t heads, std::int64_t kv_heads,
                                                   const torch::Tensor& cos, const torch::Tensor& sin) {
  auto turn = [&](const torch::Tensor& x) {
    auto rows = x.transpose(1, 2); // [batch, heads, time, head_dim]
    auto dim = rows.size(-1), turned = cos.size(-1);
    auto part = turned == dim ? rows : rows.narrow(-1, 0, turned);
    auto half = turned / 2;
    auto rotated = torch::cat({-part.narrow(-1, half, half), part.narrow(-1, 0, half)}, -1);
    auto out = part * cos.unsqueeze(1) + rotated * sin.unsqueeze(1);
    return turned == dim ? out : torch::cat({out, rows.narrow(-1, turned, dim - turned)}, -1);
  };
  return {turn(qkv.narrow(2, 0, heads)), turn(qkv.narrow(2, heads, kv_heads)),
          qkv.narrow(2, heads + kv_heads, kv_heads).transpose(1, 2)};
}

// -- attention softmax --------------------------------------------------------

struct MaskedSoftmaxFunction : torch::autograd::Function<MaskedSoftmaxFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& scores, const torch::Tensor& mask,
                               double scale) {
    auto probs = masked_softmax_forward(scores, mask, scale);
    ctx->save_for_backward({probs});
    ctx->saved_data["scale"] = scale;
    return probs;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto probs = ctx->get_saved_variables()[0];
    auto grad = grads[0].contiguous();
    auto d = torch::empty_like(probs);
    const auto keys = probs.size(-1), rows = probs.numel() / std::max<std::int64_t>(keys, 1);
    const auto scale = static_cast<float>(ctx->saved_data["scale"].toDouble());
    const auto& kernels = cpu_kernels();
    at::parallel_for(0, rows, grain_rows(keys), [&](std::int64_t begin, std::int64_t end) {
      kernels.masked_softmax_backward(grad.data_ptr<float>(), probs.data_ptr<float>(), d.data_ptr<float>(), begin, end,
                                      keys, scale);
    });
    return {d, torch::Tensor(), torch::Tensor()};
  }

  static torch::Tensor masked_softmax_forward(const torch::Tensor& scores, const torch::Tensor& mask, double scale) {
    const auto batch = scores.size(0), time = scores.size(3), keys = scores.size(4);
    const auto rows = scores.numel() / std::max<std::int64_t>(keys, 1);
    auto probs = torch::empty_like(scores);
    const auto& kernels = cpu_kernels();
    at::parallel_for(0, rows, grain_rows(keys), [&](std::int64_t begin, std::int64_t end) {
      kernels.masked_softmax(scores.data_ptr<float>(), mask.data_ptr<float>(), probs.data_ptr<float>(), begin, end,
                             keys, time, rows / batch, static_cast<float>(scale));
    });
    return probs;
  }
};

// -- embedding ----------------------------------------------------------------

struct EmbeddingFunction : torch::autograd::Function<EmbeddingFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& weight, const torch::Tensor& tokens) {
    ctx->save_for_backward({tokens});
    ctx->saved_data["vocab"] = weight.size(0);
    auto sizes = tokens.sizes().vec();
    sizes.push_back(weight.size(1));
    return weight.index_select(0, tokens.reshape({-1})).view(sizes);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto tokens = ctx->get_saved_variables()[0].reshape({-1});
    auto grad = grads[0].reshape({tokens.numel(), -1});
    auto d_weight = torch::zeros({ctx->saved_data["vocab"].toInt(), grad.size(1)}, grad.options());
    d_weight.index_add_(0, tokens, grad);
    return {d_weight, torch::Tensor()};
  }
};

} // namespace

torch::Tensor masked_softmax(const torch::Tensor& scores, const torch::Tensor& mask, double scale) {
  TORCH_CHECK(scores.dim() == 5 && mask.dim() == 4 && mask.size(1) == 1,
              "masked_softmax: scores [batch, kv_heads, group, time, keys] and mask [batch, 1, time, keys] expected");
  const auto batch = scores.size(0), time = scores.size(3), keys = scores.size(4);
  if (!scores.device().is_cpu() || scores.scalar_type() != torch::kFloat32 || mask.scalar_type() != torch::kFloat32) {
    auto weighted = scores.to(torch::kFloat32) * scale + mask.to(torch::kFloat32).unsqueeze(2);
    return torch::softmax(weighted, -1).to(scores.scalar_type());
  }
  auto input = scores.contiguous();
  auto shared_mask = mask.expand({batch, 1, time, keys}).contiguous();
  if (needs_autograd(input))
    return MaskedSoftmaxFunction::apply(input, shared_mask, scale);
  return MaskedSoftmaxFunction::masked_softmax_forward(input, shared_mask, scale);
}

torch::Tensor embedding_rows(const torch::Tensor& weight, const torch::Tensor& tokens) {
  if (needs_autograd(weight))
    return EmbeddingFunction::apply(weight, tokens);
  return torch::embedding(weight, tokens);
}

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  if (!fusable(x) || weight.scalar_type() != x.scalar_type() || !weight.device().is_cpu()
      || x.size(-1) != weight.numel())
    return reference_rms_norm(x, weight, eps);
  auto input = x.contiguous();
  auto w = weight.contiguous();
  if (needs_autograd(input, w))
    return RmsNormFunction::apply(input, w, eps);
  return rms_norm_forward(input, w, eps).first;
}

torch::Tensor swiglu(const torch::Tensor& gate_up) {
  if (!fusable(gate_up)) {
    auto halves = gate_up.chunk(2, -1);
    return torch::silu(halves[0]) * halves[1];
  }
  auto input = gate_up.contiguous();
  if (needs_autograd(input))
    return SwigluFunction::apply(input);
  return swiglu_forward(input);
}

std::array<torch::Tensor, 3> split_heads_rotary(const torch::Tensor& qkv, std::int64_t heads, std::int64_t kv_heads,
                                                const torch::Tensor& cos, const torch::Tensor& sin) {
  TORCH_CHECK(qkv.dim() == 4 && qkv.size(2) == heads + 2 * kv_heads && cos.size(-1) % 2 == 0
                && cos.size(-1) <= qkv.size(3),
              "split_heads_rotary: qkv [batch, time, heads + 2 kv_heads, head_dim] and cos, sin [..., an even "
              "rotary_dim <= head_dim] expected");
  if (!fusable(qkv) || cos.requires_grad() || sin.requires_grad())
    return reference_split_heads(qkv, heads, kv_heads, cos, sin);
  auto packed = qkv.contiguous();
  auto [c, s] = broadcast_angles(cos, sin, qkv.size(0), qkv.size(1), cos.size(-1), qkv.scalar_type());
  if (needs_autograd(packed)) {
    auto split = SplitHeadsFunction::apply(packed, heads, kv_heads, c, s);
    return {split[0], split[1], split[2]};
  }
  return split_forward(packed, heads, kv_heads, c, s);
}

} // namespace chorus::models
