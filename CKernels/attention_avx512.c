// attention_avx512.c — attention with AVX-512 F/BW/VL: the pieces of standard attention that
// attention.c schedules (as the AVX2 ones, with 16-lane vectors), and the key-major tile of
// streaming attention of attention_avx2.c with 16-lane vectors, 32 registers and lane masks.
// Zen 4 runs a 512-bit FMA as two 256-bit halves, so the gain over AVX2 is not more flops per
// cycle but fewer instructions per flop: a broadcast folds into its FMA, masks replace the
// scalar tails, and the larger register file holds micro-tiles that reuse each load more.
//
// Shapes as in attention.c: q, out: (T, Hq, D)  k, v: (Hkv, cap, D).
#include "attention_internal.h"
#include "ckernels.h"
#include "simd_avx512.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))
#define AVX512_INLINE \
    static inline __attribute__((always_inline, target("avx512f,avx512bw,avx512vl")))


// Below CK_ATTENTION_AVX512_MIN_ROWS rows (decode) a tile is computed row-major, by the decode
// tile at the end of this file for head size ROWS_D (each K and V row read once, whole output
// rows in registers), by the AVX2 tile for other head sizes.
#define ROWS_D CK_ATTENTION_AVX512_ROWS_D
AVX512 static void tile_rows_f32_avx512(const struct attn_tile *w);

// Keys of one S^T micro-tile: 8 keys x 32 rows = 16 accumulators plus 2 query vectors; each
// key element is a broadcast memory operand of its FMAs.
#define TILE_KEYS 8
// Rows of one P·V micro-tile: 6 rows x 64 output columns = 24 accumulators plus 4 vectors of V.
#define TILE_ROWS 6

// Rows of P·V group g of `groups` = ceil(nr / TILE_ROWS): the tile's rows split as evenly as the
// groups allow (32 rows as 6, 6, 5, 5, 5, 5, not five 6s and a 2, whose micro-tile loads V's
// columns for two rows' products only). Each group reads V once either way.
static inline size_t pv_group_rows(size_t nr, size_t groups, size_t g) {
    return nr / groups + (g < nr % groups);
}

// CALL(R) with the constant R = rows (1 .. TILE_ROWS), so that each P·V micro-tile is compiled
// for its row count.
#define PV_ROWS_CASES(rows, CALL)                                                          \
    switch (rows) {                                                                        \
    case 6: CALL(6); break;                                                                \
    case 5: CALL(5); break;                                                                \
    case 4: CALL(4); break;                                                                \
    case 3: CALL(3); break;                                                                \
    case 2: CALL(2); break;                                                                \
    case 1: CALL(1); break;                                                                \
    default: break;                                                                        \
    }
_Static_assert(TILE_ROWS == 6, "PV_ROWS_CASES has a case for every row count up to TILE_ROWS");

// The first `n` lanes (n clamped to 0 .. 16).
AVX512_INLINE __mmask16 first_lanes(long n) {
    if (n <= 0) return 0;
    if (n >= 16) return 0xffff;
    return (__mmask16)((1u << n) - 1u);
}

// exp512 of x <= 0 or -inf, as the online softmax's s - m' and m - m' are: only the lower clamp
// is needed, so the results are exp512's with one instruction fewer per vector.
AVX512_INLINE __m512 exp512_nonpositive(__m512 x) {
    return exp512_in_range(_mm512_max_ps(_mm512_set1_ps(-104.0f), x));
}

// ---------------------------------------------------------------------------------------------
// Standard attention: the pieces attention.c's schedule runs
// ---------------------------------------------------------------------------------------------

// Keys scored at a time by standard attention: 2 rows x 8 keys = 16 accumulators, plus 8 key
// vectors and a query vector, of the 32 registers.
#define SCORE_KEYS 8

// The 8 horizontal sums of a[0..7], in order: each folded to 256 bits, then a tree of hadds.
AVX512_INLINE __m256 hsum8_512(const __m512 a[SCORE_KEYS]) {
    __m256 h[SCORE_KEYS];
    for (int c = 0; c < SCORE_KEYS; c++)
        h[c] = _mm256_add_ps(_mm512_castps512_ps256(a[c]),
                             _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a[c]), 1)));
    const __m256 u0 = _mm256_hadd_ps(_mm256_hadd_ps(h[0], h[1]), _mm256_hadd_ps(h[2], h[3]));
    const __m256 u1 = _mm256_hadd_ps(_mm256_hadd_ps(h[4], h[5]), _mm256_hadd_ps(h[6], h[7]));
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

// s_r[j] = scale * (q_r · k_j) for rows r < nq (1 or 2) and keys j < n, SCORE_KEYS keys at a
// time; each accumulator holds 16 partial sums over d, the last vector of a row masked.
// q_r: q + r ldq, (D)  k: (n, D)  s_r: s + r lds, (n)
AVX512_INLINE void scores_avx512(const int nq, const float *q, size_t ldq, const float *k,
                                 size_t n, size_t D, float scale, float *s, size_t lds) {
    size_t j = 0;
    for (; j + SCORE_KEYS <= n; j += SCORE_KEYS) {
        const float *kj = k + j * D;
        __m512 a[2][SCORE_KEYS];
        for (int r = 0; r < nq; r++)
            for (int c = 0; c < SCORE_KEYS; c++) a[r][c] = _mm512_setzero_ps();
        for (size_t d = 0; d < D; d += 16) {
            const __mmask16 m = first_lanes((long)(D - d));
            __m512 kv[SCORE_KEYS];
            for (int c = 0; c < SCORE_KEYS; c++) kv[c] = _mm512_maskz_loadu_ps(m, kj + c * D + d);
            for (int r = 0; r < nq; r++) {
                const __m512 qv = _mm512_maskz_loadu_ps(m, q + r * ldq + d);
                for (int c = 0; c < SCORE_KEYS; c++) a[r][c] = _mm512_fmadd_ps(qv, kv[c], a[r][c]);
            }
        }
        for (int r = 0; r < nq; r++)
            _mm256_storeu_ps(s + r * lds + j, _mm256_mul_ps(hsum8_512(a[r]), _mm256_set1_ps(scale)));
    }
    for (; j < n; j++) {
        const float *kj = k + j * D;
        __m512 a[2];
        for (int r = 0; r < nq; r++) a[r] = _mm512_setzero_ps();
        for (size_t d = 0; d < D; d += 16) {
            const __mmask16 m = first_lanes((long)(D - d));
            const __m512 kv = _mm512_maskz_loadu_ps(m, kj + d);
            for (int r = 0; r < nq; r++)
                a[r] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + r * ldq + d), kv, a[r]);
        }
        for (int r = 0; r < nq; r++) s[r * lds + j] = scale * _mm512_reduce_add_ps(a[r]);
    }
}

AVX512 static void standard_scores_avx512(int nq, const float *q, size_t ldq, const void *k,
                                          size_t n, size_t D, float scale, float *s, size_t lds) {
    if (nq == 2) scores_avx512(2, q, ldq, k, n, D, scale, s, lds);
    else scores_avx512(1, q, ldq, k, n, D, scale, s, lds);
}

// o_r[d .. d + 16 nv) = sum_j p_r[j] v_j[d .. d + 16 nv) for rows r < nq, columns below D only:
// the rows' columns stay in registers (nq nv accumulators) across all n keys.
AVX512_INLINE void pv_chunk_avx512(const int nq, const int nv, float *o, size_t ldo,
                                   const float *p, size_t ldp, size_t n, const float *v, size_t D,
                                   size_t d) {
    __mmask16 mk[8];
    __m512 a[2][8];
    for (int u = 0; u < nv; u++) mk[u] = first_lanes((long)D - (long)(d + 16 * (size_t)u));
    for (int r = 0; r < nq; r++)
        for (int u = 0; u < nv; u++) a[r][u] = _mm512_setzero_ps();
    for (size_t j = 0; j < n; j++) {
        __m512 vv[8];
        for (int u = 0; u < nv; u++) vv[u] = _mm512_maskz_loadu_ps(mk[u], v + j * D + d + 16 * u);
        for (int r = 0; r < nq; r++) {
            const __m512 pj = _mm512_set1_ps(p[r * ldp + j]);
            for (int u = 0; u < nv; u++) a[r][u] = _mm512_fmadd_ps(pj, vv[u], a[r][u]);
        }
    }
    for (int r = 0; r < nq; r++)
        for (int u = 0; u < nv; u++) _mm512_mask_storeu_ps(o + r * ldo + d + 16 * u, mk[u], a[r][u]);
}

// 128 columns at a time (2 x 8 accumulators and 8 vectors of V), then 64 (the last masked).
AVX512_INLINE void pv_rows_avx512(const int nq, float *o, size_t ldo, const float *p, size_t ldp,
                                  size_t n, const float *v, size_t D) {
    size_t d = 0;
    for (; d + 128 <= D; d += 128) pv_chunk_avx512(nq, 8, o, ldo, p, ldp, n, v, D, d);
    for (; d < D; d += 64) pv_chunk_avx512(nq, 4, o, ldo, p, ldp, n, v, D, d);
}

AVX512 static void standard_pv_avx512(int nq, float *o, size_t ldo, const float *p, size_t ldp,
                                      size_t n, const void *v, size_t D) {
    if (nq == 2) pv_rows_avx512(2, o, ldo, p, ldp, n, v, D);
    else pv_rows_avx512(1, o, ldo, p, ldp, n, v, D);
}

AVX512 static float max_avx512(const float *x, size_t n) {
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    for (size_t i = 0; i < n; i += 16)
        vmax = _mm512_max_ps(vmax, _mm512_mask_loadu_ps(vmax, first_lanes((long)(n - i)), x + i));
    return _mm512_reduce_max_ps(vmax);
}

