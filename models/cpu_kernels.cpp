// Picks the kernels of cpu_kernels.hpp for this processor.
#include "models/cpu_kernels.hpp"

namespace chorus::models {

namespace baseline {
const CpuKernels& kernels();
}
#if defined(__x86_64__)
namespace avx2 {
const CpuKernels& kernels();
}
#endif

const CpuKernels& baseline_cpu_kernels() {
  return baseline::kernels();
}

const CpuKernels* avx2_cpu_kernels() {
#if defined(__x86_64__)
  static const bool supported = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return supported ? &avx2::kernels() : nullptr;
#else
  return nullptr;
#endif
}

const CpuKernels& cpu_kernels() {
  static const CpuKernels& chosen = avx2_cpu_kernels() ? *avx2_cpu_kernels() : baseline_cpu_kernels();
  return chosen;
}

} // namespace chorus::models
