// gemm_q8_avx512.c — the quantized-weight AVX512_VNNI micro-kernels q8gemm_avx512_6x32 (q8_0)
// and q4gemm_avx512_6x32 (q4_0) for the driver in gemm.c: 32-column panels, K in blocks of 32,
// x packed by ck_pack_a_q8_0 / ck_pack_a_q4_0 (gemm_q8_avx2.c). References: ck_matmul_q*_0_ref.
//
// vpdpbusd multiplies 4 unsigned bytes by 4 signed bytes per int32 lane and adds the four
// products to the lane, without saturation: 64 multiply-adds per instruction, twice vdpbf16ps.
// W is the unsigned side (q8_0 stored as q + 128, q4_0 as its nibbles 0..15), x the signed side;
// the offset times sum(q_x) is taken off in float once per block: the pack of x stores
// e = d_x * offset * sum(q_x), and each block adds (d_x * S - e) * d_w to the float accumulators
// (one vcvtdq2ps, one vfmsub and one vfmadd per 16 outputs and row). The int32 sums S are exact
// (|S| <= 32 x 255 x 127 < 2^24, so they also convert to float exactly).
//
// MR x NR = 6 x 32: 12 int32 block sums and 12 float accumulators, 2 vectors of W and a broadcast
// of x: 27 of the 32 zmm registers. 12 independent vpdpbusd chains cover its latency (5) on
// Zen 4's one 512-bit issue per cycle; per k group, 12 vpdpbusd need 2 loads of W and 6
// broadcasts of x. The float epilogue costs 3 instructions per 8 vpdpbusd (q8_0).
#include "ckernels.h"
#include "gemm_internal.h"
#include "quant_internal.h"

#include <immintrin.h>
#include <string.h>

#define VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,f16c")))
#define VNNI_INLINE \
    static inline __attribute__((always_inline, target("avx512f,avx512bw,avx512vl,avx512vnni,f16c")))

static inline __mmask16 lane_mask(size_t nr, size_t v) {
    return nr >= 16 * v + 16 ? 0xffff : nr <= 16 * v ? 0 : (__mmask16)((1u << (nr - 16 * v)) - 1);
}

