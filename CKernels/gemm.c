// gemm.c — y = x · W^T, the one blocked GEMM driver: BLIS's loops (K blocks, row blocks with x
// packed, panels, row tiles) around a micro-kernel chosen from a table with one row per (weight
// type, ISA), the split of the output between threads, and the public entry points of
// ckernels.h. The micro-kernels and their packers live in gemm_<type>_<isa>.c; the plain C
// references in matmul_ref.c. W is packed once at load, so there is no NC loop: each thread
// walks its own range of panels.
#include "ckernels.h"
#include "bf16_scalar.h"
#include "gemm_internal.h"
#include "scratch_internal.h"

#include <assert.h>
#include <omp.h>
#include <stdatomic.h>
#include <string.h>

// ---------------------------------------------------------------------------------------------
// The table: micro-kernels and their block sizes
// ---------------------------------------------------------------------------------------------

enum {
    GEMM_F32_AVX2,
    GEMM_F32_AVX512,
    GEMM_BF16_AVX512,
    GEMM_Q8_0_AVX2,
    GEMM_Q4_0_AVX2,
    GEMM_Q8_0_AVX512,
    GEMM_Q4_0_AVX512
};

static const struct ck_gemm_kernel kernels[] = {
    // sgemm_avx2_6x16: float32 weights, AVX2+FMA. Block sizes in floats.
    // MR x NR = 6 x 16: the 6 x 2 accumulators take 12 of the 16 ymm registers, the two B
    //   vectors of a k step 2 more and the broadcast of x one. 12 independent FMA chains cover
    //   the FMA latency (4 cycles) times the two FMA pipes (8 in flight). Per k step: 12 FMAs
    //   against 2 loads + 6 broadcasts, within the 2 FMA + 3 load issues per cycle of Zen 4/5.
    // KC = 256: the B micro-panel (KC x NR = 16 KiB) stays in L1D while every row tile of the
    //   row block uses it; with the packed A micro-panel streaming under it (6 KiB) this fits
    //   Zen 4's 32 KiB L1D (this machine) with room for C, and Zen 5's 48 KiB. It also makes the
    //   reload and store of a C tile between K blocks negligible (24 accesses per 3072 FMAs).
    // MC = 72: the packed row block of x (MC x KC = 72 KiB) stays in the 1 MiB L2 while every
    //   panel uses it. Each B micro-panel brought into L1 then serves 12 row tiles (18k cycles
    //   of FMAs per 16 KiB read from L2 or L3), and the packing buffer is small enough to live
    //   on the stack of any thread that calls the kernel.
    [GEMM_F32_AVX2] = {.mr = CK_AVX2_MR, .nr = CK_AVX2_NR, .kc = 256, .mc = 72, .k_unit = 1,
                       .w_bytes = 4, .a_unit_bytes = 4, .serial_below = 32768,
                       .pack_b = ck_gemm_pack_panels, .pack_a = ck_pack_a_f32_avx2,
                       .tile = ck_sgemm_avx2_6x16},
    // sgemm_avx512_14x32: float32 weights, AVX-512F. Block sizes in floats.
    // MR x NR = 14 x 32: the 14 x 2 accumulators take 28 of the 32 zmm registers, the two B
    //   vectors of a k step 2 more and the broadcast of x one. 28 independent FMA chains are far
    //   more than latency x throughput (4 x 1 zmm FMA per cycle), and per k step the 28 FMAs (28
    //   cycles of the FMA pipes) need only 2 loads of B and 14 broadcasts of x. Tiles of 12 rows
    //   run as fast in L1 but make more tiles per block.
    // KC = 128: the B micro-panel (KC x NR = 16 KiB) stays in L1D while every row tile of the
    //   row block uses it, with the A micro-panel streaming under it (7 KiB): 23 of Zen 4's
    //   32 KiB. KC = 256 would fill L1 with B alone: 3% faster with everything in L1, 3-5% slower
    //   in the GEMM (KC = 160 and 192 measured no better). At KC = 128 the reload and store of
    //   the C tile between K blocks (28 + 28 accesses per 3584 FMAs) costs 2-3%.
    // MC = 168 (12 tiles): the packed row block of x (MC x KC = 84 KiB) stays in the 1 MiB L2
    //   while every panel uses it; each B micro-panel brought into L1 serves up to 12 row tiles.
    [GEMM_F32_AVX512] = {.mr = CK_AVX512_MR, .nr = CK_AVX512_NR, .kc = 128, .mc = 168,
                         .k_unit = 1, .w_bytes = 4, .a_unit_bytes = 4, .serial_below = 32768,
                         .pack_b = ck_gemm_pack_panels, .pack_a = ck_pack_a_f32_avx512,
                         .tile = ck_sgemm_avx512_14x32},
    // sbgemm_avx512_14x32: bfloat16 weights, AVX512_BF16. Block sizes; K is counted in pairs,
    // one pair per vdpbf16ps lane.
    // MR x NR = 14 x 32: as for float, 28 accumulators, 2 B vectors and a broadcast of 32 zmm.
    //   28 independent chains cover latency x throughput = 6 x 1 with room to spare, and per
    //   pair of k the 28 vdpbf16ps need 2 loads of B and 14 broadcasts of an x pair.
    // KC = 128 pairs (256 k): the B micro-panel (KC x NR pairs = 16 KiB) stays in L1D with the
    //   streaming A micro-panel (7 KiB), as for float; each call does twice the flops of a
    //   float K block in the same cycles. KC also fixes where the block sums are added to C,
    //   so it is part of the results: changing it changes the last bits of every output.
    // MC = 168 (12 tiles): the packed row block of x (MC x KC pairs = 84 KiB) stays in L2
    //   across the panels. MC = 84 and 56 (K chunks of two and three K blocks, so the C tiles
    //   stay in L1 between them) measured within +-2% of it on two threads at M = 128 and 512.
    // One thread below twice the float threshold: twice the flops per cycle.
    [GEMM_BF16_AVX512] = {.mr = CK_BF16_MR, .nr = CK_BF16_NR, .kc = 128, .mc = 168, .k_unit = 2,
                          .w_bytes = 2, .a_unit_bytes = 4, .serial_below = 65536,
                          .pack_b = ck_gemm_pack_panels, .pack_a = ck_pack_a_bf16_avx512,
                          .tile = ck_sbgemm_avx512_14x32},
    // Quantized weights (gemm_q8_avx512.c, gemm_q8_avx2.c): one k unit is a block of 32, whose
    // packed column carries its float16 scale (unit_bytes), x is packed as int8 blocks with
    // their scales (40 bytes per row and block). Block sizes in blocks.
    // MR x NR = 6 x 32: the register budget is in gemm_q8_avx512.c.
    // KC = 16 blocks (512 k): the B micro-panel (16 x 1088 bytes = 17 KiB for q8_0, 9 KiB for
    //   q4_0) stays in L1D with the A micro-panel (6 x 16 x 40 = 3.8 KiB). The AVX2 kernels'
    //   float accumulators start from C, so KC does not change their results; the VNNI ones add
    //   each K block's sum to C (gemm_q8_avx512.c says why), so KC is part of their results.
    //   The q8_0 VNNI row takes KC = 32 (1024 k): its B micro-panel (34 KiB) no longer fits L1D
    //   and every tile reads it from L2, but each tile's C is read and written half as often and
    //   its float accumulators run twice as long; on two threads over the Qwen3-0.6B layer
    //   sequence that measured 1.4% faster at M = 128 and 0.7% at M = 512 than KC = 16 (KC = 64
    //   the same as 32; 8 was 1.5% slower).
    // MC = 96 (16 tiles): the packed row block of x (96 x 16 x 40 = 60 KiB) stays in L2.
    // One thread below four times the float threshold: four times the multiply-adds per cycle.
    [GEMM_Q8_0_AVX2] = {.mr = CK_Q_MR, .nr = CK_Q_NR, .kc = 16, .mc = 96, .k_unit = CK_QK,
                        .unit_bytes = CK_Q8_0_BLOCK_BYTES, .a_unit_bytes = 40,
                        .serial_below = 131072, .share_x = 1, .pack_b = ck_gemm_pack_q8_0,
                        .pack_a = ck_pack_a_q8_0, .tile = ck_q8gemm_avx2_6x32},
    [GEMM_Q4_0_AVX2] = {.mr = CK_Q_MR, .nr = CK_Q_NR, .kc = 16, .mc = 96, .k_unit = CK_QK,
                        .unit_bytes = CK_Q4_0_BLOCK_BYTES, .a_unit_bytes = 40,
                        .serial_below = 131072, .share_x = 1, .pack_b = ck_gemm_pack_q4_0,
                        .pack_a = ck_pack_a_q4_0, .tile = ck_q4gemm_avx2_6x32},
    [GEMM_Q8_0_AVX512] = {.mr = CK_Q_MR, .nr = CK_Q_NR, .kc = 32, .mc = 96, .k_unit = CK_QK,
                          .unit_bytes = CK_Q8_0_BLOCK_BYTES, .a_unit_bytes = 40,
                          .serial_below = 131072, .share_x = 1, .pack_b = ck_gemm_pack_q8_0,
                          .pack_a = ck_pack_a_q8_0, .tile = ck_q8gemm_avx512_6x32},
    [GEMM_Q4_0_AVX512] = {.mr = CK_Q_MR, .nr = CK_Q_NR, .kc = 16, .mc = 96, .k_unit = CK_QK,
                          .unit_bytes = CK_Q4_0_BLOCK_BYTES, .a_unit_bytes = 40,
                          .serial_below = 131072, .share_x = 1, .pack_b = ck_gemm_pack_q4_0,
                          .pack_a = ck_pack_a_q4_0, .tile = ck_q4gemm_avx512_6x32},
};

