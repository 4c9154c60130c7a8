// attention.c — causal grouped-query attention over the KV cache: the plain C references
// (standard and streaming), the scratch sizes, the schedules of standard and of streaming
// attention shared by every ISA (attention_avx2.c and attention_avx512.c compute their pieces),
// and the partial softmax states with their merge.
//
// Shapes, for every function here:
//   q: (T, Hq, D)  out: (T, Hq, D)  k, v: (Hkv, cap, D), positions 0 .. pos0+T-1 filled
//   query t (absolute position pos0 + t) attends to keys 0 .. pos0 + t;
//   query head h reads KV head h / (Hq / Hkv).
#include "attention_internal.h"
#include "ckernels.h"
#include "scratch_internal.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

static inline size_t div_up(size_t a, size_t b) { return (a + b - 1) / b; }

// Row blocks per KV head from which streaming prefill pairs V once per head (ck_attn_streaming).
#define PAIR_V_MIN_BLOCKS 128

// ---------------------------------------------------------------------------------------------
// Standard attention: the reference head and the schedule shared by every ISA
// ---------------------------------------------------------------------------------------------

// One slot holds one head's score block: (T, pos0 + T).
size_t ck_attention_standard_scratch(size_t T, size_t pos0, int slots) {
    return (size_t)(slots < 1 ? 1 : slots) * T * (pos0 + T);
}

// Element i of a cache row block x: float, or bfloat16 widened.
static inline float kv_at(const void *x, int bf16, size_t i) {
    return bf16 ? ck_f32_from_bf16(((const uint16_t *)x)[i]) : ((const float *)x)[i];
}

// One query head: scores (T, S) with S = pos0 + T, row t filled in its causal part 0 .. pos0+t.
// For a bf16 cache the rounding points of the bf16 kernels: q enters the dot products as
// bf16(scale q), and each probability enters P·V rounded to bf16; sums, softmax and out in f32.
static void standard_head_ref(const float *q, const void *kh, const void *vh, int bf16, float *out,
                              size_t T, size_t pos0, size_t Hq, size_t h, size_t D, float scale,
                              float *scores) {
    const size_t S = pos0 + T;
    for (size_t t = 0; t < T; t++) {
        const float *qt = q + (t * Hq + h) * D;
        for (size_t j = 0; j <= pos0 + t; j++) {
            float acc = 0.0f;
            for (size_t d = 0; d < D; d++) {
                const float qd = bf16 ? attn_round_bf16(scale * qt[d]) : qt[d];
                acc += qd * kv_at(kh, bf16, j * D + d);
            }
            scores[t * S + j] = bf16 ? acc : scale * acc;
        }
    }
    for (size_t t = 0; t < T; t++) ck_softmax_f32_ref(scores + t * S, pos0 + t + 1);
    for (size_t t = 0; t < T; t++) {
        float *ot = out + (t * Hq + h) * D;
        for (size_t d = 0; d < D; d++) ot[d] = 0.0f;
        for (size_t j = 0; j <= pos0 + t; j++) {
            const float p = bf16 ? attn_round_bf16(scores[t * S + j]) : scores[t * S + j];
            for (size_t d = 0; d < D; d++) ot[d] += p * kv_at(vh, bf16, j * D + d);
        }
    }
}

// standard_head_ref with the vector pieces of `ops`, two query rows at a time. The pair (t, t+1)
// is scored against the pos0+t+2 keys of its later row; the earlier row's one extra score lands
// in its own row of the block (which has S >= pos0+t+2 columns), is left out of its softmax, and
// is zeroed before the joint P·V so that key adds exactly nothing.
static void standard_head_pairs(const struct attn_standard_ops *ops, const float *q,
                                const void *kh, const void *vh, float *out, size_t T,
                                size_t pos0, size_t Hq, size_t h, size_t D, float scale,
                                float *scores) {
    const size_t S = pos0 + T, ldq = Hq * D;
    for (size_t t = 0; t < T; t += 2) {
        const int nq = t + 1 < T ? 2 : 1;
        ops->scores(nq, q + (t * Hq + h) * D, ldq, kh, pos0 + t + (size_t)nq, D, scale,
                    scores + t * S, S);
    }
    for (size_t t = 0; t < T; t++) ops->softmax(scores + t * S, pos0 + t + 1);
    for (size_t t = 0; t < T; t += 2) {
        const int nq = t + 1 < T ? 2 : 1;
        if (nq == 2) scores[t * S + pos0 + t + 1] = 0.0f;
        ops->pv(nq, out + (t * Hq + h) * D, ldq, scores + t * S, S, pos0 + t + (size_t)nq, vh, D);
    }
}

