// matmul_avx2.c — y = x · W^T with AVX2+FMA, BLIS-style: W packed once into 16-column panels,
// a 6x16 register micro-kernel, the loops around it (K blocks, row blocks, panels, row tiles)
// and the split of the output between threads.
#include "ckernels.h"

#include <immintrin.h>
#include <omp.h>
#include <string.h>

#define AVX2 __attribute__((target("avx2,fma")))
#define AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma")))

// Block sizes, in floats.
// MR x NR = 6 x 16: the 6 x 2 accumulators take 12 of the 16 ymm registers, the two B vectors
//   of a k step 2 more and the broadcast of x one. 12 independent FMA chains cover the FMA
//   latency (4 cycles) times the two FMA pipes (8 in flight). Per k step: 12 FMAs against
//   2 loads + 6 broadcasts, within the 2 FMA + 3 load issues per cycle of Zen 4/5.
// KC = 256: the B micro-panel (KC x NR = 16 KiB) stays in L1D while every row tile of the row
//   block uses it; with the packed A micro-panel streaming under it (6 KiB) this fits Zen 4's
//   32 KiB L1D (this machine) with room for C, and Zen 5's 48 KiB. It also makes the reload
//   and store of a C tile between K blocks negligible (24 accesses per 3072 FMAs).
// MC = 72: the packed row block of x (MC x KC = 72 KiB) stays in the 1 MiB L2 while every panel
//   uses it. Each B micro-panel brought into L1 then serves 12 row tiles (18k cycles of FMAs per
//   16 KiB read from L2 or L3), and the packing buffer is small enough to live on the stack of
//   any thread that calls the kernel.
// No NC: W is packed once at load, so there is no B block to pack per call; each thread walks
//   its own range of panels.
#define CK_AVX2_MR 6
#define CK_AVX2_KC 256
#define CK_AVX2_MC 72

static inline size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

// ---------------------------------------------------------------------------------------------
// Packing
// ---------------------------------------------------------------------------------------------

// Floats in the packed W: (ceil(N/NR), K, NR).
size_t ck_pack_f32_avx2_size(size_t N, size_t K) {
    return (N + CK_AVX2_NR - 1) / CK_AVX2_NR * K * CK_AVX2_NR;
}

