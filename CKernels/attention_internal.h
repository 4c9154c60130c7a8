// attention_internal.h — private to CKernels: the one unit of streaming attention work (a tile
// of query rows of one KV head against a range of its keys), which attention.c schedules and
// the per-ISA files compute, the slot layout of its scratch, and the ISA pieces of standard
// attention, which attention.c also schedules.
#ifndef CK_ATTENTION_INTERNAL_H
#define CK_ATTENTION_INTERNAL_H

#include "bf16_scalar.h"

#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <xmmintrin.h>

static inline size_t attn_min(size_t a, size_t b) { return a < b ? a : b; }

// x rounded to the nearest bfloat16, as a float: the rounding points of the bf16 references.
static inline float attn_round_bf16(float x) { return ck_f32_from_bf16(ck_bf16_from_f32(x)); }

// Threads for `units` independent work units when scratch has `slots` slots: never more threads
// than slots, since a thread's slot is its thread number.
static inline int attn_team_size(int slots, size_t units) {
    int nt = omp_get_max_threads();
    if (nt > slots) nt = slots;
    if ((size_t)nt > units) nt = (int)units;
    return nt < 1 ? 1 : nt;
}

// The query rows of one KV head are the G = Hq / Hkv query heads sharing it, flattened token by
// token: row r is token r / G of head kvh * G + r % G, at position pos0 + r / G. The rows of one
// token are adjacent in q and out, and rows only grow in position, so a tile of consecutive rows
// is every head of the group over a run of tokens: each K/V block it loads serves them all.
struct attn_tile {
    const float *q;   // (T, Hq, D), the whole input
    const float *kh;  // (cap, D) keys of this KV head (NULL for a bf16 cache)
    const float *vh;  // (cap, D) values of this KV head (NULL for a bf16 cache)
    const uint16_t *kh16, *vh16;  // (cap, D) the same in bfloat16 (NULL for an f32 cache)
    float *out;       // (T, Hq, D), the whole output
    size_t Hq, G, kvh, D, pos0;
    size_t r0, nr;          // rows r0 .. r0 + nr - 1 (nr <= q_block)
    size_t key_lo, key_hi;  // keys this unit covers: [key_lo, key_hi), further cut by causality
    size_t q_block, kv_block;
    float scale;
    float *slot;  // this unit's scratch, laid out by attn_slot
    int partial;  // 1: leave acc, m and l in the slot (the scheduler stores them as a state);
                  // 0: write out = acc / l
    // NULL, or this KV head's values with key pairs interleaved from key_lo on (as
    // ck_attn_pack_v_pairs_bf16 lays them out, pair e holding keys key_lo + 2e and + 2e + 1),
    // shared by every tile of the head: the AVX512_BF16 tile then reads its blocks' pairs there
    // instead of pairing each block itself.
    const uint32_t *vpairs;
};

// Rows padded to whole 16-lane vectors, the layout shared by every ISA.
static inline size_t attn_lanes(size_t q_block) { return (q_block + 15) / 16 * 16; }

// The slot of one unit: packed queries, the score block, the output accumulator, per row the
// running max m, denominator l and the latest rescale factor alpha, and for a bf16 cache the
// block's K and V widened to f32 (AVX2), or V with key pairs interleaved and P^T rounded to
// bf16 pairs (AVX512_BF16).
struct attn_slot {
    float *qp;     // (D, lanes) queries transposed and scaled, or (nr, D) row-major
    float *s;      // (kv_block, lanes) scores, key-major; or (nr, kv_block) row-major
    float *acc;    // (q_block, D) unnormalised output rows
    float *m, *l, *alpha;  // (lanes) each
    float *kf, *vf;        // (kv_block, D) each
    uint32_t *pp;          // (kv_block / 2 rounded up, lanes) pairs of bf16
};

static inline size_t attn_slot_floats(size_t q_block, size_t kv_block, size_t D) {
    const size_t lanes = attn_lanes(q_block);
    return D * lanes + kv_block * lanes + q_block * D + 3 * lanes + 2 * kv_block * D +
           (kv_block + 1) / 2 * lanes;
}

static inline struct attn_slot attn_slot_of(const struct attn_tile *w) {
    const size_t lanes = attn_lanes(w->q_block);
    struct attn_slot s;
    s.qp = w->slot;
    s.s = s.qp + w->D * lanes;
    s.acc = s.s + w->kv_block * lanes;
    s.m = s.acc + w->q_block * w->D;
    s.l = s.m + lanes;
    s.alpha = s.l + lanes;
    s.kf = s.alpha + lanes;
    s.vf = s.kf + w->kv_block * w->D;
    s.pp = (uint32_t *)(s.vf + w->kv_block * w->D);
    return s;
}

