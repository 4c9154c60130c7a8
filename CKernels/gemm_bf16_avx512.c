// gemm_bf16_avx512.c — the bfloat16-weight AVX512_BF16 micro-kernel sbgemm_avx512_14x32 and its
// packer of x (rounded to bfloat16 as it is packed), for the driver in gemm.c: 32-column panels,
// K in pairs. The plain C reference with the same rounding is ck_matmul_bf16_ref (matmul_ref.c).
//
// vdpbf16ps multiplies 16 pairs of bfloat16 by 16 pairs and adds both products to 16 float
// accumulators: 64 flops per instruction. On Zen 4 it issues one per cycle with a latency of 6
// (measured here: ~233 GFLOP/s per core, twice the float FMA peak), and it reads half the bytes
// of W, so decode (M = 1), bound by memory, runs twice as fast as with float weights.
// Its arithmetic (Intel SDM, checked on this Zen 4): per lane, acc += a.odd * b.odd, then
// acc += a.even * b.even, each a float FMA rounded to nearest even; denormal inputs, denormal
// accumulators and denormal results are all taken as zero (MXCSR is ignored). Products of two
// bfloat16 values are exact in float, so away from the denormal range a K-long dot product is a
// float sum of K exact terms, as in the reference; only the order of the sum differs.
#include "ckernels.h"
#include "gemm_avx512.h"

#define AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define AVX512_BF16_INLINE \
    static inline __attribute__((always_inline, target("avx512f,avx512bw,avx512vl,avx512bf16")))

// Rows [0, mr) x pairs [0, kpc) of x (row stride lda; `valid` floats of each row exist, the
// rest of the last pair is zero) into a micro-panel of row stride ldp: ap[kk * ldp + i] = the
// pair (bf16(x[i][2kk]), bf16(x[i][2kk + 1])), the even k in the low half as in W. 16 pairs at
// a time: 32 floats of a row round to one vector of pairs, then a 16 x 16 transpose.
AVX512_BF16 void ck_pack_a_bf16_avx512(const float *x, size_t lda, size_t mr, size_t kpc,
                                       size_t valid, void *ap_, size_t ldp) {
    uint32_t *ap = ap_;
    for (size_t kk0 = 0; kk0 < kpc; kk0 += 16) {
        const size_t pairs = min_size(16, kpc - kk0), k0 = 2 * kk0;
        const size_t n = min_size(32, valid - k0);
        const __mmask16 lo = (__mmask16)(n >= 16 ? 0xffff : (1u << n) - 1);
        const __mmask16 hi = (__mmask16)(n >= 32 ? 0xffff : n <= 16 ? 0 : (1u << (n - 16)) - 1);
        __m512 r[16];
        for (size_t i = 0; i < 16; i++) {
            if (i < mr) {
                const float *src = x + i * lda + k0;
                const __m512bh h = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, src + 16),
                                                       _mm512_maskz_loadu_ps(lo, src));
                r[i] = _mm512_castsi512_ps((__m512i)h);
            } else {
                r[i] = _mm512_setzero_ps();
            }
        }
        transpose_16x16(r);
        for (size_t kk = 0; kk < pairs; kk++)
            _mm512_mask_storeu_ps((float *)(ap + (kk0 + kk) * ldp), (__mmask16)((1u << mr) - 1),
                                  r[kk]);
    }
}

// C[0:mr, 0:nr] = (accumulate ? C : 0) + A[0:mr, 0:2kpc] · B[0:2kpc, 0:32]
// a: packed pairs of row i, pair kk at a[kk * cs + i]  b: (kpc, 32, 2) packed micro-panel
// c: (mr, ldc) rows of y  pf: pf_lines lines of the next B micro-panel, one prefetched per pair.
// As sgemm_avx512_14x32: one register-only kernel per row count, zero padding past nr computed
// but not stored, C prefetched into L2 first.
AVX512_BF16_INLINE void sbgemm_avx512_14x32(const int mr, size_t kpc, const uint32_t *a,
                                            size_t cs, const uint16_t *b, float *c, size_t ldc,
                                            size_t nr, int accumulate, const uint16_t *pf,
                                            size_t pf_lines) {
    __m512 acc[CK_BF16_MR][2];
    tile_begin_14x32(mr, acc, c, ldc);
    for (size_t kk = 0; kk < kpc; kk++) {
        if (kk < pf_lines) _mm_prefetch((const char *)(pf + kk * 32), _MM_HINT_T1);
        const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b + kk * 2 * CK_BF16_NR);
        const __m512bh b1 = (__m512bh)_mm512_loadu_si512(b + kk * 2 * CK_BF16_NR + 32);
        for (int i = 0; i < mr; i++) {
            const __m512bh ai = (__m512bh)_mm512_set1_epi32((int)a[kk * cs + i]);
            acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, b0);
            acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, b1);
        }
    }
    tile_store_14x32(mr, acc, c, ldc, nr, accumulate);
}

// The edge in m: one kernel per row count and micro-panel row stride (CK_TILE_CASES). A decode
// row reads 4 bytes of x per pair from its dense micro-panel, not one 56-byte line.
AVX512_BF16 void ck_sbgemm_avx512_14x32(size_t mr, size_t kpc, const void *a, size_t ldp,
                                        const void *b, float *c, size_t ldc, size_t nr,
                                        int accumulate, const void *pf, size_t pf_lines) {
#define KERNEL(R, CS) sbgemm_avx512_14x32(R, kpc, a, CS, b, c, ldc, nr, accumulate, pf, pf_lines)
    CK_TILE_CASES(CK_BF16_MR, mr, ldp, KERNEL);
#undef KERNEL
}
