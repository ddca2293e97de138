// GEMM with the right-hand matrix packed once, at model load. OpenBLAS packs B again on every
// call and, under the OPENBLAS_CORETYPE these hosts preset, runs AVX2 kernels on AVX-512 CPUs;
// for an inference weight matrix that never changes, both costs can be paid once. B is stored in
// panels of OUTPOST_GEMM_PANEL columns, k-major (the panel's row k is 32 contiguous floats). A
// slice of KC rows of a panel (128 KiB) stays in L2 while every tile of A's rows passes over it,
// each tile keeping its block of C in registers. (Slices of 256 rows, which stay in L1, were
// slower on the anchor MLP at batch 256, p10 1,717-1,749 against 1,644-1,670 us on one thread,
// see bench/README: every slice stores each tile's C block and loads it again.) The
// tiles are the same vector code compiled for AVX-512 and for AVX2 + FMA and picked at run time,
// as for the direct convolution; without AVX2 the engine keeps sgemm. Each output element sums
// its products in the same order whatever the number of rows (or KC), so a row's answer does not
// depend on the batch it ran in.
#include "CInferenceKernels.h"
#include "ISA.h"
#include <string.h>

#define NR OUTPOST_GEMM_PANEL
#ifndef KC
#define KC 1024
#endif
// Loops over a tile's rows and vectors are unrolled, so the accumulators live in registers.
#define UNROLL _Pragma("clang loop unroll(full)")

long outpost_gemm_packed_count(long k, long n) { return (n + NR - 1) / NR * NR * k; }

void outpost_gemm_pack(const float *b, long k, long n, int transposed, float alpha, float *packed) {
    const long panels = (n + NR - 1) / NR;
    for (long jp = 0; jp < panels; jp++) {
        float *dst = packed + jp * k * NR;
        const long j0 = jp * NR, cols = n - j0 < NR ? n - j0 : NR;
        for (long p = 0; p < k; p++) {
            float *row = dst + p * NR;
            for (long j = 0; j < cols; j++)
                row[j] = alpha * (transposed ? b[(j0 + j) * k + p] : b[p * n + j0 + j]);
            for (long j = cols; j < NR; j++) row[j] = 0.0f;
        }
    }
}

int outpost_gemm_packed_available(void) { return outpost_kernel_isa() >= ISA_AVX2; }