// x[i] <- exp(x[i] - shift) in place; returns the sum of the new x.
AVX512 static float exp_shift_sum_avx512(float *x, size_t n, float shift) {
    const __m512 vs = _mm512_set1_ps(shift);
    __m512 sum = _mm512_setzero_ps();
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 m = first_lanes((long)(n - i));
        const __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vs));
        _mm512_mask_storeu_ps(x + i, m, e);
        sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(m, e));
    }
    return _mm512_reduce_add_ps(sum);
}

AVX512 static void softmax_avx512(float *x, size_t n) {
    const __m512 inv = _mm512_set1_ps(1.0f / exp_shift_sum_avx512(x, n, max_avx512(x, n)));
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 m = first_lanes((long)(n - i));
        _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv));
    }
}

// o[0 .. width) = inv * sum_j p[j] v_j[0 .. width) for j < n, v rows D apart (a column slice of
// the head's P·V), 64 columns per pass, the last masked.
AVX512 static void pv_columns_avx512(float *o, const float *p, size_t n, const void *vx,
                                     size_t D, size_t width, float inv) {
    const float *v = vx;
    for (size_t d = 0; d < width; d += 64) {
        __mmask16 mk[4];
        __m512 a[4];
        for (int u = 0; u < 4; u++) {
            mk[u] = first_lanes((long)width - (long)(d + 16 * (size_t)u));
            a[u] = _mm512_setzero_ps();
        }
        for (size_t j = 0; j < n; j++) {
            const __m512 pj = _mm512_set1_ps(p[j]);
            for (int u = 0; u < 4; u++)
                a[u] = _mm512_fmadd_ps(pj, _mm512_maskz_loadu_ps(mk[u], v + j * D + d + 16 * u), a[u]);
        }
        for (int u = 0; u < 4; u++)
            _mm512_mask_storeu_ps(o + d + 16 * u, mk[u], _mm512_mul_ps(a[u], _mm512_set1_ps(inv)));
    }
}

static const struct attn_standard_ops standard_avx512 = {
    .scores = standard_scores_avx512, .softmax = softmax_avx512, .pv = standard_pv_avx512,
    .max = max_avx512, .exp_shift_sum = exp_shift_sum_avx512, .pv_columns = pv_columns_avx512};

void ck_attention_standard_f32_avx512(const float *q, const float *k, const float *v, float *out,
                                      size_t T, size_t pos0, size_t Hq, size_t Hkv, size_t D,
                                      size_t cap, float scale, float *scratch, int slots) {
    ck_attn_standard(q, k, v, 0, out, T, pos0, Hq, Hkv, D, cap, scale, scratch, slots,
                     &standard_avx512);
}

// ---------------------------------------------------------------------------------------------
// Streaming attention tiles
// ---------------------------------------------------------------------------------------------

// st[c][0 .. 16 ng) = sum_d k_c[d] qp[d][0 .. 16 ng) for keys c < nk.
// qp: (D, lanes)  k: (nk, D)  st: (nk, lanes)
AVX512_INLINE void scores_t_avx512(const int nk, const int ng, const float *qp, size_t lanes,
                                   const float *k, size_t D, float *st) {
    __m512 a[TILE_KEYS][2];
    for (int c = 0; c < nk; c++)
        for (int g = 0; g < ng; g++) a[c][g] = _mm512_setzero_ps();
    for (size_t d = 0; d < D; d++) {
        __m512 qv[2];
        for (int g = 0; g < ng; g++) qv[g] = _mm512_loadu_ps(qp + d * lanes + 16 * g);
        for (int c = 0; c < nk; c++) {
            const __m512 kc = _mm512_set1_ps(k[c * D + d]);
            for (int g = 0; g < ng; g++) a[c][g] = _mm512_fmadd_ps(kc, qv[g], a[c][g]);
        }
    }
    for (int c = 0; c < nk; c++)
        for (int g = 0; g < ng; g++) _mm512_storeu_ps(st + c * lanes + 16 * g, a[c][g]);
}

AVX512_INLINE void scores_t_keys_avx512(const int ng, const float *qp, size_t lanes,
                                        const float *k, size_t n, size_t D, float *st) {
    size_t c = 0;
    for (; c + TILE_KEYS <= n; c += TILE_KEYS)
        scores_t_avx512(TILE_KEYS, ng, qp, lanes, k + c * D, D, st + c * lanes);
    k += c * D;
    st += c * lanes;
    switch (n - c) {
    case 7: scores_t_avx512(7, ng, qp, lanes, k, D, st); break;
    case 6: scores_t_avx512(6, ng, qp, lanes, k, D, st); break;
    case 5: scores_t_avx512(5, ng, qp, lanes, k, D, st); break;
    case 4: scores_t_avx512(4, ng, qp, lanes, k, D, st); break;
    case 3: scores_t_avx512(3, ng, qp, lanes, k, D, st); break;
    case 2: scores_t_avx512(2, ng, qp, lanes, k, D, st); break;
    case 1: scores_t_avx512(1, ng, qp, lanes, k, D, st); break;
    default: break;
    }
}

// The first half of the online softmax of the 16 rows in lanes i0 .. i0+15 over keys c < n of
// the block (as softmax_t_avx2): in the diagonal block the keys past a row's position become
// -inf in st; then m' = max(m, max s), stored with alpha = exp(m - m'). Returns the shift every
// score is exponentiated at: m', or 0 for a row that has seen only masked keys (m' = -inf).
// st: the block's scores from lane i0, (n, lanes)
// block_max: the rows' maxima over the block if the caller has them (not in the diagonal
// block), else NULL.
AVX512_INLINE __m512 softmax_max_t(const struct attn_tile *w, const struct attn_slot *b,
                                   float *st, size_t i0, size_t j0, size_t n, int diagonal,
                                   const float *block_max, const float unit) {
    const size_t lanes = attn_lanes(w->q_block);
    const __m512 minus_inf = _mm512_set1_ps(-INFINITY);
    const __m512 mold = _mm512_loadu_ps(b->m + i0);
    __m512 bmax = block_max != NULL ? _mm512_loadu_ps(block_max) : minus_inf;
    for (size_t c = 0; block_max == NULL && c < n; c++) {
        __m512 s = _mm512_loadu_ps(st + c * lanes);
        if (diagonal) {
            const long lim = (long)w->G * ((long)(j0 + c) - (long)w->pos0) - (long)w->r0;
            s = _mm512_mask_mov_ps(s, first_lanes(lim - (long)i0), minus_inf);
            _mm512_storeu_ps(st + c * lanes, s);
        }
        bmax = _mm512_max_ps(bmax, s);
    }
    const __m512 mnew = _mm512_max_ps(mold, bmax);
    const __m512 shift =
        _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(mnew, minus_inf, _CMP_NEQ_UQ), mnew);
    __m512 x = _mm512_sub_ps(mold, shift);
    if (unit != 1.0f) x = _mm512_mul_ps(x, _mm512_set1_ps(unit));
    _mm512_storeu_ps(b->alpha + i0, exp512_nonpositive(x));
    _mm512_storeu_ps(b->m + i0, mnew);
    return shift;
}

// The second half's last step: l = alpha l + sum, sum the row's new weights.
AVX512_INLINE void softmax_sum_t(const struct attn_slot *b, size_t i0, __m512 sum) {
    const __m512 alpha = _mm512_loadu_ps(b->alpha + i0);
    _mm512_storeu_ps(b->l + i0, _mm512_fmadd_ps(alpha, _mm512_loadu_ps(b->l + i0), sum));
}

// Online softmax of the 16 rows in lanes i0 .. i0+15: st's scores become the weights p =
// exp(s - m'), and those of keys n .. jn-1 (past the rows' ends) 0.
AVX512_INLINE void softmax_t_avx512(const struct attn_tile *w, const struct attn_slot *b,
                                    size_t i0, size_t j0, size_t n, size_t jn, int diagonal) {
    const size_t lanes = attn_lanes(w->q_block);
    float *st = b->s + i0;
    const __m512 shift = softmax_max_t(w, b, st, i0, j0, n, diagonal, NULL, 1.0f);
    __m512 sum = _mm512_setzero_ps();
    for (size_t c = 0; c < n; c++) {
        const __m512 p = exp512_nonpositive(_mm512_sub_ps(_mm512_loadu_ps(st + c * lanes), shift));
        _mm512_storeu_ps(st + c * lanes, p);
        sum = _mm512_add_ps(sum, p);
    }
    for (size_t c = n; c < jn; c++) _mm512_storeu_ps(st + c * lanes, _mm512_setzero_ps());
    softmax_sum_t(b, i0, sum);
}

// Whether a P·V micro-tile must rescale its rows' accumulators: not when every alpha_r of its nr
// rows is exactly 1 (no row's running maximum moved in this block, as in most blocks of a long
// row), where multiplying by alpha would change nothing, bit for bit.
AVX512_INLINE int any_alpha_not_one(const float *alpha, int nr) {
    const __mmask16 m = first_lanes(nr);
    return _mm512_mask_cmp_ps_mask(m, _mm512_maskz_loadu_ps(m, alpha), _mm512_set1_ps(1.0f),
                                   _CMP_NEQ_UQ) != 0;
}

