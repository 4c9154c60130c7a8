// quant.c — weights to q8_0 / q4_0 blocks and back (GGUF's block semantics, see ckernels.h),
// and the packing of blocks into the panels the quantized GEMMs read.
#include "ckernels.h"
#include "quant_internal.h"

#include <math.h>

// x rounded to the nearest integer, ties to even, for |x| < 2^22: adding 1.5 * 2^23 leaves no
// fraction bits, so the sum rounds as the default mode does, and the subtraction is exact. The
// same result as nearbyintf here (the quantizers' x is at most 2 x 127 in magnitude) without a
// libm call per weight, so the block loops vectorize: loading a q8_0 model called nearbyintf
// 600 million times. Needs strict float semantics (no -ffast-math, which could fold the two
// additions away), as every build of the package compiles.
static inline float round_even_small(float x) {
    const float magic = 12582912.0f;  // 1.5 * 2^23
    return (x + magic) - magic;
}

// d = max|w| / 127 stored as float16; q from the stored d, so w ~ q * d holds for the d that is
// used; clamped because the float16 rounding of d can make max|w| / d a hair above 127.
static void quantize_block_q8_0(const float *src, void *out) {
    struct ck_block_q8_0 *blk = out;
    float amax = 0.0f;
    for (int j = 0; j < CK_QK; j++) amax = fmaxf(amax, fabsf(src[j]));
    blk->d = ck_f32_to_f16(amax / 127.0f);
    const float d = ck_f16_to_f32(blk->d), id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < CK_QK; j++)
        blk->q[j] = (int8_t)fminf(127.0f, fmaxf(-127.0f, round_even_small(src[j] * id)));
}

// GGUF's rule: d = m / -8 with m the weight of largest magnitude (sign kept), so m itself is
// q = 0, i.e. exactly -8 d, and the other side reaches +7 d (clamped: values near -m lose one
// step). Uses all 16 levels where max|w| / 7 would leave -8 unused.
static void quantize_block_q4_0(const float *src, void *out) {
    struct ck_block_q4_0 *blk = out;
    float m = 0.0f;
    for (int j = 0; j < CK_QK; j++)
        if (fabsf(src[j]) > fabsf(m)) m = src[j];
    blk->d = ck_f32_to_f16(m / -8.0f);
    const float d = ck_f16_to_f32(blk->d), id = d != 0.0f ? 1.0f / d : 0.0f;
    uint8_t q[CK_QK];
    for (int j = 0; j < CK_QK; j++)
        q[j] = (uint8_t)fminf(15.0f, fmaxf(0.0f, round_even_small(src[j] * id) + 8.0f));
    for (int j = 0; j < 16; j++) blk->q[j] = (uint8_t)(q[j] | (q[j + 16] << 4));
}

// w: (N, K) into blocks of block_bytes, row by row, block by block.
static void quantize_rows(const float *w, unsigned char *blocks, size_t N, size_t K,
                          size_t block_bytes, void (*block)(const float *, void *)) {
#pragma omp parallel for schedule(static) if (N * K >= 65536)
    for (size_t i = 0; i < N * (K / CK_QK); i++) block(w + i * CK_QK, blocks + i * block_bytes);
}

void ck_quantize_q8_0(const float *w, void *blocks, size_t N, size_t K) {
    quantize_rows(w, blocks, N, K, CK_Q8_0_BLOCK_BYTES, quantize_block_q8_0);
}
void ck_quantize_q4_0(const float *w, void *blocks, size_t N, size_t K) {
    quantize_rows(w, blocks, N, K, CK_Q4_0_BLOCK_BYTES, quantize_block_q4_0);
}

void ck_dequantize_q8_0(const void *blocks, float *w, size_t N, size_t K) {
    const struct ck_block_q8_0 *in = blocks;
    for (size_t i = 0; i < N * (K / CK_QK); i++) {
        const float d = ck_f16_to_f32(in[i].d);
        for (int j = 0; j < CK_QK; j++) w[i * CK_QK + j] = (float)in[i].q[j] * d;
    }
}