// One tile: MR rows of A (row stride lda) times LANES * PV columns of a panel (starting at `bp`,
// NR floats per k), into C. `cols` (≤ LANES * PV) columns are stored. The sums start from `bias`
// (the tile's columns of a row vector) when it is not NULL, else from what C holds when
// `accumulate` (a bias the caller wrote, or an earlier K slice), else from 0; `relu` clamps at 0
// as it stores (NaN stays NaN, as in onnxruntime's Relu: a compare and a masked move, not max).
#define DEFINE_GEMM_TILE(NAME, VEC, ATTR, LANES, PV, MR)                                             \
    ATTR static void NAME(const float *a, long lda, const float *bp, long k, float *c, long ldc,    \
                          long cols, const float *bias, int accumulate, int relu) {                 \
        enum { W = LANES * PV };                                                                    \
        VEC acc[MR][PV];                                                                            \
        float edge[MR][W];                                                                          \
        const int full = cols == W;                                                                 \
        if (bias) {                                                                                 \
            VEC bv[PV];                                                                             \
            if (full) {                                                                             \
                UNROLL for (int v = 0; v < PV; v++) memcpy(&bv[v], bias + v * LANES, sizeof(VEC));  \
            } else {                                                                                \
                float padded[W];                                                                    \
                memset(padded, 0, sizeof padded);                                                   \
                memcpy(padded, bias, (size_t)cols * sizeof(float));                                 \
                UNROLL for (int v = 0; v < PV; v++) memcpy(&bv[v], padded + v * LANES, sizeof(VEC)); \
            }                                                                                       \
            UNROLL for (int r = 0; r < MR; r++)                                                     \
                UNROLL for (int v = 0; v < PV; v++) acc[r][v] = bv[v];                              \
        } else {                                                                                    \
            if (accumulate && !full)                                                                \
                UNROLL for (int r = 0; r < MR; r++) {                                               \
                    memset(edge[r], 0, sizeof edge[r]);                                             \
                    memcpy(edge[r], c + r * ldc, (size_t)cols * sizeof(float));                     \
                }                                                                                   \
            UNROLL for (int r = 0; r < MR; r++)                                                     \
                UNROLL for (int v = 0; v < PV; v++) {                                               \
                    if (!accumulate) acc[r][v] = (VEC)(0.0f);                                       \
                    else memcpy(&acc[r][v], (full ? c + r * ldc : edge[r]) + v * LANES, sizeof(VEC)); \
                }                                                                                   \
        }                                                                                           \
        /* K unrolled by four: the rows' addresses are worked out once per four steps and  */ \
        /* the steps read at constant offsets from them (one step at a time, the loop spent */ \
        /* about as many integer instructions on addresses as it issued broadcasts).        */ \
        const float *ap = a;                                                                        \
        const float *b = bp;                                                                        \
        long p = 0;                                                                                 \
        for (; p + 4 <= k; p += 4) {                                                                \
            UNROLL for (int u = 0; u < 4; u++) {                                                    \
                VEC bv[PV];                                                                         \
                UNROLL for (int v = 0; v < PV; v++) memcpy(&bv[v], b + u * NR + v * LANES, sizeof(VEC)); \
                UNROLL for (int r = 0; r < MR; r++) {                                               \
                    const float s = ap[r * lda + u];                                                 \
                    UNROLL for (int v = 0; v < PV; v++) acc[r][v] += bv[v] * s;                     \
                }                                                                                   \
            }                                                                                       \
            ap += 4;                                                                                \
            b += 4 * NR;                                                                            \
        }                                                                                           \
        for (; p < k; p++) {                                                                        \
            VEC bv[PV];                                                                             \
            UNROLL for (int v = 0; v < PV; v++) memcpy(&bv[v], b + v * LANES, sizeof(VEC));         \
            UNROLL for (int r = 0; r < MR; r++) {                                                   \
                const float s = ap[r * lda];                                                         \
                UNROLL for (int v = 0; v < PV; v++) acc[r][v] += bv[v] * s;                         \
            }                                                                                       \
            ap += 1;                                                                                \
            b += NR;                                                                                \
        }                                                                                           \
        if (relu)                                                                                   \
            UNROLL for (int r = 0; r < MR; r++)                                                            \
                UNROLL for (int v = 0; v < PV; v++) acc[r][v] = acc[r][v] <= 0.0f ? (VEC)(0.0f) : acc[r][v]; \
        UNROLL for (int r = 0; r < MR; r++) {                                                              \
            if (full) {                                                                             \
                UNROLL for (int v = 0; v < PV; v++) memcpy(c + r * ldc + v * LANES, &acc[r][v], sizeof(VEC)); \
            } else {                                                                                \
                UNROLL for (int v = 0; v < PV; v++) memcpy(edge[r] + v * LANES, &acc[r][v], sizeof(VEC));  \
                memcpy(c + r * ldc, edge[r], (size_t)cols * sizeof(float));                         \
            }                                                                                       \
        }                                                                                           \
    }

typedef void (*gemm_tile_fn)(const float *, long, const float *, long, float *, long, long, const float *, int, int);

// One row of A times NP whole panels (the first at `bp`, the next `pstride` floats on), over all
// of K, into NP * NR columns of C. With a single row a tile has only PV accumulators, each FMA
// waiting for the last (latency-bound, a quarter of the FMA rate); NP panels give NP * PV
// independent chains. Each element still sums its products in k order, so the answer is the
// bits the tiles give for the same row in a batch.
#define DEFINE_GEMM_ROW(NAME, VEC, ATTR, LANES, NP)                                                 \
    ATTR static void NAME(const float *a, const float *bp, long pstride, long k, float *c, const float *bias,    \
                          int accumulate, int relu) {                                               \
        enum { PV = NR / LANES };                                                                   \
        VEC acc[NP][PV];                                                                            \
        const float *init = bias ? bias : c;                                                        \
        UNROLL for (int q = 0; q < NP; q++)                                                         \
            UNROLL for (int v = 0; v < PV; v++) {                                                   \
                if (!bias && !accumulate) acc[q][v] = (VEC)(0.0f);                                  \
                else memcpy(&acc[q][v], init + q * NR + v * LANES, sizeof(VEC));                    \
            }                                                                                       \
        for (long p = 0; p < k; p++) {                                                              \
            const float s = a[p];                                                                   \
            UNROLL for (int q = 0; q < NP; q++)                                                     \
                UNROLL for (int v = 0; v < PV; v++) {                                               \
                    VEC bv;                                                                         \
                    memcpy(&bv, bp + q * pstride + p * NR + v * LANES, sizeof(VEC));                \
                    acc[q][v] += bv * s;                                                            \
                }                                                                                   \
        }                                                                                           \
        UNROLL for (int q = 0; q < NP; q++)                                                         \
            UNROLL for (int v = 0; v < PV; v++) {                                                   \
                if (relu) acc[q][v] = acc[q][v] <= 0.0f ? (VEC)(0.0f) : acc[q][v];                  \
                memcpy(c + q * NR + v * LANES, &acc[q][v], sizeof(VEC));                            \
            }                                                                                       \
    }