// A SIMD tile's start: every lane's running max -inf and sum 0, the accumulators of its nr rows 0.
static inline void attn_slot_start(const struct attn_tile *w, const struct attn_slot *b) {
    for (size_t i = 0; i < attn_lanes(w->q_block); i++) {
        b->m[i] = -INFINITY;
        b->l[i] = 0.0f;
    }
    memset(b->acc, 0, w->nr * w->D * sizeof *b->acc);
}

// Position of row r, and the end of the keys row r may see within [.., key_hi).
static inline size_t attn_row_pos(const struct attn_tile *w, size_t r) {
    return w->pos0 + r / w->G;
}

static inline size_t attn_row_key_end(const struct attn_tile *w, size_t r) {
    const size_t end = attn_row_pos(w, r) + 1;
    return attn_min(end, w->key_hi);
}

// Keys j0 .. j0+jn-1 of a KV block that tile row i sees: 0 if the block starts past its end.
static inline size_t attn_row_keys(const struct attn_tile *w, size_t i, size_t j0, size_t jn) {
    const size_t end = attn_row_key_end(w, w->r0 + i);
    return end <= j0 ? 0 : attn_min(end - j0, jn);
}

// Decode reads each K and V row once and is bound by memory latency: the row-major decode tiles
// prefetch the rows ATTN_PREFETCH_KEYS keys ahead of the one in use (16 KB of f32 at D = 128;
// 8 keys ahead measured less, 16, 64 and 96 no better).
enum { ATTN_PREFETCH_KEYS = 32 };

// Row j of a (n, row_bytes) block of keys or values into L1, if it exists (j < n).
static inline void attn_prefetch_row(const void *x, size_t j, size_t n, size_t row_bytes) {
    if (j >= n) return;
    const char *row = (const char *)x + j * row_bytes;
    for (size_t b = 0; b < row_bytes; b += 64) _mm_prefetch(row + b, _MM_HINT_T0);
}

// The KV block after keys j0 .. j0+kvb-1, up to key kv_end: where its K and V rows (or V's
// key pairs, the same bytes per key) start, and how many keys it has (0 if this block is the
// last). A tile streams K and V from L3 or memory block by block, and the hardware prefetchers
// do not run far enough ahead across the rows of a block, so the tile asks for the next one
// while it computes this one.
struct attn_next_block {
    const char *k, *v;
    size_t keys, key_bytes;
};

static inline struct attn_next_block attn_next_block(const struct attn_tile *w, size_t j0,
                                                     size_t kv_end) {
    const size_t kvb = w->kv_block, at = j0 + kvb;
    struct attn_next_block nb = {NULL, NULL, 0, w->D * (w->kh16 != NULL ? 2 : 4)};
    if (at >= kv_end) return nb;
    nb.keys = attn_min(kv_end - at, kvb);
    nb.k = w->kh16 != NULL ? (const char *)(w->kh16 + at * w->D)
                           : (const char *)(w->kh + at * w->D);
    nb.v = w->vpairs != NULL ? (const char *)(w->vpairs + (at - w->key_lo) / 2 * w->D)
           : w->vh16 != NULL ? (const char *)(w->vh16 + at * w->D)
                             : (const char *)(w->vh + at * w->D);
    return nb;
}

// Keys c0 .. c1-1 of the next block (those it has) into L2, a few at a time between the bf16
// tile's score micro-tiles. Asked for all at once into L1 (attn_prefetch_next, which the float
// tiles keep: it measured better for them), the block's 1024 lines stall that tile on full miss
// queues and evict lines of the block in use. Spread into L2 (with the skipped rescale of
// pv_t_bf16) it is 0.5% faster at S = 8192, 0.4% at 2048 and 0.6% at 16384: medians of 25
// paired calls alternating in one process, outputs identical.
static inline void attn_prefetch_keys(const struct attn_next_block *nb, size_t c0, size_t c1) {
    if (c1 > nb->keys) c1 = nb->keys;
    for (size_t x = c0 * nb->key_bytes; x < c1 * nb->key_bytes; x += 64) {
        _mm_prefetch(nb->k + x, _MM_HINT_T1);
        _mm_prefetch(nb->v + x, _MM_HINT_T1);
    }
}

// The whole next block into L1 at once (the float tiles, AVX2 and AVX-512).
static inline void attn_prefetch_next(const struct attn_tile *w, size_t j0, size_t kv_end) {
    const struct attn_next_block nb = attn_next_block(w, j0, kv_end);
    for (size_t x = 0; x < nb.keys * nb.key_bytes; x += 64) {
        _mm_prefetch(nb.k + x, _MM_HINT_T0);
        _mm_prefetch(nb.v + x, _MM_HINT_T0);
    }
}

