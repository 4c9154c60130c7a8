// simd_avx512.h — AVX-512 helpers shared by the kernel files: the vector exp of 16 floats.
#ifndef CK_SIMD_AVX512_H
#define CK_SIMD_AVX512_H

#include <immintrin.h>

// exp(x) for 16 floats x in [-104, 89]: the reduction and polynomial of exp256 in simd_avx2.h,
// then vscalefps multiplies by 2^n with correct gradual underflow.
static inline __attribute__((always_inline, target("avx512f"))) __m512 exp512_in_range(__m512 x) {
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

// exp(x) for 16 floats, x clamped to [-104, 89], so -inf (a masked score) gives exactly +0.
static inline __attribute__((always_inline, target("avx512f"))) __m512 exp512(__m512 x) {
    return exp512_in_range(
        _mm512_min_ps(_mm512_set1_ps(89.0f), _mm512_max_ps(_mm512_set1_ps(-104.0f), x)));
}

#endif
