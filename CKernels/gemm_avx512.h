// gemm_avx512.h — private to CKernels: the pieces the two AVX-512 GEMMs share (matmul_avx512.c
// for float32 weights, matmul_bf16.c for bfloat16 weights): the 16 x 16 transpose that packs
// rows of x into micro-panels, the row tiles of a block, the lane masks of a partial panel and
// the split of the output between threads.
#ifndef CK_GEMM_AVX512_H
#define CK_GEMM_AVX512_H

#include <immintrin.h>
#include <stddef.h>

#define AVX512_INLINE \
    static inline __attribute__((always_inline, target("avx512f,avx512bw,avx512vl")))

static inline size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

// In place, r[j] lane i <- r[i] lane j for 32-bit lanes (floats, or pairs of bfloat16): the
// unpack / shuffle / 128-bit-lane permute network, 64 shuffles for 256 elements. Packing x
// with it costs 1-3% of the GEMM where a scalar copy cost up to 8%.
AVX512_INLINE void transpose_16x16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    // r[4g + j], 128-bit lane L: rows 4g .. 4g+3 of column 4L + j.
    for (int g = 0; g < 4; g++) {
        r[4 * g + 0] = _mm512_shuffle_ps(t[4 * g + 0], t[4 * g + 2], 0x44);
        r[4 * g + 1] = _mm512_shuffle_ps(t[4 * g + 0], t[4 * g + 2], 0xee);
        r[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
        r[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xee);
    }
    // Gather lane L of the four row groups: 0x88 takes lanes 0 and 2 of each source, 0xdd 1 and 3.
    for (int j = 0; j < 4; j++) {
        t[4 * j + 0] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x88);
        t[4 * j + 1] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xdd);
        t[4 * j + 2] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x88);
        t[4 * j + 3] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xdd);
    }
    for (int j = 0; j < 4; j++) {
        r[j] = _mm512_shuffle_f32x4(t[4 * j + 0], t[4 * j + 2], 0x88);
        r[8 + j] = _mm512_shuffle_f32x4(t[4 * j + 0], t[4 * j + 2], 0xdd);
        r[4 + j] = _mm512_shuffle_f32x4(t[4 * j + 1], t[4 * j + 3], 0x88);
        r[12 + j] = _mm512_shuffle_f32x4(t[4 * j + 1], t[4 * j + 3], 0xdd);
    }
}

// Lane masks of the two 16-lane halves of a panel with nr (1..32) valid columns.
static inline void panel_masks(size_t nr, __mmask16 *m0, __mmask16 *m1) {
    *m0 = nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1);
    *m1 = nr >= 32 ? 0xffff : nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1);
}

// One case per row count of a tile, 14 down to 1 (the edge in m, at the boundary of the
// micro-kernel): KERNEL(R) is called with R a constant, so each row count gets its own kernel.
#define CK_AVX512_ROW_CASES(mr, KERNEL)                                                           \
    switch (mr) {                                                                                 \
    case 14: KERNEL(14); break;                                                                   \
    case 13: KERNEL(13); break;                                                                   \
    case 12: KERNEL(12); break;                                                                   \
    case 11: KERNEL(11); break;                                                                   \
    case 10: KERNEL(10); break;                                                                   \
    case 9: KERNEL(9); break;                                                                     \
    case 8: KERNEL(8); break;                                                                     \
    case 7: KERNEL(7); break;                                                                     \
    case 6: KERNEL(6); break;                                                                     \
    case 5: KERNEL(5); break;                                                                     \
    case 4: KERNEL(4); break;                                                                     \
    case 3: KERNEL(3); break;                                                                     \
    case 2: KERNEL(2); break;                                                                     \
    default: KERNEL(1); break;                                                                    \
    }

// Row tiles of a block of `rows` rows: as few as hold them (ceil(rows / mr_max)), with heights
// differing by at most one. 128 rows are ten tiles of 12 or 13 rows rather than nine of 14 and a
// two-row tile, which would run at the FMA latency, not the throughput.
static inline size_t tile_count(size_t rows, size_t mr_max) { return (rows + mr_max - 1) / mr_max; }
static inline size_t tile_start(size_t rows, size_t tiles, size_t t) { return rows * t / tiles; }

// One thread's share of the output: row tiles [t0, t1) of size MR (tiles_m in all) x panels
// [p0, p1). nth threads form gm row groups x (nth / gm) panel groups, gm minimising the largest
// share (row tiles x panels); ties go to fewer row groups, so each panel of W is read by fewer
// threads, and at decode (one row tile) the panels are all there is to split.
static inline void thread_share(int nth, int tid, size_t tiles_m, size_t panels, size_t *t0,
                                size_t *t1, size_t *p0, size_t *p1) {
    int gm = 1;
    size_t best_share = (size_t)-1;
    for (int g = 1; g <= nth; g++) {
        if (nth % g) continue;
        const size_t gn = (size_t)(nth / g);
        const size_t share = ((tiles_m + g - 1) / g) * ((panels + gn - 1) / gn);
        if (share < best_share) {
            best_share = share;
            gm = g;
        }
    }
    const int gn = nth / gm;
    const size_t rg = (size_t)(tid / gn), pg = (size_t)(tid % gn);
    *t0 = tiles_m * rg / (size_t)gm;
    *t1 = tiles_m * (rg + 1) / (size_t)gm;
    *p0 = panels * pg / (size_t)gn;
    *p1 = panels * (pg + 1) / (size_t)gn;
}

#endif  // CK_GEMM_AVX512_H