// The packing buffer of x, on each calling thread's stack: the largest MC x KC x unit above
// (84 KiB; the default thread stacks have room) but q8_0 VNNI's, whose row blocks it bounds.
#define A_BUFFER_BYTES (168 * 128 * 4)
// The packed x of one row block and K chunk when x is packed ahead and shared (gemm_shared_x).
#define XP_CHUNK_BYTES ((size_t)512 << 10)

// ---------------------------------------------------------------------------------------------
// Packing W
// ---------------------------------------------------------------------------------------------

static size_t k_units(const struct ck_gemm_kernel *kern, size_t K) {
    return (K + kern->k_unit - 1) / kern->k_unit;
}

// Bytes of one unit row of a micro-panel (NR columns), and of a whole panel.
static size_t unit_row_bytes(const struct ck_gemm_kernel *kern) {
    return kern->nr * (kern->unit_bytes ? kern->unit_bytes : kern->k_unit * kern->w_bytes);
}

static size_t packed_bytes(const struct ck_gemm_kernel *kern, size_t N, size_t K) {
    return (N + kern->nr - 1) / kern->nr * k_units(kern, K) * unit_row_bytes(kern);
}

// Panels [p0, p1) of W. w: (N, K)  packed[p][u][j][h] = w[p*NR + j][u*k_unit + h], zero past N
// and past K: the zero columns let the micro-kernel always compute full panels (only the store
// is masked), the zero half of a last bfloat16 pair adds nothing. Inlined with constant nr, ku
// and es, so each weight is one move (a memcpy of a variable size made the pack four times
// slower).
static inline __attribute__((always_inline)) void pack_panels(const unsigned char *w,
                                                              unsigned char *packed, size_t N,
                                                              size_t K, size_t p0, size_t p1,
                                                              const size_t nr, const size_t ku,
                                                              const size_t es) {
    const size_t units = (K + ku - 1) / ku;
    for (size_t p = p0; p < p1; p++) {
        unsigned char *dst = packed + p * units * nr * ku * es;
        for (size_t j = 0; j < nr; j++) {
            const size_t n = p * nr + j;
            for (size_t u = 0; u < units; u++) {
                for (size_t h = 0; h < ku; h++) {
                    const size_t k = u * ku + h;
                    unsigned char *d = dst + ((u * nr + j) * ku + h) * es;
                    if (n < N && k < K) memcpy(d, w + (n * K + k) * es, es);
                    else memset(d, 0, es);
                }
            }
        }
    }
}