// acc_r[d .. d+64) = alpha_r acc_r + sum_c pt[c][r] v_c[d .. d+64) for rows r < nr, columns
// below D only. acc: (nr, D) from row 0  pt: (n, lanes) from lane 0  v: (n, D)
AVX512_INLINE void pv_t_avx512(const int nr, float *acc, const float *alpha, const float *pt,
                               size_t lanes, size_t n, const float *v, size_t D, size_t d) {
    __mmask16 mk[4];
    for (int u = 0; u < 4; u++) mk[u] = first_lanes((long)D - (long)(d + 16 * u));
    __m512 a[TILE_ROWS][4];
    const int rescale = any_alpha_not_one(alpha, nr);
    for (int r = 0; r < nr; r++) {
        const __m512 al = _mm512_set1_ps(alpha[r]);
        for (int u = 0; u < 4; u++) {
            a[r][u] = _mm512_maskz_loadu_ps(mk[u], acc + r * D + d + 16 * u);
            if (rescale) a[r][u] = _mm512_mul_ps(al, a[r][u]);
        }
    }
    for (size_t c = 0; c < n; c++) {
        __m512 vv[4];
        for (int u = 0; u < 4; u++) vv[u] = _mm512_maskz_loadu_ps(mk[u], v + c * D + d + 16 * u);
        for (int r = 0; r < nr; r++) {
            const __m512 p = _mm512_set1_ps(pt[c * lanes + r]);
            for (int u = 0; u < 4; u++) a[r][u] = _mm512_fmadd_ps(p, vv[u], a[r][u]);
        }
    }
    for (int r = 0; r < nr; r++)
        for (int u = 0; u < 4; u++) _mm512_mask_storeu_ps(acc + r * D + d + 16 * u, mk[u], a[r][u]);
}

// S^T of a KV block for 32 lanes and for 16, each its own function so that the micro-kernel's
// loop gets the general registers to itself.
AVX512 __attribute__((noinline)) static void scores_keys32_avx512(const float *qp, size_t lanes,
                                                                  const float *k, size_t n,
                                                                  size_t D, float *st) {
    scores_t_keys_avx512(2, qp, lanes, k, n, D, st);
}

AVX512 __attribute__((noinline)) static void scores_keys16_avx512(const float *qp, size_t lanes,
                                                                  const float *k, size_t n,
                                                                  size_t D, float *st) {
    scores_t_keys_avx512(1, qp, lanes, k, n, D, st);
}

// P·V of every row of the tile, each group of rows over the keys its last row sees (keys
// j0 .. j0+jn-1 of the block). Columns outermost, 64 at a time: those columns of V's rows stay
// in L1 while every row group reads them.
AVX512 __attribute__((noinline)) static void pv_block_avx512(const struct attn_tile *w,
                                                             const struct attn_slot *b,
                                                             size_t j0, size_t jn,
                                                             const float *v) {
    const size_t D = w->D, lanes = attn_lanes(w->q_block), nr = w->nr;
    const size_t groups = (nr + TILE_ROWS - 1) / TILE_ROWS;
    for (size_t d = 0; d < D; d += 64)
        for (size_t g = 0, i = 0; g < groups; g++) {
            const size_t rows = pv_group_rows(nr, groups, g);
            const size_t n = attn_row_keys(w, i + rows - 1, j0, jn);
            float *acc = b->acc + i * D;
            const float *alpha = b->alpha + i, *pt = b->s + i;
#define PV(R) pv_t_avx512(R, acc, alpha, pt, lanes, n, v, D, d)
            PV_ROWS_CASES(rows, PV);
#undef PV
            i += rows;
        }
}

