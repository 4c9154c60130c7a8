// attention_avx2.c — AVX2+FMA attention: the standard attention (per head, the causal score
// block materialised) and the tiles of streaming attention that attention.c schedules.
//
// Shapes as in attention.c: q, out: (T, Hq, D)  k, v: (Hkv, cap, D).
#include "attention_internal.h"
#include "ckernels.h"
#include "simd_avx2.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#define AVX2 __attribute__((target("avx2,fma")))
#define AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma")))


// ---------------------------------------------------------------------------------------------
// Building blocks (D is any number; the last partial vector of a row is masked)
// ---------------------------------------------------------------------------------------------

// Lane mask selecting the first `valid` lanes (>= 8 selects all).
AVX2_INLINE __m256i lane_mask(size_t valid) {
    const int n = valid < 8 ? (int)valid : 8;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// The four horizontal sums of a0..a3, in order.
AVX2_INLINE __m128 hsum4(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
    const __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

// hsum256 and hmax256 (horizontal sum and maximum of 8 floats) live in simd_avx2.h.

// A cache row is float, or bfloat16 (bf16 = 1, a constant once inlined) widened exactly on load:
// AVX2 has no bf16 arithmetic, so a bf16 cache halves the bytes read, not the flops. The bf16
// rounding points of the reference (q as bf16(scale q), weights rounded as they enter P·V) are
// kept with round_bf16, so every bf16 kernel computes the same function whatever its tile.

// x rounded to the nearest bfloat16 (ties to even), as floats; x finite.
AVX2_INLINE __m256 round_bf16(__m256 x) {
    const __m256i u = _mm256_castps_si256(x);
    const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    const __m256i r = _mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), odd);
    return _mm256_castsi256_ps(_mm256_and_si256(r, _mm256_set1_epi32((int)0xffff0000u)));
}

// x[0 .. n) rounded to bfloat16 in place.
AVX2_INLINE void round_bf16_n(float *x, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, round_bf16(_mm256_loadu_ps(x + i)));
    for (; i < n; i++) x[i] = attn_round_bf16(x[i]);
}

