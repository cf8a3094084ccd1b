// The kernels of cpu_kernels.hpp for AVX2 with FMA: this file alone is compiled with -mavx2 -mfma
// (models/CMakeLists.txt), and its code runs only where cpu_kernels() saw both.
#if defined(__x86_64__)
#define CHORUS_KERNELS_NAMESPACE avx2
#include "models/cpu_kernels.inc"
#endif