AVX512 void ck_attn_tile_avx512(const struct attn_tile *w) {
    if (w->nr < CK_ATTENTION_AVX512_MIN_ROWS) {
        if (w->D == ROWS_D) tile_rows_f32_avx512(w);
        else ck_attn_tile_avx2(w);
        return;
    }
    const struct attn_slot b = attn_slot_of(w);
    const size_t D = w->D, kvb = w->kv_block, nr = w->nr, lanes = attn_lanes(w->q_block);
    const size_t used = (nr + 15) / 16 * 16;  // lanes computed: whole vectors
    attn_slot_start(w, &b);
    ck_attn_pack_qt_avx2(w, b.qp, lanes, used);
    const size_t kv_end = attn_row_key_end(w, w->r0 + nr - 1);
    const size_t first_pos = attn_row_pos(w, w->r0);
    for (size_t j0 = w->key_lo; j0 < kv_end; j0 += kvb) {
        const size_t jn = attn_min(kvb, kv_end - j0);
        const float *kb = w->kh + j0 * D, *vb = w->vh + j0 * D;
        attn_prefetch_next(w, j0, kv_end);
        // Each group of lanes or rows goes as far as the keys of its last row: in the diagonal
        // block, micro-tiles wholly above the diagonal are skipped.
        const size_t last = nr - 1;
        size_t i0 = 0;
        for (; i0 + 32 <= used; i0 += 32)
            scores_keys32_avx512(b.qp + i0, lanes, kb,
                                 attn_row_keys(w, attn_min(i0 + 31, last), j0, jn), D, b.s + i0);
        if (i0 < used)
            scores_keys16_avx512(b.qp + i0, lanes, kb, attn_row_keys(w, last, j0, jn), D,
                                 b.s + i0);
        const int diagonal = j0 + jn > first_pos + 1;
        for (i0 = 0; i0 < used; i0 += 16)
            softmax_t_avx512(w, &b, i0, j0, attn_row_keys(w, attn_min(i0 + 15, last), j0, jn), jn,
                             diagonal);
        pv_block_avx512(w, &b, j0, jn, vb);
    }
    if (w->partial) return;
    for (size_t i = 0; i < nr; i++) {
        float *o = w->out + attn_row_offset(w, i);
        const __m512 inv = _mm512_set1_ps(1.0f / b.l[i]);
        for (size_t d = 0; d < D; d += 16) {
            const __mmask16 mk = first_lanes((long)(D - d));
            const __m512 a = _mm512_maskz_loadu_ps(mk, b.acc + i * D + d);
            _mm512_mask_storeu_ps(o + d, mk, _mm512_mul_ps(a, inv));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A bf16 cache with AVX512_BF16: vdpbf16ps multiplies pairs of bf16 and adds both products to
// an f32 lane, twice the multiply-adds of an FMA per instruction. Queries enter as
// bf16(scale q) and probabilities are rounded to bf16 before P·V (as FlashAttention does in
// bf16); scores, the online softmax, l, the accumulators and out stay f32. The rounding points
// of ck_attention_*_bf16_ref; the streaming tile rounds bf16(scale log2(e) q) instead, so that
// its scores are in log2 units, and its weights come from a cheaper exp than the f32 one
// (exp2_weights_bf16, 7.5e-5 relative), which that rounding to bf16 hides. Head sizes
// vdpbf16ps cannot pair (odd, or above CK_ATTENTION_BF16_MAX_D) take the AVX2 pieces, which
// widen the cache to f32. The tile's vreduceps is AVX512DQ, which ck_cpu_has_avx512_bf16 checks
// too.
// ---------------------------------------------------------------------------------------------

#define AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))
#define LN2 0.693147180559945309f
#define AVX512BF16_INLINE \
    static inline __attribute__((always_inline, \
                                 target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))

static int bf16_pairs_fit(size_t D) { return D % 2 == 0 && D <= CK_ATTENTION_BF16_MAX_D; }

// The 32 bf16 lanes of x (low 16 = a, high 16 = b) reordered as pairs (a_i, b_i).
AVX512BF16_INLINE __m512i interleave_halves(__m512i x) {
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9,
                                         24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1,
                                         16, 0);
    return _mm512_permutexvar_epi16(idx, x);
}

// 16 bf16 widened to f32, the first `valid` of them (exact).
AVX512_INLINE __m512 load_bf16x16(const uint16_t *x, long valid) {
    const __m256i h = _mm256_maskz_loadu_epi16(first_lanes(valid), x);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// Standard attention's pieces. Scores: the rows' bf16(scale q) once per call, then 32 elements
// of 8 keys at a time (2 x 8 accumulators, as scores_avx512).
AVX512BF16_INLINE void scores_bf16(const int nq, const float *q, size_t ldq, const uint16_t *k,
                                   size_t n, size_t D, float scale, float *s, size_t lds) {
    uint16_t qb[2][CK_ATTENTION_BF16_MAX_D];
    for (int r = 0; r < nq; r++)
        for (size_t d = 0; d < D; d++) qb[r][d] = ck_bf16_from_f32(scale * q[r * ldq + d]);
    size_t j = 0;
    for (; j + SCORE_KEYS <= n; j += SCORE_KEYS) {
        __m512 a[2][SCORE_KEYS];
        for (int r = 0; r < nq; r++)
            for (int c = 0; c < SCORE_KEYS; c++) a[r][c] = _mm512_setzero_ps();
        for (size_t d = 0; d < D; d += 32) {
            const __mmask32 m = D - d >= 32 ? 0xffffffffu : (1u << (D - d)) - 1u;
            __m512bh kv[SCORE_KEYS];
            for (int c = 0; c < SCORE_KEYS; c++)
                kv[c] = (__m512bh)_mm512_maskz_loadu_epi16(m, k + (j + c) * D + d);
            for (int r = 0; r < nq; r++) {
                const __m512bh qv = (__m512bh)_mm512_maskz_loadu_epi16(m, qb[r] + d);
                for (int c = 0; c < SCORE_KEYS; c++) a[r][c] = _mm512_dpbf16_ps(a[r][c], qv, kv[c]);
            }
        }
        for (int r = 0; r < nq; r++) _mm256_storeu_ps(s + r * lds + j, hsum8_512(a[r]));
    }
    for (; j < n; j++) {
        __m512 a[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
        for (size_t d = 0; d < D; d += 32) {
            const __mmask32 m = D - d >= 32 ? 0xffffffffu : (1u << (D - d)) - 1u;
            const __m512bh kv = (__m512bh)_mm512_maskz_loadu_epi16(m, k + j * D + d);
            for (int r = 0; r < nq; r++)
                a[r] = _mm512_dpbf16_ps(a[r], (__m512bh)_mm512_maskz_loadu_epi16(m, qb[r] + d), kv);
        }
        for (int r = 0; r < nq; r++) s[r * lds + j] = _mm512_reduce_add_ps(a[r]);
    }
}

AVX512BF16 static void standard_scores_bf16_avx512(int nq, const float *q, size_t ldq,
                                                   const void *k, size_t n, size_t D, float scale,
                                                   float *s, size_t lds) {
    if (nq == 2) scores_bf16(2, q, ldq, k, n, D, scale, s, lds);
    else scores_bf16(1, q, ldq, k, n, D, scale, s, lds);
}

// P·V of materialised rows: a key's V row serves only nq <= 2 rows, too few to pay for pairing
// keys, so V is widened (exact) and multiplied by bf16(p) in f32: the products are those of
// vdpbf16ps, the rounding points the same.
AVX512_INLINE void pv_bf16_rows(const int nq, float *o, size_t ldo, const float *p, size_t ldp,
                                size_t n, const uint16_t *v, size_t D) {
    for (size_t d = 0; d < D; d += 64) {
        __m512 a[2][4];
        for (int r = 0; r < nq; r++)
            for (int u = 0; u < 4; u++) a[r][u] = _mm512_setzero_ps();
        for (size_t j = 0; j < n; j++) {
            __m512 vv[4];
            for (int u = 0; u < 4; u++)
                vv[u] = load_bf16x16(v + j * D + d + 16 * u, (long)D - (long)(d + 16 * u));
            for (int r = 0; r < nq; r++) {
                const __m512 pj = _mm512_set1_ps(attn_round_bf16(p[r * ldp + j]));
                for (int u = 0; u < 4; u++) a[r][u] = _mm512_fmadd_ps(pj, vv[u], a[r][u]);
            }
        }
        for (int r = 0; r < nq; r++)
            for (int u = 0; u < 4; u++)
                _mm512_mask_storeu_ps(o + r * ldo + d + 16 * u,
                                      first_lanes((long)D - (long)(d + 16 * u)), a[r][u]);
    }
}

AVX512 static void standard_pv_bf16_avx512(int nq, float *o, size_t ldo, const float *p,
                                           size_t ldp, size_t n, const void *v, size_t D) {
    if (nq == 2) pv_bf16_rows(2, o, ldo, p, ldp, n, v, D);
    else pv_bf16_rows(1, o, ldo, p, ldp, n, v, D);
}

AVX512 static void pv_columns_bf16_avx512(float *o, const float *p, size_t n, const void *vx,
                                          size_t D, size_t width, float inv) {
    const uint16_t *v = vx;
    for (size_t d = 0; d < width; d += 64) {
        __m512 a[4];
        for (int u = 0; u < 4; u++) a[u] = _mm512_setzero_ps();
        for (size_t j = 0; j < n; j++) {
            const __m512 pj = _mm512_set1_ps(attn_round_bf16(p[j]));
            for (int u = 0; u < 4; u++)
                a[u] = _mm512_fmadd_ps(
                    pj, load_bf16x16(v + j * D + d + 16 * u, (long)width - (long)(d + 16 * u)),
                    a[u]);
        }
        for (int u = 0; u < 4; u++)
            _mm512_mask_storeu_ps(o + d + 16 * u, first_lanes((long)width - (long)(d + 16 * u)),
                                  _mm512_mul_ps(a[u], _mm512_set1_ps(inv)));
    }
}

static const struct attn_standard_ops standard_bf16_avx512 = {
    .scores = standard_scores_bf16_avx512, .softmax = softmax_avx512,
    .pv = standard_pv_bf16_avx512, .max = max_avx512, .exp_shift_sum = exp_shift_sum_avx512,
    .pv_columns = pv_columns_bf16_avx512};

void ck_attention_standard_bf16_avx512(const float *q, const uint16_t *k, const uint16_t *v,
                                       float *out, size_t T, size_t pos0, size_t Hq, size_t Hkv,
                                       size_t D, size_t cap, float scale, float *scratch,
                                       int slots) {
    if (!bf16_pairs_fit(D)) {
        ck_attention_standard_bf16_avx2(q, k, v, out, T, pos0, Hq, Hkv, D, cap, scale, scratch,
                                        slots);
        return;
    }
    ck_attn_standard(q, k, v, 1, out, T, pos0, Hq, Hkv, D, cap, scale, scratch, slots,
                     &standard_bf16_avx512);
}

// 16 floats rounded to bfloat16 as ck_bf16_from_f32 rounds them (to nearest even, NaN kept
// quiet), each in the high half of its lane, the low half 0.
AVX512_INLINE __m512i round_bf16_high(__m512 x) {
    const __m512i u = _mm512_castps_si512(x);
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), odd);
    r = _mm512_mask_or_epi32(r, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), u,
                             _mm512_set1_epi32(0x00400000));
    return _mm512_and_si512(r, _mm512_set1_epi32((int)0xffff0000u));
}

// Streaming tiles. Queries as pairs: word e of lane i is (bf16(c q_i[2e]), bf16(c q_i[2e+1])),
// c = scale log2(e), so a key's pair k[2e], k[2e+1] broadcast against it adds two products per
// lane and the scores come out in log2 units, as the tile's exp2 takes them (exp2_weights_bf16);
// the rounding to bf16 is the reference's, of a vector log2(e) times longer.
// qp: (D / 2, lanes) words; lanes nr .. used-1 are 0. The rows go transposed and scaled in f32
// first (ck_attn_pack_qt_avx2's 8 x 8 transposes, into the same floats), then rows 2e and 2e+1
// of that are rounded and paired into word row e in place: row e is written only after every
// row it held was read (at e / 2 <= e), and rows 2e, 2e+1 are read just before it.
AVX512BF16 static void pack_q_pairs(const struct attn_tile *w, float *qf, size_t lanes,
                                    size_t used) {
    ck_attn_pack_qt_avx2(w, qf, lanes, used);
    uint32_t *qp = (uint32_t *)qf;
    const __m512 log2e = _mm512_set1_ps(1.44269504088896341f);
    for (size_t e = 0; e < w->D / 2; e++)
        for (size_t i0 = 0; i0 < used; i0 += 16) {
            const __m512i a =
                round_bf16_high(_mm512_mul_ps(_mm512_loadu_ps(qf + 2 * e * lanes + i0), log2e));
            const __m512i b = round_bf16_high(
                _mm512_mul_ps(_mm512_loadu_ps(qf + (2 * e + 1) * lanes + i0), log2e));
            _mm512_storeu_si512(qp + e * lanes + i0, _mm512_or_si512(_mm512_srli_epi32(a, 16), b));
        }
}

// a[c][g] = sum_e qp[e][16 g ..] · (k_c[2e], k_c[2e+1]) for keys c < nk and lane groups g < ng:
// the dot products of the score and weight micro-tiles.  qp: (D/2, lanes)  k: (nk, D)
AVX512BF16_INLINE void dots_t_bf16(const int nk, const int ng, const uint32_t *qp, size_t lanes,
                                   const uint16_t *k, size_t D, __m512 a[TILE_KEYS][2]) {
    for (int c = 0; c < nk; c++)
        for (int g = 0; g < ng; g++) a[c][g] = _mm512_setzero_ps();
    for (size_t e = 0; e < D / 2; e++) {
        __m512bh qv[2];
        for (int g = 0; g < ng; g++)
            qv[g] = (__m512bh)_mm512_loadu_si512(qp + e * lanes + 16 * g);
        for (int c = 0; c < nk; c++) {
            uint32_t kw;
            memcpy(&kw, k + c * D + 2 * e, sizeof kw);
            const __m512bh kc = (__m512bh)_mm512_set1_epi32((int)kw);
            for (int g = 0; g < ng; g++) a[c][g] = _mm512_dpbf16_ps(a[c][g], qv[g], kc);
        }
    }
}

// st[c][0 .. 16 ng) = those dot products, and each lane of mx raised to its maximum over them:
// the shape of scores_t_avx512 with half the steps over D.  st: (nk, lanes)  mx: (16 ng)
AVX512BF16_INLINE void scores_t_bf16(const int nk, const int ng, const uint32_t *qp, size_t lanes,
                                     const uint16_t *k, size_t D, float *st, float *mx) {
    __m512 a[TILE_KEYS][2];
    dots_t_bf16(nk, ng, qp, lanes, k, D, a);
    for (int c = 0; c < nk; c++)
        for (int g = 0; g < ng; g++) _mm512_storeu_ps(st + c * lanes + 16 * g, a[c][g]);
    for (int g = 0; g < ng; g++) {
        __m512 m = _mm512_loadu_ps(mx + 16 * g);
        for (int c = 0; c < nk; c++) m = _mm512_max_ps(m, a[c][g]);
        _mm512_storeu_ps(mx + 16 * g, m);
    }
}

AVX512BF16_INLINE void scores_t_keys_bf16(const int ng, const uint32_t *qp, size_t lanes,
                                          const uint16_t *k, size_t n, size_t D, float *st,
                                          float *mx, const struct attn_next_block *nb) {
    size_t c = 0;
    for (; c + TILE_KEYS <= n; c += TILE_KEYS) {
        if (nb != NULL) attn_prefetch_keys(nb, c, c + TILE_KEYS);
        scores_t_bf16(TILE_KEYS, ng, qp, lanes, k + c * D, D, st + c * lanes, mx);
    }
    if (nb != NULL) attn_prefetch_keys(nb, c, nb->keys);
    k += c * D;
    st += c * lanes;
    switch (n - c) {
    case 7: scores_t_bf16(7, ng, qp, lanes, k, D, st, mx); break;
    case 6: scores_t_bf16(6, ng, qp, lanes, k, D, st, mx); break;
    case 5: scores_t_bf16(5, ng, qp, lanes, k, D, st, mx); break;
    case 4: scores_t_bf16(4, ng, qp, lanes, k, D, st, mx); break;
    case 3: scores_t_bf16(3, ng, qp, lanes, k, D, st, mx); break;
    case 2: scores_t_bf16(2, ng, qp, lanes, k, D, st, mx); break;
    case 1: scores_t_bf16(1, ng, qp, lanes, k, D, st, mx); break;
    default: break;
    }
}

AVX512BF16 __attribute__((noinline)) static void scores_keys32_bf16(
    const uint32_t *qp, size_t lanes, const uint16_t *k, size_t n, size_t D, float *st, float *mx,
    const struct attn_next_block *nb) {
    scores_t_keys_bf16(2, qp, lanes, k, n, D, st, mx, nb);
}

AVX512BF16 __attribute__((noinline)) static void scores_keys16_bf16(
    const uint32_t *qp, size_t lanes, const uint16_t *k, size_t n, size_t D, float *st, float *mx,
    const struct attn_next_block *nb) {
    scores_t_keys_bf16(1, qp, lanes, k, n, D, st, mx, nb);
}

// The weights of the bf16 tile: 2^t for 16 values t = s2 - m2, its scores s2 and the rows'
// maxima m2 being in log2 units (pack_q_pairs scales q by log2(e)), so t costs one vsubps, on a
// pipe the dot products leave free. f = t - floor(t) in [0, 1] (vreduceps; 1 when t is just
// below an integer and the difference rounds up), 2^f by a degree-3 minimax polynomial, and
// vscalefps multiplies by 2^floor(t), underflowing gradually, so t = -inf (a masked score) gives
// exactly +0 with no clamp. Six instructions where exp512_nonpositive takes fourteen: the weights
// are rounded to bf16 (relative error 2^-9) before P·V, so the f32 exp's 2^-23 is wasted there.
// Relative error of the result, against 2^t of the f32 s2 and m2 (u = 2^-24):
//   polynomial: |p(f) / 2^f - 1| <= 7.48e-5 (2^-13.7) on [0, 1], Remez on relative error with
//     the coefficients rounded to f32 and Horner's three FMA roundings included (measured on 5M
//     points; the rounding adds under 1e-7);
//   argument: t carries the subtraction's rounding, u |t|, which 2^t turns into a relative
//     ln(2) u |t|; f is t - floor(t) rounded (at most u more), and vscalefps is exact above
//     2^-126 (below, within 2^-150 absolute).
// In natural units, |t| = |s - m| log2(e), so |w / exp(s - m) - 1| <= 7.5e-5 + u (|s - m| + 1),
// within the bound that ck_attention_weights_bf16_avx512 (below, which takes natural units and
// so adds the roundings of s log2(e) - m log2(e)) is tested against: 7.5e-5 + u (2 |s - m| +
// |m| + 1), a fifth of the bf16 rounding that follows it. l sums these same f32 weights (the
// ones rounded for P·V), so this error is one a weight shares between P·V and l: the output
// stays a convex combination of V's rows, moved by at most 2 (7.5e-5 + ...) max |v|
// (AttentionBF16Tests' bound), unlike the bf16 rounding, which l does not see.
AVX512BF16_INLINE __m512 exp2_weights_bf16(__m512 t) {
    const __m512 f = _mm512_reduce_ps(t, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    __m512 p = _mm512_set1_ps(7.8024521470e-2f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.2606715560e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.9583356380e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.9992519617e-1f));
    return _mm512_scalef_ps(p, t);
}

// exp(s - m) by the tile's weights, the argument taken to log2 units in one FMA.
AVX512BF16 void ck_attention_weights_bf16_avx512(const float *s, size_t n, float m, float *w) {
    const __m512 log2e = _mm512_set1_ps(1.44269504088896341f);
    const __m512 shift = _mm512_set1_ps(m * 1.44269504088896341f);
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 mk = first_lanes((long)(n - i));
        const __m512 t = _mm512_fmsub_ps(_mm512_maskz_loadu_ps(mk, s + i), log2e, shift);
        _mm512_mask_storeu_ps(w + i, mk, exp2_weights_bf16(t));
    }
}

