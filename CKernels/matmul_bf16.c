// matmul_bf16.c — y = bf16(x) · W^T with W kept as bfloat16: AVX512_BF16 vdpbf16ps, BLIS-style
// as matmul_avx512.c (32-column panels, K in pairs, a 14x32 micro-kernel, x rounded to bfloat16
// as its row block is packed), and the plain C reference with the same rounding.
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

#include <omp.h>
#include <string.h>

#define AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define AVX512_BF16_INLINE \
    static inline __attribute__((always_inline, target("avx512f,avx512bw,avx512vl,avx512bf16")))

// Block sizes. K is counted in pairs, one pair per vdpbf16ps lane: kp = ceil(K / 2) in all.
// MR x NR = 14 x 32: as for float, 28 accumulators, 2 B vectors and a broadcast of 32 zmm.
//   28 independent chains cover latency x throughput = 6 x 1 with room to spare, and per pair of
//   k the 28 vdpbf16ps need 2 loads of B and 14 broadcasts of an x pair.
// KPC = 128 pairs (256 k): the B micro-panel (KPC x NR pairs = 16 KiB) stays in L1D with the
//   streaming A micro-panel (7 KiB), as for float; each call does twice the flops of a float
//   K block in the same cycles.
// MC = 168 (12 tiles): the packed row block of x (MC x KPC pairs = 84 KiB) stays in L2 across
//   the panels; on the calling thread's stack.
#define CK_BF16_MR 14
#define CK_BF16_KPC 128
#define CK_BF16_MC 168

// ---------------------------------------------------------------------------------------------
// Rounding and packing
// ---------------------------------------------------------------------------------------------