// Elements i .. i+7 of x, or only the first `valid` of them (the others 0) when valid < 8, with
// `mask` = lane_mask(valid) for the float loads.
AVX2_INLINE __m256 load_kv(const void *x, size_t i, size_t valid, __m256i mask, const int bf16) {
    if (!bf16) return valid >= 8 ? _mm256_loadu_ps((const float *)x + i)
                                 : _mm256_maskload_ps((const float *)x + i, mask);
    __m128i h;
    if (valid >= 8) {
        h = _mm_loadu_si128((const __m128i *)((const uint16_t *)x + i));
    } else {
        uint16_t t[8] = {0};
        memcpy(t, (const uint16_t *)x + i, valid * sizeof *t);
        h = _mm_loadu_si128((const __m128i *)t);
    }
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

// Both building blocks below take nq = 1 or 2 query rows (a constant once inlined): two rows
// share every load of K or V, which is what keeps them off the load ports' limit.

// Query elements from q: 8, or the first `valid` (masked by `mask`); as bf16(scale q) when bf16.
AVX2_INLINE __m256 load_q(const float *q, __m256i mask, size_t valid, __m256 scale, const int bf16) {
    const __m256 x = valid >= 8 ? _mm256_loadu_ps(q) : _mm256_maskload_ps(q, mask);
    return bf16 ? round_bf16(_mm256_mul_ps(scale, x)) : x;
}

// The row-major tile reads a float cache in place and prefetches its rows ATTN_PREFETCH_KEYS ahead
// (attention_internal.h): at S = 4096 (33.5 MB of f32 K/V, from DRAM) one thread streamed
// 10.3 GB/s with only the hardware prefetchers and 12.0 with them, where a plain read of the same
// bytes does 29-32 (`bench_decode_stream attention 4096 f32 avx2|read`). The rest is latency: QK^T, softmax and P·V of a block
// run one after another, and P·V walks each V block in four column passes (AVX-512's decode tile
// keeps whole output rows in its 32 registers instead).
AVX2_INLINE void prefetch_row(const void *x, size_t j, size_t n, size_t D, const int bf16) {
    attn_prefetch_row(x, j, n, D * (bf16 ? 2 : 4));
}

// s_r[j] = scale * (q_r · k_j) for rows r < nq and keys j < n.
// q_r: q + r ldq, (D)  k: (n, D)  s_r: s + r lds, (n)
// 2 rows x 4 keys = 8 accumulators (8 FMA chains: the FMA latency times two pipes) for
// 6 loads; each accumulator holds 8 partial sums over d, added up at the end.
// pf_n: keys that exist from k on (>= n), whose rows ATTN_PREFETCH_KEYS ahead are prefetched
// (0: none).
AVX2_INLINE void scores_avx2(const int nq, const int bf16, const float *q, size_t ldq,
                             const void *k, size_t n, size_t D, float scale, float *s,
                             size_t lds, size_t pf_n) {
    // bf16: q enters as bf16(scale q) and the sums are the scores; else scale multiplies the sums.
    const __m256 qscale = _mm256_set1_ps(scale);
    const float post = bf16 ? 1.0f : scale;
    const size_t dv = D & ~(size_t)7;
    const __m256i tail = lane_mask(D - dv);
    size_t j = 0;
    for (; j + 4 <= n; j += 4) {
        const size_t kj = j * D;
        for (size_t c = 0; c < 4 && pf_n; c++)
            prefetch_row(k, j + c + ATTN_PREFETCH_KEYS, pf_n, D, bf16);
        __m256 a[2][4];
        for (int r = 0; r < nq; r++)
            for (int c = 0; c < 4; c++) a[r][c] = _mm256_setzero_ps();
        for (size_t d = 0; d < dv; d += 8) {
            __m256 kv[4];
            for (int c = 0; c < 4; c++) kv[c] = load_kv(k, kj + c * D + d, 8, tail, bf16);
            for (int r = 0; r < nq; r++) {
                const __m256 qv = load_q(q + r * ldq + d, tail, 8, qscale, bf16);
                for (int c = 0; c < 4; c++) a[r][c] = _mm256_fmadd_ps(qv, kv[c], a[r][c]);
            }
        }
        if (dv < D) {
            __m256 kv[4];
            for (int c = 0; c < 4; c++) kv[c] = load_kv(k, kj + c * D + dv, D - dv, tail, bf16);
            for (int r = 0; r < nq; r++) {
                const __m256 qv = load_q(q + r * ldq + dv, tail, D - dv, qscale, bf16);
                for (int c = 0; c < 4; c++) a[r][c] = _mm256_fmadd_ps(qv, kv[c], a[r][c]);
            }
        }
        for (int r = 0; r < nq; r++)
            _mm_storeu_ps(s + r * lds + j, _mm_mul_ps(hsum4(a[r][0], a[r][1], a[r][2], a[r][3]),
                                                      _mm_set1_ps(post)));
    }
    for (; j < n; j++) {
        const size_t kj = j * D;
        __m256 a[2];
        for (int r = 0; r < nq; r++) a[r] = _mm256_setzero_ps();
        for (size_t d = 0; d < dv; d += 8) {
            const __m256 kv = load_kv(k, kj + d, 8, tail, bf16);
            for (int r = 0; r < nq; r++)
                a[r] = _mm256_fmadd_ps(load_q(q + r * ldq + d, tail, 8, qscale, bf16), kv, a[r]);
        }
        if (dv < D) {
            const __m256 kv = load_kv(k, kj + dv, D - dv, tail, bf16);
            for (int r = 0; r < nq; r++)
                a[r] = _mm256_fmadd_ps(load_q(q + r * ldq + dv, tail, D - dv, qscale, bf16), kv, a[r]);
        }
        for (int r = 0; r < nq; r++) s[r * lds + j] = post * hsum256(a[r]);
    }
}

// A weight broadcast, rounded to bf16 when bf16.
AVX2_INLINE __m256 load_p(const float *p, const int bf16) {
    return _mm256_set1_ps(bf16 ? attn_round_bf16(*p) : *p);
}

// o_r = alpha[r] o_r + sum_j p_r[j] v_j for rows r < nq.
// o_r: o + r ldo, (D)  p_r: p + r ldp, (n)  v: (n, D)
// The rows of o stay in registers across all n keys, 64 / nq floats of each at a time (8
// accumulators, 8 FMA chains); what is left of D goes 8 floats at a time, the last one masked.
// pf_n: values that exist from v on (>= n); the first pass over the keys prefetches the rows
// ATTN_PREFETCH_KEYS ahead (0: none).
AVX2_INLINE void pv_avx2(const int nq, const int bf16, float *o, size_t ldo, const float *alpha,
                         const float *p, size_t ldp, size_t n, const void *v, size_t D,
                         size_t pf_n) {
    enum { CHUNK = 64 };
    const int nv = 8 / nq;  // vectors per row in a chunk
    const size_t width = (size_t)(CHUNK / nq);
    size_t d = 0;
    for (; d + width <= D; d += width) {
        __m256 a[2][8];
        for (int r = 0; r < nq; r++) {
            const __m256 va = _mm256_set1_ps(alpha[r]);
            for (int u = 0; u < nv; u++)
                a[r][u] = _mm256_mul_ps(va, _mm256_loadu_ps(o + r * ldo + d + 8 * u));
        }
        for (size_t j = 0; j < n; j++) {
            if (d == 0 && pf_n) prefetch_row(v, j + ATTN_PREFETCH_KEYS, pf_n, D, bf16);
            __m256 vv[8];
            for (int u = 0; u < nv; u++)
                vv[u] = load_kv(v, j * D + d + 8 * u, 8, _mm256_setzero_si256(), bf16);
            for (int r = 0; r < nq; r++) {
                const __m256 pj = load_p(p + r * ldp + j, bf16);
                for (int u = 0; u < nv; u++) a[r][u] = _mm256_fmadd_ps(pj, vv[u], a[r][u]);
            }
        }
        for (int r = 0; r < nq; r++)
            for (int u = 0; u < nv; u++) _mm256_storeu_ps(o + r * ldo + d + 8 * u, a[r][u]);
    }
    for (; d < D; d += 8) {
        const __m256i m = lane_mask(D - d);
        __m256 a[2];
        for (int r = 0; r < nq; r++)
            a[r] = _mm256_mul_ps(_mm256_set1_ps(alpha[r]), _mm256_maskload_ps(o + r * ldo + d, m));
        for (size_t j = 0; j < n; j++) {
            const __m256 vv = load_kv(v, j * D + d, D - d, m, bf16);
            for (int r = 0; r < nq; r++)
                a[r] = _mm256_fmadd_ps(load_p(p + r * ldp + j, bf16), vv, a[r]);
        }
        for (int r = 0; r < nq; r++) _mm256_maskstore_ps(o + r * ldo + d, m, a[r]);
    }
}

// online softmax of one row for a block of n > 0 scores s: m' = max(m, max s),
// alpha = exp(m - m'), s <- exp(s - m'), l <- alpha l + sum s. Returns alpha.
AVX2 static float online_softmax_avx2(float *s, size_t n, float *m, float *l) {
    __m256 vmax = _mm256_set1_ps(-INFINITY);
    size_t c = 0;
    for (; c + 8 <= n; c += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(s + c));
    float bmax = hmax256(vmax);
    for (; c < n; c++)
        if (s[c] > bmax) bmax = s[c];
    const float mnew = bmax > *m ? bmax : *m;
    const float alpha = expf(*m - mnew);
    *l = alpha * *l + ck_exp_shift_sum_f32_avx2(s, n, mnew);
    *m = mnew;
    return alpha;
}


// ---------------------------------------------------------------------------------------------
// Standard attention: the pieces attention.c's schedule runs
// ---------------------------------------------------------------------------------------------

// nq is 1 or 2, spelled out as a constant in each call so the building block keeps its
// accumulators in registers.
AVX2 static void standard_scores_avx2(int nq, const float *q, size_t ldq, const void *k,
                                      size_t n, size_t D, float scale, float *s, size_t lds) {
    if (nq == 2) scores_avx2(2, 0, q, ldq, k, n, D, scale, s, lds, n);
    else scores_avx2(1, 0, q, ldq, k, n, D, scale, s, lds, n);
}

AVX2 static void standard_scores_bf16_avx2(int nq, const float *q, size_t ldq, const void *k,
                                           size_t n, size_t D, float scale, float *s,
                                           size_t lds) {
    if (nq == 2) scores_avx2(2, 1, q, ldq, k, n, D, scale, s, lds, n);
    else scores_avx2(1, 1, q, ldq, k, n, D, scale, s, lds, n);
}

AVX2_INLINE void standard_pv(const int bf16, int nq, float *o, size_t ldo, const float *p,
                             size_t ldp, size_t n, const void *v, size_t D) {
    const float once[2] = {1.0f, 1.0f};  // o is zeroed, then takes the one sum over all keys
    for (int r = 0; r < nq; r++) memset(o + (size_t)r * ldo, 0, D * sizeof *o);
    if (nq == 2) pv_avx2(2, bf16, o, ldo, once, p, ldp, n, v, D, n);
    else pv_avx2(1, bf16, o, ldo, once, p, ldp, n, v, D, n);
}

AVX2 static void standard_pv_avx2(int nq, float *o, size_t ldo, const float *p, size_t ldp,
                                  size_t n, const void *v, size_t D) {
    standard_pv(0, nq, o, ldo, p, ldp, n, v, D);
}

AVX2 static void standard_pv_bf16_avx2(int nq, float *o, size_t ldo, const float *p, size_t ldp,
                                       size_t n, const void *v, size_t D) {
    standard_pv(1, nq, o, ldo, p, ldp, n, v, D);
}

// o[0 .. width) = inv * sum_j p[j] v_j[0 .. width) for j < n, v rows D apart (a column slice of
// the head's P·V). 4 vectors of accumulators per pass, the last vector of the slice masked.
AVX2_INLINE void pv_columns(const int bf16, float *o, const float *p, size_t n, const void *v,
                            size_t D, size_t width, float inv) {
    for (size_t d = 0; d < width; d += 32) {
        __m256i m[4];
        __m256 a[4];
        size_t valid[4];
        for (int u = 0; u < 4; u++) {
            const size_t at = d + 8 * (size_t)u;
            valid[u] = at < width ? width - at : 0;
            m[u] = lane_mask(valid[u]);
            a[u] = _mm256_setzero_ps();
        }
        for (size_t j = 0; j < n; j++) {
            const __m256 pj = load_p(p + j, bf16);
            for (int u = 0; u < 4; u++)
                a[u] = _mm256_fmadd_ps(
                    pj, load_kv(v, j * D + d + 8 * u, bf16 ? valid[u] : 0, m[u], bf16), a[u]);
        }
        for (int u = 0; u < 4; u++)
            _mm256_maskstore_ps(o + d + 8 * u, m[u], _mm256_mul_ps(a[u], _mm256_set1_ps(inv)));
    }
}

AVX2 static void pv_columns_avx2(float *o, const float *p, size_t n, const void *v, size_t D,
                                 size_t width, float inv) {
    pv_columns(0, o, p, n, v, D, width, inv);
}

AVX2 static void pv_columns_bf16_avx2(float *o, const float *p, size_t n, const void *v,
                                      size_t D, size_t width, float inv) {
    pv_columns(1, o, p, n, v, D, width, inv);
}

AVX2 static float max_avx2(const float *x, size_t n) {
    __m256 vmax = _mm256_set1_ps(-INFINITY);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(x + i));
    float m = hmax256(vmax);
    for (; i < n; i++)
        if (x[i] > m) m = x[i];
    return m;
}

