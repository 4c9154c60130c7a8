// quant_internal.h — private to CKernels: the q8_0 / q4_0 block layouts and the scalar pieces
// every quantized path shares (float16 scales, the per-block quantization of x), so the
// reference (matmul_ref.c), the packers and the SIMD kernels agree on each bit.
#ifndef CK_QUANT_INTERNAL_H
#define CK_QUANT_INTERNAL_H

#include "bf16_scalar.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

// GGUF's block layouts: the float16 scale first, then the 32 values.
struct ck_block_q8_0 {
    uint16_t d;
    int8_t q[32];
};
struct ck_block_q4_0 {
    uint16_t d;
    uint8_t q[16];  // element j: low nibble of q[j]; element j + 16: high nibble of q[j]
};
_Static_assert(sizeof(struct ck_block_q8_0) == 34, "q8_0 block is 34 bytes");
_Static_assert(sizeof(struct ck_block_q4_0) == 18, "q4_0 block is 18 bytes");

// Packed x of the quantized GEMMs, per block of K ("unit") of a micro-panel of ldp rows:
// ldp x 32 int8 values, then ldp float scales d, then ldp floats e = d * offset * sum(q), the
// term that removes the unsigned offset vpdpbusd needs on the weight side (128 for q8_0, 8 for
// q4_0's nibbles): x_block · w_block = dw * (d * sum(q * (w_q + offset)) - e).
#define CK_QA_UNIT_BYTES 40

// Round to nearest even; scales are finite and non-negative or negative (q4_0), far below the
// float16 maximum for any sane weight (|d| <= 65504 means |w| <= 8.3e6), saturating above.
static inline uint16_t ck_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    const uint32_t sign = (u >> 16) & 0x8000;
    const float a = fabsf(f);
    if (!(a < 65520.0f)) return (uint16_t)(sign | 0x7bff);  // largest finite
    if (a < 6.103515625e-05f) {  // subnormal half: multiples of 2^-24, round by the FPU
        return (uint16_t)(sign | (uint32_t)nearbyintf(a * 16777216.0f));
    }
    uint32_t v = u & 0x7fffffff;
    v += 0xfff + ((v >> 13) & 1);  // round the 13 dropped bits to nearest even
    return (uint16_t)(sign | ((v >> 13) - (112 << 10)));
}

// One block of x: q = nearest(x * 127 / max|x|), d = max|x| / 127; returns sum(q). The SIMD
// packers compute the same three float operations, so they produce the same bytes.
static inline int ck_quantize_block_x(const float *x, int8_t *q, float *d) {
    float amax = 0.0f;
    for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
    *d = amax / 127.0f;
    const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
    int sum = 0;
    for (int j = 0; j < 32; j++) {
        q[j] = (int8_t)nearbyintf(x[j] * id);
        sum += q[j];
    }
    return sum;
}

#endif  // CK_QUANT_INTERNAL_H