// Threads splitting one head of a decode step share their partial maxima and sums here.
#define SPLIT_MAX_THREADS 64

// A decode step (T = 1) with fewer heads than threads: the heads one after another, each split
// over the whole team: keys in equal ranges for the scores, their max and their exp-sum (the
// softmax needs the max and sum of all ranges, exchanged through `part`), then columns of V for
// P·V. The head's score row is materialised in slot 0 as in the per-head version.
static void standard_decode_split(const float *q, const void *k, const void *v, size_t esize,
                                  float *out, size_t pos0, size_t Hq, size_t Hkv, size_t D,
                                  size_t cap, float scale, float *scores, int threads,
                                  const struct attn_standard_ops *ops) {
    const size_t S = pos0 + 1, group = Hq / Hkv;
    const char *kb = k, *vb = v;
    float part[SPLIT_MAX_THREADS];
#pragma omp parallel num_threads(threads)
    {
        const size_t nt = (size_t)omp_get_num_threads(), id = (size_t)omp_get_thread_num();
        const size_t j0 = S * id / nt, j1 = S * (id + 1) / nt;
        const size_t cols = (D + nt - 1) / nt, d0 = attn_min(D, id * cols),
                     d1 = attn_min(D, d0 + cols);
        for (size_t h = 0; h < Hq; h++) {
            const char *kh = kb + (h / group) * cap * D * esize;
            const char *vh = vb + (h / group) * cap * D * esize;
            if (j1 > j0)
                ops->scores(1, q + h * D, D, kh + j0 * D * esize, j1 - j0, D, scale, scores + j0, 0);
            part[id] = j1 > j0 ? ops->max(scores + j0, j1 - j0) : -INFINITY;
#pragma omp barrier
            float M = -INFINITY;
            for (size_t t = 0; t < nt; t++) M = part[t] > M ? part[t] : M;
#pragma omp barrier
            part[id] = j1 > j0 ? ops->exp_shift_sum(scores + j0, j1 - j0, M) : 0.0f;
#pragma omp barrier
            float L = 0.0f;
            for (size_t t = 0; t < nt; t++) L += part[t];
            if (d1 > d0)
                ops->pv_columns(out + h * D + d0, scores, S, vh + d0 * esize, D, d1 - d0, 1.0f / L);
#pragma omp barrier
        }
    }
}

// OpenMP over heads, each thread in its own slot of scratch; a decode step over a long cache with
// fewer heads than threads splits each head instead (the SIMD versions only).
void ck_attn_standard(const float *q, const void *k, const void *v, int kv_bf16, float *out,
                      size_t T, size_t pos0, size_t Hq, size_t Hkv, size_t D, size_t cap,
                      float scale, float *scratch, int slots, const struct attn_standard_ops *ops) {
    const size_t group = Hq / Hkv, esize = kv_bf16 ? 2 : 4;
    const int threads = attn_team_size(slots, SPLIT_MAX_THREADS);
    if (ops != NULL && T == 1 && (size_t)threads > Hq && pos0 + 1 >= (size_t)threads * 64) {
        standard_decode_split(q, k, v, esize, out, pos0, Hq, Hkv, D, cap, scale, scratch, threads,
                              ops);
        return;
    }
#pragma omp parallel for schedule(static) num_threads(attn_team_size(slots, Hq))
    for (size_t h = 0; h < Hq; h++) {
        const size_t kvh = h / group;
        const char *kh = (const char *)k + kvh * cap * D * esize;
        const char *vh = (const char *)v + kvh * cap * D * esize;
        float *scores = scratch + (size_t)omp_get_thread_num() * T * (pos0 + T);
        if (ops == NULL)
            standard_head_ref(q, kh, vh, kv_bf16, out, T, pos0, Hq, h, D, scale, scores);
        else standard_head_pairs(ops, q, kh, vh, out, T, pos0, Hq, h, D, scale, scores);
    }
}

void ck_attention_standard_f32_ref(const float *q, const float *k, const float *v, float *out,
                                   size_t T, size_t pos0, size_t Hq, size_t Hkv, size_t D,
                                   size_t cap, float scale, float *scratch, int slots) {
    ck_attn_standard(q, k, v, 0, out, T, pos0, Hq, Hkv, D, cap, scale, scratch, slots, NULL);
}

