#ifndef OUTPOST_CINFERENCEKERNELS_H
#define OUTPOST_CINFERENCEKERNELS_H

/// Output channels per block in `outpost_direct_conv`'s packed weights.
#define OUTPOST_DIRECT_CONV_BLOCK 8

/// Up to OUTPOST_DIRECT_CONV_BLOCK output channels of a stride-1 direct convolution:
///
///     out[ch * span + p] = bias[ch] + sum over t < taps of w[t * OUTPOST_DIRECT_CONV_BLOCK + ch] * x[p + offsets[t]]
///
/// for ch < channels and p < span, then max(·, 0) when `relu` is non-zero (a fused Relu; NaN
/// becomes 0, as in the engine's Relu). `x + p + offsets[t]` must be readable for every p < span and t
/// (the caller lays the input out so that it is). Runs the widest kernel the CPU supports
/// (AVX-512, AVX2 with FMA, or the compiler's baseline), chosen once.
void outpost_direct_conv(const float *x, const long *offsets, const float *w, long taps,
                         const float *bias, long channels, float *out, long span, int relu);

/// The instruction set `outpost_direct_conv` uses on this CPU: "avx512", "avx2" or "baseline".
const char *outpost_direct_conv_isa(void);

#endif