static const struct attn_standard_ops standard_avx2 = {
    .scores = standard_scores_avx2, .softmax = ck_softmax_f32_avx2, .pv = standard_pv_avx2,
    .max = max_avx2, .exp_shift_sum = ck_exp_shift_sum_f32_avx2, .pv_columns = pv_columns_avx2};

void ck_attention_standard_f32_avx2(const float *q, const float *k, const float *v, float *out,
                                    size_t T, size_t pos0, size_t Hq, size_t Hkv, size_t D,
                                    size_t cap, float scale, float *scratch, int slots) {
    ck_attn_standard(q, k, v, 0, out, T, pos0, Hq, Hkv, D, cap, scale, scratch, slots,
                     &standard_avx2);
}

// A bf16 cache widened on load, f32 FMAs at the bf16 reference's rounding points.
static const struct attn_standard_ops standard_bf16_avx2 = {
    .scores = standard_scores_bf16_avx2, .softmax = ck_softmax_f32_avx2,
    .pv = standard_pv_bf16_avx2, .max = max_avx2, .exp_shift_sum = ck_exp_shift_sum_f32_avx2,
    .pv_columns = pv_columns_bf16_avx2};

void ck_attention_standard_bf16_avx2(const float *q, const uint16_t *k, const uint16_t *v,
                                     float *out, size_t T, size_t pos0, size_t Hq, size_t Hkv,
                                     size_t D, size_t cap, float scale, float *scratch,
                                     int slots) {
    ck_attn_standard(q, k, v, 1, out, T, pos0, Hq, Hkv, D, cap, scale, scratch, slots,
                     &standard_bf16_avx2);
}