// The online softmax of the 16 rows in lanes i0 .. i0+15 (softmax_t_avx512), its weights
// written straight into P^T as bf16 pairs of consecutive keys, never back into st:
// pp[c/2][lane] = (bf16(p[c][lane]), bf16(p[c+1][lane])), the partner of an odd last key 0, and
// the pairs of keys n .. jn-1 (past the rows' ends) 0. l sums the weights unrounded, in key
// order. vcvtne2ps2bf16 rounds as the reference but for subnormal weights (below 2^-126), which
// it flushes to zero: they weigh nothing a float32 sum of weights up to 1 could show.
AVX512BF16_INLINE void softmax_pairs_bf16(const struct attn_tile *w, const struct attn_slot *b,
                                          size_t i0, size_t j0, size_t n, size_t jn,
                                          int diagonal) {
    const size_t lanes = attn_lanes(w->q_block);
    float *st = b->s + i0;
    uint32_t *pp = b->pp + i0;
    const __m512 shift =
        softmax_max_t(w, b, st, i0, j0, n, diagonal, diagonal ? NULL : b->alpha + i0, LN2);
    __m512 sum = _mm512_setzero_ps();
    size_t c = 0;
    for (; c + 2 <= n; c += 2) {
        const __m512 pa = exp2_weights_bf16(_mm512_sub_ps(_mm512_loadu_ps(st + c * lanes), shift));
        const __m512 pb =
            exp2_weights_bf16(_mm512_sub_ps(_mm512_loadu_ps(st + (c + 1) * lanes), shift));
        sum = _mm512_add_ps(_mm512_add_ps(sum, pa), pb);
        _mm512_storeu_si512(pp + c / 2 * lanes,
                            interleave_halves((__m512i)_mm512_cvtne2ps_pbh(pb, pa)));
    }
    if (c < n) {
        const __m512 pa = exp2_weights_bf16(_mm512_sub_ps(_mm512_loadu_ps(st + c * lanes), shift));
        sum = _mm512_add_ps(sum, pa);
        _mm512_storeu_si512(pp + c / 2 * lanes, interleave_halves((__m512i)_mm512_cvtne2ps_pbh(
                                                    _mm512_setzero_ps(), pa)));
        c += 2;
    }
    for (; c < jn; c += 2) _mm512_storeu_si512(pp + c / 2 * lanes, _mm512_setzero_si512());
    softmax_sum_t(b, i0, sum);
}

// Lazy rescaling (as FlashAttention-4 does): a block past the tile's first one, off the diagonal,
// takes its weights against the rows' running maxima m instead of the block's, 2^(s - m), so no
// row is rescaled (alpha stays 1, which pv_t_bf16 skips) and no score is stored: each score
// micro-tile turns its accumulators straight into P^T's bf16 pairs, and the softmax's pass over
// the block (a load of 128 KB of scores from L2 at the default tiles, and their exps behind it)
// goes. The math is the online softmax's with a stale reference, which any value is, as long as
// the weights do not overflow: the block is kept only if every row's maximum over it is at most
// m + LAZY_GAP, so weights stay below 2^8 (the f32 sums and accumulators have room to spare, and
// the exp's relative error bound holds as derived: it grows with t = s - m by u per unit only).
// Otherwise (a row's maximum moved that far, or m is not finite) the block runs again the usual
// way, its pairs overwritten and l untouched; in a long row that is rare after the first block.
#define LAZY_GAP 8.0f  // log2 units, as the bf16 tile's scores

// Weights of keys c .. c+7 for 16 ng lanes against shift = m (log2 units): P^T's four pairs of
// keys into pp (pp + c/2 lanes), their sums added to sum and the scores' maxima to mx.
AVX512BF16_INLINE void weights_t_bf16(const int ng, const uint32_t *qp, size_t lanes,
                                      const uint16_t *k, size_t D, uint32_t *pp,
                                      const __m512 shift[2], __m512 sum[2], __m512 mx[2]) {
    __m512 a[TILE_KEYS][2];
    dots_t_bf16(TILE_KEYS, ng, qp, lanes, k, D, a);
    for (int c = 0; c < TILE_KEYS; c += 2)
        for (int g = 0; g < ng; g++) {
            mx[g] = _mm512_max_ps(mx[g], _mm512_max_ps(a[c][g], a[c + 1][g]));
            const __m512 pa = exp2_weights_bf16(_mm512_sub_ps(a[c][g], shift[g]));
            const __m512 pb = exp2_weights_bf16(_mm512_sub_ps(a[c + 1][g], shift[g]));
            sum[g] = _mm512_add_ps(_mm512_add_ps(sum[g], pa), pb);
            _mm512_storeu_si512(pp + c / 2 * lanes + 16 * g,
                                interleave_halves((__m512i)_mm512_cvtne2ps_pbh(pb, pa)));
        }
}

