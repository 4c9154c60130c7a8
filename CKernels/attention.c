// attention.c — causal grouped-query attention over the KV cache, two ways: standard (the
// T x (pos0+T) score block of a head materialised, softmaxed, multiplied by V) and streaming
// (FlashAttention-style: Q blocks against KV blocks with an online softmax), each as a plain C
// reference and an AVX2+FMA version.
//
// Shapes, for every function here:
//   q: (T, Hq, D)  out: (T, Hq, D)  k, v: (Hkv, cap, D), positions 0 .. pos0+T-1 filled
//   query t (absolute position pos0 + t) attends to keys 0 .. pos0 + t;
//   query head h reads KV head h / (Hq / Hkv).
#include "ckernels.h"
#include "simd_avx2.h"

#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#define AVX2 __attribute__((target("avx2,fma")))
#define AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma")))


static inline size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

// Threads for `units` independent work units when scratch has `slots` slots: never more threads
// than slots, since a thread's slot is its thread number.
static int team_size(int slots, size_t units) {
    int nt = omp_get_max_threads();
    if (nt > slots) nt = slots;
    if ((size_t)nt > units) nt = (int)units;
    return nt < 1 ? 1 : nt;
}

// ---------------------------------------------------------------------------------------------
// AVX2 building blocks (D is any even number; the last partial vector of a row is masked)
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

AVX2_INLINE float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2_INLINE float hmax256(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Both building blocks below take nq = 1 or 2 query rows (a constant once inlined): two rows
// share every load of K or V, which is what keeps them off the load ports' limit.

// s_r[j] = scale * (q_r · k_j) for rows r < nq and keys j < n.
// q_r: q + r ldq, (D)  k: (n, D)  s_r: s + r lds, (n)
// 2 rows x 4 keys = 8 accumulators (8 FMA chains: the FMA latency times two pipes) for
// 6 loads; each accumulator holds 8 partial sums over d, added up at the end.
AVX2_INLINE void scores_avx2(const int nq, const float *q, size_t ldq, const float *k, size_t n,
                             size_t D, float scale, float *s, size_t lds) {
    const size_t dv = D & ~(size_t)7;
    const __m256i tail = lane_mask(D - dv);
    size_t j = 0;
    for (; j + 4 <= n; j += 4) {
        const float *kj = k + j * D;
        __m256 a[2][4];
        for (int r = 0; r < nq; r++)
            for (int c = 0; c < 4; c++) a[r][c] = _mm256_setzero_ps();
        for (size_t d = 0; d < dv; d += 8) {
            __m256 kv[4];
            for (int c = 0; c < 4; c++) kv[c] = _mm256_loadu_ps(kj + c * D + d);
            for (int r = 0; r < nq; r++) {
                const __m256 qv = _mm256_loadu_ps(q + r * ldq + d);
                for (int c = 0; c < 4; c++) a[r][c] = _mm256_fmadd_ps(qv, kv[c], a[r][c]);
            }
        }
        if (dv < D) {
            __m256 kv[4];
            for (int c = 0; c < 4; c++) kv[c] = _mm256_maskload_ps(kj + c * D + dv, tail);
            for (int r = 0; r < nq; r++) {
                const __m256 qv = _mm256_maskload_ps(q + r * ldq + dv, tail);
                for (int c = 0; c < 4; c++) a[r][c] = _mm256_fmadd_ps(qv, kv[c], a[r][c]);
            }
        }
        for (int r = 0; r < nq; r++)
            _mm_storeu_ps(s + r * lds + j, _mm_mul_ps(hsum4(a[r][0], a[r][1], a[r][2], a[r][3]),
                                                      _mm_set1_ps(scale)));
    }
    for (; j < n; j++) {
        const float *kj = k + j * D;
        __m256 a[2];
        for (int r = 0; r < nq; r++) a[r] = _mm256_setzero_ps();
        for (size_t d = 0; d < dv; d += 8) {
            const __m256 kv = _mm256_loadu_ps(kj + d);
            for (int r = 0; r < nq; r++)
                a[r] = _mm256_fmadd_ps(_mm256_loadu_ps(q + r * ldq + d), kv, a[r]);
        }
        if (dv < D) {
            const __m256 kv = _mm256_maskload_ps(kj + dv, tail);
            for (int r = 0; r < nq; r++)
                a[r] = _mm256_fmadd_ps(_mm256_maskload_ps(q + r * ldq + dv, tail), kv, a[r]);
        }
        for (int r = 0; r < nq; r++) s[r * lds + j] = scale * hsum256(a[r]);
    }
}

// o_r = alpha[r] o_r + sum_j p_r[j] v_j for rows r < nq.
// o_r: o + r ldo, (D)  p_r: p + r ldp, (n)  v: (n, D)
// The rows of o stay in registers across all n keys, 64 / nq floats of each at a time (8
// accumulators, 8 FMA chains); what is left of D goes 8 floats at a time, the last one masked.
AVX2_INLINE void pv_avx2(const int nq, float *o, size_t ldo, const float *alpha, const float *p,
                         size_t ldp, size_t n, const float *v, size_t D) {
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
            __m256 vv[8];
            for (int u = 0; u < nv; u++) vv[u] = _mm256_loadu_ps(v + j * D + d + 8 * u);
            for (int r = 0; r < nq; r++) {
                const __m256 pj = _mm256_broadcast_ss(p + r * ldp + j);
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
            const __m256 vv = _mm256_maskload_ps(v + j * D + d, m);
            for (int r = 0; r < nq; r++)
                a[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(p + r * ldp + j), vv, a[r]);
        }
        for (int r = 0; r < nq; r++) _mm256_maskstore_ps(o + r * ldo + d, m, a[r]);
    }
}