// ---------------------------------------------------------------------------------------------
// Streaming attention tiles
// ---------------------------------------------------------------------------------------------

// A tile of fewer rows than a vector (decode: the G heads of one token) is computed row-major:
// two rows at a time share each load of K and V (scores_avx2, pv_avx2). A larger tile is
// computed key-major: the scores of a KV block are S^T (keys x rows), a GEMM with the packed
// transposed queries, rows in the vector lanes, so the online softmax of every row is plain
// vector arithmetic and P·V broadcasts P^T entries against rows of V.
#define ROW_MAJOR_BELOW 8

// Keys of one S^T micro-tile: 6 keys x 16 rows = 12 accumulators, plus 2 query vectors and
// a broadcast key element = 15 of the 16 ymm registers.
#define TILE_KEYS 6
// Rows of one P·V micro-tile: 6 rows x 16 output columns = 12 accumulators, plus 2 vectors of
// V and a broadcast P entry.
#define TILE_ROWS 6

// Keys and values j0 .. j0+jn-1 of the tile's KV head as f32 rows: the cache itself, or a bf16
// cache's block widened into the slot (kv_block x D each, in L2 while the block is computed).
AVX2_INLINE void block_f32(const struct attn_tile *w, const struct attn_slot *b, size_t j0,
                           size_t jn, const float **kb, const float **vb) {
    const size_t D = w->D;
    if (w->kh16 == NULL) {
        *kb = w->kh + j0 * D;
        *vb = w->vh + j0 * D;
        return;
    }
    const uint16_t *k = w->kh16 + j0 * D, *v = w->vh16 + j0 * D;
    const size_t n = jn * D;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(b->kf + i, load_kv(k, i, 8, _mm256_setzero_si256(), 1));
        _mm256_storeu_ps(b->vf + i, load_kv(v, i, 8, _mm256_setzero_si256(), 1));
    }
    for (; i < n; i++) {
        b->kf[i] = ck_f32_from_bf16(k[i]);
        b->vf[i] = ck_f32_from_bf16(v[i]);
    }
    *kb = b->kf;
    *vb = b->vf;
}