typedef void (*gemm_row_fn)(const float *, const float *, long, long, float *, const float *, int, int);

// Rows of A per tile, largest first; a block of M is cut into the largest tiles that fit.
struct tiles {
    int lanes_per_pass;  // columns per tile (LANES * PV)
    int rows[5];
    gemm_tile_fn fn[5];
    gemm_tile_fn narrow[5];  // the same rows at half the columns, or NULL
    int row_panels;  // panels the single-row kernel takes at once
    gemm_row_fn row;
};

#if defined(__x86_64__)
typedef float vec16 __attribute__((ext_vector_type(16)));
typedef float vec8 __attribute__((ext_vector_type(8)));
#define AVX512 __attribute__((target("avx512f")))
#define AVX2 __attribute__((target("avx2,fma")))
// AVX-512: 32 columns (two zmm) × 14 rows = 28 accumulators of 32 registers.
DEFINE_GEMM_TILE(tile512_14, vec16, AVX512, 16, 2, 14)
DEFINE_GEMM_TILE(tile512_8, vec16, AVX512, 16, 2, 8)
DEFINE_GEMM_TILE(tile512_4, vec16, AVX512, 16, 2, 4)
DEFINE_GEMM_TILE(tile512_2, vec16, AVX512, 16, 2, 2)
DEFINE_GEMM_TILE(tile512_1, vec16, AVX512, 16, 2, 1)
// AVX-512, a panel's last columns when at most 16 are left (a 10-class output layer): one zmm
// per row, so the padding is not computed.
DEFINE_GEMM_TILE(tile512h_14, vec16, AVX512, 16, 1, 14)
DEFINE_GEMM_TILE(tile512h_8, vec16, AVX512, 16, 1, 8)
DEFINE_GEMM_TILE(tile512h_4, vec16, AVX512, 16, 1, 4)
DEFINE_GEMM_TILE(tile512h_2, vec16, AVX512, 16, 1, 2)
DEFINE_GEMM_TILE(tile512h_1, vec16, AVX512, 16, 1, 1)
// AVX2: 16 columns (two ymm) × 6 rows = 12 accumulators of 16 registers; two passes per panel.
DEFINE_GEMM_TILE(tile256_6, vec8, AVX2, 8, 2, 6)
DEFINE_GEMM_TILE(tile256_4, vec8, AVX2, 8, 2, 4)
DEFINE_GEMM_TILE(tile256_2, vec8, AVX2, 8, 2, 2)
DEFINE_GEMM_TILE(tile256_1, vec8, AVX2, 8, 2, 1)
// A single row: 4 panels, 8 zmm accumulators; on AVX2 2 panels, 8 ymm.
DEFINE_GEMM_ROW(row512_4, vec16, AVX512, 16, 4)
DEFINE_GEMM_ROW(row256_2, vec8, AVX2, 8, 2)

static const struct tiles tiles512 = {32, {14, 8, 4, 2, 1}, {tile512_14, tile512_8, tile512_4, tile512_2, tile512_1},
    {tile512h_14, tile512h_8, tile512h_4, tile512h_2, tile512h_1}, 4, row512_4};
static const struct tiles tiles256 = {16, {6, 4, 2, 1}, {tile256_6, tile256_4, tile256_2, tile256_1}, {NULL}, 2, row256_2};

static const struct tiles *current_tiles(void) {
    return outpost_kernel_isa() == ISA_AVX512 ? &tiles512 : &tiles256;
}

// The tile that starts at row i: the largest whose rows all exist.
static int tile_at(const struct tiles *t, long m, long i) {
    int s = 0;
    while (m - i < t->rows[s]) s++;
    return s;
}
#endif