// w: (N, K)  packed: (ceil(N/NR), K, NR), packed[p][k][j] = w[p*NR + j][k], zero past N.
// The zero columns let the micro-kernel always compute full panels; only the store is masked.
void ck_pack_f32_avx2(const float *w, float *packed, size_t N, size_t K) {
    const size_t panels = (N + CK_AVX2_NR - 1) / CK_AVX2_NR;
#pragma omp parallel for schedule(static) if (N * K >= 65536)
    for (size_t p = 0; p < panels; p++) {
        float *dst = packed + p * K * CK_AVX2_NR;
        for (size_t j = 0; j < CK_AVX2_NR; j++) {
            const size_t n = p * CK_AVX2_NR + j;
            for (size_t k = 0; k < K; k++) dst[k * CK_AVX2_NR + j] = n < N ? w[n * K + k] : 0.0f;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Micro-kernel
// ---------------------------------------------------------------------------------------------

// Lane mask selecting the first `valid` lanes (any int; <= 0 selects none, >= 8 all).
AVX2_INLINE __m256i lane_mask(int valid) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// One k step of the micro-kernel: acc[0:mr] += A[0:mr, k] · B[k, 0:16].
AVX2_INLINE void step_6x16(const int mr, const float *a, size_t rs, size_t cs, const float *b,
                           size_t k, __m256 acc[CK_AVX2_MR][2]) {
    const __m256 b0 = _mm256_loadu_ps(b + k * CK_AVX2_NR);
    const __m256 b1 = _mm256_loadu_ps(b + k * CK_AVX2_NR + 8);
    for (int i = 0; i < mr; i++) {
        const __m256 ai = _mm256_broadcast_ss(a + i * rs + k * cs);
        acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
        acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
    }
}

// C[0:mr, 0:nr] = (accumulate ? C : 0) + A[0:mr, 0:kc] · B[0:kc, 0:16]
// a: element (i, k) at a[i * rs + k * cs], either a packed micro-panel (rs = 1, cs = MR) or
//    rows of x (rs = K, cs = 1)  b: (kc, 16) packed micro-panel  c: (mr, ldc) rows of y
// pf: pf_lines cache lines (of 16 floats) to prefetch into L2, one per k step: this tile's
//    share of the next B micro-panel.
// mr (1..6), rs and cs of a packed A are constants once inlined, so every row count gets its
// own register-only kernel; B past nr is zero padding, computed but not stored. C is only
// needed after the k loop, so its rows are prefetched first: at prefill sizes y does not fit
// in L2, and its rows are N floats apart.
AVX2_INLINE void sgemm_avx2_6x16(const int mr, size_t kc, const float *a, size_t rs, size_t cs,
                                 const float *b, float *c, size_t ldc, size_t nr, int accumulate,
                                 const float *pf, size_t pf_lines) {
    __m256 acc[CK_AVX2_MR][2];
    for (int i = 0; i < mr; i++) {
        acc[i][0] = acc[i][1] = _mm256_setzero_ps();
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + CK_AVX2_NR - 1), _MM_HINT_T0);
    }
    // The k steps with a prefetch, then the rest without: no test left in the plain loop.
    size_t k = 0;
    for (; k < min_size(pf_lines, kc); k++) {
        _mm_prefetch((const char *)(pf + k * CK_AVX2_NR), _MM_HINT_T1);
        step_6x16(mr, a, rs, cs, b, k, acc);
    }
    for (; k < kc; k++) step_6x16(mr, a, rs, cs, b, k, acc);
    if (nr == CK_AVX2_NR) {
        for (int i = 0; i < mr; i++) {
            float *ci = c + i * ldc;
            if (accumulate) {
                acc[i][0] = _mm256_add_ps(acc[i][0], _mm256_loadu_ps(ci));
                acc[i][1] = _mm256_add_ps(acc[i][1], _mm256_loadu_ps(ci + 8));
            }
            _mm256_storeu_ps(ci, acc[i][0]);
            _mm256_storeu_ps(ci + 8, acc[i][1]);
        }
    } else {
        const __m256i m0 = lane_mask((int)nr), m1 = lane_mask((int)nr - 8);
        for (int i = 0; i < mr; i++) {
            float *ci = c + i * ldc;
            if (accumulate) {
                acc[i][0] = _mm256_add_ps(acc[i][0], _mm256_maskload_ps(ci, m0));
                acc[i][1] = _mm256_add_ps(acc[i][1], _mm256_maskload_ps(ci + 8, m1));
            }
            _mm256_maskstore_ps(ci, m0, acc[i][0]);
            _mm256_maskstore_ps(ci + 8, m1, acc[i][1]);
        }
    }
}

// The edge in m: the last row tile of a block has M % 6 rows. A packed A micro-panel.
AVX2 static void tile_packed(size_t mr, size_t kc, const float *a, const float *b, float *c,
                             size_t ldc, size_t nr, int accumulate, const float *pf,
                             size_t pf_lines) {
#define PACKED(R) \
    sgemm_avx2_6x16(R, kc, a, 1, CK_AVX2_MR, b, c, ldc, nr, accumulate, pf, pf_lines)
    switch (mr) {
    case 6: PACKED(6); break;
    case 5: PACKED(5); break;
    case 4: PACKED(4); break;
    case 3: PACKED(3); break;
    case 2: PACKED(2); break;
    default: PACKED(1); break;
    }
#undef PACKED
}

// The same with A read in place from the rows of x (stride lda), for a single row tile.
AVX2 static void tile_rows(size_t mr, size_t kc, const float *a, size_t lda, const float *b,
                           float *c, size_t ldc, size_t nr, int accumulate) {
    switch (mr) {
    case 6: sgemm_avx2_6x16(6, kc, a, lda, 1, b, c, ldc, nr, accumulate, NULL, 0); break;
    case 5: sgemm_avx2_6x16(5, kc, a, lda, 1, b, c, ldc, nr, accumulate, NULL, 0); break;
    case 4: sgemm_avx2_6x16(4, kc, a, lda, 1, b, c, ldc, nr, accumulate, NULL, 0); break;
    case 3: sgemm_avx2_6x16(3, kc, a, lda, 1, b, c, ldc, nr, accumulate, NULL, 0); break;
    case 2: sgemm_avx2_6x16(2, kc, a, lda, 1, b, c, ldc, nr, accumulate, NULL, 0); break;
    default: sgemm_avx2_6x16(1, kc, a, lda, 1, b, c, ldc, nr, accumulate, NULL, 0); break;
    }
}

// ---------------------------------------------------------------------------------------------
// Loops around the micro-kernel
// ---------------------------------------------------------------------------------------------

// Packs rows [0, mc) x columns [0, kc) of x (row stride lda) into MR-row micro-panels:
// ap[(i / MR) * kc * MR + k * MR + i % MR]. The micro-kernel then reads A as one contiguous
// stream: rows of x are K floats apart, and with K a multiple of 1024 they would all fall in
// the same few cache sets, evicting each other and the B micro-panel.
static void pack_a(const float *x, size_t lda, size_t mc, size_t kc, float *ap) {
    for (size_t i0 = 0; i0 < mc; i0 += CK_AVX2_MR) {
        const size_t mr = min_size(CK_AVX2_MR, mc - i0);
        float *dst = ap + i0 * kc;
        for (size_t i = 0; i < mr; i++) {
            const float *src = x + (i0 + i) * lda;
            for (size_t k = 0; k < kc; k++) dst[k * CK_AVX2_MR + i] = src[k];
        }
    }
}

// One thread's share of y: rows [m0, m1) (m0 a multiple of MR) x panels [p0, p1).
// x: (M, K)  packed: (ceil(N/NR), K, NR)  y: (M, N)
// K blocks outermost so a B micro-panel, once in L1, serves every row tile of the row block;
// the packed row block of x stays in L2 across the panels. With a single row tile (decode)
// nothing is reused: A is read in place and each panel is finished before the next, so the
// thread reads its share of W as one contiguous stream. Both paths sum each K block and then
// add it to C, at the same block boundaries, so they round identically.
AVX2 static void gemm_block_avx2(const float *x, const float *packed, float *y, size_t N,
                                 size_t K, size_t m0, size_t m1, size_t p0, size_t p1) {
    if (m1 - m0 <= CK_AVX2_MR) {
        for (size_t p = p0; p < p1; p++) {
            const size_t nr = min_size(CK_AVX2_NR, N - p * CK_AVX2_NR);
            for (size_t pc = 0; pc < K; pc += CK_AVX2_KC)
                tile_rows(m1 - m0, min_size(CK_AVX2_KC, K - pc), x + m0 * K + pc, K,
                          packed + (p * K + pc) * CK_AVX2_NR, y + m0 * N + p * CK_AVX2_NR, N, nr,
                          pc > 0);
        }
        return;
    }
    float ap[CK_AVX2_MC * CK_AVX2_KC] __attribute__((aligned(64)));
    for (size_t pc = 0; pc < K; pc += CK_AVX2_KC) {
        const size_t kc = min_size(CK_AVX2_KC, K - pc);
        for (size_t ic = m0; ic < m1; ic += CK_AVX2_MC) {
            const size_t mc = min_size(CK_AVX2_MC, m1 - ic);
            pack_a(x + ic * K + pc, K, mc, kc, ap);
            const size_t tiles = (mc + CK_AVX2_MR - 1) / CK_AVX2_MR;
            const size_t lines = (kc + tiles - 1) / tiles;
            for (size_t p = p0; p < p1; p++) {
                const float *b = packed + (p * K + pc) * CK_AVX2_NR;
                const size_t nr = min_size(CK_AVX2_NR, N - p * CK_AVX2_NR);
                for (size_t t = 0; t < tiles; t++) {
                    const size_t ir = t * CK_AVX2_MR, mr = min_size(CK_AVX2_MR, mc - ir);
                    float *c = y + (ic + ir) * N + p * CK_AVX2_NR;
                    // The next micro-panel of B (K * 64 bytes away, where the hardware
                    // prefetcher would only find it after some misses) goes into L2 while this
                    // one is used: each tile prefetches its share, one line per k step. Issued
                    // in a burst at the start of each tile instead (43 lines per tile at M = 32),
                    // M = 32 ran 3-12% slower on one core; M = 128 is the same either way.
                    const size_t l0 = min_size(t * lines, kc), l1 = min_size(l0 + lines, kc);
                    const float *next = p + 1 < p1 ? b + (K + l0) * CK_AVX2_NR : NULL;
                    tile_packed(mr, kc, ap + ir * kc, b, c, N, nr, pc > 0, next,
                                next ? l1 - l0 : 0);
                }
            }
        }
    }
}

// Splits nth threads into gm row groups x (nth / gm) panel groups, minimising the largest
// share (row tiles x panels per thread). Ties go to fewer row groups: each panel of W is then
// read by fewer threads, and at decode (one row tile) the panels are all there is to split.
static int row_groups(int nth, size_t tiles_m, size_t panels) {
    int best = 1;
    size_t best_share = (size_t)-1;
    for (int gm = 1; gm <= nth; gm++) {
        if (nth % gm) continue;
        const size_t gn = (size_t)(nth / gm);
        const size_t share = ((tiles_m + gm - 1) / gm) * ((panels + gn - 1) / gn);
        if (share < best_share) {
            best_share = share;
            best = gm;
        }
    }
    return best;
}

// x: (M, K)  packed: from ck_pack_f32_avx2  y: (M, N)
// Every output is the same sequence of operations (FMAs in k order, the sum of each K block
// added to C) whatever the thread count, the path (packed or in place) or the row tile it falls
// in: results depend neither on the number of threads nor on M, so a row at decode equals the
// same row inside a prefill batch.
// Each thread keeps a MC x KC packing buffer (72 KiB) on its stack.
void ck_matmul_f32_avx2(const float *x, const float *packed, float *y, size_t M, size_t N,
                        size_t K) {
    if (M == 0 || N == 0) return;
    if (K == 0) {
        memset(y, 0, M * N * sizeof *y);
        return;
    }
    const size_t tiles_m = (M + CK_AVX2_MR - 1) / CK_AVX2_MR;
    const size_t panels = (N + CK_AVX2_NR - 1) / CK_AVX2_NR;
    size_t nt = (size_t)omp_get_max_threads();
    if (nt > tiles_m * panels) nt = tiles_m * panels;
    if (M * N * K < 32768) nt = 1;
#pragma omp parallel num_threads((int)nt)
    {
        const int nth = omp_get_num_threads(), tid = omp_get_thread_num();
        const int gm = row_groups(nth, tiles_m, panels), gn = nth / gm;
        const size_t rg = (size_t)(tid / gn), pg = (size_t)(tid % gn);
        const size_t t0 = tiles_m * rg / gm, t1 = tiles_m * (rg + 1) / gm;
        const size_t p0 = panels * pg / gn, p1 = panels * (pg + 1) / gn;
        if (t0 < t1 && p0 < p1)
            gemm_block_avx2(x, packed, y, N, K, t0 * CK_AVX2_MR, min_size(t1 * CK_AVX2_MR, M), p0,
                            p1);
    }
}
