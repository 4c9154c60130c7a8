// gemm_f32_avx2.c — the float32 AVX2+FMA micro-kernel sgemm_avx2_6x16 and its packer of x, for
// the driver in gemm.c (block sizes and their reasoning are in its table).
#include "ckernels.h"
#include "gemm_internal.h"

#include <immintrin.h>
#include <string.h>

#define AVX2 __attribute__((target("avx2,fma")))
#define AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma")))

// Rows [0, mr) x columns [0, kc) of x (row stride lda) into a micro-panel of row stride ldp:
// ap[k * ldp + i] = x[i][k]. The micro-kernel then reads A as one contiguous stream: rows of x
// are K floats apart, and with K a multiple of 1024 they would all fall in the same few cache
// sets, evicting each other and the B micro-panel.
void ck_pack_a_f32_avx2(const float *x, size_t lda, size_t mr, size_t kc, size_t valid,
                        void *ap_, size_t ldp) {
    float *ap = ap_;
    if (ldp == 1) {
        memcpy(ap, x, kc * sizeof *ap);
        return;
    }
    for (size_t i = 0; i < mr; i++) {
        const float *src = x + i * lda;
        for (size_t k = 0; k < kc; k++) ap[k * ldp + i] = src[k];
    }
}

// Lane mask selecting the first `valid` lanes (any int; <= 0 selects none, >= 8 all).
AVX2_INLINE __m256i lane_mask(int valid) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// One k step of the micro-kernel: acc[0:mr] += A[0:mr, k] · B[k, 0:16].
AVX2_INLINE void step_6x16(const int mr, const float *a, size_t cs, const float *b, size_t k,
                           __m256 acc[CK_AVX2_MR][2]) {
    const __m256 b0 = _mm256_loadu_ps(b + k * CK_AVX2_NR);
    const __m256 b1 = _mm256_loadu_ps(b + k * CK_AVX2_NR + 8);
    for (int i = 0; i < mr; i++) {
        const __m256 ai = _mm256_broadcast_ss(a + k * cs + i);
        acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
        acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
    }
}

// C[0:mr, 0:nr] = (accumulate ? C : 0) + A[0:mr, 0:kc] · B[0:kc, 0:16]
// a: micro-panel, element (i, k) at a[k * cs + i]  b: (kc, 16) packed micro-panel
// c: (mr, ldc) rows of y  pf: pf_lines cache lines (of 16 floats) to prefetch into L2, one per
// k step: this tile's share of the next B micro-panel.
// mr (1..6) and cs are constants once inlined, so every row count gets its own register-only
// kernel; B past nr is zero padding, computed but not stored. C is only needed after the k
// loop, so its rows are prefetched first: at prefill sizes y does not fit in L2, and its rows
// are N floats apart.
AVX2_INLINE void sgemm_avx2_6x16(const int mr, size_t kc, const float *a, size_t cs,
                                 const float *b, float *c, size_t ldc, size_t nr, int accumulate,
                                 const float *pf, size_t pf_lines) {
    __m256 acc[CK_AVX2_MR][2];
    for (int i = 0; i < mr; i++) {
        acc[i][0] = acc[i][1] = _mm256_setzero_ps();
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + CK_AVX2_NR - 1), _MM_HINT_T0);
    }
    // The k steps with a prefetch, then the rest without: no test left in the plain loop.
    size_t k = 0;
    for (; k < min_size(pf_lines, kc); k++) {
        _mm_prefetch((const char *)(pf + k * CK_AVX2_NR), _MM_HINT_T1);
        step_6x16(mr, a, cs, b, k, acc);
    }
    for (; k < kc; k++) step_6x16(mr, a, cs, b, k, acc);
    if (nr == CK_AVX2_NR) {
        for (int i = 0; i < mr; i++) {
            float *ci = c + i * ldc;
            if (accumulate) {
                acc[i][0] = _mm256_add_ps(acc[i][0], _mm256_loadu_ps(ci));
                acc[i][1] = _mm256_add_ps(acc[i][1], _mm256_loadu_ps(ci + 8));
            }
            _mm256_storeu_ps(ci, acc[i][0]);
            _mm256_storeu_ps(ci + 8, acc[i][1]);
        }
    } else {
        const __m256i m0 = lane_mask((int)nr), m1 = lane_mask((int)nr - 8);
        for (int i = 0; i < mr; i++) {
            float *ci = c + i * ldc;
            if (accumulate) {
                acc[i][0] = _mm256_add_ps(acc[i][0], _mm256_maskload_ps(ci, m0));
                acc[i][1] = _mm256_add_ps(acc[i][1], _mm256_maskload_ps(ci + 8, m1));
            }
            _mm256_maskstore_ps(ci, m0, acc[i][0]);
            _mm256_maskstore_ps(ci + 8, m1, acc[i][1]);
        }
    }
}

// The edge in m: one kernel per row count and micro-panel row stride (CK_TILE_CASES).
AVX2 void ck_sgemm_avx2_6x16(size_t mr, size_t kc, const void *a, size_t ldp, const void *b,
                             float *c, size_t ldc, size_t nr, int accumulate, const void *pf,
                             size_t pf_lines) {
#define KERNEL(R, CS) sgemm_avx2_6x16(R, kc, a, CS, b, c, ldc, nr, accumulate, pf, pf_lines)
    CK_TILE_CASES(CK_AVX2_MR, mr, ldp, KERNEL);
#undef KERNEL
}