void ck_attention_standard_bf16_ref(const float *q, const uint16_t *k, const uint16_t *v,
                                    float *out, size_t T, size_t pos0, size_t Hq, size_t Hkv,
                                    size_t D, size_t cap, float scale, float *scratch, int slots) {
    ck_attn_standard(q, k, v, 1, out, T, pos0, Hq, Hkv, D, cap, scale, scratch, slots, NULL);
}

// ---------------------------------------------------------------------------------------------
// Partial states and their merge
// ---------------------------------------------------------------------------------------------

size_t ck_attention_state_floats(size_t rows, size_t D) { return rows * (D + 2); }

// Merges row by row `parts` states (parts, rows, D + 2): with M the largest running max,
// acc = sum_p e^(m_p - M) acc_p and l = sum_p e^(m_p - M) l_p. A part in which the row saw no
// key (l = 0, m = -inf) weighs nothing. normalise: out (rows, D) = acc / l, or 0 for a row no
// part saw keys for; else out (rows, D + 2) is the merged state itself.
static void merge_states(const float *states, size_t parts, size_t rows, size_t D, float *out,
                         int normalise) {
    const size_t part_floats = rows * (D + 2);
    for (size_t r = 0; r < rows; r++) {
        float M = -INFINITY;
        for (size_t p = 0; p < parts; p++) {
            const float *s = states + p * part_floats + r * (D + 2);
            if (s[D + 1] > 0.0f && s[D] > M) M = s[D];
        }
        float *o = out + r * (normalise ? D : D + 2);
        float L = 0.0f;
        for (size_t d = 0; d < D; d++) o[d] = 0.0f;
        for (size_t p = 0; p < parts; p++) {
            const float *s = states + p * part_floats + r * (D + 2);
            if (!(s[D + 1] > 0.0f)) continue;
            const float f = expf(s[D] - M);
            L += f * s[D + 1];
            for (size_t d = 0; d < D; d++) o[d] += f * s[d];
        }
        if (normalise) {
            const float inv = L > 0.0f ? 1.0f / L : 0.0f;
            for (size_t d = 0; d < D; d++) o[d] *= inv;
        } else {
            o[D] = M;
            o[D + 1] = L;
        }
    }
}

void ck_attention_merge_f32(const float *states, size_t parts, size_t rows, size_t D,
                            float *out) {
    merge_states(states, parts, rows, D, out, 1);
}

// ---------------------------------------------------------------------------------------------
// Streaming attention: schedule, flash-decoding split and merge
// ---------------------------------------------------------------------------------------------

// Every slot is a tile's work area; after them, room for the states of a flash-decoding split:
// (splits, T, Hq, D + 2), at most q_block rows per slot since units <= slots.
size_t ck_attention_streaming_scratch(size_t q_block, size_t kv_block, size_t D, int slots) {
    return (size_t)(slots < 1 ? 1 : slots) *
           (attn_slot_floats(q_block, kv_block, D) + ck_attention_state_floats(q_block, D));
}

// Tile `i`: KV head i / nrb, row block i % nrb counted from the last. Threads taking tiles in
// this order work on the same KV head at once, so its K and V are read from memory once and
// shared in L3; within a head the tiles with the most keys come first, and the smallest tiles
// of the last head end the schedule.
static struct attn_tile tile_at(size_t i, size_t nrb, size_t rows, const float *q, const void *k,
                                const void *v, int kv_bf16, float *out, size_t pos0, size_t Hq,
                                size_t Hkv, size_t D, size_t cap, float scale, size_t q_block,
                                size_t kv_block) {
    const size_t rb = nrb - 1 - i % nrb, kvh = i / nrb, at = kvh * cap * D;
    const struct attn_tile w = {
        .q = q, .kh = kv_bf16 ? NULL : (const float *)k + at,
        .vh = kv_bf16 ? NULL : (const float *)v + at,
        .kh16 = kv_bf16 ? (const uint16_t *)k + at : NULL,
        .vh16 = kv_bf16 ? (const uint16_t *)v + at : NULL, .out = out, .Hq = Hq,
        .G = Hq / Hkv, .kvh = kvh, .D = D, .pos0 = pos0, .r0 = rb * q_block,
        .nr = attn_min(q_block, rows - rb * q_block), .key_lo = 0, .key_hi = SIZE_MAX,
        .q_block = q_block, .kv_block = kv_block, .scale = scale, .slot = NULL, .partial = 0,
        .vpairs = NULL};
    return w;
}