// ---------------------------------------------------------------------------------------------
// Standard attention
// ---------------------------------------------------------------------------------------------

// One slot holds one head's score block: (T, pos0 + T).
size_t ck_attention_standard_scratch(size_t T, size_t pos0, int slots) {
    return (size_t)(slots < 1 ? 1 : slots) * T * (pos0 + T);
}

// One query head: scores (T, S) with S = pos0 + T, row t filled in its causal part 0 .. pos0+t.
static void standard_head_ref(const float *q, const float *kh, const float *vh, float *out,
                              size_t T, size_t pos0, size_t Hq, size_t h, size_t D, float scale,
                              float *scores) {
    const size_t S = pos0 + T;
    for (size_t t = 0; t < T; t++) {
        const float *qt = q + (t * Hq + h) * D;
        for (size_t j = 0; j <= pos0 + t; j++) {
            float acc = 0.0f;
            for (size_t d = 0; d < D; d++) acc += qt[d] * kh[j * D + d];
            scores[t * S + j] = scale * acc;
        }
    }
    for (size_t t = 0; t < T; t++) ck_softmax_f32_ref(scores + t * S, pos0 + t + 1);
    for (size_t t = 0; t < T; t++) {
        float *ot = out + (t * Hq + h) * D;
        for (size_t d = 0; d < D; d++) ot[d] = 0.0f;
        for (size_t j = 0; j <= pos0 + t; j++) {
            const float p = scores[t * S + j];
            for (size_t d = 0; d < D; d++) ot[d] += p * vh[j * D + d];
        }
    }
}

void ck_attention_standard_f32_ref(const float *q, const float *k, const float *v, float *out,
                                   size_t T, size_t pos0, size_t Hq, size_t Hkv, size_t D,
                                   size_t cap, float scale, float *scratch, int slots) {
    const size_t group = Hq / Hkv;
#pragma omp parallel for schedule(static) num_threads(team_size(slots, Hq))
    for (size_t h = 0; h < Hq; h++) {
        const size_t kvh = h / group;
        float *scores = scratch + (size_t)omp_get_thread_num() * T * (pos0 + T);
        standard_head_ref(q, k + kvh * cap * D, v + kvh * cap * D, out, T, pos0, Hq, h, D, scale,
                          scores);
    }
}

