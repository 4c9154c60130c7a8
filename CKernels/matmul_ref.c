// matmul_ref.c — the references and baselines of y = x · W^T (float32 weights, and bfloat16
// weights with x rounded to bfloat16 as the AVX512_BF16 kernel rounds it): one float dot product
// per output over W in its checkpoint layout, no blocking, no intrinsics; and of the quantized
// weights (q8_0, q4_0): int32 block sums, scaled and summed in float in k order.
#include "ckernels.h"
#include "bf16_scalar.h"
#include "quant_internal.h"

#include <string.h>

// x: (M, K)  w: (N, K)  y: (M, N)
// OpenMP over the M x N outputs together, so decode (M = 1) still splits across threads. The
// serial float sum in k order is what the tests' error bounds assume (error <= K eps sum|x w|).
void ck_matmul_f32_ref(const float *x, const float *w, float *y, size_t M, size_t N, size_t K) {
#pragma omp parallel for collapse(2) schedule(static) if (M * N * K >= 65536)
    for (size_t m = 0; m < M; m++) {
        for (size_t n = 0; n < N; n++) {
            const float *xm = x + m * K;
            const float *wn = w + n * K;
            float acc = 0.0f;
            for (size_t k = 0; k < K; k++) acc += xm[k] * wn[k];
            y[m * N + n] = acc;
        }
    }
}

// x: (M, K)  w: (N, K) bfloat16  y: (M, N)
// One float sum per output in k order of bf16(x[k]) * w[k] (each product exact in float).
// OpenMP over the M x N outputs together, so decode (M = 1) still splits across threads.
void ck_matmul_bf16_ref(const float *x, const uint16_t *w, float *y, size_t M, size_t N,
                        size_t K) {
#pragma omp parallel for collapse(2) schedule(static) if (M * N * K >= 65536)
    for (size_t m = 0; m < M; m++) {
        for (size_t n = 0; n < N; n++) {
            const float *xm = x + m * K;
            const uint16_t *wn = w + n * K;
            float acc = 0.0f;
            for (size_t k = 0; k < K; k++)
                acc += ck_f32_from_bf16(ck_bf16_from_f32_ftz(xm[k])) * ck_f32_from_bf16(wn[k]);
            y[m * N + n] = acc;
        }
    }
}

// The int32 sum of one block of quantized x against block u of weight row n, and its scale.
static inline int32_t block_sum_q8_0(const void *blocks, size_t at, const int8_t *qx, float *dw) {
    const struct ck_block_q8_0 *b = (const struct ck_block_q8_0 *)blocks + at;
    int32_t sum = 0;
    for (int j = 0; j < CK_QK; j++) sum += qx[j] * b->q[j];
    *dw = ck_f16_to_f32(b->d);
    return sum;
}
static inline int32_t block_sum_q4_0(const void *blocks, size_t at, const int8_t *qx, float *dw) {
    const struct ck_block_q4_0 *b = (const struct ck_block_q4_0 *)blocks + at;
    int32_t sum = 0;
    for (int j = 0; j < 16; j++)
        sum += qx[j] * ((b->q[j] & 15) - 8) + qx[j + 16] * ((b->q[j] >> 4) - 8);
    *dw = ck_f16_to_f32(b->d);
    return sum;
}

// x rows quantized per block (each thread quantizes the row it is on, into its stack: K bytes
// and K / 32 floats), then for each output the float sum over blocks of dx * dw * (int32 sum of
// qx * qw), in k order. OpenMP over the N outputs of a row, so decode splits across threads.
static inline __attribute__((always_inline)) void matmul_quant_ref(
    const float *x, const void *blocks, float *y, size_t M, size_t N, size_t K,
    int32_t (*block_sum)(const void *, size_t, const int8_t *, float *)) {
    const size_t units = K / CK_QK;
#pragma omp parallel if (M * N * K >= 65536)
    {
        int8_t qx[units * CK_QK + 1];
        float dx[units + 1];
        for (size_t m = 0; m < M; m++) {
            for (size_t u = 0; u < units; u++)
                ck_quantize_block_x(x + m * K + u * CK_QK, qx + u * CK_QK, dx + u);
#pragma omp for schedule(static)
            for (size_t n = 0; n < N; n++) {
                float acc = 0.0f;
                for (size_t u = 0; u < units; u++) {
                    float dw;
                    const int32_t sum = block_sum(blocks, n * units + u, qx + u * CK_QK, &dw);
                    acc += dx[u] * dw * (float)sum;
                }
                y[m * N + n] = acc;
            }
        }
    }
}

void ck_matmul_q8_0_ref(const float *x, const void *blocks, float *y, size_t M, size_t N, size_t K) {
    matmul_quant_ref(x, blocks, y, M, N, K, block_sum_q8_0);
}
void ck_matmul_q4_0_ref(const float *x, const void *blocks, float *y, size_t M, size_t N, size_t K) {
    matmul_quant_ref(x, blocks, y, M, N, K, block_sum_q4_0);
}
