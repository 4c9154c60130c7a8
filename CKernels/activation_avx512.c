// activation_avx512.c — SwiGLU's silu(gate) * up with AVX-512F: activation.c's AVX2 kernel with
// 16-lane vectors and masked tails, the same formula and exp (exp512, simd_avx512.h), so its
// results are the AVX2 kernel's bit for bit wherever exp's result is a normal float.
#include "ckernels.h"
#include "omp_internal.h"
#include "simd_avx512.h"

#include <immintrin.h>

// As activation.c: below this many elements one thread; CHUNK elements per OpenMP unit.
#define PARALLEL_MIN 32768
#define CHUNK 4096

#define AVX512 __attribute__((target("avx512f")))
#define AVX512_INLINE static inline __attribute__((always_inline, target("avx512f")))

// ck_silu_mul_f32_ref's formula: e = exp(-|g|), sigmoid = (g < 0 ? e : 1) / (1 + e), the sign
// bit of g picking the numerator as vblendvps does in the AVX2 kernel.
AVX512_INLINE __m512 silu_mul512(__m512 g, __m512 u) {
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    const __m512 e = exp512(_mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(g), sign)));
    const __mmask16 negative = _mm512_test_epi32_mask(_mm512_castps_si512(g), sign);
    const __m512 num = _mm512_mask_mov_ps(_mm512_set1_ps(1.0f), negative, e);
    const __m512 sigmoid = _mm512_div_ps(num, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
    return _mm512_mul_ps(_mm512_mul_ps(g, sigmoid), u);
}

// Elements [i0, i1) of silu_mul.
AVX512 static void silu_mul_range_avx512(const float *gate, const float *up, float *out,
                                         size_t i0, size_t i1) {
    size_t i = i0;
    for (; i + 16 <= i1; i += 16)
        _mm512_storeu_ps(out + i, silu_mul512(_mm512_loadu_ps(gate + i), _mm512_loadu_ps(up + i)));
    if (i < i1) {
        const __mmask16 m = (__mmask16)((1u << (i1 - i)) - 1u);
        _mm512_mask_storeu_ps(out + i, m, silu_mul512(_mm512_maskz_loadu_ps(m, gate + i),
                                                      _mm512_maskz_loadu_ps(m, up + i)));
    }
}

// gate, up, out: (n); out may alias gate or up. OpenMP's outlined bodies do not inherit the
// target attribute, so the parallel region only splits the range.
void ck_silu_mul_f32_avx512(const float *gate, const float *up, float *out, size_t n) {
    const size_t chunks = (n + CHUNK - 1) / CHUNK;
    CK_PARALLEL_IF(n >= PARALLEL_MIN, "omp parallel for schedule(static)",
        for (size_t c = 0; c < chunks; c++) {
            const size_t i0 = c * CHUNK;
            silu_mul_range_avx512(gate, up, out, i0, i0 + CHUNK < n ? i0 + CHUNK : n);
        });
}

// gate_up: (rows, 2n), each row [gate (n) | up (n)]  out: (rows, n). OpenMP over (row, chunk).
void ck_swiglu_f32_avx512(const float *gate_up, float *out, size_t rows, size_t n) {
    const size_t chunks = (n + CHUNK - 1) / CHUNK;
    CK_PARALLEL_IF(rows * n >= PARALLEL_MIN, "omp parallel for collapse(2) schedule(static)",
        for (size_t r = 0; r < rows; r++) {
            for (size_t c = 0; c < chunks; c++) {
                const float *g = gate_up + r * 2 * n;
                const size_t i0 = c * CHUNK;
                silu_mul_range_avx512(g, g + n, out + r * n, i0, i0 + CHUNK < n ? i0 + CHUNK : n);
            }
        });
}