void ck_gemm_pack_panels(const struct ck_gemm_kernel *kern, const void *w, void *packed,
                         size_t N, size_t K) {
    const size_t nr = kern->nr, ku = kern->k_unit, es = kern->w_bytes;
    const size_t panels = (N + nr - 1) / nr;
#pragma omp parallel if (N * K >= 65536)
    {
        const size_t nth = (size_t)omp_get_num_threads(), tid = (size_t)omp_get_thread_num();
        const size_t p0 = panels * tid / nth, p1 = panels * (tid + 1) / nth;
        if (nr == 16 && ku == 1 && es == 4) pack_panels(w, packed, N, K, p0, p1, 16, 1, 4);
        else if (nr == 32 && ku == 1 && es == 4) pack_panels(w, packed, N, K, p0, p1, 32, 1, 4);
        else if (nr == 32 && ku == 2 && es == 2) pack_panels(w, packed, N, K, p0, p1, 32, 2, 2);
        else pack_panels(w, packed, N, K, p0, p1, nr, ku, es);
    }
}

// ---------------------------------------------------------------------------------------------
// Loops around the micro-kernel
// ---------------------------------------------------------------------------------------------

// Row tiles of a block of `rows` rows: as few as hold them (ceil(rows / mr_max)), with heights
// differing by at most one. 128 rows are ten tiles of 12 or 13 rows rather than nine of 14 and a
// two-row tile, which would run at the FMA latency, not the throughput.
static size_t tile_count(size_t rows, size_t mr_max) { return (rows + mr_max - 1) / mr_max; }
static size_t tile_start(size_t rows, size_t tiles, size_t t) { return rows * t / tiles; }