// The rows of a tile computed with partial = 1, from its slot into state (T, Hq, D + 2).
static void store_state(const struct attn_tile *w, float *state) {
    const struct attn_slot b = attn_slot_of(w);
    const size_t D = w->D;
    for (size_t i = 0; i < w->nr; i++) {
        float *row = state + attn_row_index(w, i) * (D + 2);
        memcpy(row, b.acc + i * D, D * sizeof *row);
        row[D] = b.m[i];
        row[D + 1] = b.l[i];
    }
}

// Tiles are (KV head, block of q_block rows), so the query heads of a group share each K/V
// block while it is in cache. When there are at least as many tiles as threads, threads take
// tiles in tile_at's order under a dynamic schedule (a later row block sees more keys, so
// tiles differ in cost), each in its thread's slot. With fewer tiles than threads (decode: one
// token, few KV heads per process) that would leave threads idle, so each tile's keys are split
// into whole KV blocks over `splits` units (flash decoding), each unit's state is stored after
// the slots, and the states are merged, into out or into `state`.
void ck_attn_streaming(const float *q, const void *k, const void *v, int kv_bf16, float *out,
                       float *state,
                       size_t T, size_t pos0, size_t Hq, size_t Hkv, size_t D, size_t cap,
                       float scale, size_t key_lo, size_t key_hi, size_t q_block, size_t kv_block,
                       float *scratch, int slots, void (*tile)(const struct attn_tile *),
                       ck_attn_pair_v_fn *pair_v) {
    if (T == 0) return;
    const size_t rows = T * (Hq / Hkv), nrb = div_up(rows, q_block), tiles = Hkv * nrb;
    const size_t slot_floats = attn_slot_floats(q_block, kv_block, D);
    const size_t hi = attn_min(key_hi, pos0 + T), lo = attn_min(key_lo, hi);
    const size_t threads = (size_t)attn_team_size(slots, SIZE_MAX);
    const size_t kv_blocks = div_up(hi - lo, kv_block);
    size_t splits = threads / tiles;
    if (splits > kv_blocks) splits = kv_blocks;
    if (splits >= 2) {
        const size_t per = div_up(kv_blocks, splits) * kv_block;  // keys per split
        splits = div_up(hi - lo, per);
        const size_t units = tiles * splits, part_floats = ck_attention_state_floats(T * Hq, D);
        float *states = scratch + (size_t)(slots < 1 ? 1 : slots) * slot_floats;
#pragma omp parallel for schedule(static) num_threads(attn_team_size(slots, units))
        for (size_t u = 0; u < units; u++) {
            struct attn_tile w = tile_at(u / splits, nrb, rows, q, k, v, kv_bf16, out, pos0, Hq,
                                         Hkv, D, cap, scale, q_block, kv_block);
            w.key_lo = lo + (u % splits) * per;
            w.key_hi = attn_min(w.key_lo + per, hi);
            w.slot = scratch + (size_t)omp_get_thread_num() * slot_floats;
            w.partial = 1;
            tile(&w);
            store_state(&w, states + (u % splits) * part_floats);
        }
        if (state == NULL) merge_states(states, splits, T * Hq, D, out, 1);
        else merge_states(states, splits, T * Hq, D, state, 0);
        return;
    }
    // With pair_v, one pass over each KV head's values pairs them for every tile of the head,
    // which would otherwise pair each block it reads (pairing was 2.4% of the bf16 tile's time at
    // S = 4096). The heads then go one at a time, all threads pairing and then taking the head's
    // tiles, so the buffer holds one head. That costs two barriers per head, and the tiles read
    // V's pairs from L2 or L3 instead of from the block they have just paired in L1: with
    // 64-row blocks (32 tokens at G = 2, the default tile), 1.8% and 2.2% faster at S = 4096
    // and 8192 (128 and 256 row blocks per head), level at 1024 and 2048, 20% slower at 256 and
    // 512. Hence only from PAIR_V_MIN_BLOCKS row blocks on, each V block then being read by 64
    // tiles on average. The tiles' blocks start on a pair when key_lo and kv_block are even.
    uint32_t *vp = NULL;
    if (pair_v != NULL && kv_bf16 && nrb >= PAIR_V_MIN_BLOCKS && lo % 2 == 0 &&
        kv_block % 2 == 0 && hi > lo)
        vp = ck_thread_scratch(CK_SCRATCH_ATTN_V, div_up(hi - lo, 2) * D * sizeof *vp);
    const size_t pairs = div_up(hi - lo, 2), pair_chunk = 64;
#pragma omp parallel num_threads(attn_team_size(slots, tiles))
    for (size_t h = 0; h < (vp != NULL ? Hkv : 1); h++) {
        if (vp != NULL) {
            const uint16_t *vh = (const uint16_t *)v + (h * cap + lo) * D;
#pragma omp for schedule(static)
            for (size_t c = 0; c < div_up(pairs, pair_chunk); c++) {
                const size_t k0 = 2 * c * pair_chunk;
                pair_v(vh + k0 * D, attn_min(2 * pair_chunk, hi - lo - k0), D,
                       vp + c * pair_chunk * D);
            }
        }
        const size_t i0 = vp != NULL ? h * nrb : 0, i1 = vp != NULL ? i0 + nrb : tiles;
#pragma omp for schedule(dynamic, 1)
        for (size_t i = i0; i < i1; i++) {
            struct attn_tile w = tile_at(i, nrb, rows, q, k, v, kv_bf16, out, pos0, Hq, Hkv, D,
                                         cap, scale, q_block, kv_block);
            w.key_lo = lo;
            w.key_hi = hi;
            w.slot = scratch + (size_t)omp_get_thread_num() * slot_floats;
            w.partial = state != NULL;
            w.vpairs = vp;
            tile(&w);
            if (state != NULL) store_state(&w, state);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Streaming attention, reference tile
// ---------------------------------------------------------------------------------------------

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

// Row by row: each row's keys in KV blocks from key_lo, the same blocks the SIMD tiles use.
void ck_attn_tile_ref(const struct attn_tile *w) {
    const struct attn_slot b = attn_slot_of(w);
    const size_t D = w->D;
    for (size_t i = 0; i < w->nr; i++) {
        const float *qi = w->q + attn_row_offset(w, i);
        float *acc = b.acc + i * D;
        b.m[i] = -INFINITY;
        b.l[i] = 0.0f;
        for (size_t d = 0; d < D; d++) acc[d] = 0.0f;
        const size_t end = attn_row_key_end(w, w->r0 + i);
        for (size_t j0 = w->key_lo; j0 < end; j0 += w->kv_block) {
            const size_t n = attn_min(w->kv_block, end - j0);
            for (size_t c = 0; c < n; c++) {
                const float *kj = w->kh + (j0 + c) * D;
                float dot = 0.0f;
                for (size_t d = 0; d < D; d++) dot += qi[d] * kj[d];
                b.s[c] = w->scale * dot;
            }
            const float alpha = online_softmax_ref(b.s, n, b.m + i, b.l + i);
            for (size_t d = 0; d < D; d++) acc[d] *= alpha;
            for (size_t c = 0; c < n; c++)
                for (size_t d = 0; d < D; d++) acc[d] += b.s[c] * w->vh[(j0 + c) * D + d];
        }
        if (!w->partial) {
            float *o = w->out + attn_row_offset(w, i);
            const float inv = 1.0f / b.l[i];
            for (size_t d = 0; d < D; d++) o[d] = acc[d] * inv;
        }
    }
}

// ck_attn_tile_ref with the bf16 rounding points (as standard_head_ref): the row's queries as
// bf16(scale q) in qp, probabilities rounded to bf16 as they enter P·V, l summing them unrounded
// (as the AVX512_BF16 tile's f32 online softmax does).
void ck_attn_tile_bf16_ref(const struct attn_tile *w) {
    const struct attn_slot b = attn_slot_of(w);
    const size_t D = w->D;
    for (size_t i = 0; i < w->nr; i++) {
        const float *qi = w->q + attn_row_offset(w, i);
        float *qr = b.qp, *acc = b.acc + i * D;
        for (size_t d = 0; d < D; d++) qr[d] = attn_round_bf16(w->scale * qi[d]);
        b.m[i] = -INFINITY;
        b.l[i] = 0.0f;
        for (size_t d = 0; d < D; d++) acc[d] = 0.0f;
        const size_t end = attn_row_key_end(w, w->r0 + i);
        for (size_t j0 = w->key_lo; j0 < end; j0 += w->kv_block) {
            const size_t n = attn_min(w->kv_block, end - j0);
            for (size_t c = 0; c < n; c++) {
                const uint16_t *kj = w->kh16 + (j0 + c) * D;
                float dot = 0.0f;
                for (size_t d = 0; d < D; d++) dot += qr[d] * ck_f32_from_bf16(kj[d]);
                b.s[c] = dot;
            }
            const float alpha = online_softmax_ref(b.s, n, b.m + i, b.l + i);
            for (size_t d = 0; d < D; d++) acc[d] *= alpha;
            for (size_t c = 0; c < n; c++) {
                const float p = attn_round_bf16(b.s[c]);
                const uint16_t *vj = w->vh16 + (j0 + c) * D;
                for (size_t d = 0; d < D; d++) acc[d] += p * ck_f32_from_bf16(vj[d]);
            }
        }
        if (!w->partial) {
            float *o = w->out + attn_row_offset(w, i);
            const float inv = 1.0f / b.l[i];
            for (size_t d = 0; d < D; d++) o[d] = acc[d] * inv;
        }
    }
}

// The public kernels of every ISA: the whole attention (normalised), and the partial state of a
// range of keys.
void ck_attention_streaming_f32_ref(const float *q, const float *k, const float *v, float *out,
                                    size_t T, size_t pos0, size_t Hq, size_t Hkv, size_t D,
                                    size_t cap, float scale, size_t q_block, size_t kv_block,
                                    float *scratch, int slots) {
    ck_attn_streaming(q, k, v, 0, out, NULL, T, pos0, Hq, Hkv, D, cap, scale, 0, SIZE_MAX, q_block,
                      kv_block, scratch, slots, ck_attn_tile_ref, NULL);
}

void ck_attention_partial_f32_ref(const float *q, const float *k, const float *v, float *state,
                                  size_t T, size_t pos0, size_t Hq, size_t Hkv, size_t D,
                                  size_t cap, float scale, size_t key_lo, size_t key_hi,
                                  size_t q_block, size_t kv_block, float *scratch, int slots) {
    ck_attn_streaming(q, k, v, 0, NULL, state, T, pos0, Hq, Hkv, D, cap, scale, key_lo, key_hi,
                      q_block, kv_block, scratch, slots, ck_attn_tile_ref, NULL);
}

void ck_attention_streaming_f32_avx2(const float *q, const float *k, const float *v, float *out,
                                     size_t T, size_t pos0, size_t Hq, size_t Hkv, size_t D,
                                     size_t cap, float scale, size_t q_block, size_t kv_block,
                                     float *scratch, int slots) {
    ck_attn_streaming(q, k, v, 0, out, NULL, T, pos0, Hq, Hkv, D, cap, scale, 0, SIZE_MAX, q_block,
                      kv_block, scratch, slots, ck_attn_tile_avx2, NULL);
}

void ck_attention_partial_f32_avx2(const float *q, const float *k, const float *v, float *state,
                                   size_t T, size_t pos0, size_t Hq, size_t Hkv, size_t D,
                                   size_t cap, float scale, size_t key_lo, size_t key_hi,
                                   size_t q_block, size_t kv_block, float *scratch, int slots) {
    ck_attn_streaming(q, k, v, 0, NULL, state, T, pos0, Hq, Hkv, D, cap, scale, key_lo, key_hi,
                      q_block, kv_block, scratch, slots, ck_attn_tile_avx2, NULL);
}

void ck_attention_streaming_f32_avx512(const float *q, const float *k, const float *v, float *out,
                                       size_t T, size_t pos0, size_t Hq, size_t Hkv, size_t D,
                                       size_t cap, float scale, size_t q_block, size_t kv_block,
                                       float *scratch, int slots) {
    ck_attn_streaming(q, k, v, 0, out, NULL, T, pos0, Hq, Hkv, D, cap, scale, 0, SIZE_MAX, q_block,
                      kv_block, scratch, slots, ck_attn_tile_avx512, NULL);
}

void ck_attention_partial_f32_avx512(const float *q, const float *k, const float *v, float *state,
                                     size_t T, size_t pos0, size_t Hq, size_t Hkv, size_t D,
                                     size_t cap, float scale, size_t key_lo, size_t key_hi,
                                     size_t q_block, size_t kv_block, float *scratch, int slots) {
    ck_attn_streaming(q, k, v, 0, NULL, state, T, pos0, Hq, Hkv, D, cap, scale, key_lo, key_hi,
                      q_block, kv_block, scratch, slots, ck_attn_tile_avx512, NULL);
}

// A bf16 cache: the reference with the bf16 rounding points; AVX2 widens each KV block to f32
// (f32 FMAs at the same rounding points: the bytes halve, the arithmetic does not); AVX512_BF16
// tiles with vdpbf16ps, and its tiles of fewer than CK_ATTENTION_AVX512_MIN_ROWS rows (decode)
// with a row-major decode tile that reads the cache in place (for head size
// CK_ATTENTION_AVX512_ROWS_D; AVX2's for others).
void ck_attention_streaming_bf16_ref(const float *q, const uint16_t *k, const uint16_t *v,
                                    float *out, size_t T, size_t pos0, size_t Hq, size_t Hkv,
                                    size_t D, size_t cap, float scale, size_t q_block,
                                    size_t kv_block, float *scratch, int slots) {
    ck_attn_streaming(q, k, v, 1, out, NULL, T, pos0, Hq, Hkv, D, cap, scale, 0, SIZE_MAX, q_block,
                      kv_block, scratch, slots, ck_attn_tile_bf16_ref, NULL);
}

void ck_attention_partial_bf16_ref(const float *q, const uint16_t *k, const uint16_t *v,
                                  float *state, size_t T, size_t pos0, size_t Hq, size_t Hkv,
                                  size_t D, size_t cap, float scale, size_t key_lo, size_t key_hi,
                                  size_t q_block, size_t kv_block, float *scratch, int slots) {
    ck_attn_streaming(q, k, v, 1, NULL, state, T, pos0, Hq, Hkv, D, cap, scale, key_lo, key_hi,
                      q_block, kv_block, scratch, slots, ck_attn_tile_bf16_ref, NULL);
}

void ck_attention_streaming_bf16_avx2(const float *q, const uint16_t *k, const uint16_t *v,
                                    float *out, size_t T, size_t pos0, size_t Hq, size_t Hkv,
                                    size_t D, size_t cap, float scale, size_t q_block,
                                    size_t kv_block, float *scratch, int slots) {
    ck_attn_streaming(q, k, v, 1, out, NULL, T, pos0, Hq, Hkv, D, cap, scale, 0, SIZE_MAX, q_block,
                      kv_block, scratch, slots, ck_attn_tile_avx2, NULL);
}

void ck_attention_partial_bf16_avx2(const float *q, const uint16_t *k, const uint16_t *v,
                                  float *state, size_t T, size_t pos0, size_t Hq, size_t Hkv,
                                  size_t D, size_t cap, float scale, size_t key_lo, size_t key_hi,
                                  size_t q_block, size_t kv_block, float *scratch, int slots) {
    ck_attn_streaming(q, k, v, 1, NULL, state, T, pos0, Hq, Hkv, D, cap, scale, key_lo, key_hi,
                      q_block, kv_block, scratch, slots, ck_attn_tile_avx2, NULL);
}

void ck_attention_streaming_bf16_avx512(const float *q, const uint16_t *k, const uint16_t *v,
                                    float *out, size_t T, size_t pos0, size_t Hq, size_t Hkv,
                                    size_t D, size_t cap, float scale, size_t q_block,
                                    size_t kv_block, float *scratch, int slots) {
    ck_attn_streaming(q, k, v, 1, out, NULL, T, pos0, Hq, Hkv, D, cap, scale, 0, SIZE_MAX, q_block,
                      kv_block, scratch, slots, ck_attn_tile_bf16_avx512,
                      ck_attn_pack_v_pairs_bf16);
}

void ck_attention_partial_bf16_avx512(const float *q, const uint16_t *k, const uint16_t *v,
                                  float *state, size_t T, size_t pos0, size_t Hq, size_t Hkv,
                                  size_t D, size_t cap, float scale, size_t key_lo, size_t key_hi,
                                  size_t q_block, size_t kv_block, float *scratch, int slots) {
    ck_attn_streaming(q, k, v, 1, NULL, state, T, pos0, Hq, Hkv, D, cap, scale, key_lo, key_hi,
                      q_block, kv_block, scratch, slots, ck_attn_tile_bf16_avx512,
                      ck_attn_pack_v_pairs_bf16);
}
