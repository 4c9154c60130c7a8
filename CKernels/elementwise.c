// elementwise.c — RMSNorm, rotary embedding, residual add and bias add: plain C references and
// their AVX2+FMA versions.
#include "ckernels.h"
#include "omp_internal.h"
#include "simd_avx2.h"

#include <immintrin.h>
#include <math.h>
#include <omp.h>

// Below this many elements a parallel region costs more than it saves (decode-sized tensors).
#define PARALLEL_MIN 32768
// Elements per OpenMP work unit of the flat AVX2 loops: a multiple of 8, so only the last unit
// has a tail.
#define CHUNK 4096

#define AVX2 __attribute__((target("avx2,fma")))
#define AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma")))

// tail_mask and hsum256 live in simd_avx2.h.

// OpenMP's outlined parallel bodies do not inherit the target attribute, so every AVX2 kernel
// below only splits its range in the parallel region and calls an AVX2 helper per unit.

// ---------------------------------------------------------------------------------------------
// RMSNorm
// ---------------------------------------------------------------------------------------------

// One row of dim floats, as Hugging Face's Qwen3RMSNorm does in float32: var = mean(x^2),
// y = w * (x * rsqrt(var + eps)). The sum of squares is accumulated in double, which stands in
// for torch's pairwise float sum. Each y[i] is written after every read of x[i], so y == x works.
static void rmsnorm_row_ref(const float *x, const float *w, float *y, size_t dim, float eps) {
    double ss = 0.0;
    for (size_t i = 0; i < dim; i++) ss += (double)x[i] * x[i];
    const float inv = 1.0f / sqrtf((float)(ss / (double)dim) + eps);
    for (size_t i = 0; i < dim; i++) y[i] = w[i] * (x[i] * inv);
}

// One row. Four float accumulators (32 partial sums) keep the FMA pipes busy and the rounding
// error of the sum of squares well under that of a single serial float sum.
AVX2 static void rmsnorm_row_avx2(const float *x, const float *w, float *y, size_t dim,
                                  float eps) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        const __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
        const __m256 c = _mm256_loadu_ps(x + i + 16), d = _mm256_loadu_ps(x + i + 24);
        s0 = _mm256_fmadd_ps(a, a, s0);
        s1 = _mm256_fmadd_ps(b, b, s1);
        s2 = _mm256_fmadd_ps(c, c, s2);
        s3 = _mm256_fmadd_ps(d, d, s3);
    }
    for (; i + 8 <= dim; i += 8) {
        const __m256 a = _mm256_loadu_ps(x + i);
        s0 = _mm256_fmadd_ps(a, a, s0);
    }
    if (i < dim) {
        const __m256 a = _mm256_maskload_ps(x + i, tail_mask(dim - i));
        s1 = _mm256_fmadd_ps(a, a, s1);
    }
    const float ss = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    const __m256 inv = _mm256_set1_ps(1.0f / sqrtf(ss / (float)dim + eps));
    for (i = 0; i + 8 <= dim; i += 8) {
        const __m256 xn = _mm256_mul_ps(_mm256_loadu_ps(x + i), inv);
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(w + i), xn));
    }
    if (i < dim) {
        const __m256i m = tail_mask(dim - i);
        const __m256 xn = _mm256_mul_ps(_mm256_maskload_ps(x + i, m), inv);
        _mm256_maskstore_ps(y + i, m, _mm256_mul_ps(_mm256_maskload_ps(w + i, m), xn));
    }
}

typedef void (*rmsnorm_row_fn)(const float *x, const float *w, float *y, size_t dim, float eps);

// The rows of one kernel call: H heads of D floats for each of T tokens, token t's heads
// starting at x + t * ldx (a row of the fused q/k/v projection, or of a plain (rows, dim) tensor
// with H = 1). OpenMP over the T x H rows; the row function is the ISA's.
static void rmsnorm_heads(rmsnorm_row_fn row, const float *x, size_t ldx, const float *w, float *y,
                          size_t T, size_t H, size_t D, float eps) {
    CK_PARALLEL_IF(T * H > 1 && T * H * D >= PARALLEL_MIN,
                   "omp parallel for collapse(2) schedule(static)",
        for (size_t t = 0; t < T; t++)
            for (size_t h = 0; h < H; h++)
                row(x + t * ldx + h * D, w, y + (t * H + h) * D, D, eps););
}

void ck_rmsnorm_heads_f32_ref(const float *x, size_t ldx, const float *w, float *y, size_t T,
                              size_t H, size_t D, float eps) {
    rmsnorm_heads(rmsnorm_row_ref, x, ldx, w, y, T, H, D, eps);
}

void ck_rmsnorm_heads_f32_avx2(const float *x, size_t ldx, const float *w, float *y, size_t T,
                               size_t H, size_t D, float eps) {
    rmsnorm_heads(rmsnorm_row_avx2, x, ldx, w, y, T, H, D, eps);
}

// x, y: (rows, dim), may alias  w: (dim)
void ck_rmsnorm_f32_ref(const float *x, const float *w, float *y, size_t rows, size_t dim,
                        float eps) {
    ck_rmsnorm_heads_f32_ref(x, dim, w, y, rows, 1, dim, eps);
}