// One panel of y over the units [q0, q1) of a K chunk, for row tiles [g0, g1) of the `tiles` tiles
// of `rows` rows from c (c: y's first row and the panel's first column, row stride N): each K block
// of the panel's B micro-panel (b, at unit q0) serves every row tile. Tile t's packed x at unit pc
// is at a + (t - g0) * a_tile + (pc - q0) * ldp * a_unit_bytes. next: the first B micro-panel of
// the panel that follows, or NULL.
static void panel_chunk(const struct ck_gemm_kernel *kern, const unsigned char *b,
                        const unsigned char *next_panel, float *c, size_t N, size_t nr,
                        size_t rows, size_t tiles, size_t g0, size_t g1, size_t q0, size_t q1,
                        const unsigned char *a, size_t a_tile, size_t ldp) {
    const size_t KC = kern->kc, row_bytes = unit_row_bytes(kern), a_unit = kern->a_unit_bytes;
    for (size_t pc = q0; pc < q1; pc += KC) {
        const size_t kc = min_size(KC, q1 - pc);
        const unsigned char *bk = b + (pc - q0) * row_bytes;
        // The next B micro-panel (the next K block, or the first of the chunk in the next panel,
        // a panel away, where the hardware prefetcher would only find it after some misses) goes
        // into L2 while this one is used: each tile prefetches its share, one line per k step.
        // Issued in a burst at the start of each tile instead, the prefetches overflow the miss
        // queues, and M = 32 (three tiles per B micro-panel) ran 20% slower with AVX-512, 3-12%
        // with AVX2. Decode streams W contiguously and leaves it to the hardware.
        const unsigned char *next = tiles == 1     ? NULL
                                    : pc + KC < q1 ? bk + kc * row_bytes
                                                   : next_panel;
        const size_t block_lines = kc * row_bytes / 64;
        const size_t lines = tile_count(block_lines, g1 - g0);
        for (size_t t = g0; t < g1; t++) {
            const size_t r0 = tile_start(rows, tiles, t), r1 = tile_start(rows, tiles, t + 1);
            const size_t l0 = min_size((t - g0) * lines, block_lines);
            const size_t l1 = min_size(l0 + lines, block_lines);
            kern->tile(r1 - r0, kc, a + (t - g0) * a_tile + (pc - q0) * ldp * a_unit, ldp, bk,
                       c + r0 * N, N, nr, pc > 0, next ? next + l0 * 64 : NULL,
                       next ? l1 - l0 : 0);
        }
    }
}