// The row-major tile: q rows scaled into qp (nr, D), scores (nr, kv_block) per KV block.
AVX2 static void tile_rows_avx2(const struct attn_tile *w, const struct attn_slot *b,
                                size_t kv_end) {
    const size_t D = w->D, kvb = w->kv_block, nr = w->nr;
    for (size_t i = 0; i < nr; i++) {
        const float *qi = w->q + attn_row_offset(w, i);
        for (size_t d = 0; d < D; d++) b->qp[i * D + d] = w->scale * qi[d];
    }
    if (w->kh16 != NULL) round_bf16_n(b->qp, nr * D);
    for (size_t j0 = w->key_lo; j0 < kv_end; j0 += kvb) {
        const size_t jn = attn_min(kvb, kv_end - j0);
        const float *kb, *vb;
        block_f32(w, b, j0, jn, &kb, &vb);
        // A float cache is read in place, its rows prefetched ATTN_PREFETCH_KEYS ahead as they are
        // used (pf_n keys exist from kb on); a bf16 block is widened into the slot by one
        // sequential pass, which the whole next block prefetched here keeps fed (without it,
        // two threads streamed 14 GB/s instead of 17.5 at S = 4096).
        const size_t pf_n = w->kh16 != NULL ? 0 : kv_end - j0;
        if (w->kh16 != NULL) attn_prefetch_next(w, j0, kv_end);
        // Rows in pairs; nq is spelled out as a constant in each call, so that the building
        // blocks keep their accumulators in registers.
        for (size_t i = 0; i < nr; i += 2) {
            const size_t n0 = attn_row_keys(w, i, j0, jn);
            float *si = b->s + i * kvb;
            float alpha[2] = {1.0f, 1.0f};
            if (i + 1 < nr) {
                const size_t n = attn_row_keys(w, i + 1, j0, jn);
                if (n == 0) continue;
                scores_avx2(2, 0, b->qp + i * D, D, kb, n, D, 1.0f, si, kvb, pf_n);
                if (n0 > 0) alpha[0] = online_softmax_avx2(si, n0, b->m + i, b->l + i);
                alpha[1] = online_softmax_avx2(si + kvb, n, b->m + i + 1, b->l + i + 1);
                memset(si + n0, 0, (n - n0) * sizeof *si);
                if (w->kh16 != NULL) {
                    round_bf16_n(si, n0);
                    round_bf16_n(si + kvb, n);
                }
                pv_avx2(2, 0, b->acc + i * D, D, alpha, si, kvb, n, vb, D, pf_n);
            } else if (n0 > 0) {
                scores_avx2(1, 0, b->qp + i * D, D, kb, n0, D, 1.0f, si, kvb, pf_n);
                alpha[0] = online_softmax_avx2(si, n0, b->m + i, b->l + i);
                if (w->kh16 != NULL) round_bf16_n(si, n0);
                pv_avx2(1, 0, b->acc + i * D, D, alpha, si, kvb, n0, vb, D, pf_n);
            }
        }
    }
}

// st[c][0 .. 8 ng) = sum_d k_c[d] qp[d][0 .. 8 ng) for keys c < nk.
// qp: (D, lanes)  k: (nk, D)  st: (nk, lanes)
AVX2_INLINE void scores_t_avx2(const int nk, const int ng, const float *qp, size_t lanes,
                               const float *k, size_t D, float *st) {
    __m256 a[TILE_KEYS][2];
    for (int c = 0; c < nk; c++)
        for (int g = 0; g < ng; g++) a[c][g] = _mm256_setzero_ps();
    for (size_t d = 0; d < D; d++) {
        __m256 qv[2];
        for (int g = 0; g < ng; g++) qv[g] = _mm256_loadu_ps(qp + d * lanes + 8 * g);
        for (int c = 0; c < nk; c++) {
            const __m256 kc = _mm256_broadcast_ss(k + c * D + d);
            for (int g = 0; g < ng; g++) a[c][g] = _mm256_fmadd_ps(kc, qv[g], a[c][g]);
        }
    }
    for (int c = 0; c < nk; c++)
        for (int g = 0; g < ng; g++) _mm256_storeu_ps(st + c * lanes + 8 * g, a[c][g]);
}

