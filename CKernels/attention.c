// attention.c — causal grouped-query attention over the KV cache: the plain C references
// (standard and streaming), the scratch sizes, and the schedule of streaming attention shared by
// every ISA (attention_avx2.c and attention_avx512.c compute its tiles; attention_avx2.c also
// holds the AVX2 standard attention).
//
// Shapes, for every function here:
//   q: (T, Hq, D)  out: (T, Hq, D)  k, v: (Hkv, cap, D), positions 0 .. pos0+T-1 filled
//   query t (absolute position pos0 + t) attends to keys 0 .. pos0 + t;
//   query head h reads KV head h / (Hq / Hkv).
#include "attention_internal.h"
#include "ckernels.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>

static inline size_t div_up(size_t a, size_t b) { return (a + b - 1) / b; }

// ---------------------------------------------------------------------------------------------
// Standard attention, reference
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
#pragma omp parallel for schedule(static) num_threads(attn_team_size(slots, Hq))
    for (size_t h = 0; h < Hq; h++) {
        const size_t kvh = h / group;
        float *scores = scratch + (size_t)omp_get_thread_num() * T * (pos0 + T);
        standard_head_ref(q, k + kvh * cap * D, v + kvh * cap * D, out, T, pos0, Hq, h, D, scale,
                          scores);
    }
}

// ---------------------------------------------------------------------------------------------
// Streaming attention: schedule, flash-decoding split and merge
// ---------------------------------------------------------------------------------------------

size_t ck_attention_streaming_scratch(size_t q_block, size_t kv_block, size_t D, int slots) {
    return (size_t)(slots < 1 ? 1 : slots) * attn_slot_floats(q_block, kv_block, D);
}

// Tile `i`: KV head i / nrb, row block i % nrb counted from the last. Threads taking tiles in
// this order work on the same KV head at once, so its K and V are read from memory once and
// shared in L3; within a head the tiles with the most keys come first, and the smallest tiles
// of the last head end the schedule.
static struct attn_tile tile_at(size_t i, size_t nrb, size_t rows, const float *q, const float *k,
                                const float *v, float *out, size_t pos0, size_t Hq, size_t Hkv,
                                size_t D, size_t cap, float scale, size_t q_block,
                                size_t kv_block) {
    const size_t rb = nrb - 1 - i % nrb, kvh = i / nrb;
    const struct attn_tile w = {
        .q = q, .kh = k + kvh * cap * D, .vh = v + kvh * cap * D, .out = out, .Hq = Hq,
        .G = Hq / Hkv, .kvh = kvh, .D = D, .pos0 = pos0, .r0 = rb * q_block,
        .nr = attn_min(q_block, rows - rb * q_block), .key_lo = 0, .key_hi = SIZE_MAX,
        .q_block = q_block, .kv_block = kv_block, .scale = scale, .slot = NULL, .partial = 0};
    return w;
}

// out rows of tile w from the partial results of `splits` units, in consecutive slots from
// `first`: with M the largest running max, out = sum_s e^(m_s - M) acc_s / sum_s e^(m_s - M) l_s.
// Split 0 starts at key 0, which every row sees, so M is finite; a split in which a row saw no
// key has m = -inf and weighs exactly 0.
static void merge_splits(const struct attn_tile *w, const float *first, size_t slot_floats,
                         size_t splits) {
    const size_t D = w->D;
    for (size_t i = 0; i < w->nr; i++) {
        float M = -INFINITY;
        for (size_t s = 0; s < splits; s++) {
            struct attn_tile ws = *w;
            ws.slot = (float *)first + s * slot_floats;
            const struct attn_slot b = attn_slot_of(&ws);
            if (b.m[i] > M) M = b.m[i];
        }
        float *o = w->out + attn_row_offset(w, i);
        float L = 0.0f;
        for (size_t d = 0; d < D; d++) o[d] = 0.0f;
        for (size_t s = 0; s < splits; s++) {
            struct attn_tile ws = *w;
            ws.slot = (float *)first + s * slot_floats;
            const struct attn_slot b = attn_slot_of(&ws);
            const float f = expf(b.m[i] - M);
            L += f * b.l[i];
            for (size_t d = 0; d < D; d++) o[d] += f * b.acc[i * D + d];
        }
        const float inv = 1.0f / L;
        for (size_t d = 0; d < D; d++) o[d] *= inv;
    }
}

