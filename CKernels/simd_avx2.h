// simd_avx2.h — helpers shared between the AVX2 kernel files; not part of the public ABI.
#ifndef CKERNELS_SIMD_AVX2_H
#define CKERNELS_SIMD_AVX2_H

#include <immintrin.h>
#include <stddef.h>

// The step shared by the row softmax (activation.c) and the online softmax of streaming attention:
// x[i] <- exp(x[i] - shift) in place; returns the sum of the new x.   x: (n)
float ck_exp_shift_sum_f32_avx2(float *x, size_t n, float shift);

// Lane mask selecting the first `rem` (0..8) lanes, for the masked tail loads and stores.
static inline __attribute__((always_inline, target("avx2,fma"))) __m256i tail_mask(size_t rem) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)rem), lane);
}

// Horizontal sum and maximum of the 8 lanes.
static inline __attribute__((always_inline, target("avx2,fma"))) float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline __attribute__((always_inline, target("avx2,fma"))) float hmax256(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// ---------------------------------------------------------------------------------------------
// exp(x) for 8 floats, relative error about 1e-7 over the whole float range.
// x = n ln2 + r with |r| <= ln2/2 (Cody-Waite: ln2 split in a part whose product with any n in
// range is exact, and a correction); e^r from Cephes' degree-5 minimax polynomial; then scaled by
// 2^n. 2^n is applied as two factors 2^(n/2) * 2^(n - n/2), each a normal float, so results
// down to the subnormal range are right and anything below half the smallest subnormal
// (x < about -103.97, including -inf used as a mask) is exactly +0. x is clamped to [-104, 89]:
// above 88.72 the result overflows to +inf as it should. NaN stays NaN: max/min return their
// second operand when either is NaN.
static inline __attribute__((always_inline, target("avx2,fma"))) __m256 exp256(__m256 x) {
    x = _mm256_min_ps(_mm256_set1_ps(89.0f), _mm256_max_ps(_mm256_set1_ps(-104.0f), x));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);

    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));

    const __m256i ni = _mm256_cvtps_epi32(n);
    const __m256i n1 = _mm256_srai_epi32(ni, 1);
    const __m256i n2 = _mm256_sub_epi32(ni, n1);
    const __m256i bias = _mm256_set1_epi32(127);
    const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

#endif
