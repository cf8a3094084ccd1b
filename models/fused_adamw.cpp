#include "models/fused_adamw.hpp"

#include "models/cpu_kernels.hpp"

#include <ATen/Parallel.h>

#include <cmath>

namespace chorus::models {

namespace {

bool fusable(const torch::Tensor& p, const torch::Tensor& grad, const torch::optim::AdamWParamState& state,
             const torch::optim::AdamWOptions& options) {
  auto fp32_cpu = [](const torch::Tensor& t) {
    return t.device().is_cpu() && t.scalar_type() == torch::kFloat32 && t.is_contiguous();
  };
  return !options.amsgrad() && fp32_cpu(p) && fp32_cpu(grad) && fp32_cpu(state.exp_avg())
    && fp32_cpu(state.exp_avg_sq());
}

} // namespace

torch::Tensor FusedAdamW::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure) {
    torch::AutoGradMode enable_grad(true);
    loss = closure();
  }
  const auto& kernels = cpu_kernels();
  for (auto& group : param_groups()) {
    auto& options = static_cast<torch::optim::AdamWOptions&>(group.options());
    const auto [beta1, beta2] = options.betas();
    for (auto& p : group.params()) {
      if (!p.grad().defined())
        continue;
      const auto& grad = p.grad();
      TORCH_CHECK(!grad.is_sparse(), "AdamW does not support sparse gradients");
      auto key = optimizer_state_key(p);
      auto& slot = state()[key];
      if (!slot) {
        auto fresh = std::make_unique<torch::optim::AdamWParamState>();
        fresh->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        fresh->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        if (options.amsgrad())
          fresh->max_exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        slot = std::move(fresh);
      }
      auto& s = static_cast<torch::optim::AdamWParamState&>(*slot);
      s.step(s.step() + 1);
      const double correction1 = 1 - std::pow(beta1, s.step()), correction2 = 1 - std::pow(beta2, s.step());
      const double lr = options.lr(), decay = options.weight_decay();
      if (fusable(p, grad, s, options)) {
        AdamWScalars scalars{static_cast<float>(lr),
                             static_cast<float>(beta1),
                             static_cast<float>(beta2),
                             static_cast<float>(options.eps()),
                             static_cast<float>(decay),
                             static_cast<float>(correction1),
                             static_cast<float>(std::sqrt(correction2))};
        float* values = p.data_ptr<float>();
        const float* gradient = grad.data_ptr<float>();
        float* m = s.exp_avg().data_ptr<float>();
        float* v = s.exp_avg_sq().data_ptr<float>();
        at::parallel_for(0, p.numel(), 32768, [&](std::int64_t begin, std::int64_t end) {
          kernels.adamw(values + begin, gradient + begin, m + begin, v + begin, end - begin, scalars);
        });
        // Writes through raw pointers leave the version counters alone; what caches a value derived
        // from a parameter (FusedParameter, autograd's saved tensors) watches them.
        p.unsafeGetTensorImpl()->bump_version();
        s.exp_avg().unsafeGetTensorImpl()->bump_version();
        s.exp_avg_sq().unsafeGetTensorImpl()->bump_version();
        continue;
      }
      // LibTorch's AdamW arithmetic, op by op.
      if (decay != 0)
        p.mul_(1 - lr * decay);
      s.exp_avg().mul_(beta1).add_(grad, 1 - beta1);
      s.exp_avg_sq().mul_(beta2).addcmul_(grad, grad, 1 - beta2);
      torch::Tensor second = s.exp_avg_sq();
      if (options.amsgrad()) {
        torch::max_out(s.max_exp_avg_sq(), s.max_exp_avg_sq(), s.exp_avg_sq());
        second = s.max_exp_avg_sq();
      }
      auto denominator = (second.sqrt() / std::sqrt(correction2)).add_(options.eps());
      p.addcdiv_(s.exp_avg(), denominator, -lr / correction1);
    }
  }
  return loss;
}

} // namespace chorus::models