// S^T of n keys for 8 ng lanes, TILE_KEYS keys at a time (the last group's size is a
// constant in each case of the switch, so its loops unroll too).
AVX2_INLINE void scores_t_keys_avx2(const int ng, const float *qp, size_t lanes, const float *k,
                                    size_t n, size_t D, float *st) {
    size_t c = 0;
    for (; c + TILE_KEYS <= n; c += TILE_KEYS)
        scores_t_avx2(TILE_KEYS, ng, qp, lanes, k + c * D, D, st + c * lanes);
    k += c * D;
    st += c * lanes;
    switch (n - c) {
    case 5: scores_t_avx2(5, ng, qp, lanes, k, D, st); break;
    case 4: scores_t_avx2(4, ng, qp, lanes, k, D, st); break;
    case 3: scores_t_avx2(3, ng, qp, lanes, k, D, st); break;
    case 2: scores_t_avx2(2, ng, qp, lanes, k, D, st); break;
    case 1: scores_t_avx2(1, ng, qp, lanes, k, D, st); break;
    default: break;
    }
}

// Online softmax of the 8 rows in lanes i0 .. i0+7 over the n keys of S^T from key j0 (the keys
// the last of them sees); in the diagonal block the rows' invisible keys are set to -inf first.
// Rows grow in position with the lane, so the rows that cannot see key j are the lanes below
// G (j - pos0) - r0. P^T of keys n .. jn-1, which P·V of later rows may read, is set to 0.
AVX2_INLINE void softmax_t_avx2(const struct attn_tile *w, const struct attn_slot *b, size_t i0,
                                size_t j0, size_t n, size_t jn, int diagonal) {
    const size_t lanes = attn_lanes(w->q_block);
    const __m256 minus_inf = _mm256_set1_ps(-INFINITY);
    const __m256i lane = _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                          _mm256_set1_epi32((int)i0));
    float *st = b->s + i0;
    const __m256 mold = _mm256_loadu_ps(b->m + i0);
    __m256 bmax = minus_inf;
    for (size_t c = 0; c < n; c++) {
        __m256 s = _mm256_loadu_ps(st + c * lanes);
        if (diagonal) {
            const long lim = (long)w->G * ((long)(j0 + c) - (long)w->pos0) - (long)w->r0;
            const long clamped = lim < 0 ? 0 : lim > (long)lanes ? (long)lanes : lim;
            const __m256 hidden =
                _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)clamped), lane));
            s = _mm256_blendv_ps(s, minus_inf, hidden);
            _mm256_storeu_ps(st + c * lanes, s);
        }
        bmax = _mm256_max_ps(bmax, s);
    }
    const __m256 mnew = _mm256_max_ps(mold, bmax);
    // A row that has seen no key yet (only under a flash-decoding split) keeps m = -inf; it is
    // shifted by 0 instead, so that -inf - -inf never makes a NaN.
    const __m256 shift =
        _mm256_andnot_ps(_mm256_cmp_ps(mnew, minus_inf, _CMP_EQ_OQ), mnew);
    const __m256 alpha = exp256(_mm256_sub_ps(mold, shift));
    __m256 sum = _mm256_setzero_ps();
    for (size_t c = 0; c < n; c++) {
        const __m256 p = exp256(_mm256_sub_ps(_mm256_loadu_ps(st + c * lanes), shift));
        _mm256_storeu_ps(st + c * lanes, p);
        sum = _mm256_add_ps(sum, p);
    }
    for (size_t c = n; c < jn; c++) _mm256_storeu_ps(st + c * lanes, _mm256_setzero_ps());
    _mm256_storeu_ps(b->l + i0, _mm256_fmadd_ps(alpha, _mm256_loadu_ps(b->l + i0), sum));
    _mm256_storeu_ps(b->m + i0, mnew);
    _mm256_storeu_ps(b->alpha + i0, alpha);
}