void ck_dequantize_q4_0(const void *blocks, float *w, size_t N, size_t K) {
    const struct ck_block_q4_0 *in = blocks;
    for (size_t i = 0; i < N * (K / CK_QK); i++) {
        const float d = ck_f16_to_f32(in[i].d);
        for (int j = 0; j < 16; j++) {
            w[i * CK_QK + j] = (float)((in[i].q[j] & 15) - 8) * d;
            w[i * CK_QK + j + 16] = (float)((in[i].q[j] >> 4) - 8) * d;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Packing for the blocked driver (gemm.c). One unit = one block of 32 k; a panel's unit row
// holds its 32 columns (CK_Q_NR) as 4-byte groups of k, the order vpdpbusd (and vpmaddubsw)
// consume, then the columns' 32 float16 scales. Zero columns past N have d = 0.
//   q8_0, 1088 bytes: [g = 0..7][c = 0..1][lane 0..15][t = 0..3] = q[16c + lane][4g + t] + 128
//     (unsigned: vpdpbusd multiplies unsigned by signed bytes), then d[0..31].
//   q4_0, 576 bytes: [v = 0..3][c][lane][t] = q[.][4v + t] | q[.][4(v + 4) + t] << 4 (the
//     nibbles unsigned, 0..15), then d[0..31]: one 64-byte load gives two k groups.
// ---------------------------------------------------------------------------------------------

size_t ck_pack_q8_0_size(size_t N, size_t K) {
    return (N + CK_Q_NR - 1) / CK_Q_NR * (K / CK_QK) * CK_Q_NR * CK_Q8_0_BLOCK_BYTES;
}
size_t ck_pack_q4_0_size(size_t N, size_t K) {
    return (N + CK_Q_NR - 1) / CK_Q_NR * (K / CK_QK) * CK_Q_NR * CK_Q4_0_BLOCK_BYTES;
}

// The byte of the layout above holding element k (q8_0) or elements k and k + 16 (q4_0) of
// column j.
static size_t packed_byte(size_t j, size_t k) {
    return (k / 4) * 128 + (j / 16) * 64 + (j % 16) * 4 + k % 4;
}

// Column j of a panel's unit row from one block (or a zero column when blk is NULL): the values
// at dst as the layout above says, the scale at scales[j].
static void pack_column_q8_0(const void *blk_, uint8_t *dst, uint16_t *scales, size_t j) {
    const struct ck_block_q8_0 *blk = blk_;
    scales[j] = blk ? blk->d : 0;
    for (size_t k = 0; k < CK_QK; k++)
        dst[packed_byte(j, k)] = (uint8_t)((blk ? blk->q[k] : 0) + 128);
}

static void pack_column_q4_0(const void *blk_, uint8_t *dst, uint16_t *scales, size_t j) {
    const struct ck_block_q4_0 *blk = blk_;
    scales[j] = blk ? blk->d : 0;
    for (size_t k = 0; k < 16; k++) {  // elements k (low nibble) and k + 16 (high) of the block
        const uint8_t lo = blk ? blk->q[k] & 15 : 0, hi = blk ? blk->q[k] >> 4 : 0;
        dst[packed_byte(j, k)] = (uint8_t)(lo | hi << 4);
    }
}

// Every panel and unit: `values` bytes of the 32 columns' values, then their scales.
static void pack_panels_quant(const unsigned char *blocks, void *packed, size_t N, size_t K,
                              size_t block_bytes, size_t values,
                              void (*column)(const void *, uint8_t *, uint16_t *, size_t)) {
    const size_t units = K / CK_QK, panels = (N + CK_Q_NR - 1) / CK_Q_NR;
    const size_t row = CK_Q_NR * block_bytes;
#pragma omp parallel for schedule(static) if (N * K >= 65536)
    for (size_t p = 0; p < panels; p++) {
        for (size_t u = 0; u < units; u++) {
            uint8_t *dst = (uint8_t *)packed + (p * units + u) * row;
            for (size_t j = 0; j < CK_Q_NR; j++) {
                const size_t n = p * CK_Q_NR + j;
                column(n < N ? blocks + (n * units + u) * block_bytes : NULL, dst,
                       (uint16_t *)(dst + values), j);
            }
        }
    }
}

void ck_pack_q8_0(const void *blocks, void *packed, size_t N, size_t K) {
    pack_panels_quant(blocks, packed, N, K, CK_Q8_0_BLOCK_BYTES, CK_Q_NR * CK_QK, pack_column_q8_0);
}
void ck_pack_q4_0(const void *blocks, void *packed, size_t N, size_t K) {
    pack_panels_quant(blocks, packed, N, K, CK_Q4_0_BLOCK_BYTES, CK_Q_NR * CK_QK / 2, pack_column_q4_0);
}

// ---------------------------------------------------------------------------------------------
// One output row read back out of a packed matrix: the embedding lookup of a tied model whose
// lm_head holds the table in its matmul layout (so the table is not held twice). Scalar: a
// lookup reads K values per token, nothing next to the matmuls that follow.
// ---------------------------------------------------------------------------------------------

// Row n of either format: its panel holds K / 32 unit rows; column j = n % 32 of each has its
// values where packed_byte says and its float16 scale after the unit's `values` bytes.
static void packed_row(const void *packed, size_t n, size_t K, float *dst, const int q4) {
    const size_t row = CK_Q_NR * (q4 ? CK_Q4_0_BLOCK_BYTES : CK_Q8_0_BLOCK_BYTES);
    const size_t values = q4 ? CK_Q_NR * CK_QK / 2 : CK_Q_NR * CK_QK, j = n % CK_Q_NR;
    const uint8_t *panel = (const uint8_t *)packed + n / CK_Q_NR * (K / CK_QK) * row;
    for (size_t u = 0; u < K / CK_QK; u++) {
        const uint8_t *unit = panel + u * row;
        uint16_t h;
        memcpy(&h, unit + values + 2 * j, sizeof h);
        const float d = ck_f16_to_f32(h);
        float *out = dst + u * CK_QK;
        for (size_t k = 0; k < (q4 ? 16 : CK_QK); k++) {
            const uint8_t b = unit[packed_byte(j, k)];
            if (q4) {
                out[k] = (float)((int)(b & 15) - 8) * d;
                out[k + 16] = (float)((int)(b >> 4) - 8) * d;
            } else {
                out[k] = (float)((int)b - 128) * d;
            }
        }
    }
}

void ck_packed_row_q8_0(const void *packed, size_t n, size_t K, float *dst) {
    packed_row(packed, n, K, dst, 0);
}
void ck_packed_row_q4_0(const void *packed, size_t n, size_t K, float *dst) {
    packed_row(packed, n, K, dst, 1);
}
