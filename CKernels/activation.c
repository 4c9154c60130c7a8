// activation.c — the ops built on exp: SwiGLU's silu(gate) * up and the row softmax, each as a
// plain C reference and an AVX2+FMA version, plus the vector exp they (and attention.c) share.
#include "ckernels.h"
#include "omp_internal.h"
#include "simd_avx2.h"

#include <immintrin.h>
#include <math.h>
#include <omp.h>

// Below this many elements a parallel region costs more than it saves (decode-sized vectors).
#define PARALLEL_MIN 32768
// Elements per OpenMP work unit for the AVX2 loops: a multiple of 8, so only the last unit of a
// vector has a tail.
#define CHUNK 4096

#define AVX2 __attribute__((target("avx2,fma")))
#define AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma")))

// ---------------------------------------------------------------------------------------------
// Vector exp
// ---------------------------------------------------------------------------------------------

// exp256 (exp of 8 floats) lives in simd_avx2.h, shared with the attention kernels.


// tail_mask, hsum256 and hmax256 live in simd_avx2.h.


AVX2 float ck_exp_shift_sum_f32_avx2(float *x, size_t n, float shift) {
    const __m256 vs = _mm256_set1_ps(shift);
    __m256 sum = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), vs));
        _mm256_storeu_ps(x + i, e);
        sum = _mm256_add_ps(sum, e);
    }
    if (i < n) {
        const __m256i m = tail_mask(n - i);
        // Masked-off lanes load 0; exp(0 - shift) is then zeroed so it adds nothing.
        __m256 e = exp256(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), vs));
        e = _mm256_and_ps(e, _mm256_castsi256_ps(m));
        _mm256_maskstore_ps(x + i, m, e);
        sum = _mm256_add_ps(sum, e);
    }
    return hsum256(sum);
}

// ---------------------------------------------------------------------------------------------
// SwiGLU: out = silu(gate) * up
// ---------------------------------------------------------------------------------------------

// gate, up, out: (n); out may alias gate or up (each element is read before it is written).
// silu(g) = g * sigmoid(g), with sigmoid from e = exp(-|g|) <= 1: 1 / (1 + e) for g >= 0 and
// e / (1 + e) for g < 0. Nothing overflows (g / (1 + exp(-g)) would flush silu to 0 below
// g = -88.7 while it is still a normal float down to about -92), and no finite g gives NaN.
void ck_silu_mul_f32_ref(const float *gate, const float *up, float *out, size_t n) {
    CK_PARALLEL_IF(n >= PARALLEL_MIN, "omp parallel for schedule(static)",
        for (size_t i = 0; i < n; i++) {
            const float g = gate[i], e = expf(-fabsf(g));
            out[i] = g * ((g >= 0.0f ? 1.0f : e) / (1.0f + e)) * up[i];
        });
}

// The reference's formula; -|g| sets the sign bit, and the sign bit of g picks the numerator.
AVX2_INLINE __m256 silu_mul256(__m256 g, __m256 u) {
    const __m256 e = exp256(_mm256_or_ps(g, _mm256_set1_ps(-0.0f)));
    const __m256 num = _mm256_blendv_ps(_mm256_set1_ps(1.0f), e, g);
    const __m256 sigmoid = _mm256_div_ps(num, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
    return _mm256_mul_ps(_mm256_mul_ps(g, sigmoid), u);
}

// Elements [i0, i1) of silu_mul.
AVX2 static void silu_mul_range_avx2(const float *gate, const float *up, float *out, size_t i0,
                                     size_t i1) {
    size_t i = i0;
    for (; i + 8 <= i1; i += 8)
        _mm256_storeu_ps(out + i, silu_mul256(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
    if (i < i1) {
        const __m256i m = tail_mask(i1 - i);
        _mm256_maskstore_ps(out + i, m, silu_mul256(_mm256_maskload_ps(gate + i, m),
                                                    _mm256_maskload_ps(up + i, m)));
    }
}

// OpenMP's outlined parallel bodies do not inherit the target attribute, so every AVX2 kernel
// below only splits its range in the parallel region and calls an AVX2 helper per unit.
void ck_silu_mul_f32_avx2(const float *gate, const float *up, float *out, size_t n) {
    const size_t chunks = (n + CHUNK - 1) / CHUNK;
    CK_PARALLEL_IF(n >= PARALLEL_MIN, "omp parallel for schedule(static)",
        for (size_t c = 0; c < chunks; c++) {
            const size_t i0 = c * CHUNK;
            silu_mul_range_avx2(gate, up, out, i0, i0 + CHUNK < n ? i0 + CHUNK : n);
        });
}

// gate_up: (rows, 2n), each row [gate (n) | up (n)] as the fused gate/up projection writes it
// out: (rows, n) = silu(gate) * up, row by row.
void ck_swiglu_f32_ref(const float *gate_up, float *out, size_t rows, size_t n) {
    for (size_t r = 0; r < rows; r++)
        ck_silu_mul_f32_ref(gate_up + r * 2 * n, gate_up + r * 2 * n + n, out + r * n, n);
}

// OpenMP over (row, chunk) units, so decode (one row) still splits when n is large.
void ck_swiglu_f32_avx2(const float *gate_up, float *out, size_t rows, size_t n) {
    const size_t chunks = (n + CHUNK - 1) / CHUNK;
    CK_PARALLEL_IF(rows * n >= PARALLEL_MIN, "omp parallel for collapse(2) schedule(static)",
        for (size_t r = 0; r < rows; r++) {
            for (size_t c = 0; c < chunks; c++) {
                const float *g = gate_up + r * 2 * n;
                const size_t i0 = c * CHUNK;
                silu_mul_range_avx2(g, g + n, out + r * n, i0, i0 + CHUNK < n ? i0 + CHUNK : n);
            }
        });
}

// ---------------------------------------------------------------------------------------------
// Softmax of one row, in place
// ---------------------------------------------------------------------------------------------

// x: (n), n >= 1. Subtracting the row maximum keeps exp <= 1, so large-magnitude logits neither
// overflow nor lose the largest terms; -inf entries (masks) become exactly 0.
void ck_softmax_f32_ref(float *x, size_t n) {
    float max = x[0];
    for (size_t i = 1; i < n; i++)
        if (x[i] > max) max = x[i];
    float sum = 0.0f;
    for (size_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    const float inv = 1.0f / sum;
    for (size_t i = 0; i < n; i++) x[i] *= inv;
}

// x: (n), n >= 1. Single-threaded: a row is at most a context length long, and the callers
// (attention, sampling) already run one row per thread.
AVX2 void ck_softmax_f32_avx2(float *x, size_t n) {
    __m256 vmax = _mm256_set1_ps(-INFINITY);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(x + i));
    if (i < n) {
        const __m256i m = tail_mask(n - i);
        const __m256 v = _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), _mm256_maskload_ps(x + i, m),
                                          _mm256_castsi256_ps(m));
        vmax = _mm256_max_ps(vmax, v);
    }
    const float sum = ck_exp_shift_sum_f32_avx2(x, n, hmax256(vmax));
    const __m256 inv = _mm256_set1_ps(1.0f / sum);
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
    if (i < n) {
        const __m256i m = tail_mask(n - i);
        _mm256_maskstore_ps(x + i, m, _mm256_mul_ps(_mm256_maskload_ps(x + i, m), inv));
    }
}