// standard_head_ref with vector dot products, softmax and P·V, two query rows at a time. The
// pair (t, t+1) is scored against the pos0+t+2 keys of its later row; the earlier row's one
// extra score lands in its own row of the block (which has S >= pos0+t+2 columns), is left out
// of its softmax, and is zeroed before the joint P·V so that key adds exactly nothing.
AVX2 static void standard_head_avx2(const float *q, const float *kh, const float *vh, float *out,
                                    size_t T, size_t pos0, size_t Hq, size_t h, size_t D,
                                    float scale, float *scores) {
    const size_t S = pos0 + T, ldq = Hq * D;
    const float once[2] = {1.0f, 1.0f};  // o is zeroed, then takes the one sum over all keys
    for (size_t t = 0; t < T; t += 2) {
        const float *qt = q + (t * Hq + h) * D;
        if (t + 1 < T) scores_avx2(2, qt, ldq, kh, pos0 + t + 2, D, scale, scores + t * S, S);
        else scores_avx2(1, qt, ldq, kh, pos0 + t + 1, D, scale, scores + t * S, S);
    }
    for (size_t t = 0; t < T; t++) ck_softmax_f32_avx2(scores + t * S, pos0 + t + 1);
    for (size_t t = 0; t < T; t += 2) {
        float *ot = out + (t * Hq + h) * D;
        float *st = scores + t * S;
        if (t + 1 < T) {
            memset(ot, 0, D * sizeof *ot);
            memset(ot + ldq, 0, D * sizeof *ot);
            st[pos0 + t + 1] = 0.0f;
            pv_avx2(2, ot, ldq, once, st, S, pos0 + t + 2, vh, D);
        } else {
            memset(ot, 0, D * sizeof *ot);
            pv_avx2(1, ot, ldq, once, st, S, pos0 + t + 1, vh, D);
        }
    }
}

void ck_attention_standard_f32_avx2(const float *q, const float *k, const float *v, float *out,
                                    size_t T, size_t pos0, size_t Hq, size_t Hkv, size_t D,
                                    size_t cap, float scale, float *scratch, int slots) {
    const size_t group = Hq / Hkv;
#pragma omp parallel for schedule(static) num_threads(team_size(slots, Hq))
    for (size_t h = 0; h < Hq; h++) {
        const size_t kvh = h / group;
        float *scores = scratch + (size_t)omp_get_thread_num() * T * (pos0 + T);
        standard_head_avx2(q, k + kvh * cap * D, v + kvh * cap * D, out, T, pos0, Hq, h, D, scale,
                           scores);
    }
}

// ---------------------------------------------------------------------------------------------
// Streaming attention
// ---------------------------------------------------------------------------------------------

// One slot: the score tile (q_block, kv_block), the output accumulator (q_block, D), and the
// running max m and denominator l of each query row (q_block each).
static size_t streaming_slot(size_t q_block, size_t kv_block, size_t D) {
    return q_block * kv_block + q_block * D + 2 * q_block;
}

size_t ck_attention_streaming_scratch(size_t q_block, size_t kv_block, size_t D, int slots) {
    return (size_t)(slots < 1 ? 1 : slots) * streaming_slot(q_block, kv_block, D);
}

// The work of one (head, Q block): queries t0 .. t0+tq-1 against keys 0 .. pos0+t0+tq-1, which
// is every KV block that is not wholly above the causal diagonal. In the diagonal block(s),
// query row r takes only keys up to its own position, so no mask values are needed.
struct stream_task {
    const float *q, *kh, *vh;
    float *out;
    size_t t0, tq, pos0, Hq, h, D, q_block, kv_block;
    float scale;
    float *slot;
};

// Keys of query row r that fall in the KV block starting at j0 (of jn keys): 0 if the block
// starts after the query's position.
static inline size_t causal_keys(const struct stream_task *w, size_t r, size_t j0, size_t jn) {
    const size_t qpos = w->pos0 + w->t0 + r;
    return j0 > qpos ? 0 : min_size(jn, qpos + 1 - j0);
}