// One thread's share of y: rows [m0, m1) x panels [p0, p1), x packed by this thread.
// x: (M, K)  packed: (ceil(N/NR), units, NR, k_unit)  y: (M, N)
// The rows form row blocks of at most MC / MR row tiles. For each, x is packed for as many K
// blocks as the buffer holds (a K chunk), then each panel is finished over the chunk's K
// blocks before the next: a B micro-panel, once in L1, serves every row tile of the block, the
// packed block of x stays in L2 across the panels, the C tiles stay in cache from one K block
// to the next, and the thread reads each panel of W as one contiguous stream. A single row
// tile (decode) reuses nothing; it is packed densely (row stride mr), so a decode row reads
// 4 bytes of x per unit, not one line. Every output sums each K block and then adds it to C, at
// the same block boundaries whatever the row block, chunk or tile, so all round identically.
static void gemm_block(const struct ck_gemm_kernel *kern, const float *x,
                       const unsigned char *packed, float *y, size_t N, size_t K, size_t m0,
                       size_t m1, size_t p0, size_t p1) {
    const size_t MR = kern->mr, NR = kern->nr, KC = kern->kc, ku = kern->k_unit;
    const size_t units = k_units(kern, K), row_bytes = unit_row_bytes(kern);
    const size_t panel_bytes = units * row_bytes, a_unit = kern->a_unit_bytes;
    const size_t rows = m1 - m0, tiles = tile_count(rows, MR);
    _Alignas(64) unsigned char ap[A_BUFFER_BYTES];
    // Row blocks as even as the tiles allow (so at least two tiles each, or the one of decode), of
    // at most MC rows and at most the tiles whose K block of x the buffer holds (q8_0's VNNI row,
    // whose KC is 32, holds 11 tiles here, not 16).
    const size_t block_tiles = min_size(kern->mc / MR, sizeof ap / (KC * MR * a_unit));
    assert(block_tiles >= 1);
    const size_t groups = tile_count(tiles, block_tiles), group_max = tile_count(tiles, groups);
    const size_t ldp = tiles == 1 ? rows : MR;
    const size_t chunk = sizeof ap / (group_max * ldp * a_unit) / KC * KC;
    for (size_t g = 0; g < groups; g++) {
        const size_t g0 = tile_start(tiles, groups, g), g1 = tile_start(tiles, groups, g + 1);
        for (size_t q0 = 0; q0 < units; q0 += chunk) {
            const size_t q1 = min_size(units, q0 + chunk), q = q1 - q0;
            for (size_t t = g0; t < g1; t++) {
                const size_t r0 = tile_start(rows, tiles, t);
                const size_t r1 = tile_start(rows, tiles, t + 1);
                kern->pack_a(x + (m0 + r0) * K + q0 * ku, K, r1 - r0, q, K - q0 * ku,
                             ap + (t - g0) * q * ldp * a_unit, ldp);
            }
            for (size_t p = p0; p < p1; p++) {
                const unsigned char *b = packed + p * panel_bytes + q0 * row_bytes;
                panel_chunk(kern, b, p + 1 < p1 ? b + panel_bytes : NULL, y + m0 * N + p * NR, N,
                            min_size(NR, N - p * NR), rows, tiles, g0, g1, q0, q1, ap,
                            q * ldp * a_unit, ldp);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Threads
// ---------------------------------------------------------------------------------------------

// nth threads form gm row groups x (nth / gm) panel groups, gm minimising the largest share (row
// tiles x panels); ties go to fewer row groups, so each panel of W is read by fewer threads, and
// at decode (one row tile) the panels are all there is to split.
static int row_groups(int nth, size_t tiles_m, size_t panels) {
    int gm = 1;
    size_t best_share = (size_t)-1;
    for (int g = 1; g <= nth; g++) {
        if (nth % g) continue;
        const size_t gn = (size_t)(nth / g);
        const size_t share = ((tiles_m + g - 1) / g) * ((panels + gn - 1) / gn);
        if (share < best_share) {
            best_share = share;
            gm = g;
        }
    }
    return gm;
}

// One thread's share of the output: row tiles [t0, t1) of size MR (tiles_m in all) x panels
// [p0, p1), in gm row groups (row_groups) x (nth / gm) panel groups.
static void thread_share(int nth, int tid, int gm, size_t tiles_m, size_t panels, size_t *t0,
                         size_t *t1, size_t *p0, size_t *p1) {
    const int gn = nth / gm;
    const size_t rg = (size_t)(tid / gn), pg = (size_t)(tid % gn);
    *t0 = tiles_m * rg / (size_t)gm;
    *t1 = tiles_m * (rg + 1) / (size_t)gm;
    *p0 = panels * pg / (size_t)gn;
    *p1 = panels * (pg + 1) / (size_t)gn;
}

// Shared packing of x. When the threads split only the panels (one row group), each would pack
// every row of x for itself; for the quantized formats, whose pack quantizes x, that is 4-7% of
// the GEMM, paid by every thread. (For float32 and bfloat16 the pack is a copy or a rounding, and
// sharing it measured no faster, so those rows keep their per-thread packing.) Instead the
// threads pack disjoint row tiles of a slab of rows into one buffer, meet at a barrier, and each
// runs its panels over the whole slab from there. A slab is the rows whose packed x fits
// SHARED_X_BYTES (at least two row tiles), so the buffer is bounded at any M. It belongs to the
// calling thread (ck_thread_scratch). With the L2-bounded K chunks below, q8_0 on two
// threads measured 2-5% faster than per-thread packing on the Qwen3-0.6B projections at M = 128
// and 512 (the two alternating call by call).
#define SHARED_X_BYTES ((size_t)4 << 20)

// A thread's items (below) not yet taken: [front, back) in one word, so that its owner taking
// from the front and another thread taking from the back never both get the same item. One per
// cache line.
struct item_range {
    _Alignas(64) _Atomic uint64_t bounds;  // front | back << 32
};

// Items [lo, hi) become a thread's own.
static void own_items(struct item_range *r, size_t lo, size_t hi) {
    atomic_store_explicit(&r->bounds, (uint64_t)hi << 32 | lo, memory_order_relaxed);
}

static int take_item(struct item_range *r, int from_back, size_t *item) {
    uint64_t v = atomic_load_explicit(&r->bounds, memory_order_relaxed);
    for (;;) {
        const uint32_t front = (uint32_t)v, back = (uint32_t)(v >> 32);
        if (front >= back) return 0;
        const uint64_t taken = from_back ? (uint64_t)(back - 1) << 32 | front : v + 1;
        if (atomic_compare_exchange_weak_explicit(&r->bounds, &v, taken, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            *item = from_back ? back - 1 : front;
            return 1;
        }
    }
}

// The next item thread tid of nth runs, and whose it was: its own from the front, then each other
// thread's from the back, in turn. *v, zero at the start, is how far along that order it is.
// Returns 0 when no thread has any left.
static int next_item(struct item_range *ranges, size_t nth, size_t tid, size_t *v, size_t *owner,
                     size_t *item) {
    for (; *v < nth; ++*v) {
        *owner = (tid + *v) % nth;
        if (take_item(&ranges[*owner], *owner != tid, item)) return 1;
    }
    return 0;
}

// x: (M, K) float  packed: from kern->pack_b  y: (M, N); at least two row tiles and nt threads
// in one row group. Returns 0, having done nothing, if the buffer cannot be had.
// The work of a slab, once x is packed, is (row block, panel) items: thread t owns those of its
// panels [p0, p1), takes them from the front in gemm_block's order (row block by row block), and
// when it has none left takes other threads' last items. The split is even, but on this shared
// 2-core host one thread often finishes a call 1-3% later than the other (interrupts, the other
// core's memory traffic), and without stealing the first one waited for it at the barrier. Results
// do not change: each output is still computed whole by one thread, K blocks in order.
static int gemm_shared_x(const struct ck_gemm_kernel *kern, const float *x, const void *packed,
                         float *y, size_t M, size_t N, size_t K, size_t nt) {
    const size_t MR = kern->mr, NR = kern->nr, KC = kern->kc, units = k_units(kern, K);
    const size_t a_unit = kern->a_unit_bytes, tile_bytes = units * MR * a_unit;
    const size_t row_bytes = unit_row_bytes(kern), panel_bytes = units * row_bytes;
    const size_t tiles_m = tile_count(M, MR), panels = (N + NR - 1) / NR;
    size_t slab_cap = SHARED_X_BYTES / tile_bytes;
    if (slab_cap < 2) slab_cap = 2;
    const size_t slabs = tile_count(tiles_m, slab_cap), slab_tiles = tile_count(tiles_m, slabs);
    unsigned char *xp = ck_thread_scratch(CK_SCRATCH_GEMM_X, slab_tiles * tile_bytes);
    if (!xp) return 0;
    struct item_range ranges[nt];
#pragma omp parallel num_threads((int)nt)
    {
        const size_t nth = (size_t)omp_get_num_threads(), tid = (size_t)omp_get_thread_num();
        for (size_t s = 0; s < slabs; s++) {
            const size_t m0 = tile_start(tiles_m, slabs, s) * MR;
            const size_t m1 = min_size(tile_start(tiles_m, slabs, s + 1) * MR, M);
            // The row tiles over rows [m0, m1), split between the threads to pack.
            const size_t rows = m1 - m0, tiles = tile_count(rows, MR);
            for (size_t t = tiles * tid / nth; t < tiles * (tid + 1) / nth; t++) {
                const size_t r0 = tile_start(rows, tiles, t), r1 = tile_start(rows, tiles, t + 1);
                kern->pack_a(x + (m0 + r0) * K, K, r1 - r0, units, K, xp + t * tile_bytes, MR);
            }
            // Row blocks as in gemm_block; K chunks bounded by L2 rather than a stack buffer:
            // XP_CHUNK_BYTES of packed x per row block, all of K for every Qwen3 shape, so each
            // panel's C tiles take all their K blocks while in cache (256 KiB measured the same as
            // 512). An item is one row block of one panel over every chunk, so the K chunks of an
            // output are added in order by one thread.
            const size_t groups = tile_count(tiles, kern->mc / MR);
            const size_t group_max = tile_count(tiles, groups);
            const size_t chunk = XP_CHUNK_BYTES / (group_max * MR * a_unit) / KC * KC;
            own_items(&ranges[tid], panels * tid / nth * groups, panels * (tid + 1) / nth * groups);
#pragma omp barrier
            // Thread t's items are [p0 * groups, p1 * groups) for its panels [p0, p1), row block
            // by row block: item p0 * groups + g * (p1 - p0) + (p - p0) is panel p of row block g.
            size_t v = 0, owner, item;
            while (next_item(ranges, nth, tid, &v, &owner, &item)) {
                const size_t p0 = panels * owner / nth, p1 = panels * (owner + 1) / nth;
                const size_t i = item - p0 * groups, g = i / (p1 - p0), p = p0 + i % (p1 - p0);
                const size_t g0 = tile_start(tiles, groups, g);
                const size_t g1 = tile_start(tiles, groups, g + 1);
                for (size_t q0 = 0; q0 < units; q0 += chunk) {
                    const size_t q1 = min_size(units, q0 + chunk);
                    const unsigned char *panel = (const unsigned char *)packed +
                                                 p * panel_bytes;
                    // What this thread reads next: the panel's next chunk, else the next
                    // panel's first (its next item, unless another thread takes it).
                    const unsigned char *next = q1 < units  ? panel + q1 * row_bytes
                                                : p + 1 < p1 ? panel + panel_bytes
                                                             : NULL;
                    panel_chunk(kern, panel + q0 * row_bytes, next,
                                y + m0 * N + p * NR, N, min_size(NR, N - p * NR), rows,
                                tiles, g0, g1, q0, q1, xp + (g0 * units + q0) * MR * a_unit,
                                tile_bytes, MR);
                }
            }
#pragma omp barrier
        }
    }
    return 1;
}

// Decode, one row tile (M <= MR): each thread packs the rows of x once (densely, row stride M) and
// owns a contiguous run of items of `grain` panels (about eight per thread), which it takes from
// the front; when its own are done it takes the other threads' last ones. With a fixed half each
// and no taking, the first thread done waited for the other at the join: two threads streaming W
// through one memory bus do not keep the same pace call by call, and the q8_0 decode GEMVs'
// parallel regions ran 6-10% longer than either thread's own work (a temporary rdtsc probe around
// the region and inside it, 14468 calls). Taking from one shared counter instead (no runs of one's
// own) was 5-8% slower when the host's bandwidth was high: the threads' streams interleave.
// bench/gemm_ab at M = 1 over 28 layers: 0.3-8.5% faster than the fixed halves in four runs. Each
// output is still computed whole by one thread, K blocks in order, so results do not change.
// Returns 0, having done nothing, if x does not fit the buffer.
static int gemm_one_tile(const struct ck_gemm_kernel *kern, const float *x, const void *packed,
                         float *y, size_t M, size_t N, size_t K, size_t nt) {
    const size_t NR = kern->nr, units = k_units(kern, K), a_unit = kern->a_unit_bytes;
    if (units * M * a_unit > A_BUFFER_BYTES) return 0;
    const size_t panel_bytes = units * unit_row_bytes(kern), panels = (N + NR - 1) / NR;
    const size_t grain = panels / (nt * 8) ? panels / (nt * 8) : 1;
    const size_t items = (panels + grain - 1) / grain;
    struct item_range ranges[nt];
#pragma omp parallel num_threads((int)nt)
    {
        const size_t nth = (size_t)omp_get_num_threads(), tid = (size_t)omp_get_thread_num();
        own_items(&ranges[tid], items * tid / nth, items * (tid + 1) / nth);
        _Alignas(64) unsigned char ap[A_BUFFER_BYTES];
        kern->pack_a(x, K, M, units, K, ap, M);
#pragma omp barrier
        size_t v = 0, owner, item;
        while (next_item(ranges, nth, tid, &v, &owner, &item))
            for (size_t p = item * grain; p < min_size(panels, (item + 1) * grain); p++)
                panel_chunk(kern, (const unsigned char *)packed + p * panel_bytes, NULL,
                            y + p * NR, N, min_size(NR, N - p * NR), M, 1, 0, 1, 0, units, ap,
                            units * M * a_unit, M);
    }
    return 1;
}

// x: (M, K) float  packed: from kern->pack_b  y: (M, N)
// Every output is the same sequence of operations (the micro-kernel's steps in k order, the sum
// of each K block added to C) whatever the thread count, the path (row block or decode tile,
// x packed per thread or shared) or the row tile it falls in: results depend neither on the
// number of threads nor on M, so a row at decode equals the same row inside a prefill batch.
static void gemm(const struct ck_gemm_kernel *kern, const float *x, const void *packed, float *y,
                 size_t M, size_t N, size_t K) {
    if (M == 0 || N == 0) return;
    if (K == 0) {
        memset(y, 0, M * N * sizeof *y);
        return;
    }
    const size_t tiles_m = tile_count(M, kern->mr);
    const size_t panels = (N + kern->nr - 1) / kern->nr;
    size_t nt = (size_t)omp_get_max_threads();
    if (nt > tiles_m * panels) nt = tiles_m * panels;
    if (M * N * K < kern->serial_below) nt = 1;
    if (kern->share_x && nt > 1 && tiles_m > 1 && row_groups((int)nt, tiles_m, panels) == 1 &&
        gemm_shared_x(kern, x, packed, y, M, N, K, nt))
        return;
    if (tiles_m == 1 && nt > 1 && gemm_one_tile(kern, x, packed, y, M, N, K, nt)) return;
#pragma omp parallel num_threads((int)nt)
    {
        const int nth = omp_get_num_threads();
        size_t t0, t1, p0, p1;
        thread_share(nth, omp_get_thread_num(), row_groups(nth, tiles_m, panels), tiles_m, panels,
                     &t0, &t1, &p0, &p1);
        if (t0 < t1 && p0 < p1)
            gemm_block(kern, x, packed, y, N, K, t0 * kern->mr, min_size(t1 * kern->mr, M), p0,
                       p1);
    }
}

// ---------------------------------------------------------------------------------------------
// Public entry points (ckernels.h)
// ---------------------------------------------------------------------------------------------

size_t ck_pack_f32_avx2_size(size_t N, size_t K) {
    return packed_bytes(&kernels[GEMM_F32_AVX2], N, K) / sizeof(float);
}
void ck_pack_f32_avx2(const float *w, float *packed, size_t N, size_t K) {
    kernels[GEMM_F32_AVX2].pack_b(&kernels[GEMM_F32_AVX2], w, packed, N, K);
}
void ck_matmul_f32_avx2(const float *x, const float *packed, float *y, size_t M, size_t N,
                        size_t K) {
    gemm(&kernels[GEMM_F32_AVX2], x, packed, y, M, N, K);
}

size_t ck_pack_f32_avx512_size(size_t N, size_t K) {
    return packed_bytes(&kernels[GEMM_F32_AVX512], N, K) / sizeof(float);
}
void ck_pack_f32_avx512(const float *w, float *packed, size_t N, size_t K) {
    kernels[GEMM_F32_AVX512].pack_b(&kernels[GEMM_F32_AVX512], w, packed, N, K);
}
void ck_matmul_f32_avx512(const float *x, const float *packed, float *y, size_t M, size_t N,
                          size_t K) {
    gemm(&kernels[GEMM_F32_AVX512], x, packed, y, M, N, K);
}

size_t ck_pack_bf16_size(size_t N, size_t K) {
    return packed_bytes(&kernels[GEMM_BF16_AVX512], N, K) / sizeof(uint16_t);
}
void ck_pack_bf16(const uint16_t *w, uint16_t *packed, size_t N, size_t K) {
    kernels[GEMM_BF16_AVX512].pack_b(&kernels[GEMM_BF16_AVX512], w, packed, N, K);
}
void ck_matmul_bf16_avx512(const float *x, const uint16_t *packed, float *y, size_t M, size_t N,
                           size_t K) {
    gemm(&kernels[GEMM_BF16_AVX512], x, packed, y, M, N, K);
}
// packed[p][u][j][h] (pack_panels with nr 32, k_unit 2): row n is column j = n % 32 of panel
// n / 32.
void ck_packed_row_bf16(const uint16_t *packed, size_t n, size_t K, float *dst) {
    const size_t nr = kernels[GEMM_BF16_AVX512].nr, units = (K + 1) / 2, j = n % nr;
    const uint16_t *panel = packed + n / nr * units * nr * 2;
    for (size_t k = 0; k < K; k++)
        dst[k] = ck_f32_from_bf16(panel[((k / 2) * nr + j) * 2 + k % 2]);
}

// Quantized weights: ck_pack_q8_0 / ck_pack_q4_0 (quant.c) lay W out for both ISAs' rows.
void ck_matmul_q8_0_avx2(const float *x, const void *packed, float *y, size_t M, size_t N,
                         size_t K) {
    gemm(&kernels[GEMM_Q8_0_AVX2], x, packed, y, M, N, K);
}
void ck_matmul_q4_0_avx2(const float *x, const void *packed, float *y, size_t M, size_t N,
                         size_t K) {
    gemm(&kernels[GEMM_Q4_0_AVX2], x, packed, y, M, N, K);
}
void ck_matmul_q8_0_avx512(const float *x, const void *packed, float *y, size_t M, size_t N,
                           size_t K) {
    gemm(&kernels[GEMM_Q8_0_AVX512], x, packed, y, M, N, K);
}
void ck_matmul_q4_0_avx512(const float *x, const void *packed, float *y, size_t M, size_t N,
                           size_t K) {
    gemm(&kernels[GEMM_Q4_0_AVX512], x, packed, y, M, N, K);
}