// Keys 0 .. n-1 (n a multiple of TILE_KEYS) of the block for the 16 ng rows in lanes i0 ..:
// their weight pairs into pp, the sums of their weights into sums and the maxima of their
// scores into mx (both (16 ng)), the next block prefetched between micro-tiles if nb.
AVX512BF16_INLINE void weights_keys_bf16(const int ng, const uint32_t *qp, size_t lanes,
                                         const uint16_t *k, size_t n, size_t D, const float *m,
                                         uint32_t *pp, float *sums, float *mx,
                                         const struct attn_next_block *nb) {
    __m512 shift[2], sum[2], bmax[2];
    for (int g = 0; g < ng; g++) {
        shift[g] = _mm512_loadu_ps(m + 16 * g);
        sum[g] = _mm512_setzero_ps();
        bmax[g] = _mm512_set1_ps(-INFINITY);
    }
    for (size_t c = 0; c < n; c += TILE_KEYS) {
        if (nb != NULL) attn_prefetch_keys(nb, c, c + TILE_KEYS);
        weights_t_bf16(ng, qp, lanes, k + c * D, D, pp + c / 2 * lanes, shift, sum, bmax);
    }
    for (int g = 0; g < ng; g++) {
        _mm512_storeu_ps(sums + 16 * g, sum[g]);
        _mm512_storeu_ps(mx + 16 * g, bmax[g]);
    }
}

AVX512BF16 __attribute__((noinline)) static void weights_keys32_bf16(
    const uint32_t *qp, size_t lanes, const uint16_t *k, size_t n, size_t D, const float *m,
    uint32_t *pp, float *sums, float *mx, const struct attn_next_block *nb) {
    weights_keys_bf16(2, qp, lanes, k, n, D, m, pp, sums, mx, nb);
}

AVX512BF16 __attribute__((noinline)) static void weights_keys16_bf16(
    const uint32_t *qp, size_t lanes, const uint16_t *k, size_t n, size_t D, const float *m,
    uint32_t *pp, float *sums, float *mx, const struct attn_next_block *nb) {
    weights_keys_bf16(1, qp, lanes, k, n, D, m, pp, sums, mx, nb);
}

// The block of jn keys at kb (every row of the tile sees all of them) by lazy rescaling, for the
// `used` lanes: 1 with P^T in b->pp, l updated and alpha 1, or 0 with l and m untouched. The
// weights' sums wait in b->s (which this path does not use otherwise) until the check passes.
AVX512BF16 static int lazy_block_bf16(const struct attn_tile *w, const struct attn_slot *b,
                                      size_t used, const uint16_t *kb, size_t jn,
                                      const struct attn_next_block *nb) {
    const size_t lanes = attn_lanes(w->q_block), D = w->D;
    const uint32_t *qp = (const uint32_t *)b->qp;
    size_t i0 = 0;
    for (; i0 + 32 <= used; i0 += 32)
        weights_keys32_bf16(qp + i0, lanes, kb, jn, D, b->m + i0, b->pp + i0, b->s + i0,
                            b->alpha + i0, i0 == 0 ? nb : NULL);
    if (i0 < used)
        weights_keys16_bf16(qp + i0, lanes, kb, jn, D, b->m + i0, b->pp + i0, b->s + i0,
                            b->alpha + i0, i0 == 0 ? nb : NULL);
    for (i0 = 0; i0 < used; i0 += 16) {
        const __m512 m = _mm512_loadu_ps(b->m + i0);
        const __m512 limit = _mm512_add_ps(m, _mm512_set1_ps(LAZY_GAP));
        if (_mm512_cmp_ps_mask(_mm512_loadu_ps(b->alpha + i0), limit, _CMP_LE_OQ) != 0xffff)
            return 0;
    }
    for (i0 = 0; i0 < used; i0 += 16) {
        _mm512_storeu_ps(b->l + i0, _mm512_add_ps(_mm512_loadu_ps(b->l + i0),
                                                   _mm512_loadu_ps(b->s + i0)));
        _mm512_storeu_ps(b->alpha + i0, _mm512_set1_ps(1.0f));
    }
    return 1;
}

// V of keys 0 .. jn-1 with key pairs interleaved: vi[c/2][d] = (v_c[d], v_{c+1}[d]), the
// partner of an odd last key 0.  v: (jn, D)  vi: (jn/2 rounded up, D) words
// Run once per KV head by the schedule (attn_tile.vpairs), or by a tile on each block it reads,
// so whole pairs go 32 columns at a time: two loads and two vpermt2w per 32 pairs; the last key
// of an odd block and columns past a multiple of 32 go 16 at a time, masked.
AVX512BF16 void ck_attn_pack_v_pairs_bf16(const uint16_t *v, size_t jn, size_t D, uint32_t *vi) {
    // Word indices into (x, y), two rows' 32 bf16 with y's numbered from 32: pairs (x_i, y_i)
    // for i < 16, and for 16 <= i < 32.
    const __m512i lo = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40,
                                        8, 39, 7, 38, 6, 37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
    const __m512i hi = _mm512_set_epi16(63, 31, 62, 30, 61, 29, 60, 28, 59, 27, 58, 26, 57, 25,
                                        56, 24, 55, 23, 54, 22, 53, 21, 52, 20, 51, 19, 50, 18,
                                        49, 17, 48, 16);
    for (size_t c = 0; c < jn; c += 2) {
        const uint16_t *x = v + c * D, *y = x + D;
        uint32_t *o = vi + c / 2 * D;
        size_t d = 0;
        if (c + 1 < jn)
            for (; d + 32 <= D; d += 32) {
                const __m512i a = _mm512_loadu_si512(x + d), b = _mm512_loadu_si512(y + d);
                _mm512_storeu_si512(o + d, _mm512_permutex2var_epi16(a, lo, b));
                _mm512_storeu_si512(o + d + 16, _mm512_permutex2var_epi16(a, hi, b));
            }
        for (; d < D; d += 16) {
            const __mmask16 m = first_lanes((long)(D - d));
            const __m256i a = _mm256_maskz_loadu_epi16(m, x + d);
            const __m256i b =
                c + 1 < jn ? _mm256_maskz_loadu_epi16(m, y + d) : _mm256_setzero_si256();
            const __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
            _mm512_mask_storeu_epi32(o + d, m, interleave_halves(both));
        }
    }
}

// acc_r[d .. d+64) = alpha_r acc_r + sum_e pp[e][r] · vi[e][d .. d+64) over key pairs e <
// npairs for rows r < nr: pv_t_avx512 with two keys per instruction.
AVX512BF16_INLINE void pv_t_bf16(const int nr, float *acc, const float *alpha, const uint32_t *pp,
                                 size_t lanes, size_t npairs, const uint32_t *vi, size_t D,
                                 size_t d) {
    __mmask16 mk[4];
    for (int u = 0; u < 4; u++) mk[u] = first_lanes((long)D - (long)(d + 16 * u));
    __m512 a[TILE_ROWS][4];
    const int rescale = any_alpha_not_one(alpha, nr);
    for (int r = 0; r < nr; r++) {
        const __m512 al = _mm512_set1_ps(alpha[r]);
        for (int u = 0; u < 4; u++) {
            a[r][u] = _mm512_maskz_loadu_ps(mk[u], acc + r * D + d + 16 * u);
            if (rescale) a[r][u] = _mm512_mul_ps(al, a[r][u]);
        }
    }
    for (size_t e = 0; e < npairs; e++) {
        __m512bh vv[4];
        for (int u = 0; u < 4; u++)
            vv[u] = (__m512bh)_mm512_maskz_loadu_epi32(mk[u], vi + e * D + d + 16 * u);
        for (int r = 0; r < nr; r++) {
            const __m512bh p = (__m512bh)_mm512_set1_epi32((int)pp[e * lanes + r]);
            for (int u = 0; u < 4; u++) a[r][u] = _mm512_dpbf16_ps(a[r][u], p, vv[u]);
        }
    }
    for (int r = 0; r < nr; r++)
        for (int u = 0; u < 4; u++) _mm512_mask_storeu_ps(acc + r * D + d + 16 * u, mk[u], a[r][u]);
}

// pv_block_avx512 over key pairs: each group of rows over the pairs holding its last row's keys.
AVX512BF16 __attribute__((noinline)) static void pv_block_bf16(const struct attn_tile *w,
                                                               const struct attn_slot *b,
                                                               size_t j0, size_t jn,
                                                               const uint32_t *vi) {
    const size_t D = w->D, lanes = attn_lanes(w->q_block), nr = w->nr;
    const size_t groups = (nr + TILE_ROWS - 1) / TILE_ROWS;
    for (size_t d = 0; d < D; d += 64)
        for (size_t g = 0, i = 0; g < groups; g++) {
            const size_t rows = pv_group_rows(nr, groups, g);
            const size_t np = (attn_row_keys(w, i + rows - 1, j0, jn) + 1) / 2;
            float *acc = b->acc + i * D;
            const float *alpha = b->alpha + i;
            const uint32_t *pp = b->pp + i;
#define PV(R) pv_t_bf16(R, acc, alpha, pp, lanes, np, vi, D, d)
            PV_ROWS_CASES(rows, PV);
#undef PV
            i += rows;
        }
}

AVX512BF16 static void tile_rows_bf16_avx512(const struct attn_tile *w);