void outpost_gemm_packed_run(const float *a, long lda, const float *packed, long m, long n, long k, float *c, long ldc,
                             const float *bias, long panel_begin, long panel_end, int accumulate, int relu) {
#if defined(__x86_64__)
    const struct tiles *t = current_tiles();
    if (m == 1) {
        // Whole groups of full panels go to the single-row kernel; the rest to the tiles.
        while (panel_begin + t->row_panels <= panel_end && (panel_begin + t->row_panels) * NR <= n) {
            t->row(a, packed + panel_begin * k * NR, k * NR, k, c + panel_begin * NR, bias ? bias + panel_begin * NR : NULL,
                   accumulate, relu);
            panel_begin += t->row_panels;
        }
    }
    for (long jp = panel_begin; jp < panel_end; jp++) {
        const float *panel = packed + jp * k * NR;
        for (long j0 = 0; j0 < NR && jp * NR + j0 < n; j0 += t->lanes_per_pass) {
            const long col = jp * NR + j0;
            const long cols = n - col < t->lanes_per_pass ? n - col : t->lanes_per_pass;
            gemm_tile_fn const *fns = t->narrow[0] && cols <= t->lanes_per_pass / 2 ? t->narrow : t->fn;
            // K in slices of KC, so the slice of the panel the tiles share stays in L2.
            for (long k0 = 0; k0 < k; k0 += KC) {
                const long kc = k - k0 < KC ? k - k0 : KC;
                const int last = k0 + kc == k;
                for (long i = 0; i < m;) {
                    const int s = tile_at(t, m, i);
                    const long mr = t->rows[s];
                    fns[s](a + i * lda + k0, lda, panel + k0 * NR + j0, kc, c + i * ldc + col, ldc, cols,
                             k0 == 0 && bias ? bias + col : NULL, accumulate || k0 > 0, relu && last);
                    i += mr;
                }
            }
        }
    }
#else
    (void)a; (void)lda; (void)packed; (void)m; (void)n; (void)k; (void)c; (void)ldc; (void)bias; (void)panel_begin;
    (void)panel_end; (void)accumulate; (void)relu;
#endif
}

struct gemm_call {
    const float *a, *packed, *bias;
    float *c;
    long lda, m, n, k, ldc, panels, parts, row_step;
    int accumulate, relu, by_rows;
};

// A part is a range of panels, or, when there are fewer panels than threads (a narrow output
// layer), all panels for a range of rows cut at multiples of the largest tile's rows.
static void gemm_part(void *ctx, long part) {
    const struct gemm_call *g = ctx;
    if (g->by_rows) {
        const long step = g->row_step, tiles = (g->m + step - 1) / step;
        const long r0 = tiles * part / g->parts * step, r1 = tiles * (part + 1) / g->parts * step;
        const long end = r1 < g->m ? r1 : g->m;
        if (r0 < end)
            outpost_gemm_packed_run(g->a + r0 * g->lda, g->lda, g->packed, end - r0, g->n, g->k, g->c + r0 * g->ldc, g->ldc,
                                    g->bias, 0, g->panels, g->accumulate, g->relu);
        return;
    }
    outpost_gemm_packed_run(g->a, g->lda, g->packed, g->m, g->n, g->k, g->c, g->ldc, g->bias, g->panels * part / g->parts,
                            g->panels * (part + 1) / g->parts, g->accumulate, g->relu);
}

void outpost_gemm_packed(const float *a, long lda, const float *packed, long m, long n, long k, float *c, long ldc,
                         const float *bias, int accumulate, int relu, int threads) {
    const long panels = (n + NR - 1) / NR;
#if defined(__x86_64__)
    const long row_step = current_tiles()->rows[0];
#else
    const long row_step = 1;
#endif
    // Below 2^18 multiply-adds a second thread costs more than it saves.
    long parts = m * n * k < (1L << 18) || threads < 1 ? 1 : threads;
    const int by_rows = parts > panels;
    const long row_tiles = (m + row_step - 1) / row_step;
    if (by_rows && parts > row_tiles) parts = row_tiles;
    struct gemm_call g = {a, packed, bias, c, lda, m, n, k, ldc, panels, parts > 1 ? parts : 1, row_step, accumulate, relu, by_rows};
    outpost_parallel_for((int)g.parts, g.parts, gemm_part, &g);
}