// Online softmax update of one row for a new block of scores s (n > 0): the running max m moves
// to m' = max(m, max s), earlier terms are rescaled by alpha = exp(m - m') (0 on the first
// block, where m = -inf), s becomes p = exp(s - m'), and l = alpha l + sum p.
// Returns alpha, which the caller applies to the row's output accumulator.
static float online_softmax_ref(float *s, size_t n, float *m, float *l) {
    float bmax = s[0];
    for (size_t c = 1; c < n; c++)
        if (s[c] > bmax) bmax = s[c];
    const float mnew = bmax > *m ? bmax : *m;
    const float alpha = expf(*m - mnew);
    float sum = 0.0f;
    for (size_t c = 0; c < n; c++) {
        s[c] = expf(s[c] - mnew);
        sum += s[c];
    }
    *l = alpha * *l + sum;
    *m = mnew;
    return alpha;
}

static void streaming_task_ref(const struct stream_task *w) {
    const size_t D = w->D, kvb = w->kv_block;
    float *s = w->slot, *acc = s + w->q_block * kvb, *m = acc + w->q_block * D, *l = m + w->q_block;
    for (size_t r = 0; r < w->tq; r++) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
        for (size_t d = 0; d < D; d++) acc[r * D + d] = 0.0f;
    }
    const size_t kv_end = w->pos0 + w->t0 + w->tq;
    for (size_t j0 = 0; j0 < kv_end; j0 += kvb) {
        const size_t jn = min_size(kvb, kv_end - j0);
        for (size_t r = 0; r < w->tq; r++) {
            const size_t n = causal_keys(w, r, j0, jn);
            const float *qr = w->q + ((w->t0 + r) * w->Hq + w->h) * D;
            for (size_t c = 0; c < n; c++) {
                float dot = 0.0f;
                for (size_t d = 0; d < D; d++) dot += qr[d] * w->kh[(j0 + c) * D + d];
                s[r * kvb + c] = w->scale * dot;
            }
        }
        for (size_t r = 0; r < w->tq; r++) {
            const size_t n = causal_keys(w, r, j0, jn);
            if (n == 0) continue;
            float *sr = s + r * kvb, *ar = acc + r * D;
            const float alpha = online_softmax_ref(sr, n, m + r, l + r);
            for (size_t d = 0; d < D; d++) ar[d] *= alpha;
            for (size_t c = 0; c < n; c++)
                for (size_t d = 0; d < D; d++) ar[d] += sr[c] * w->vh[(j0 + c) * D + d];
        }
    }
    for (size_t r = 0; r < w->tq; r++) {
        float *orow = w->out + ((w->t0 + r) * w->Hq + w->h) * D;
        const float inv = 1.0f / l[r];
        for (size_t d = 0; d < D; d++) orow[d] = acc[r * D + d] * inv;
    }
}

// online_softmax_ref with the max and the exp-and-sum in vectors.
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