// ck_attn_tile_avx512's key-major tile on a bf16 cache: per KV block S^T with vdpbf16ps, the
// same f32 online softmax, P^T and V paired, and P·V with vdpbf16ps. Tiles of fewer rows are
// the decode tile's, for head size ROWS_D.
AVX512BF16 void ck_attn_tile_bf16_avx512(const struct attn_tile *w) {
    if (w->nr < CK_ATTENTION_AVX512_MIN_ROWS && w->D == ROWS_D) {
        tile_rows_bf16_avx512(w);
        return;
    }
    if (w->nr < CK_ATTENTION_AVX512_MIN_ROWS || !bf16_pairs_fit(w->D)) {
        ck_attn_tile_avx2(w);
        return;
    }
    const struct attn_slot b = attn_slot_of(w);
    const size_t D = w->D, kvb = w->kv_block, nr = w->nr, lanes = attn_lanes(w->q_block);
    const size_t used = (nr + 15) / 16 * 16;
    uint32_t *qp = (uint32_t *)b.qp, *vi = (uint32_t *)b.vf;
    attn_slot_start(w, &b);
    pack_q_pairs(w, b.qp, lanes, used);
    const size_t kv_end = attn_row_key_end(w, w->r0 + nr - 1);
    const size_t first_pos = attn_row_pos(w, w->r0);
    for (size_t j0 = w->key_lo; j0 < kv_end; j0 += kvb) {
        const size_t jn = attn_min(kvb, kv_end - j0);
        const uint16_t *kb = w->kh16 + j0 * D;
        const struct attn_next_block next = attn_next_block(w, j0, kv_end);
        const uint32_t *vb = w->vpairs != NULL ? w->vpairs + (j0 - w->key_lo) / 2 * D : vi;
        if (w->vpairs == NULL) ck_attn_pack_v_pairs_bf16(w->vh16 + j0 * D, jn, D, vi);
        const int diagonal = j0 + jn > first_pos + 1;
        if (j0 > w->key_lo && !diagonal && jn % TILE_KEYS == 0 &&
            lazy_block_bf16(w, &b, used, kb, jn, &next)) {
            pv_block_bf16(w, &b, j0, jn, vb);
            continue;
        }
        // The score micro-tiles keep each row's maximum over the block in alpha (until the
        // softmax replaces it): outside the diagonal block every row sees every key, so that is
        // the softmax's block maximum, without a pass over the scores.
        const size_t last = nr - 1;
        for (size_t i = 0; i < used; i++) b.alpha[i] = -INFINITY;
        size_t i0 = 0;
        for (; i0 + 32 <= used; i0 += 32)
            scores_keys32_bf16(qp + i0, lanes, kb,
                               attn_row_keys(w, attn_min(i0 + 31, last), j0, jn), D, b.s + i0,
                               b.alpha + i0, i0 == 0 ? &next : NULL);
        if (i0 < used)
            scores_keys16_bf16(qp + i0, lanes, kb, attn_row_keys(w, last, j0, jn), D, b.s + i0,
                               b.alpha + i0, i0 == 0 ? &next : NULL);
        for (i0 = 0; i0 < used; i0 += 16)
            softmax_pairs_bf16(w, &b, i0, j0, attn_row_keys(w, attn_min(i0 + 15, last), j0, jn),
                               jn, diagonal);
        pv_block_bf16(w, &b, j0, jn, vb);
    }
    if (w->partial) {  // the state's m in natural units, as merge_states takes it
        for (size_t i = 0; i < nr; i++) b.m[i] *= LN2;
        return;
    }
    for (size_t i = 0; i < nr; i++) {
        float *o = w->out + attn_row_offset(w, i);
        const __m512 inv = _mm512_set1_ps(1.0f / b.l[i]);
        for (size_t d = 0; d < D; d += 16) {
            const __mmask16 mk = first_lanes((long)(D - d));
            _mm512_mask_storeu_ps(o + d, mk, _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, b.acc + i * D + d), inv));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The row-major decode tile: tiles of fewer than CK_ATTENTION_AVX512_MIN_ROWS rows
// ---------------------------------------------------------------------------------------------

// Decode (one token, the G heads of a group as the tile's rows) reads every K and V row once and
// is bound by memory latency, not arithmetic. This tile reads each row once, in order, straight
// from the cache (a bf16 one widened in registers, never into the slot), keeps its rows' whole
// output rows in zmm accumulators so that P·V is one pass over V, and prefetches the K and V
// rows ATTN_PREFETCH_KEYS ahead of the one in use (as the AVX2 tile, which measured 32 best).
// Rows go in groups of up to ROWS_MAX: a group of 3 holds 3 x 8 accumulators, its 3 weights and
// a vector of V in 32 registers; 4 rows go as 2 + 2 and more as 3s and 2s (every group reads
// the block again, from L2). Head size ROWS_D only, whole rows in registers being the point;
// other head sizes take the AVX2 tile.
#define ROWS_NV (ROWS_D / 16)  // zmm per row
#define ROWS_MAX 3
#define ROWS_KEYS 4  // keys per step of QK^T: 3 rows x 4 keys = 12 accumulators, 4 key vectors

// Rows of the next group when `left` rows remain.
static inline size_t rows_group(size_t left) { return left == 4 ? 2 : attn_min(left, ROWS_MAX); }

// Row j of a (n, ROWS_D) block of `esize`-byte elements prefetched into L1, if it exists (j < n).
static inline void rows_prefetch(const void *x, size_t j, size_t n, size_t esize) {
    attn_prefetch_row(x, j, n, ROWS_D * esize);
}

// The four horizontal sums of a[0..3], in order.
AVX512_INLINE __m128 hsum4_512(const __m512 a[ROWS_KEYS]) {
    __m256 h[ROWS_KEYS];
    for (int c = 0; c < ROWS_KEYS; c++)
        h[c] = _mm256_add_ps(_mm512_castps512_ps256(a[c]),
                             _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a[c]), 1)));
    const __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(h[0], h[1]), _mm256_hadd_ps(h[2], h[3]));
    return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

// s_r[j] = q_r · k_j for rows r < R and keys j < n, over a float cache.
// q_r: qp + r ROWS_D (scale q)  k: (n, ROWS_D)  s_r: s + r lds, (n)
// pf_n: keys that exist from k on (>= n), whose rows ATTN_PREFETCH_KEYS ahead are prefetched.
AVX512_INLINE void rows_scores_f32(const int R, const float *qp, const float *k, size_t n,
                                   float *s, size_t lds, size_t pf_n) {
    size_t j = 0;
    for (; j + ROWS_KEYS <= n; j += ROWS_KEYS) {
        for (int c = 0; c < ROWS_KEYS; c++) rows_prefetch(k, j + c + ATTN_PREFETCH_KEYS, pf_n, 4);
        __m512 a[ROWS_MAX][ROWS_KEYS];
        for (int r = 0; r < R; r++)
            for (int c = 0; c < ROWS_KEYS; c++) a[r][c] = _mm512_setzero_ps();
        for (int u = 0; u < ROWS_NV; u++) {
            __m512 kv[ROWS_KEYS];
            for (int c = 0; c < ROWS_KEYS; c++)
                kv[c] = _mm512_loadu_ps(k + (j + c) * ROWS_D + 16 * u);
            for (int r = 0; r < R; r++) {
                const __m512 qv = _mm512_loadu_ps(qp + r * ROWS_D + 16 * u);
                for (int c = 0; c < ROWS_KEYS; c++) a[r][c] = _mm512_fmadd_ps(qv, kv[c], a[r][c]);
            }
        }
        for (int r = 0; r < R; r++) _mm_storeu_ps(s + r * lds + j, hsum4_512(a[r]));
    }
    for (; j < n; j++) {
        rows_prefetch(k, j + ATTN_PREFETCH_KEYS, pf_n, 4);
        __m512 a[ROWS_MAX];
        for (int r = 0; r < R; r++) a[r] = _mm512_setzero_ps();
        for (int u = 0; u < ROWS_NV; u++) {
            const __m512 kv = _mm512_loadu_ps(k + j * ROWS_D + 16 * u);
            for (int r = 0; r < R; r++)
                a[r] = _mm512_fmadd_ps(_mm512_loadu_ps(qp + r * ROWS_D + 16 * u), kv, a[r]);
        }
        for (int r = 0; r < R; r++) s[r * lds + j] = _mm512_reduce_add_ps(a[r]);
    }
}

// rows_scores_f32 over a bf16 cache with vdpbf16ps: q_r = qb + r ROWS_D is bf16(scale q), and
// 32 elements of a key row, as they are in the cache, multiply 32 of q_r pairwise.
AVX512BF16_INLINE void rows_scores_bf16(const int R, const uint16_t *qb, const uint16_t *k,
                                        size_t n, float *s, size_t lds, size_t pf_n) {
    size_t j = 0;
    for (; j + ROWS_KEYS <= n; j += ROWS_KEYS) {
        for (int c = 0; c < ROWS_KEYS; c++) rows_prefetch(k, j + c + ATTN_PREFETCH_KEYS, pf_n, 2);
        __m512 a[ROWS_MAX][ROWS_KEYS];
        for (int r = 0; r < R; r++)
            for (int c = 0; c < ROWS_KEYS; c++) a[r][c] = _mm512_setzero_ps();
        for (int u = 0; u < ROWS_D / 32; u++) {
            __m512bh kv[ROWS_KEYS];
            for (int c = 0; c < ROWS_KEYS; c++)
                kv[c] = (__m512bh)_mm512_loadu_si512(k + (j + c) * ROWS_D + 32 * u);
            for (int r = 0; r < R; r++) {
                const __m512bh qv = (__m512bh)_mm512_loadu_si512(qb + r * ROWS_D + 32 * u);
                for (int c = 0; c < ROWS_KEYS; c++) a[r][c] = _mm512_dpbf16_ps(a[r][c], qv, kv[c]);
            }
        }
        for (int r = 0; r < R; r++) _mm_storeu_ps(s + r * lds + j, hsum4_512(a[r]));
    }
    for (; j < n; j++) {
        rows_prefetch(k, j + ATTN_PREFETCH_KEYS, pf_n, 2);
        __m512 a[ROWS_MAX];
        for (int r = 0; r < R; r++) a[r] = _mm512_setzero_ps();
        for (int u = 0; u < ROWS_D / 32; u++) {
            const __m512bh kv = (__m512bh)_mm512_loadu_si512(k + j * ROWS_D + 32 * u);
            for (int r = 0; r < R; r++)
                a[r] = _mm512_dpbf16_ps(
                    a[r], (__m512bh)_mm512_loadu_si512(qb + r * ROWS_D + 32 * u), kv);
        }
        for (int r = 0; r < R; r++) s[r * lds + j] = _mm512_reduce_add_ps(a[r]);
    }
}

