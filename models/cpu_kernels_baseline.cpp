// The kernels of cpu_kernels.hpp for any processor of the architecture (x86-64: SSE2).
#define CHORUS_KERNELS_NAMESPACE baseline
#include "models/cpu_kernels.inc"