// streaming_task_ref with two query rows at a time, scored against the keys of the later row
// (the earlier one sees at most one key fewer). The earlier row's extra scores, in the
// diagonal block, are left out of its online softmax and zeroed before the joint P·V; a row
// with no key in the block keeps alpha = 1, so it comes out unchanged.
AVX2 static void streaming_task_avx2(const struct stream_task *w) {
    const size_t D = w->D, kvb = w->kv_block, ldq = w->Hq * D;
    float *s = w->slot, *acc = s + w->q_block * kvb, *m = acc + w->q_block * D, *l = m + w->q_block;
    for (size_t r = 0; r < w->tq; r++) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
    }
    memset(acc, 0, w->tq * D * sizeof *acc);
    const size_t kv_end = w->pos0 + w->t0 + w->tq;
    for (size_t j0 = 0; j0 < kv_end; j0 += kvb) {
        const size_t jn = min_size(kvb, kv_end - j0);
        const float *kb = w->kh + j0 * D, *vb = w->vh + j0 * D;
        for (size_t r = 0; r < w->tq; r += 2) {
            const float *qr = w->q + ((w->t0 + r) * w->Hq + w->h) * D;
            if (r + 1 < w->tq)
                scores_avx2(2, qr, ldq, kb, causal_keys(w, r + 1, j0, jn), D, w->scale,
                            s + r * kvb, kvb);
            else
                scores_avx2(1, qr, ldq, kb, causal_keys(w, r, j0, jn), D, w->scale, s + r * kvb,
                            kvb);
        }
        for (size_t r = 0; r < w->tq; r += 2) {
            const int nq = r + 1 < w->tq ? 2 : 1;
            const size_t n0 = causal_keys(w, r, j0, jn);
            const size_t n = causal_keys(w, r + (size_t)nq - 1, j0, jn);
            if (n == 0) continue;
            float alpha[2] = {1.0f, 1.0f};
            float *sr = s + r * kvb;
            if (n0 > 0) alpha[0] = online_softmax_avx2(sr, n0, m + r, l + r);
            if (nq == 2) {
                alpha[1] = online_softmax_avx2(sr + kvb, n, m + r + 1, l + r + 1);
                memset(sr + n0, 0, (n - n0) * sizeof *sr);
                pv_avx2(2, acc + r * D, D, alpha, sr, kvb, n, vb, D);
            } else {
                pv_avx2(1, acc + r * D, D, alpha, sr, kvb, n, vb, D);
            }
        }
    }
    for (size_t r = 0; r < w->tq; r++) {
        float *orow = w->out + ((w->t0 + r) * w->Hq + w->h) * D;
        const __m256 inv = _mm256_set1_ps(1.0f / l[r]);
        for (size_t d = 0; d < D; d += 8) {
            const __m256i mk = lane_mask(D - d);
            _mm256_maskstore_ps(orow + d, mk,
                                _mm256_mul_ps(_mm256_maskload_ps(acc + r * D + d, mk), inv));
        }
    }
}

// Tasks are (head, Q block) pairs, latest Q blocks first: they attend to the most keys, and
// handing out the big tasks first lets the dynamic schedule even out the finish.
// q_block, kv_block >= 1; either may exceed T or pos0 + T.
static void streaming(const float *q, const float *k, const float *v, float *out, size_t T,
                      size_t pos0, size_t Hq, size_t Hkv, size_t D, size_t cap, float scale,
                      size_t q_block, size_t kv_block, float *scratch, int slots,
                      void (*task)(const struct stream_task *)) {
    const size_t group = Hq / Hkv, nqb = (T + q_block - 1) / q_block, tasks = Hq * nqb;
    const size_t slot_floats = streaming_slot(q_block, kv_block, D);
#pragma omp parallel for schedule(dynamic, 1) num_threads(team_size(slots, tasks))
    for (size_t i = 0; i < tasks; i++) {
        const size_t qb = nqb - 1 - i / Hq, h = i % Hq, kvh = h / group;
        const struct stream_task w = {
            .q = q, .kh = k + kvh * cap * D, .vh = v + kvh * cap * D, .out = out,
            .t0 = qb * q_block, .tq = min_size(q_block, T - qb * q_block), .pos0 = pos0,
            .Hq = Hq, .h = h, .D = D, .q_block = q_block, .kv_block = kv_block, .scale = scale,
            .slot = scratch + (size_t)omp_get_thread_num() * slot_floats,
        };
        task(&w);
    }
}

void ck_attention_streaming_f32_ref(const float *q, const float *k, const float *v, float *out,
                                    size_t T, size_t pos0, size_t Hq, size_t Hkv, size_t D,
                                    size_t cap, float scale, size_t q_block, size_t kv_block,
                                    float *scratch, int slots) {
    streaming(q, k, v, out, T, pos0, Hq, Hkv, D, cap, scale, q_block, kv_block, scratch, slots,
              streaming_task_ref);
}

void ck_attention_streaming_f32_avx2(const float *q, const float *k, const float *v, float *out,
                                     size_t T, size_t pos0, size_t Hq, size_t Hkv, size_t D,
                                     size_t cap, float scale, size_t q_block, size_t kv_block,
                                     float *scratch, int slots) {
    streaming(q, k, v, out, T, pos0, Hq, Hkv, D, cap, scale, q_block, kv_block, scratch, slots,
              streaming_task_avx2);
}