void ck_rmsnorm_f32_avx2(const float *x, const float *w, float *y, size_t rows, size_t dim,
                         float eps) {
    ck_rmsnorm_heads_f32_avx2(x, dim, w, y, rows, 1, dim, eps);
}

// ---------------------------------------------------------------------------------------------
// Rotary embedding (rotate-half layout), in place
// ---------------------------------------------------------------------------------------------

// x: (T, H, D)  positions: (T)  cos_table, sin_table: (max_pos, D/2)   D even
void ck_rope_f32_ref(float *x, size_t T, size_t H, size_t D, const int32_t *positions,
                     const float *cos_table, const float *sin_table) {
    const size_t half = D / 2;
    CK_PARALLEL_IF(T * H * D >= PARALLEL_MIN, "omp parallel for collapse(2) schedule(static)",
        for (size_t t = 0; t < T; t++) {
            for (size_t h = 0; h < H; h++) {
                float *xh = x + (t * H + h) * D;
                const float *c = cos_table + (size_t)positions[t] * half;
                const float *s = sin_table + (size_t)positions[t] * half;
                for (size_t i = 0; i < half; i++) {
                    const float a = xh[i], b = xh[i + half];
                    xh[i] = a * c[i] - b * s[i];
                    xh[i + half] = b * c[i] + a * s[i];
                }
            }
        });
}

// One head vector xh: (D), c, s: (D/2).
AVX2 static void rope_head_avx2(float *xh, size_t half, const float *c, const float *s) {
    size_t i = 0;
    for (; i + 8 <= half; i += 8) {
        const __m256 a = _mm256_loadu_ps(xh + i), b = _mm256_loadu_ps(xh + i + half);
        const __m256 vc = _mm256_loadu_ps(c + i), vs = _mm256_loadu_ps(s + i);
        _mm256_storeu_ps(xh + i, _mm256_fmsub_ps(a, vc, _mm256_mul_ps(b, vs)));
        _mm256_storeu_ps(xh + i + half, _mm256_fmadd_ps(b, vc, _mm256_mul_ps(a, vs)));
    }
    if (i < half) {
        const __m256i m = tail_mask(half - i);
        const __m256 a = _mm256_maskload_ps(xh + i, m), b = _mm256_maskload_ps(xh + i + half, m);
        const __m256 vc = _mm256_maskload_ps(c + i, m), vs = _mm256_maskload_ps(s + i, m);
        _mm256_maskstore_ps(xh + i, m, _mm256_fmsub_ps(a, vc, _mm256_mul_ps(b, vs)));
        _mm256_maskstore_ps(xh + i + half, m, _mm256_fmadd_ps(b, vc, _mm256_mul_ps(a, vs)));
    }
}

// x: (T, H, D)  positions: (T)  cos_table, sin_table: (max_pos, D/2)   D even
void ck_rope_f32_avx2(float *x, size_t T, size_t H, size_t D, const int32_t *positions,
                      const float *cos_table, const float *sin_table) {
    const size_t half = D / 2;
    CK_PARALLEL_IF(T * H * D >= PARALLEL_MIN, "omp parallel for collapse(2) schedule(static)",
        for (size_t t = 0; t < T; t++) {
            for (size_t h = 0; h < H; h++) {
                const size_t off = (size_t)positions[t] * half;
                rope_head_avx2(x + (t * H + h) * D, half, cos_table + off, sin_table + off);
            }
        });
}

// ---------------------------------------------------------------------------------------------
// Residual add and bias add
// ---------------------------------------------------------------------------------------------

// y, x: (n)
void ck_add_f32_ref(float *y, const float *x, size_t n) {
    CK_PARALLEL_IF(n >= PARALLEL_MIN, "omp parallel for schedule(static)",
        for (size_t i = 0; i < n; i++) y[i] += x[i];);
}

// Elements [i0, i1) of y += x.
AVX2 static void add_range_avx2(float *y, const float *x, size_t i0, size_t i1) {
    size_t i = i0;
    for (; i + 8 <= i1; i += 8)
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(x + i)));
    if (i < i1) {
        const __m256i m = tail_mask(i1 - i);
        _mm256_maskstore_ps(y + i, m, _mm256_add_ps(_mm256_maskload_ps(y + i, m),
                                                    _mm256_maskload_ps(x + i, m)));
    }
}

// y, x: (n)
void ck_add_f32_avx2(float *y, const float *x, size_t n) {
    const size_t chunks = (n + CHUNK - 1) / CHUNK;
    CK_PARALLEL_IF(n >= PARALLEL_MIN, "omp parallel for schedule(static)",
        for (size_t c = 0; c < chunks; c++) {
            const size_t i0 = c * CHUNK;
            add_range_avx2(y, x, i0, i0 + CHUNK < n ? i0 + CHUNK : n);
        });
}

// y: (M, N)  bias: (N). Plain C for every ISA: the compiler vectorises the inner loop, and it is
// one pass over y, bound by memory.
void ck_add_bias_f32(float *y, const float *bias, size_t M, size_t N) {
    CK_PARALLEL_IF(M > 1 && M * N >= PARALLEL_MIN, "omp parallel for schedule(static)",
        for (size_t m = 0; m < M; m++) {
            float *ym = y + m * N;
            for (size_t n = 0; n < N; n++) ym[n] += bias[n];
        });
}
