// matmul_avx512.c — y = x · W^T with AVX-512F, BLIS-style as matmul_avx2.c: W packed once into
// 32-column panels, a 14x32 register micro-kernel, the loops around it (K blocks, row blocks,
// panels, row tiles) and the split of the output between threads.
//
// Zen 4 executes a 512-bit FMA as two 256-bit halves: one zmm FMA per cycle, the same 32 flops
// per cycle as two ymm FMAs (measured: both peaks ~116 GFLOP/s per core here). So the gain over
// AVX2 is not in the FMAs but around them: half the loads and broadcasts per flop, masked edges,
// and the next B micro-panel prefetched a line per k step. Measured on one core: 89-92% of the
// peak at M >= 128 (AVX2 86-91%), 87-96% at M = 32 (AVX2 76-90%).
#include "ckernels.h"
#include "gemm_avx512.h"

#include <omp.h>
#include <string.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))

// Block sizes, in floats.
// MR x NR = 14 x 32: the 14 x 2 accumulators take 28 of the 32 zmm registers, the two B vectors
//   of a k step 2 more and the broadcast of x one. 28 independent FMA chains are far more than
//   latency x throughput (4 x 1 zmm FMA per cycle), and per k step the 28 FMAs (28 cycles of
//   the FMA pipes) need only 2 loads of B and 14 broadcasts of x. Tiles of 12 rows run as fast
//   in L1 but make more tiles per block.
// KC = 128: the B micro-panel (KC x NR = 16 KiB) stays in L1D while every row tile of the row
//   block uses it, with the A micro-panel streaming under it (7 KiB): 23 of Zen 4's 32 KiB.
//   KC = 256 would fill L1 with B alone: 3% faster with everything in L1, 3-5% slower in the
//   GEMM (KC = 160 and 192 measured no better). At KC = 128 the reload and store of the C tile
//   between K blocks (28 + 28 accesses per 3584 FMAs) costs 2-3%.
// MC = 168 (12 tiles): the packed row block of x (MC x KC = 84 KiB) stays in the 1 MiB L2 while
//   every panel uses it; each B micro-panel brought into L1 serves up to 12 row tiles. The
//   buffer lives on the calling thread's stack.
// No NC: W is packed once at load; each thread walks its own range of panels.
#define CK_AVX512_MR 14
#define CK_AVX512_KC 128
#define CK_AVX512_MC 168

// ---------------------------------------------------------------------------------------------
// Packing
// ---------------------------------------------------------------------------------------------

// Floats in the packed W: (ceil(N/NR), K, NR).
size_t ck_pack_f32_avx512_size(size_t N, size_t K) {
    return (N + CK_AVX512_NR - 1) / CK_AVX512_NR * K * CK_AVX512_NR;
}

// w: (N, K)  packed: (ceil(N/NR), K, NR), packed[p][k][j] = w[p*NR + j][k], zero past N.
// The zero columns let the micro-kernel always compute full panels; only the store is masked.
void ck_pack_f32_avx512(const float *w, float *packed, size_t N, size_t K) {
    const size_t panels = (N + CK_AVX512_NR - 1) / CK_AVX512_NR;
#pragma omp parallel for schedule(static) if (N * K >= 65536)
    for (size_t p = 0; p < panels; p++) {
        float *dst = packed + p * K * CK_AVX512_NR;
        for (size_t j = 0; j < CK_AVX512_NR; j++) {
            const size_t n = p * CK_AVX512_NR + j;
            for (size_t k = 0; k < K; k++)
                dst[k * CK_AVX512_NR + j] = n < N ? w[n * K + k] : 0.0f;
        }
    }
}

// Rows [0, mr) x columns [0, kc) of x (row stride lda) into one micro-panel with row stride MR:
// ap[k * MR + i] = x[i][k], 16 columns at a time through a 16 x 16 transpose.
AVX512 static void pack_a(const float *x, size_t lda, size_t mr, size_t kc, float *ap) {
    for (size_t k0 = 0; k0 < kc; k0 += 16) {
        const size_t n = min_size(16, kc - k0);
        const __mmask16 cols = (__mmask16)((1u << n) - 1);
        __m512 r[16];
        for (size_t i = 0; i < 16; i++)
            r[i] = i < mr ? _mm512_maskz_loadu_ps(cols, x + i * lda + k0) : _mm512_setzero_ps();
        transpose_16x16(r);
        for (size_t k = 0; k < n; k++)
            _mm512_mask_storeu_ps(ap + (k0 + k) * CK_AVX512_MR, (1u << CK_AVX512_MR) - 1, r[k]);
    }
}

