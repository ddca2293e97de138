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

/// A 2×2 max pool with stride 2 and no padding: dst[oy * ow + ox] is the largest of
/// src[(2oy + i) * ld + 2ox + j] for i, j in {0, 1} (the first of equal or unordered values, in
/// row order), for oy < oh and ox < ow. Each input row must hold at least 2·ow values; dst must
/// not overlap src.
void outpost_maxpool2x2(const float *src, long ld, float *dst, long oh, long ow);

/// The instruction set the engine's own kernels (`outpost_direct_conv`, `outpost_gemm_packed`)
/// use on this CPU: "avx512", "avx2" or "baseline".
const char *outpost_kernel_isa_name(void);

/// One task of `outpost_parallel_for`.
typedef void (*outpost_task_fn)(void *ctx, long index);

/// Runs fn(ctx, i) for every i < count on up to `threads` threads (the caller's and pooled
/// workers) and returns when all have finished. Runs them one by one on the calling thread when
/// `threads` ≤ 1 or another call is using the pool.
void outpost_parallel_for(int threads, long count, outpost_task_fn fn, void *ctx);

/// Columns per panel of `outpost_gemm_pack`'s layout.
#define OUTPOST_GEMM_PANEL 32

/// Floats `outpost_gemm_pack` writes for a K×N matrix.
long outpost_gemm_packed_count(long k, long n);

/// Packs alpha·B into panels of OUTPOST_GEMM_PANEL columns, each k-major, the last zero-padded.
/// B is K×N row-major, or N×K row-major (its transpose) when `transposed` is non-zero.
void outpost_gemm_pack(const float *b, long k, long n, int transposed, float alpha, float *packed);

/// Whether `outpost_gemm_packed` has a kernel for this CPU (AVX2 with FMA, or AVX-512).
int outpost_gemm_packed_available(void);

/// The columns of panels [panel_begin, panel_end) of C[m×n] (row stride ldc) = A[m×k] (row
/// stride lda) · packed B, plus `bias` (n floats, the same for every row) when it is not NULL,
/// else plus C's previous contents when `accumulate` is non-zero, then max(·, 0) when `relu` is
/// non-zero. Each sum starts from the bias or C and adds the products in k order. Calls on
/// disjoint panel ranges may run on different threads at once. Only call when
/// `outpost_gemm_packed_available()`.
void outpost_gemm_packed_run(const float *a, long lda, const float *packed, long m, long n, long k, float *c, long ldc,
                             const float *bias, long panel_begin, long panel_end, int accumulate, int relu);

/// C = A · packed B over all panels, as `outpost_gemm_packed_run`, shared out among up to
/// `threads` threads (`outpost_parallel_for`) from 2^18 multiply-adds on: by panels, or by rows
/// when there are fewer panels than threads.
void outpost_gemm_packed(const float *a, long lda, const float *packed, long m, long n, long k, float *c, long ldc,
                         const float *bias, int accumulate, int relu, int threads);

#endif
