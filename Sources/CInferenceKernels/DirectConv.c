// Direct convolution kernels. Swift compiles for the baseline x86-64 (SSE2) and has no
// per-function target features, so the hot loop of a direct convolution lives here: clang
// compiles the same vector code for AVX-512, for AVX2 + FMA and for the baseline, and
// `outpost_direct_conv` picks the widest the CPU supports (the way OpenBLAS's DYNAMIC_ARCH and
// onnxruntime's MLAS dispatch), so the binary still runs on any x86-64.
#include "CInferenceKernels.h"
#include "ISA.h"
#include <string.h>

#define CB OUTPOST_DIRECT_CONV_BLOCK

// One kernel: LANES-wide vectors, PV of them per channel per step (LANES * PV output positions
// per step, CB * PV accumulators). The last step overlaps the one before it instead of running a
// tail; the caller only uses a kernel whose step is at most `span`.
#define DEFINE_DIRECT_CONV(NAME, ATTR, LANES, PV)                                                   \
    typedef float NAME##_vec __attribute__((ext_vector_type(LANES)));                               \
    ATTR static void NAME(const float *x, const long *offsets, const float *w, long taps,           \
                          const float *bias, long channels, float *out, long span, int relu) {                \
        const long step = LANES * PV;                                                               \
        for (long p = 0; p < span; p += step) {                                                     \
            const long p0 = p + step <= span ? p : span - step;                                     \
            NAME##_vec acc[CB][PV];                                                                 \
            for (int c = 0; c < CB; c++)                                                            \
                for (int v = 0; v < PV; v++) acc[c][v] = (NAME##_vec)(c < channels ? bias[c] : 0.0f); \
            const float *wt = w;                                                                    \
            for (long t = 0; t < taps; t++, wt += CB) {                                             \
                const float *s = x + p0 + offsets[t];                                               \
                NAME##_vec xv[PV];                                                                  \
                for (int v = 0; v < PV; v++) memcpy(&xv[v], s + v * LANES, sizeof(NAME##_vec));     \
                for (int c = 0; c < CB; c++) {                                                      \
                    const float wc = wt[c];                                                         \
                    for (int v = 0; v < PV; v++) acc[c][v] += xv[v] * wc;                           \
                }                                                                                   \
            }                                                                                       \
            if (relu)                                                                               \
                for (int c = 0; c < CB; c++)                                                        \
                    for (int v = 0; v < PV; v++)                                                    \
                        acc[c][v] = acc[c][v] <= 0.0f ? (NAME##_vec)(0.0f) : acc[c][v];             \
            for (int c = 0; c < CB; c++) {                                                          \
                if (c >= channels) break;                                                           \
                for (int v = 0; v < PV; v++)                                                        \
                    memcpy(out + c * span + p0 + v * LANES, &acc[c][v], sizeof(NAME##_vec));        \
            }                                                                                       \
        }                                                                                           \
    }

DEFINE_DIRECT_CONV(direct_conv_base4, , 4, 1)
#if defined(__x86_64__)
DEFINE_DIRECT_CONV(direct_conv_avx2, __attribute__((target("avx2,fma"))), 8, 1)
DEFINE_DIRECT_CONV(direct_conv_avx512, __attribute__((target("avx512f"))), 16, 2)
#endif

/// Spans shorter than the smallest kernel's step: one position at a time.
static void direct_conv_scalar(const float *x, const long *offsets, const float *w, long taps,
                               const float *bias, long channels, float *out, long span, int relu) {
    for (long c = 0; c < channels; c++) {
        for (long p = 0; p < span; p++) {
            float acc = bias[c];
            for (long t = 0; t < taps; t++) acc += x[p + offsets[t]] * w[t * CB + c];
            out[c * span + p] = relu && acc <= 0 ? 0 : acc;
        }
    }
}

typedef void (*direct_conv_fn)(const float *, const long *, const float *, long, const float *, long, float *, long, int);

void outpost_direct_conv(const float *x, const long *offsets, const float *w, long taps,
                         const float *bias, long channels, float *out, long span, int relu) {
    direct_conv_fn fn = direct_conv_scalar;
    switch (outpost_kernel_isa()) {
#if defined(__x86_64__)
    case ISA_AVX512:
        if (span >= 32) { fn = direct_conv_avx512; break; }
        // fall through
    case ISA_AVX2:
        if (span >= 8) { fn = direct_conv_avx2; break; }
        // fall through
#endif
    default:
        if (span >= 4) fn = direct_conv_base4;
    }
    fn(x, offsets, w, taps, bias, channels, out, span, relu);
}