// ---------------------------------------------------------------------------------------------
// Micro-kernel
// ---------------------------------------------------------------------------------------------

// C[0:mr, 0:nr] = (accumulate ? C : 0) + A[0:mr, 0:kc] · B[0:kc, 0:32]
// a: element (i, k) at a[i * rs + k * cs], either a packed micro-panel (rs = 1, cs = MR) or
//    rows of x (rs = K, cs = 1)  b: (kc, 32) packed micro-panel  c: (mr, ldc) rows of y
// pf: pf_lines cache lines (of 16 floats) to prefetch into L2, one per k step: this tile's
//    share of the next B micro-panel.
// mr (1..14), rs and cs of a packed A are constants once inlined, so every row count gets its
// own register-only kernel; B past nr is zero padding, computed but not stored. C is only needed
// after the k loop, so its rows are prefetched first, into L2: with N a multiple of 1024 the 14
// rows fall in one set of the 8-way L1, where they would evict each other and the B micro-panel.
AVX512_INLINE void sgemm_avx512_14x32(const int mr, size_t kc, const float *a, size_t rs,
                                      size_t cs, const float *b, float *c, size_t ldc, size_t nr,
                                      int accumulate, const float *pf, size_t pf_lines) {
    __m512 acc[CK_AVX512_MR][2];
    for (int i = 0; i < mr; i++) {
        acc[i][0] = acc[i][1] = _mm512_setzero_ps();
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T1);
        _mm_prefetch((const char *)(c + i * ldc + CK_AVX512_NR - 1), _MM_HINT_T1);
    }
    for (size_t k = 0; k < kc; k++) {
        if (k < pf_lines) _mm_prefetch((const char *)(pf + k * 16), _MM_HINT_T1);
        const __m512 b0 = _mm512_loadu_ps(b + k * CK_AVX512_NR);
        const __m512 b1 = _mm512_loadu_ps(b + k * CK_AVX512_NR + 16);
        for (int i = 0; i < mr; i++) {
            const __m512 ai = _mm512_set1_ps(a[i * rs + k * cs]);
            acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
        }
    }
    __mmask16 m0, m1;
    panel_masks(nr, &m0, &m1);
    for (int i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        if (accumulate) {
            acc[i][0] = _mm512_add_ps(acc[i][0], _mm512_maskz_loadu_ps(m0, ci));
            acc[i][1] = _mm512_add_ps(acc[i][1], _mm512_maskz_loadu_ps(m1, ci + 16));
        }
        _mm512_mask_storeu_ps(ci, m0, acc[i][0]);
        _mm512_mask_storeu_ps(ci + 16, m1, acc[i][1]);
    }
}

// A packed micro-panel.
AVX512 static void tile_packed(size_t mr, size_t kc, const float *a, const float *b, float *c,
                               size_t ldc, size_t nr, int accumulate, const float *pf,
                               size_t pf_lines) {
#define PACKED(R) \
    sgemm_avx512_14x32(R, kc, a, 1, CK_AVX512_MR, b, c, ldc, nr, accumulate, pf, pf_lines)
    CK_AVX512_ROW_CASES(mr, PACKED)
#undef PACKED
}

// A read in place from the rows of x (stride lda), for a single row tile.
AVX512 static void tile_rows(size_t mr, size_t kc, const float *a, size_t lda, const float *b,
                             float *c, size_t ldc, size_t nr, int accumulate) {
#define ROWS(R) sgemm_avx512_14x32(R, kc, a, lda, 1, b, c, ldc, nr, accumulate, NULL, 0)
    CK_AVX512_ROW_CASES(mr, ROWS)
#undef ROWS
}

// ---------------------------------------------------------------------------------------------
// Loops around the micro-kernel
// ---------------------------------------------------------------------------------------------