// Tiles are (KV head, block of q_block rows), so the query heads of a group share each K/V
// block while it is in cache. When there are at least as many tiles as threads, threads take
// tiles in tile_at's order under a dynamic schedule (a later row block sees more keys, so
// tiles differ in cost), each in its thread's slot. With fewer tiles than threads (decode: one
// token, few KV heads per process) that would leave threads idle, so each tile's keys are split
// into whole KV blocks over `splits` units (flash decoding), one unit per slot, and the partial
// results are merged.
void ck_attn_streaming(const float *q, const float *k, const float *v, float *out, size_t T,
                       size_t pos0, size_t Hq, size_t Hkv, size_t D, size_t cap, float scale,
                       size_t q_block, size_t kv_block, float *scratch, int slots,
                       void (*tile)(const struct attn_tile *)) {
    if (T == 0) return;
    const size_t rows = T * (Hq / Hkv), nrb = div_up(rows, q_block), tiles = Hkv * nrb;
    const size_t slot_floats = attn_slot_floats(q_block, kv_block, D);
    const size_t threads = (size_t)attn_team_size(slots, SIZE_MAX);
    const size_t kv_blocks = div_up(pos0 + T, kv_block);
    size_t splits = threads / tiles;
    if (splits > kv_blocks) splits = kv_blocks;
    if (splits >= 2) {
        const size_t per = div_up(kv_blocks, splits) * kv_block;  // keys per split
        splits = div_up(pos0 + T, per);
        const size_t units = tiles * splits;
#pragma omp parallel for schedule(static) num_threads((int)units)
        for (size_t u = 0; u < units; u++) {
            struct attn_tile w = tile_at(u / splits, nrb, rows, q, k, v, out, pos0, Hq, Hkv, D,
                                         cap, scale, q_block, kv_block);
            w.key_lo = (u % splits) * per;
            w.key_hi = w.key_lo + per;
            w.slot = scratch + u * slot_floats;
            w.partial = 1;
            tile(&w);
        }
#pragma omp parallel for schedule(static) num_threads(attn_team_size(slots, tiles))
        for (size_t i = 0; i < tiles; i++) {
            const struct attn_tile w = tile_at(i, nrb, rows, q, k, v, out, pos0, Hq, Hkv, D, cap,
                                               scale, q_block, kv_block);
            merge_splits(&w, scratch + i * splits * slot_floats, slot_floats, splits);
        }
        return;
    }
#pragma omp parallel for schedule(dynamic, 1) num_threads(attn_team_size(slots, tiles))
    for (size_t i = 0; i < tiles; i++) {
        struct attn_tile w = tile_at(i, nrb, rows, q, k, v, out, pos0, Hq, Hkv, D, cap, scale,
                                     q_block, kv_block);
        w.slot = scratch + (size_t)omp_get_thread_num() * slot_floats;
        tile(&w);
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

void ck_attention_streaming_f32_ref(const float *q, const float *k, const float *v, float *out,
                                    size_t T, size_t pos0, size_t Hq, size_t Hkv, size_t D,
                                    size_t cap, float scale, size_t q_block, size_t kv_block,
                                    float *scratch, int slots) {
    ck_attn_streaming(q, k, v, out, T, pos0, Hq, Hkv, D, cap, scale, q_block, kv_block, scratch,
                      slots, ck_attn_tile_ref);
}

void ck_attention_streaming_f32_avx2(const float *q, const float *k, const float *v, float *out,
                                     size_t T, size_t pos0, size_t Hq, size_t Hkv, size_t D,
                                     size_t cap, float scale, size_t q_block, size_t kv_block,
                                     float *scratch, int slots) {
    ck_attn_streaming(q, k, v, out, T, pos0, Hq, Hkv, D, cap, scale, q_block, kv_block, scratch,
                      slots, ck_attn_tile_avx2);
}

void ck_attention_streaming_f32_avx512(const float *q, const float *k, const float *v, float *out,
                                       size_t T, size_t pos0, size_t Hq, size_t Hkv, size_t D,
                                       size_t cap, float scale, size_t q_block, size_t kv_block,
                                       float *scratch, int slots) {
    ck_attn_streaming(q, k, v, out, T, pos0, Hq, Hkv, D, cap, scale, q_block, kv_block, scratch,
                      slots, ck_attn_tile_avx512);
}
