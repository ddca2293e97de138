#include "CInferenceKernels.h"
#include "ISA.h"

static enum isa detected = ISA_UNKNOWN;

enum isa outpost_kernel_isa(void) {
    // A benign race: every thread computes the same value.
    enum isa found = __atomic_load_n(&detected, __ATOMIC_RELAXED);
    if (found != ISA_UNKNOWN) return found;
    found = ISA_BASELINE;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) found = ISA_AVX512;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) found = ISA_AVX2;
#endif
    __atomic_store_n(&detected, found, __ATOMIC_RELAXED);
    return found;
}

const char *outpost_kernel_isa_name(void) {
    switch (outpost_kernel_isa()) {
    case ISA_AVX512: return "avx512";
    case ISA_AVX2: return "avx2";
    default: return "baseline";
    }
}
