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
// per step), HB channels of the block per pass over the span (HB * PV accumulators). The last
// step overlaps the one before it instead of running a tail; the caller only uses a kernel whose
// step is at most `span`.
#define DEFINE_DIRECT_CONV(NAME, ATTR, LANES, PV, HB)                                               \
    typedef float NAME##_vec __attribute__((ext_vector_type(LANES)));                               \
    ATTR static void NAME(const float *x, const long *offsets, const float *w, long taps,           \
                          const float *bias, long channels, float *out, long span, int relu) {      \
        const long step = LANES * PV;                                                               \
        for (long h0 = 0; h0 < channels; h0 += HB) {                                                \
            for (long p = 0; p < span; p += step) {                                                 \
                const long p0 = p + step <= span ? p : span - step;                                 \
                NAME##_vec acc[HB][PV];                                                             \
                for (int c = 0; c < HB; c++)                                                        \
                    for (int v = 0; v < PV; v++)                                                    \
                        acc[c][v] = (NAME##_vec)(h0 + c < channels ? bias[h0 + c] : 0.0f);          \
                const float *wt = w + h0;                                                           \
                for (long t = 0; t < taps; t++, wt += CB) {                                         \
                    const float *s = x + p0 + offsets[t];                                           \
                    NAME##_vec xv[PV];                                                              \
                    for (int v = 0; v < PV; v++) memcpy(&xv[v], s + v * LANES, sizeof(NAME##_vec)); \
                    for (int c = 0; c < HB; c++) {                                                  \
                        const float wc = wt[c];                                                     \
                        for (int v = 0; v < PV; v++) acc[c][v] += xv[v] * wc;                       \
                    }                                                                               \
                }                                                                                   \
                if (relu)                                                                           \
                    for (int c = 0; c < HB; c++)                                                    \
                        for (int v = 0; v < PV; v++)                                                \
                            acc[c][v] = acc[c][v] <= 0.0f ? (NAME##_vec)(0.0f) : acc[c][v];         \
                for (int c = 0; c < HB; c++) {                                                      \
                    if (h0 + c >= channels) break;                                                  \
                    for (int v = 0; v < PV; v++)                                                    \
                        memcpy(out + (h0 + c) * span + p0 + v * LANES, &acc[c][v], sizeof(NAME##_vec)); \
                }                                                                                   \
            }                                                                                       \
        }                                                                                           \
    }

DEFINE_DIRECT_CONV(direct_conv_base4, , 4, 1, CB)
#if defined(__x86_64__)
// AVX2 has 16 vector registers. With all eight channels at once (8 accumulators) each tap
// loads one input vector and broadcasts eight weights: nine loads for eight FMAs, and the loads
// bound the loop. Four channels over two vectors of positions load six for eight; the anchor
// CNN at batch 256 on one thread (AMD EPYC, AVX2) took 1,883 us against 2,543 (medians of 7
// interleaved rounds). Four channels over three vectors (12 accumulators) spill to the stack.
DEFINE_DIRECT_CONV(direct_conv_avx2, __attribute__((target("avx2,fma"))), 8, 1, CB)
DEFINE_DIRECT_CONV(direct_conv_avx2_x2, __attribute__((target("avx2,fma"))), 8, 2, 4)
DEFINE_DIRECT_CONV(direct_conv_avx512, __attribute__((target("avx512f"))), 16, 2, CB)
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
        if (span >= 16) { fn = direct_conv_avx2_x2; break; }
        if (span >= 8) { fn = direct_conv_avx2; break; }
        // fall through
#endif
    default:
        if (span >= 4) fn = direct_conv_base4;
    }
    fn(x, offsets, w, taps, bias, channels, out, span, relu);
}
