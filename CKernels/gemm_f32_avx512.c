// gemm_f32_avx512.c — the float32 AVX-512F micro-kernel sgemm_avx512_14x32 and its packer of x,
// for the driver in gemm.c (block sizes and their reasoning are in its table).
//
// Zen 4 executes a 512-bit FMA as two 256-bit halves: one zmm FMA per cycle, the same 32 flops
// per cycle as two ymm FMAs (measured: both peaks ~116 GFLOP/s per core here). So the gain over
// AVX2 is not in the FMAs but around them: half the loads and broadcasts per flop, masked edges,
// and the next B micro-panel prefetched a line per k step. Measured on one core: 89-92% of the
// peak at M >= 128 (AVX2 86-91%), 87-96% at M = 32 (AVX2 76-90%).
#include "ckernels.h"
#include "gemm_avx512.h"

#include <string.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))

// Rows [0, mr) x columns [0, kc) of x (row stride lda) into a micro-panel of row stride ldp:
// ap[k * ldp + i] = x[i][k], 16 columns at a time through a 16 x 16 transpose. A single row
// (a decode tile, ldp = 1) is a plain copy.
AVX512 void ck_pack_a_f32_avx512(const float *x, size_t lda, size_t mr, size_t kc, size_t valid,
                                 void *ap_, size_t ldp) {
    float *ap = ap_;
    if (ldp == 1) {
        memcpy(ap, x, kc * sizeof *ap);
        return;
    }
    for (size_t k0 = 0; k0 < kc; k0 += 16) {
        const size_t n = min_size(16, kc - k0);
        const __mmask16 cols = (__mmask16)((1u << n) - 1);
        __m512 r[16];
        for (size_t i = 0; i < 16; i++)
            r[i] = i < mr ? _mm512_maskz_loadu_ps(cols, x + i * lda + k0) : _mm512_setzero_ps();
        transpose_16x16(r);
        for (size_t k = 0; k < n; k++)
            _mm512_mask_storeu_ps(ap + (k0 + k) * ldp, (__mmask16)((1u << mr) - 1), r[k]);
    }
}

// C[0:mr, 0:nr] = (accumulate ? C : 0) + A[0:mr, 0:kc] · B[0:kc, 0:32]
// a: micro-panel, element (i, k) at a[k * cs + i]  b: (kc, 32) packed micro-panel
// c: (mr, ldc) rows of y  pf: pf_lines cache lines (of 16 floats) to prefetch into L2, one per
// k step: this tile's share of the next B micro-panel.
// mr (1..14) and cs are constants once inlined, so every row count gets its own register-only
// kernel; B past nr is zero padding, computed but not stored. C is prefetched first, into L2
// (tile_begin_14x32).
AVX512_INLINE void sgemm_avx512_14x32(const int mr, size_t kc, const float *a, size_t cs,
                                      const float *b, float *c, size_t ldc, size_t nr,
                                      int accumulate, const float *pf, size_t pf_lines) {
    __m512 acc[CK_AVX512_MR][2];
    tile_begin_14x32(mr, acc, c, ldc);
    for (size_t k = 0; k < kc; k++) {
        if (k < pf_lines) _mm_prefetch((const char *)(pf + k * 16), _MM_HINT_T1);
        const __m512 b0 = _mm512_loadu_ps(b + k * CK_AVX512_NR);
        const __m512 b1 = _mm512_loadu_ps(b + k * CK_AVX512_NR + 16);
        for (int i = 0; i < mr; i++) {
            const __m512 ai = _mm512_set1_ps(a[k * cs + i]);
            acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
        }
    }
    tile_store_14x32(mr, acc, c, ldc, nr, accumulate);
}

// The edge in m: one kernel per row count and micro-panel row stride (CK_TILE_CASES).
AVX512 void ck_sgemm_avx512_14x32(size_t mr, size_t kc, const void *a, size_t ldp, const void *b,
                                  float *c, size_t ldc, size_t nr, int accumulate, const void *pf,
                                  size_t pf_lines) {
#define KERNEL(R, CS) sgemm_avx512_14x32(R, kc, a, CS, b, c, ldc, nr, accumulate, pf, pf_lines)
    CK_TILE_CASES(CK_AVX512_MR, mr, ldp, KERNEL);
#undef KERNEL
}