static inline float f32_from_bf16(uint16_t h) {
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

// x rounded as vcvtne2ps2bf16 rounds it: NaN stays a (quiet) NaN, zero and denormal inputs
// become a zero of their sign, anything else rounds to nearest even (up to inf on overflow).
// Only the denormal case differs from ck_convert_f32_to_bf16.
static inline uint16_t bf16_from_f32(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u);
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

// uint16 elements in the packed W: (ceil(N/NR), ceil(K/2), NR, 2).
size_t ck_pack_bf16_size(size_t N, size_t K) {
    return (N + CK_BF16_NR - 1) / CK_BF16_NR * ((K + 1) / 2) * CK_BF16_NR * 2;
}

// w: (N, K)  packed[p][k/2][j][k%2] = w[p*NR + j][k], zero past N and at k = K when K is odd.
void ck_pack_bf16(const uint16_t *w, uint16_t *packed, size_t N, size_t K) {
    const size_t panels = (N + CK_BF16_NR - 1) / CK_BF16_NR, kp = (K + 1) / 2;
#pragma omp parallel for schedule(static) if (N * K >= 65536)
    for (size_t p = 0; p < panels; p++) {
        uint16_t *dst = packed + p * kp * CK_BF16_NR * 2;
        for (size_t j = 0; j < CK_BF16_NR; j++) {
            const size_t n = p * CK_BF16_NR + j;
            for (size_t k = 0; k < 2 * kp; k++)
                dst[(k / 2 * CK_BF16_NR + j) * 2 + k % 2] = n < N && k < K ? w[n * K + k] : 0;
        }
    }
}

// Rows [0, mr) x pairs [0, kpc) of x (row stride lda; `valid` floats of each row exist, the
// rest of the last pair is zero) into a micro-panel of row stride ldp: ap[kk * ldp + i] = the
// pair (bf16(x[i][2kk]), bf16(x[i][2kk + 1])), the even k in the low half as in W. 16 pairs at
// a time: 32 floats of a row round to one vector of pairs, then a 16 x 16 transpose.
AVX512_BF16 static void pack_a_bf16(const float *x, size_t lda, size_t mr, size_t kpc,
                                    size_t valid, uint32_t *ap, size_t ldp) {
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

// ---------------------------------------------------------------------------------------------
// Micro-kernel
// ---------------------------------------------------------------------------------------------

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
    for (int i = 0; i < mr; i++) {
        acc[i][0] = acc[i][1] = _mm512_setzero_ps();
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T1);
        _mm_prefetch((const char *)(c + i * ldc + CK_BF16_NR - 1), _MM_HINT_T1);
    }
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

// A micro-panel of a row block (row stride MR).
AVX512_BF16 static void tile_packed(size_t mr, size_t kpc, const uint32_t *a, const uint16_t *b,
                                    float *c, size_t ldc, size_t nr, int accumulate,
                                    const uint16_t *pf, size_t pf_lines) {
#define PACKED(R) \
    sbgemm_avx512_14x32(R, kpc, a, CK_BF16_MR, b, c, ldc, nr, accumulate, pf, pf_lines)
    CK_AVX512_ROW_CASES(mr, PACKED)
#undef PACKED
}

// The dense micro-panel of a single row tile (row stride mr): a decode row reads 4 bytes of x
// per pair, not one 56-byte line.
AVX512_BF16 static void tile_dense(size_t mr, size_t kpc, const uint32_t *a, const uint16_t *b,
                                   float *c, size_t ldc, size_t nr, int accumulate) {
#define DENSE(R) sbgemm_avx512_14x32(R, kpc, a, R, b, c, ldc, nr, accumulate, NULL, 0)
    CK_AVX512_ROW_CASES(mr, DENSE)
#undef DENSE
}

// ---------------------------------------------------------------------------------------------
// Loops around the micro-kernel
// ---------------------------------------------------------------------------------------------

// One thread's share of y: rows [m0, m1) x panels [p0, p1).
// x: (M, K)  packed: (ceil(N/NR), ceil(K/2), NR, 2)  y: (M, N)
// As gemm_block_avx512, except that x is always packed (it must be rounded to bfloat16). A
// single row tile (decode) is packed densely for as many K blocks as the buffer holds, then each
// panel is finished over them before the next, so W streams contiguously. Both paths sum each
// K block of KPC pairs and add it to C, at the same block boundaries, so they round identically.
AVX512_BF16 static void gemm_block_bf16(const float *x, const uint16_t *packed, float *y,
                                        size_t N, size_t K, size_t m0, size_t m1, size_t p0,
                                        size_t p1) {
    const size_t kp = (K + 1) / 2;
    const size_t rows = m1 - m0, tiles = tile_count(rows, CK_BF16_MR);
    uint32_t ap[CK_BF16_MC * CK_BF16_KPC] __attribute__((aligned(64)));
    if (tiles == 1) {
        const size_t chunk = CK_BF16_MC * CK_BF16_KPC / rows / CK_BF16_KPC * CK_BF16_KPC;
        for (size_t q0 = 0; q0 < kp; q0 += chunk) {
            const size_t q1 = min_size(kp, q0 + chunk);
            pack_a_bf16(x + m0 * K + 2 * q0, K, rows, q1 - q0, K - 2 * q0, ap, rows);
            for (size_t p = p0; p < p1; p++) {
                const size_t nr = min_size(CK_BF16_NR, N - p * CK_BF16_NR);
                for (size_t pc = q0; pc < q1; pc += CK_BF16_KPC)
                    tile_dense(rows, min_size(CK_BF16_KPC, q1 - pc), ap + (pc - q0) * rows,
                               packed + (p * kp + pc) * 2 * CK_BF16_NR,
                               y + m0 * N + p * CK_BF16_NR, N, nr, pc > 0);
            }
        }
        return;
    }
    // Row blocks of at most MC / MR tiles, as even as the tiles allow (so at least two each).
    const size_t groups = tile_count(tiles, CK_BF16_MC / CK_BF16_MR);
    for (size_t pc = 0; pc < kp; pc += CK_BF16_KPC) {
        const size_t kpc = min_size(CK_BF16_KPC, kp - pc);
        for (size_t g = 0; g < groups; g++) {
            const size_t g0 = tile_start(tiles, groups, g), g1 = tile_start(tiles, groups, g + 1);
            for (size_t t = g0; t < g1; t++) {
                const size_t r0 = tile_start(rows, tiles, t);
                const size_t r1 = tile_start(rows, tiles, t + 1);
                pack_a_bf16(x + (m0 + r0) * K + 2 * pc, K, r1 - r0, kpc, K - 2 * pc,
                            ap + (t - g0) * CK_BF16_MR * kpc, CK_BF16_MR);
            }
            // Each tile prefetches its share of the next panel's B micro-panel (kp x 128 bytes
            // away) into L2, one line per pair, as in gemm_block_avx512.
            const size_t lines = (kpc * 2 + (g1 - g0) - 1) / (g1 - g0);
            for (size_t p = p0; p < p1; p++) {
                const uint16_t *b = packed + (p * kp + pc) * 2 * CK_BF16_NR;
                const size_t nr = min_size(CK_BF16_NR, N - p * CK_BF16_NR);
                for (size_t t = g0; t < g1; t++) {
                    const size_t r0 = tile_start(rows, tiles, t);
                    const size_t r1 = tile_start(rows, tiles, t + 1);
                    const size_t l0 = min_size((t - g0) * lines, 2 * kpc);
                    const size_t l1 = min_size(l0 + lines, 2 * kpc);
                    const uint16_t *next = p + 1 < p1 ? b + kp * 2 * CK_BF16_NR + l0 * 32 : NULL;
                    tile_packed(r1 - r0, kpc, ap + (t - g0) * CK_BF16_MR * kpc, b,
                                y + (m0 + r0) * N + p * CK_BF16_NR, N, nr, pc > 0, next,
                                next ? l1 - l0 : 0);
                }
            }
        }
    }
}

// x: (M, K) float  packed: from ck_pack_bf16  y: (M, N)
// As ck_matmul_f32_avx512: results depend neither on the thread count nor on M. Each thread
// keeps a MC x KPC packing buffer of pairs (84 KiB) on its stack.
void ck_matmul_bf16_avx512(const float *x, const uint16_t *packed, float *y, size_t M, size_t N,
                           size_t K) {
    if (M == 0 || N == 0) return;
    if (K == 0) {
        memset(y, 0, M * N * sizeof *y);
        return;
    }
    const size_t tiles_m = tile_count(M, CK_BF16_MR);
    const size_t panels = (N + CK_BF16_NR - 1) / CK_BF16_NR;
    size_t nt = (size_t)omp_get_max_threads();
    if (nt > tiles_m * panels) nt = tiles_m * panels;
    if (M * N * K < 65536) nt = 1;  // twice the float threshold: twice the flops per cycle
#pragma omp parallel num_threads((int)nt)
    {
        size_t t0, t1, p0, p1;
        thread_share(omp_get_num_threads(), omp_get_thread_num(), tiles_m, panels, &t0, &t1, &p0,
                     &p1);
        if (t0 < t1 && p0 < p1)
            gemm_block_bf16(x, packed, y, N, K, t0 * CK_BF16_MR, min_size(t1 * CK_BF16_MR, M), p0,
                            p1);
    }
}

// ---------------------------------------------------------------------------------------------
// Reference
// ---------------------------------------------------------------------------------------------

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
                acc += f32_from_bf16(bf16_from_f32(xm[k])) * f32_from_bf16(wn[k]);
            y[m * N + n] = acc;
        }
    }
}
