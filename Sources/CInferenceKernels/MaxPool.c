// The 2×2 stride-2 max pool, the one CNNs use after nearly every convolution. The engine pools
// each convolution output plane while it is in cache; in Swift (compiled for baseline x86-64)
// that ran a quarter of the anchor CNN's time at batch 256, so the loop lives here, compiled for
// AVX2 and for the baseline and picked at run time as the direct convolution is.
#include "CInferenceKernels.h"
#include "ISA.h"
#include <string.h>

typedef float v4 __attribute__((ext_vector_type(4)));
typedef float v8 __attribute__((ext_vector_type(8)));

// The same selection as the engine's other pooling loops: the left/upper value unless the
// other is greater.
#define PICK(a, b) ((b) > (a) ? (b) : (a))

static inline void scalar_row(const float *r0, const float *r1, float *d, long ow) {
    for (long ox = 0; ox < ow; ox++) {
        const float a = PICK(r0[2 * ox], r0[2 * ox + 1]), b = PICK(r1[2 * ox], r1[2 * ox + 1]);
        d[ox] = PICK(a, b);
    }
}

// Four outputs from eight values of each of the two input rows.
#define STEP4(r0, r1, d)                                                                          \
    do {                                                                                          \
        v8 a, b;                                                                                  \
        memcpy(&a, (r0), sizeof a);                                                               \
        memcpy(&b, (r1), sizeof b);                                                               \
        v4 ae = __builtin_shufflevector(a, a, 0, 2, 4, 6), ao = __builtin_shufflevector(a, a, 1, 3, 5, 7); \
        v4 be = __builtin_shufflevector(b, b, 0, 2, 4, 6), bo = __builtin_shufflevector(b, b, 1, 3, 5, 7); \
        v4 ma = PICK(ae, ao), mb = PICK(be, bo), m = PICK(ma, mb);                                \
        memcpy((d), &m, sizeof m);                                                                \
    } while (0)

// One output row with four-wide vectors (the last step overlapping the one before it instead
// of running a tail), or one by one when it is narrower than a vector.
static inline void row4(const float *r0, const float *r1, float *d, long ow) {
    if (ow < 4) {
        scalar_row(r0, r1, d, ow);
        return;
    }
    for (long ox = 0; ox < ow; ox += 4) {
        const long o = ox + 4 <= ow ? ox : ow - 4;
        STEP4(r0 + 2 * o, r1 + 2 * o, d + o);
    }
}

static void maxpool2x2_base(const float *src, long ld, float *dst, long oh, long ow) {
    for (long oy = 0; oy < oh; oy++) row4(src + 2 * oy * ld, src + (2 * oy + 1) * ld, dst + oy * ow, ow);
}

#if defined(__x86_64__)
typedef float v16 __attribute__((ext_vector_type(16)));

__attribute__((target("avx2,fma"))) static void maxpool2x2_avx2(const float *src, long ld, float *dst, long oh, long ow) {
    for (long oy = 0; oy < oh; oy++) {
        const float *r0 = src + 2 * oy * ld, *r1 = r0 + ld;
        float *d = dst + oy * ow;
        if (ow < 8) {
            row4(r0, r1, d, ow);
            continue;
        }
        for (long ox = 0; ox < ow; ox += 8) {
            const long o = ox + 8 <= ow ? ox : ow - 8;
            v16 a, b;
            memcpy(&a, r0 + 2 * o, sizeof a);
            memcpy(&b, r1 + 2 * o, sizeof b);
            v8 ae = __builtin_shufflevector(a, a, 0, 2, 4, 6, 8, 10, 12, 14), ao = __builtin_shufflevector(a, a, 1, 3, 5, 7, 9, 11, 13, 15);
            v8 be = __builtin_shufflevector(b, b, 0, 2, 4, 6, 8, 10, 12, 14), bo = __builtin_shufflevector(b, b, 1, 3, 5, 7, 9, 11, 13, 15);
            v8 ma = PICK(ae, ao), mb = PICK(be, bo), m = PICK(ma, mb);
            memcpy(d + o, &m, sizeof m);
        }
    }
}
#endif

void outpost_maxpool2x2(const float *src, long ld, float *dst, long oh, long ow) {
#if defined(__x86_64__)
    if (outpost_kernel_isa() >= ISA_AVX2) { maxpool2x2_avx2(src, ld, dst, oh, ow); return; }
#endif
    maxpool2x2_base(src, ld, dst, oh, ow);
}
