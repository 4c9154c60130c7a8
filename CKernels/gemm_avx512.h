// gemm_avx512.h — private to CKernels: the pieces the AVX-512 micro-kernels and packers share
// (gemm_f32_avx512.c for float32 weights, gemm_bf16_avx512.c for bfloat16 weights): the 16 x 16
// transpose that packs rows of x into micro-panels, the lane masks of a partial panel and the
// switch over the row count of a tile.
#ifndef CK_GEMM_AVX512_H
#define CK_GEMM_AVX512_H

#include "gemm_internal.h"

#include <immintrin.h>

#define AVX512_INLINE \
    static inline __attribute__((always_inline, target("avx512f,avx512bw,avx512vl")))

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

// The start of a 14 x 32 tile: mr rows of accumulators at zero, and the C rows prefetched into
// L2 (C is only needed after the k loop; with N a multiple of 1024 the 14 rows fall in one set
// of the 8-way L1, where they would evict each other and the B micro-panel).
AVX512_INLINE void tile_begin_14x32(const int mr, __m512 acc[][2], const float *c, size_t ldc) {
    for (int i = 0; i < mr; i++) {
        acc[i][0] = acc[i][1] = _mm512_setzero_ps();
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T1);
        _mm_prefetch((const char *)(c + i * ldc + 31), _MM_HINT_T1);
    }
}

// The end of a 14 x 32 tile: C[0:mr, 0:nr] = (accumulate ? C : 0) + acc, the columns past nr
// (zero padding of W) masked off.
AVX512_INLINE void tile_store_14x32(const int mr, __m512 acc[][2], float *c, size_t ldc,
                                    size_t nr, int accumulate) {
    __mmask16 m0, m1;
    panel_masks(nr, &m0, &m1);
    for (int i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        if (accumulate) {
            acc[i][0] = _mm512_add_ps(acc[i][0], _mm512_maskz_loadu_ps(m0, ci));
            acc[i][1] = _mm512_add_ps(acc[i][1], _mm512_maskz_loadu_ps(m1, ci + 16));
        }
        _mm512_mask_storeu_ps(ci, m0, acc[i][0]);
        _mm512_mask_storeu_ps(ci + 16, m1, acc[i][1]);
    }
}

#endif  // CK_GEMM_AVX512_H