// acc_r[d .. d+16) = alpha_r acc_r + sum_c pt[c][r] v_c[d .. d+16) for rows r < nr; `masked`
// loads and stores only the first D - d columns (the tail of a row).
// acc: (nr, D) from row 0  pt: (n, lanes) from lane 0  v: (n, D)
AVX2_INLINE void pv_t_avx2(const int nr, const int masked, float *acc, const float *alpha,
                           const float *pt, size_t lanes, size_t n, const float *v, size_t D,
                           size_t d) {
    const __m256i m0 = lane_mask(D - d), m1 = lane_mask(D - d > 8 ? D - d - 8 : 0);
    __m256 a[TILE_ROWS][2];
    for (int r = 0; r < nr; r++) {
        const __m256 al = _mm256_broadcast_ss(alpha + r);
        const float *ar = acc + r * D + d;
        a[r][0] = _mm256_mul_ps(al, masked ? _mm256_maskload_ps(ar, m0) : _mm256_loadu_ps(ar));
        a[r][1] = _mm256_mul_ps(al, masked ? _mm256_maskload_ps(ar + 8, m1)
                                           : _mm256_loadu_ps(ar + 8));
    }
    for (size_t c = 0; c < n; c++) {
        const float *vc = v + c * D + d;
        const __m256 v0 = masked ? _mm256_maskload_ps(vc, m0) : _mm256_loadu_ps(vc);
        const __m256 v1 = masked ? _mm256_maskload_ps(vc + 8, m1) : _mm256_loadu_ps(vc + 8);
        for (int r = 0; r < nr; r++) {
            const __m256 p = _mm256_broadcast_ss(pt + c * lanes + r);
            a[r][0] = _mm256_fmadd_ps(p, v0, a[r][0]);
            a[r][1] = _mm256_fmadd_ps(p, v1, a[r][1]);
        }
    }
    for (int r = 0; r < nr; r++) {
        float *ar = acc + r * D + d;
        if (masked) {
            _mm256_maskstore_ps(ar, m0, a[r][0]);
            _mm256_maskstore_ps(ar + 8, m1, a[r][1]);
        } else {
            _mm256_storeu_ps(ar, a[r][0]);
            _mm256_storeu_ps(ar + 8, a[r][1]);
        }
    }
}

// S^T of a KV block for 16 lanes and for 8, each its own function so that the micro-kernel's
// loop gets the general registers to itself (inlined into the tile loop, it reloads spilled
// addresses inside its hot loop).
AVX2 __attribute__((noinline)) static void scores_keys16_avx2(const float *qp, size_t lanes,
                                                              const float *k, size_t n, size_t D,
                                                              float *st) {
    scores_t_keys_avx2(2, qp, lanes, k, n, D, st);
}

AVX2 __attribute__((noinline)) static void scores_keys8_avx2(const float *qp, size_t lanes,
                                                             const float *k, size_t n, size_t D,
                                                             float *st) {
    scores_t_keys_avx2(1, qp, lanes, k, n, D, st);
}

// P·V of columns d .. d+15 for every row of the tile, each group of rows over the keys its last
// row sees (keys j0 .. j0+jn-1 of the block). Columns outermost: the 16 columns of V's rows
// stay in L1 while every row group reads them.
AVX2_INLINE void pv_columns_t_avx2(const int masked, const struct attn_tile *w,
                                   const struct attn_slot *b, size_t j0, size_t jn,
                                   const float *v, size_t d) {
    const size_t D = w->D, lanes = attn_lanes(w->q_block), nr = w->nr;
    size_t i = 0;
    for (; i + TILE_ROWS <= nr; i += TILE_ROWS)
        pv_t_avx2(TILE_ROWS, masked, b->acc + i * D, b->alpha + i, b->s + i, lanes,
                  attn_row_keys(w, i + TILE_ROWS - 1, j0, jn), v, D, d);
    const size_t n = attn_row_keys(w, nr - 1, j0, jn);
    float *acc = b->acc + i * D;
    const float *alpha = b->alpha + i, *pt = b->s + i;
    switch (nr - i) {
    case 5: pv_t_avx2(5, masked, acc, alpha, pt, lanes, n, v, D, d); break;
    case 4: pv_t_avx2(4, masked, acc, alpha, pt, lanes, n, v, D, d); break;
    case 3: pv_t_avx2(3, masked, acc, alpha, pt, lanes, n, v, D, d); break;
    case 2: pv_t_avx2(2, masked, acc, alpha, pt, lanes, n, v, D, d); break;
    case 1: pv_t_avx2(1, masked, acc, alpha, pt, lanes, n, v, D, d); break;
    default: break;
    }
}

AVX2 __attribute__((noinline)) static void pv_block_avx2(const struct attn_tile *w,
                                                         const struct attn_slot *b, size_t j0,
                                                         size_t jn, const float *v) {
    size_t d = 0;
    for (; d + 16 <= w->D; d += 16) pv_columns_t_avx2(0, w, b, j0, jn, v, d);
    if (d < w->D) pv_columns_t_avx2(1, w, b, j0, jn, v, d);
}

// In place, r[j] lane i <- r[i] lane j: the unpack / shuffle / 128-bit permute network.
AVX2_INLINE void transpose_8x8(__m256 r[8]) {
    __m256 t[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int g = 0; g < 2; g++) {
        r[4 * g + 0] = _mm256_shuffle_ps(t[4 * g + 0], t[4 * g + 2], 0x44);
        r[4 * g + 1] = _mm256_shuffle_ps(t[4 * g + 0], t[4 * g + 2], 0xee);
        r[4 * g + 2] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
        r[4 * g + 3] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xee);
    }
    for (int j = 0; j < 4; j++) {
        t[j] = _mm256_permute2f128_ps(r[j], r[4 + j], 0x20);
        t[4 + j] = _mm256_permute2f128_ps(r[j], r[4 + j], 0x31);
    }
    for (int j = 0; j < 8; j++) r[j] = t[j];
}

