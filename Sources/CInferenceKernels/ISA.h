// The widest instruction set the inference kernels may use on this CPU (internal to the target).
#ifndef OUTPOST_CINFERENCEKERNELS_ISA_H
#define OUTPOST_CINFERENCEKERNELS_ISA_H

enum isa { ISA_UNKNOWN, ISA_BASELINE, ISA_AVX2, ISA_AVX512 };

/// Detected once (AVX-512F; else AVX2 with FMA; else the compiler's baseline).
enum isa outpost_kernel_isa(void);

#endif