// Row of q and out (and of a partial state) that tile row i is: token t = (r0 + i) / G,
// head kvh * G + (r0 + i) % G.
static inline size_t attn_row_index(const struct attn_tile *w, size_t i) {
    const size_t r = w->r0 + i;
    return (r / w->G) * w->Hq + w->kvh * w->G + r % w->G;
}

static inline size_t attn_row_offset(const struct attn_tile *w, size_t i) {
    return attn_row_index(w, i) * w->D;
}

// One unit, per ISA (the avx512 one needs AVX-512 F/BW/VL, the avx2 one AVX2+FMA). The avx2 tile
// also takes a bf16 cache (each KV block widened to f32 in the slot, f32 FMAs at the bf16
// rounding points); the bf16 ones need a bf16 cache: the reference of those rounding points, and
// the AVX512_BF16 tile.
void ck_attn_tile_ref(const struct attn_tile *w);
void ck_attn_tile_avx2(const struct attn_tile *w);
void ck_attn_tile_avx512(const struct attn_tile *w);
void ck_attn_tile_bf16_ref(const struct attn_tile *w);
void ck_attn_tile_bf16_avx512(const struct attn_tile *w);

// Keys 0 .. n-1 of a bf16 V with key pairs interleaved: vi[c/2][d] = (v_c[d], v_{c+1}[d]), the
// partner of an odd last key 0.  v: (n, D)  vi: (n/2 rounded up, D) words. AVX512_BF16 (the
// caller of the tile that reads it checks).
typedef void ck_attn_pair_v_fn(const uint16_t *v, size_t n, size_t D, uint32_t *vi);
ck_attn_pair_v_fn ck_attn_pack_v_pairs_bf16;

// Tile rows 0 .. used-1 (a multiple of 8) transposed and scaled into qp (D, lanes), rows past
// nr as zeros: the key-major tiles' queries (AVX2; the AVX-512 tile uses it too).
void ck_attn_pack_qt_avx2(const struct attn_tile *w, float *qp, size_t lanes, size_t used);

// Streaming attention over tiles computed by `tile`, of keys [key_lo, key_hi) only: the schedule
// and the split-and-merge of flash decoding (attention.c). With state == NULL it writes the
// normalised out (T, Hq, D); otherwise the partial state (T, Hq, D + 2) of ckernels.h, and out is
// not touched. k and v are float, or uint16_t bfloat16 when kv_bf16. pair_v: NULL, or the packer
// of the tiles' vpairs (a bf16 cache), which the schedule then runs once per KV head.
void ck_attn_streaming(const float *q, const void *k, const void *v, int kv_bf16, float *out,
                       float *state,
                       size_t T, size_t pos0, size_t Hq, size_t Hkv, size_t D, size_t cap,
                       float scale, size_t key_lo, size_t key_hi, size_t q_block, size_t kv_block,
                       float *scratch, int slots, void (*tile)(const struct attn_tile *),
                       ck_attn_pair_v_fn *pair_v);

// The ISA pieces of standard attention; attention.c holds the one schedule that uses them (heads
// over threads, or a decode step's keys and columns of V over threads).
struct attn_standard_ops {
    // s_r[j] = scale (q_r · k_j) for rows r < nq (1 or 2) and keys j < n.
    // q_r: q + r ldq, (D)  k: (n, D)  s_r: s + r lds, (n)
    void (*scores)(int nq, const float *q, size_t ldq, const void *k, size_t n, size_t D,
                   float scale, float *s, size_t lds);
    // Softmax of one row in place. x: (n), n >= 1
    void (*softmax)(float *x, size_t n);
    // o_r = sum_j p_r[j] v_j for rows r < nq.  o_r: o + r ldo, (D)  p_r: p + r ldp, (n)  v: (n, D)
    void (*pv)(int nq, float *o, size_t ldo, const float *p, size_t ldp, size_t n, const void *v,
               size_t D);
    // The decode split's pieces: the largest of x (n), x <- exp(x - shift) returning the sum,
    // and o[0 .. width) = inv sum_j p[j] v_j[0 .. width) for j < n, v rows D apart.
    float (*max)(const float *x, size_t n);
    float (*exp_shift_sum)(float *x, size_t n, float shift);
    void (*pv_columns)(float *o, const float *p, size_t n, const void *v, size_t D, size_t width,
                       float inv);
};

// Standard attention with the pieces of `ops` over k and v of float, or of uint16_t bfloat16
// when kv_bf16 (the ops then read bf16); ops == NULL is the plain C reference (attention.c), in
// f32 or with the bf16 rounding points.
void ck_attn_standard(const float *q, const void *k, const void *v, int kv_bf16, float *out,
                      size_t T, size_t pos0, size_t Hq, size_t Hkv, size_t D, size_t cap,
                      float scale, float *scratch, int slots, const struct attn_standard_ops *ops);

#endif