// Elements 16 u .. 16 u + 15 of a value row: float, or bf16 widened exactly (zero-extend, shift).
AVX512_INLINE __m512 rows_load_v(const void *row, int u, const int bf16) {
    if (!bf16) return _mm512_loadu_ps((const float *)row + 16 * u);
    const __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)row + 16 * u));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// acc_r = alpha_r acc_r + sum_j p_r[j] v_j for rows r < R and keys j < n: one pass over the
// value rows, each read whole (8 zmm of f32, or 8 widened from bf16) and used by every row,
// whose 8 accumulators stay in registers across the block.
// acc: (R, ROWS_D)  p_r: p + r ldp, (n)  v: (n, ROWS_D)  pf_n as in rows_scores_f32.
AVX512_INLINE void rows_pv(const int R, const int bf16, float *acc, const float *alpha,
                           const float *p, size_t ldp, size_t n, const void *v, size_t pf_n) {
    const size_t esize = bf16 ? 2 : 4;
    __m512 a[ROWS_MAX][ROWS_NV];
    for (int r = 0; r < R; r++) {
        const __m512 al = _mm512_set1_ps(alpha[r]);
        for (int u = 0; u < ROWS_NV; u++)
            a[r][u] = _mm512_mul_ps(al, _mm512_loadu_ps(acc + r * ROWS_D + 16 * u));
    }
    for (size_t j = 0; j < n; j++) {
        rows_prefetch(v, j + ATTN_PREFETCH_KEYS, pf_n, esize);
        const void *row = (const char *)v + j * ROWS_D * esize;
        __m512 pj[ROWS_MAX];
        for (int r = 0; r < R; r++) pj[r] = _mm512_set1_ps(p[r * ldp + j]);
        for (int u = 0; u < ROWS_NV; u++) {
            const __m512 vv = rows_load_v(row, u, bf16);
            for (int r = 0; r < R; r++) a[r][u] = _mm512_fmadd_ps(pj[r], vv, a[r][u]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int u = 0; u < ROWS_NV; u++) _mm512_storeu_ps(acc + r * ROWS_D + 16 * u, a[r][u]);
}

// The building blocks for a group of R = 1 .. ROWS_MAX rows, each its own function with R a
// constant in each case, so the accumulators stay in registers and the loops get the general
// registers to themselves.
AVX512 __attribute__((noinline)) static void rows_scores_f32_n(size_t R, const float *qp,
                                                               const float *k, size_t n, float *s,
                                                               size_t lds, size_t pf_n) {
    switch (R) {
    case 3: rows_scores_f32(3, qp, k, n, s, lds, pf_n); break;
    case 2: rows_scores_f32(2, qp, k, n, s, lds, pf_n); break;
    default: rows_scores_f32(1, qp, k, n, s, lds, pf_n); break;
    }
}

AVX512BF16 __attribute__((noinline)) static void rows_scores_bf16_n(size_t R, const uint16_t *qb,
                                                                    const uint16_t *k, size_t n,
                                                                    float *s, size_t lds,
                                                                    size_t pf_n) {
    switch (R) {
    case 3: rows_scores_bf16(3, qb, k, n, s, lds, pf_n); break;
    case 2: rows_scores_bf16(2, qb, k, n, s, lds, pf_n); break;
    default: rows_scores_bf16(1, qb, k, n, s, lds, pf_n); break;
    }
}

AVX512 __attribute__((noinline)) static void rows_pv_n(size_t R, const int bf16, float *acc,
                                                       const float *alpha, const float *p,
                                                       size_t ldp, size_t n, const void *v,
                                                       size_t pf_n) {
    if (bf16) {
        switch (R) {
        case 3: rows_pv(3, 1, acc, alpha, p, ldp, n, v, pf_n); break;
        case 2: rows_pv(2, 1, acc, alpha, p, ldp, n, v, pf_n); break;
        default: rows_pv(1, 1, acc, alpha, p, ldp, n, v, pf_n); break;
        }
    } else {
        switch (R) {
        case 3: rows_pv(3, 0, acc, alpha, p, ldp, n, v, pf_n); break;
        case 2: rows_pv(2, 0, acc, alpha, p, ldp, n, v, pf_n); break;
        default: rows_pv(1, 0, acc, alpha, p, ldp, n, v, pf_n); break;
        }
    }
}

// x rounded to the nearest bfloat16 (ties to even), as floats; x finite. Integer arithmetic, so
// subnormal weights round as the reference rounds them (vcvtneps2bf16 flushes them).
AVX512_INLINE __m512 rows_round_bf16(__m512 x) {
    const __m512i u = _mm512_castps_si512(x);
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    const __m512i r = _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), odd);
    return _mm512_castsi512_ps(_mm512_and_si512(r, _mm512_set1_epi32((int)0xffff0000u)));
}

// Online softmax of one row over a block of n > 0 scores s (online_softmax_ref): m' = max(m,
// max s), alpha = exp(m - m'), s <- exp(s - m'), l <- alpha l + sum s; with bf16 the weights are
// then rounded to bf16 for P·V (l sums them unrounded, as the reference). Returns alpha.
AVX512_INLINE float rows_softmax(float *s, size_t n, float *m, float *l, const int bf16) {
    const float bmax = max_avx512(s, n);
    const float mnew = bmax > *m ? bmax : *m;
    const float alpha = expf(*m - mnew);
    *l = alpha * *l + exp_shift_sum_avx512(s, n, mnew);
    *m = mnew;
    if (bf16)
        for (size_t c = 0; c < n; c += 16) {
            const __mmask16 mk = first_lanes((long)(n - c));
            _mm512_mask_storeu_ps(s + c, mk, rows_round_bf16(_mm512_maskz_loadu_ps(mk, s + c)));
        }
    return alpha;
}

// The tile: queries once into qp, scale q (f32) or bf16(scale q) (bf16), (nr, ROWS_D) row-major;
// then per KV block, per group of rows, the scores (R, kv_block) row-major in s, each row's online
// softmax, and P·V into acc. A group goes as far as the keys of its last row; an earlier row's
// weights past its own keys are zeroed, so those keys add nothing to it (a row that sees none of
// the block keeps alpha = 1).
AVX512_INLINE void tile_rows_avx512(const struct attn_tile *w, const int bf16) {
    const struct attn_slot b = attn_slot_of(w);
    const size_t kvb = w->kv_block, nr = w->nr;
    attn_slot_start(w, &b);
    uint16_t *qb = (uint16_t *)b.qp;
    for (size_t i = 0; i < nr; i++) {
        const float *qi = w->q + attn_row_offset(w, i);
        for (size_t d = 0; d < ROWS_D; d++) {
            if (bf16) qb[i * ROWS_D + d] = ck_bf16_from_f32(w->scale * qi[d]);
            else b.qp[i * ROWS_D + d] = w->scale * qi[d];
        }
    }
    const size_t kv_end = attn_row_key_end(w, w->r0 + nr - 1);
    for (size_t j0 = w->key_lo; j0 < kv_end; j0 += kvb) {
        const size_t jn = attn_min(kvb, kv_end - j0), pf_n = kv_end - j0;
        const void *kb = bf16 ? (const void *)(w->kh16 + j0 * ROWS_D)
                              : (const void *)(w->kh + j0 * ROWS_D);
        const void *vb = bf16 ? (const void *)(w->vh16 + j0 * ROWS_D)
                              : (const void *)(w->vh + j0 * ROWS_D);
        for (size_t i = 0, R; i < nr; i += R) {
            R = rows_group(nr - i);
            const size_t n = attn_row_keys(w, i + R - 1, j0, jn);
            if (n == 0) continue;
            float *si = b.s + i * kvb;
            if (bf16) rows_scores_bf16_n(R, qb + i * ROWS_D, kb, n, si, kvb, pf_n);
            else rows_scores_f32_n(R, b.qp + i * ROWS_D, kb, n, si, kvb, pf_n);
            float alpha[ROWS_MAX];
            for (size_t r = 0; r < R; r++) {
                const size_t nrow = attn_row_keys(w, i + r, j0, jn);
                float *sr = si + r * kvb;
                alpha[r] = nrow > 0 ? rows_softmax(sr, nrow, b.m + i + r, b.l + i + r, bf16) : 1.0f;
                memset(sr + nrow, 0, (n - nrow) * sizeof *sr);
            }
            rows_pv_n(R, bf16, b.acc + i * ROWS_D, alpha, si, kvb, n, vb, pf_n);
        }
    }
    if (w->partial) return;
    for (size_t i = 0; i < nr; i++) {
        float *o = w->out + attn_row_offset(w, i);
        const __m512 inv = _mm512_set1_ps(1.0f / b.l[i]);
        for (size_t d = 0; d < ROWS_D; d += 16)
            _mm512_storeu_ps(o + d, _mm512_mul_ps(_mm512_loadu_ps(b.acc + i * ROWS_D + d), inv));
    }
}

AVX512 static void tile_rows_f32_avx512(const struct attn_tile *w) { tile_rows_avx512(w, 0); }

AVX512BF16 static void tile_rows_bf16_avx512(const struct attn_tile *w) {
    tile_rows_avx512(w, 1);
}