VNNI_INLINE __m512i broadcast_x(const unsigned char *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

// C[0:mr, 0:nr] = (accumulate ? C : 0) + A[0:mr, 0:32ku] · B[0:32ku, 0:32]
// a: unit u of row i at a + u * cs * 40 + i * 32 (scales after the cs rows)
// b: (ku, 1088 or 576 bytes) packed units  c: (mr, ldc) rows of y
// pf: pf_lines lines of the next B micro-panel, spread over the units, at most three per unit
// (the driver's shares are within that from 6 row tiles per row block up).
// The float accumulators start from zero and C is added at the end, as the float kernels do: each
// K block's sum is added to C. The rows of C are N floats apart, a multiple of 4 KiB for every
// model shape, so all of a panel's C tiles fall in the same two L1 sets (and a few L2 sets): by
// the next K block a tile's C has left L1, and loaded first, it held up the first block's
// epilogue for an L2/L3 miss (a prefetch of it is evicted before use for the same reason).
// Loaded last, the miss overlaps the next tile's vpdpbusd. The sums then depend on KC (a fixed
// constant, the same for every path), not on the tiling, M or the threads (see gemm.c, gemm).
VNNI_INLINE void qgemm_avx512_6x32(const int mr, const int q4, size_t ku, const unsigned char *a,
                                   size_t cs, const unsigned char *b, float *c, size_t ldc,
                                   size_t nr, int accumulate, const unsigned char *pf,
                                   size_t pf_lines) {
    const size_t row_bytes = q4 ? CK_Q_NR * CK_Q4_0_BLOCK_BYTES : CK_Q_NR * CK_Q8_0_BLOCK_BYTES;
    const size_t pf_per_unit = (pf_lines + ku - 1) / (ku ? ku : 1);
    const size_t pf_last = pf_lines ? pf_lines - 1 : 0;
    const char *pfb = pf_lines ? (const char *)pf : (const char *)b;  // b: a harmless line
    const __mmask16 m0 = lane_mask(nr, 0), m1 = lane_mask(nr, 1);
    const __m512i low = _mm512_set1_epi8(0x0f);
    __m512 acc[6][2];
    for (int i = 0; i < mr; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (size_t u = 0; u < ku; u++) {
        const unsigned char *bu = b + u * row_bytes, *au = a + u * cs * CK_QA_UNIT_BYTES;
        // Three prefetches per unit, their lines clamped to the share's last (without a loop or a
        // branch here, clang keeps the float accumulators in place; with one it copied all 12 back
        // every unit, and the tile ran 0.8% slower at M = 512).
        const size_t l0 = u * pf_per_unit;
        _mm_prefetch(pfb + (l0 < pf_last ? l0 : pf_last) * 64, _MM_HINT_T1);
        _mm_prefetch(pfb + (l0 + 1 < pf_last ? l0 + 1 : pf_last) * 64, _MM_HINT_T1);
        _mm_prefetch(pfb + (l0 + 2 < pf_last ? l0 + 2 : pf_last) * 64, _MM_HINT_T1);
        __m512i s[6][2];
        for (int i = 0; i < mr; i++) s[i][0] = s[i][1] = _mm512_setzero_si512();
        if (q4) {
            for (int g = 0; g < 4; g++) {  // k groups g (low nibbles) and g + 4 (high nibbles)
                const __m512i r0 = _mm512_loadu_si512(bu + g * 128);
                const __m512i r1 = _mm512_loadu_si512(bu + g * 128 + 64);
                const __m512i lo0 = _mm512_and_si512(r0, low), lo1 = _mm512_and_si512(r1, low);
                const __m512i hi0 = _mm512_and_si512(_mm512_srli_epi16(r0, 4), low);
                const __m512i hi1 = _mm512_and_si512(_mm512_srli_epi16(r1, 4), low);
                for (int i = 0; i < mr; i++) {
                    const __m512i xl = broadcast_x(au + i * 32 + 4 * g);
                    const __m512i xh = broadcast_x(au + i * 32 + 4 * (g + 4));
                    s[i][0] = _mm512_dpbusd_epi32(s[i][0], lo0, xl);
                    s[i][1] = _mm512_dpbusd_epi32(s[i][1], lo1, xl);
                    s[i][0] = _mm512_dpbusd_epi32(s[i][0], hi0, xh);
                    s[i][1] = _mm512_dpbusd_epi32(s[i][1], hi1, xh);
                }
            }
        } else {
            for (int g = 0; g < 8; g++) {
                const __m512i w0 = _mm512_loadu_si512(bu + g * 128);
                const __m512i w1 = _mm512_loadu_si512(bu + g * 128 + 64);
                for (int i = 0; i < mr; i++) {
                    const __m512i x = broadcast_x(au + i * 32 + 4 * g);
                    s[i][0] = _mm512_dpbusd_epi32(s[i][0], w0, x);
                    s[i][1] = _mm512_dpbusd_epi32(s[i][1], w1, x);
                }
            }
        }
        const unsigned char *scales = bu + (q4 ? 512 : 1024);
        const __m512 dw0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)scales));
        const __m512 dw1 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(scales + 32)));
        const float *da = (const float *)(au + cs * 32), *ea = da + cs;
        for (int i = 0; i < mr; i++) {
            const __m512 d = _mm512_set1_ps(da[i]), e = _mm512_set1_ps(ea[i]);
            const __m512 t0 = _mm512_fmsub_ps(_mm512_cvtepi32_ps(s[i][0]), d, e);
            const __m512 t1 = _mm512_fmsub_ps(_mm512_cvtepi32_ps(s[i][1]), d, e);
            acc[i][0] = _mm512_fmadd_ps(t0, dw0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(t1, dw1, acc[i][1]);
        }
    }
    for (int i = 0; i < mr; i++) {
        if (accumulate) {
            acc[i][0] = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, c + i * ldc), acc[i][0]);
            acc[i][1] = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, c + i * ldc + 16), acc[i][1]);
        }
        _mm512_mask_storeu_ps(c + i * ldc, m0, acc[i][0]);
        _mm512_mask_storeu_ps(c + i * ldc + 16, m1, acc[i][1]);
    }
}

VNNI void ck_q8gemm_avx512_6x32(size_t mr, size_t ku, const void *a, size_t ldp, const void *b,
                                float *c, size_t ldc, size_t nr, int accumulate, const void *pf,
                                size_t pf_lines) {
#define KERNEL(R, CS) qgemm_avx512_6x32(R, 0, ku, a, CS, b, c, ldc, nr, accumulate, pf, pf_lines)
    CK_TILE_CASES(CK_Q_MR, mr, ldp, KERNEL);
#undef KERNEL
}

VNNI void ck_q4gemm_avx512_6x32(size_t mr, size_t ku, const void *a, size_t ldp, const void *b,
                                float *c, size_t ldc, size_t nr, int accumulate, const void *pf,
                                size_t pf_lines) {
#define KERNEL(R, CS) qgemm_avx512_6x32(R, 1, ku, a, CS, b, c, ldc, nr, accumulate, pf, pf_lines)
    CK_TILE_CASES(CK_Q_MR, mr, ldp, KERNEL);
#undef KERNEL
}