// One thread's share of y: rows [m0, m1) x panels [p0, p1).
// x: (M, K)  packed: (ceil(N/NR), K, NR)  y: (M, N)
// K blocks outermost so a B micro-panel, once in L1, serves every row tile of the row block;
// the packed row block of x stays in L2 across the panels. With a single row tile (decode)
// nothing is reused: A is read in place and each panel is finished before the next, so the
// thread reads its share of W as one contiguous stream. Both paths sum each K block and then
// add it to C, at the same block boundaries, so they round identically.
AVX512 static void gemm_block_avx512(const float *x, const float *packed, float *y, size_t N,
                                     size_t K, size_t m0, size_t m1, size_t p0, size_t p1) {
    const size_t rows = m1 - m0, tiles = tile_count(rows, CK_AVX512_MR);
    if (tiles == 1) {
        for (size_t p = p0; p < p1; p++) {
            const size_t nr = min_size(CK_AVX512_NR, N - p * CK_AVX512_NR);
            for (size_t pc = 0; pc < K; pc += CK_AVX512_KC)
                tile_rows(rows, min_size(CK_AVX512_KC, K - pc), x + m0 * K + pc, K,
                          packed + (p * K + pc) * CK_AVX512_NR, y + m0 * N + p * CK_AVX512_NR, N,
                          nr, pc > 0);
        }
        return;
    }
    // Row blocks of at most MC / MR tiles, as even as the tiles allow (so at least two each).
    const size_t groups = tile_count(tiles, CK_AVX512_MC / CK_AVX512_MR);
    float ap[CK_AVX512_MC * CK_AVX512_KC] __attribute__((aligned(64)));
    for (size_t pc = 0; pc < K; pc += CK_AVX512_KC) {
        const size_t kc = min_size(CK_AVX512_KC, K - pc);
        for (size_t g = 0; g < groups; g++) {
            const size_t g0 = tile_start(tiles, groups, g), g1 = tile_start(tiles, groups, g + 1);
            for (size_t t = g0; t < g1; t++) {
                const size_t r0 = tile_start(rows, tiles, t);
                const size_t r1 = tile_start(rows, tiles, t + 1);
                pack_a(x + (m0 + r0) * K + pc, K, r1 - r0, kc, ap + (t - g0) * CK_AVX512_MR * kc);
            }
            // The next B micro-panel (of the next panel, K * 128 bytes away, where the hardware
            // prefetcher would only find it after some misses) goes into L2 while this one is
            // used: each tile prefetches its share, one line per k step. Issued in a burst at
            // the start of each tile instead, the prefetches overflow the miss queues, and
            // M = 32 (three tiles per B micro-panel) ran 20% slower.
            const size_t lines = (kc * 2 + (g1 - g0) - 1) / (g1 - g0);
            for (size_t p = p0; p < p1; p++) {
                const float *b = packed + (p * K + pc) * CK_AVX512_NR;
                const size_t nr = min_size(CK_AVX512_NR, N - p * CK_AVX512_NR);
                for (size_t t = g0; t < g1; t++) {
                    const size_t r0 = tile_start(rows, tiles, t);
                    const size_t r1 = tile_start(rows, tiles, t + 1);
                    const size_t l0 = min_size((t - g0) * lines, 2 * kc);
                    const size_t l1 = min_size(l0 + lines, 2 * kc);
                    const float *next = p + 1 < p1 ? b + K * CK_AVX512_NR + l0 * 16 : NULL;
                    tile_packed(r1 - r0, kc, ap + (t - g0) * CK_AVX512_MR * kc, b,
                                y + (m0 + r0) * N + p * CK_AVX512_NR, N, nr, pc > 0, next,
                                next ? l1 - l0 : 0);
                }
            }
        }
    }
}

// x: (M, K)  packed: from ck_pack_f32_avx512  y: (M, N)
// Every output is the same sequence of operations (FMAs in k order, the sum of each K block
// added to C) whatever the thread count, the path (packed or in place) or the row tile it falls
// in: results depend neither on the number of threads nor on M, so a row at decode equals the
// same row inside a prefill batch.
// Each thread keeps a MC x KC packing buffer (84 KiB) on its stack.
void ck_matmul_f32_avx512(const float *x, const float *packed, float *y, size_t M, size_t N,
                          size_t K) {
    if (M == 0 || N == 0) return;
    if (K == 0) {
        memset(y, 0, M * N * sizeof *y);
        return;
    }
    const size_t tiles_m = tile_count(M, CK_AVX512_MR);
    const size_t panels = (N + CK_AVX512_NR - 1) / CK_AVX512_NR;
    size_t nt = (size_t)omp_get_max_threads();
    if (nt > tiles_m * panels) nt = tiles_m * panels;
    if (M * N * K < 32768) nt = 1;
#pragma omp parallel num_threads((int)nt)
    {
        size_t t0, t1, p0, p1;
        thread_share(omp_get_num_threads(), omp_get_thread_num(), tiles_m, panels, &t0, &t1, &p0,
                     &p1);
        if (t0 < t1 && p0 < p1)
            gemm_block_avx512(x, packed, y, N, K, t0 * CK_AVX512_MR,
                              min_size(t1 * CK_AVX512_MR, M), p0, p1);
    }
}