// Tile rows 0 .. used-1 into lanes of qp (D, lanes), scaled; rows past nr are 0. Eight rows by
// eight columns at a time through a register transpose (a gather per column cost 4% of the
// tile, the transpose well under 1%).
AVX2 void ck_attn_pack_qt_avx2(const struct attn_tile *w, float *qp, size_t lanes, size_t used) {
    const size_t D = w->D;
    const __m256 scale = _mm256_set1_ps(w->scale);
    for (size_t i0 = 0; i0 < used; i0 += 8) {
        const float *row[8];
        for (size_t j = 0; j < 8; j++)
            row[j] = i0 + j < w->nr ? w->q + attn_row_offset(w, i0 + j) : NULL;
        for (size_t d = 0; d < D; d += 8) {
            const __m256i m = lane_mask(D - d);
            __m256 r[8];
            for (int j = 0; j < 8; j++)
                r[j] = row[j] == NULL ? _mm256_setzero_ps()
                       : d + 8 <= D   ? _mm256_loadu_ps(row[j] + d)
                                      : _mm256_maskload_ps(row[j] + d, m);
            transpose_8x8(r);
            for (size_t j = 0; j < 8 && d + j < D; j++)
                _mm256_storeu_ps(qp + (d + j) * lanes + i0, _mm256_mul_ps(scale, r[j]));
        }
    }
}

// The key-major tile: queries packed once as qp (D, lanes), then per KV block S^T, the online
// softmax, and P·V into acc.
AVX2 static void tile_keys_avx2(const struct attn_tile *w, const struct attn_slot *b,
                                size_t kv_end) {
    const size_t D = w->D, kvb = w->kv_block, nr = w->nr, lanes = attn_lanes(w->q_block);
    const size_t used = (nr + 7) / 8 * 8;  // lanes computed: whole vectors
    ck_attn_pack_qt_avx2(w, b->qp, lanes, used);
    if (w->kh16 != NULL)
        for (size_t d = 0; d < D; d++) round_bf16_n(b->qp + d * lanes, used);
    const size_t first_pos = attn_row_pos(w, w->r0);
    for (size_t j0 = w->key_lo; j0 < kv_end; j0 += kvb) {
        const size_t jn = attn_min(kvb, kv_end - j0);
        const float *kb, *vb;
        block_f32(w, b, j0, jn, &kb, &vb);
        attn_prefetch_next(w, j0, kv_end);
        // Each group of lanes or rows goes as far as the keys of its last row: in the diagonal
        // block, micro-tiles wholly above the diagonal are skipped.
        const size_t last = nr - 1;
        size_t i0 = 0;
        for (; i0 + 16 <= used; i0 += 16)
            scores_keys16_avx2(b->qp + i0, lanes, kb,
                               attn_row_keys(w, attn_min(i0 + 15, last), j0, jn), D, b->s + i0);
        if (i0 < used)
            scores_keys8_avx2(b->qp + i0, lanes, kb, attn_row_keys(w, last, j0, jn), D,
                              b->s + i0);
        const int diagonal = j0 + jn > first_pos + 1;
        for (i0 = 0; i0 < used; i0 += 8)
            softmax_t_avx2(w, b, i0, j0, attn_row_keys(w, attn_min(i0 + 7, last), j0, jn), jn,
                           diagonal);
        if (w->kh16 != NULL)
            for (size_t c = 0; c < jn; c++) round_bf16_n(b->s + c * lanes, used);
        pv_block_avx2(w, b, j0, jn, vb);
    }
}

AVX2 void ck_attn_tile_avx2(const struct attn_tile *w) {
    const struct attn_slot b = attn_slot_of(w);
    const size_t D = w->D, nr = w->nr;
    attn_slot_start(w, &b);
    const size_t kv_end = attn_row_key_end(w, w->r0 + nr - 1);
    if (nr < ROW_MAJOR_BELOW) tile_rows_avx2(w, &b, kv_end);
    else tile_keys_avx2(w, &b, kv_end);
    if (w->partial) return;
    // Plain stores where a whole vector fits: AMD runs a masked store far slower.
    for (size_t i = 0; i < nr; i++) {
        float *o = w->out + attn_row_offset(w, i);
        const float *a = b.acc + i * D;
        const __m256 inv = _mm256_set1_ps(1.0f / b.l[i]);
        size_t d = 0;
        for (; d + 8 <= D; d += 8)
            _mm256_storeu_ps(o + d, _mm256_mul_ps(_mm256_loadu_ps(a + d), inv));
        if (d < D) {
            const __m256i mk = lane_mask(D - d);
            _mm256_maskstore_ps(o + d, mk, _mm256_mul_ps(_mm256_maskload_ps(a + d, mk), inv));
        }
    }
}
