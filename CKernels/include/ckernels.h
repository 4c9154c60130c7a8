// ckernels.h — the flat C ABI of the hot kernels (umbrella header of the CKernels module).
//
// Conventions
// - Names: ck_<op>_<dtype>_<isa>. `_ref` is the plain C loop: it is the scalar reference the tests
//   compare against AND the kernel of the `baseline` method (plain loops, OpenMP where the work
//   splits naturally). `_avx2` uses AVX2+FMA intrinsics; it is compiled with a per-function
//   target attribute, so the library runs on any x86-64 and the caller must check
//   ck_cpu_has_avx2_fma() before calling it.
// - Buffers are caller-owned; no kernel allocates. Sizes are explicit, in elements.
// - Matrices are row-major. A linear layer's weight is stored as Hugging Face stores it,
//   W[N, K] (out_features, in_features), and y = x · W^T.
// - OpenMP lives only here. Kernels use the current OpenMP thread count (ck_set_num_threads).
#ifndef CKERNELS_H
#define CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "ck_probe.h"  // machine peak probes (the yardstick of "percent of peak")

#ifdef __cplusplus
extern "C" {
#endif

// ---------------------------------------------------------------------------------------------
// CPU features and threads
// ---------------------------------------------------------------------------------------------

// 1 if the CPU and OS support AVX2 and FMA (CPUID + XGETBV), else 0.
int ck_cpu_has_avx2_fma(void);
// 1 if AVX-512 F, BW and VL are usable (CPUID + XGETBV for ZMM state), else 0.
int ck_cpu_has_avx512(void);
// 1 if AVX512_BF16 is usable, with AVX512DQ (the bf16 kernels use both), else 0.
int ck_cpu_has_avx512_bf16(void);
// AVX512_VNNI (vpdpbusd) on top of ck_cpu_has_avx512().
int ck_cpu_has_avx512_vnni(void);

// Sets the OpenMP thread count used by every kernel (n >= 1).
void ck_set_num_threads(int n);
// The OpenMP thread count kernels will use.
int ck_get_max_threads(void);
// Cores this process may run on (its affinity mask), read without starting the OpenMP runtime
// (0 on failure), so the command line can be checked before OpenMP reads its environment.
int ck_affinity_cores(void);
// Number of threads an OpenMP parallel region really starts (proves the runtime is not serial).
int ck_parallel_region_threads(void);
// Returns the heap's freed memory to the OS (glibc's malloc_trim; a no-op elsewhere), so that the
// resident memory after loading is the weights, not the temporaries the loading freed.
void ck_release_free_memory(void);

// ---------------------------------------------------------------------------------------------
// Conversion (weights are converted once, at load)
// ---------------------------------------------------------------------------------------------

// dst[n] = (float) src[n] for bfloat16 (upper 16 bits of an IEEE float32).
void ck_convert_bf16_to_f32(const uint16_t *src, float *dst, size_t n);
// dst[n] = (float) src[n] for IEEE half precision (handles subnormals, inf, nan).
void ck_convert_f16_to_f32(const uint16_t *src, float *dst, size_t n);
// dst[n] = round-to-nearest-even bfloat16 of src[n] (NaN stays NaN).
void ck_convert_f32_to_bf16(const float *src, uint16_t *dst, size_t n);
// Number of NaN and infinite values in x[n] (weights are checked once, at load).
size_t ck_count_nonfinite_f32(const float *x, size_t n);

// ---------------------------------------------------------------------------------------------
// KV cache stores
// ---------------------------------------------------------------------------------------------

// T new tokens' keys and values into a cache at positions start .. start+T-1.
//   k, v: token t's `slots` heads of D floats at k + t * k_stride (and v + t * v_stride): a
//         (T, slots, D) tensor, or rows of the fused q/k/v projection
//   k_cache, v_cache: (slots, cap, D), start + T <= cap
// _f32 copies; _bf16 rounds to nearest even as ck_convert_f32_to_bf16 does. Split over threads
// by (token, slot) rows when there are enough of them.
void ck_kv_store_f32(const float *k, size_t k_stride, const float *v, size_t v_stride, size_t T,
                     size_t slots, size_t D, size_t cap, size_t start, float *k_cache,
                     float *v_cache);
void ck_kv_store_bf16(const float *k, size_t k_stride, const float *v, size_t v_stride, size_t T,
                      size_t slots, size_t D, size_t cap, size_t start, uint16_t *k_cache,
                      uint16_t *v_cache);

// ---------------------------------------------------------------------------------------------
// Matrix multiply: y[M, N] = x[M, K] · W[N, K]^T
// ---------------------------------------------------------------------------------------------
// The packed kernels below are one blocked driver (gemm.c) over one micro-kernel per weight
// type and ISA. Each output is the same sequence of operations whatever the thread count or M,
// so a row at decode equals the same row inside a prefill batch.

// Baseline / reference: plain loops over W in its checkpoint layout, OpenMP over output rows
// and columns.
// x: (M, K)  w: (N, K)  y: (M, N)
void ck_matmul_f32_ref(const float *x, const float *w, float *y, size_t M, size_t N, size_t K);

// Output columns per packed panel of the AVX2 matmul (two 8-float vectors).
#define CK_AVX2_NR 16

// AVX2+FMA: W is packed once, at load, into column panels of CK_AVX2_NR outputs:
// packed[p][k][j] = W[p*NR + j][k], zero-padded to a whole panel. Number of floats to allocate:
size_t ck_pack_f32_avx2_size(size_t N, size_t K);
// w: (N, K)  packed: (ceil(N/NR), K, NR)
void ck_pack_f32_avx2(const float *w, float *packed, size_t N, size_t K);
// x: (M, K)  packed: from ck_pack_f32_avx2  y: (M, N)
// Each thread packs its block of x into 84 KiB of its own stack (the default stacks have room).
void ck_matmul_f32_avx2(const float *x, const float *packed, float *y, size_t M, size_t N,
                        size_t K);

// AVX-512F: the same structure with panels of CK_AVX512_NR outputs (two 16-float vectors):
// packed[p][k][j] = W[p*NR + j][k], zero-padded. Caller checks ck_cpu_has_avx512().
#define CK_AVX512_NR 32
size_t ck_pack_f32_avx512_size(size_t N, size_t K);
// w: (N, K)  packed: (ceil(N/NR), K, NR)
void ck_pack_f32_avx512(const float *w, float *packed, size_t N, size_t K);
// x: (M, K)  packed: from ck_pack_f32_avx512  y: (M, N)
void ck_matmul_f32_avx512(const float *x, const float *packed, float *y, size_t M, size_t N,
                          size_t K);

// BF16 weights: W kept as bfloat16, x rounded to bfloat16 (nearest even) inside the kernel,
// products summed in float32 (AVX512_BF16 vdpbf16ps). Caller checks ck_cpu_has_avx512_bf16().
// Packed layout: panels of CK_BF16_NR outputs, K taken in pairs (odd K padded with a zero):
// packed[p][k/2][j][k%2] = W[p*NR + j][k]. Size in uint16 elements:
#define CK_BF16_NR 32
size_t ck_pack_bf16_size(size_t N, size_t K);
// w: (N, K) bfloat16 bits  packed: (ceil(N/NR), ceil(K/2), NR, 2)
void ck_pack_bf16(const uint16_t *w, uint16_t *packed, size_t N, size_t K);
// x: (M, K) float  packed: from ck_pack_bf16  y: (M, N)
void ck_matmul_bf16_avx512(const float *x, const uint16_t *packed, float *y, size_t M, size_t N,
                           size_t K);
// Reference: y = bf16(x) · W^T, float32 sums, W in its checkpoint layout. x: (M, K)  w: (N, K)
void ck_matmul_bf16_ref(const float *x, const uint16_t *w, float *y, size_t M, size_t N, size_t K);
// Row n of a packed matrix as float32, exactly the weight's values: the embedding lookup of a tied
// model reads its lm_head's packed rows rather than a second copy. packed: from ck_pack_bf16 (N, K)
// dst: (K)
void ck_packed_row_bf16(const uint16_t *packed, size_t n, size_t K, float *dst);

// Quantized weights, GGUF's Q8_0 and Q4_0 block semantics: each weight row is cut along K into
// blocks of 32 with one float16 scale d each. q8_0: 34 bytes per block (d, then 32 int8 q;
// w = q * d, d = max|w| / 127). q4_0: 18 bytes per block (d, then 16 bytes: element j in the low
// nibble of byte j, element j + 16 in the high nibble; w = (q - 8) * d, d = m / -8 with m the
// block's weight of largest magnitude, sign kept, as GGUF does). q rounds to nearest (ties to
// even) with the stored (float16-rounded) d. K must be a multiple of CK_QK (the caller checks).
// The matmuls quantize each row of x per block to int8 with a float32 scale (d = max|x| / 127),
// sum the int8 x int8 products of a block exactly in int32, and apply the two scales in float32.
#define CK_QK 32
#define CK_Q8_0_BLOCK_BYTES 34
#define CK_Q4_0_BLOCK_BYTES 18
// w: (N, K) float  blocks: (N, K / 32) blocks of the format
void ck_quantize_q8_0(const float *w, void *blocks, size_t N, size_t K);
void ck_quantize_q4_0(const float *w, void *blocks, size_t N, size_t K);
// blocks: (N, K / 32)  w: (N, K) float, the values the blocks stand for
void ck_dequantize_q8_0(const void *blocks, float *w, size_t N, size_t K);
void ck_dequantize_q4_0(const void *blocks, float *w, size_t N, size_t K);
// Reference and baseline: x quantized per block, int32 block sums, float32 sum of the scaled
// block sums in k order. x: (M, K)  blocks: (N, K / 32)  y: (M, N)
void ck_matmul_q8_0_ref(const float *x, const void *blocks, float *y, size_t M, size_t N, size_t K);
void ck_matmul_q4_0_ref(const float *x, const void *blocks, float *y, size_t M, size_t N, size_t K);
// Packed for the blocked driver: panels of CK_Q_NR outputs; per block of K, the 32 columns'
// values (grouped 4 k per column, as vpdpbusd reads them) and then their 32 float16 scales.
// The same layout serves the AVX2 and AVX512_VNNI kernels. Sizes in bytes.
#define CK_Q_NR 32
size_t ck_pack_q8_0_size(size_t N, size_t K);
size_t ck_pack_q4_0_size(size_t N, size_t K);
// blocks: (N, K / 32) from ck_quantize_*  packed: (ceil(N/NR), K / 32, unit row of NR columns)
void ck_pack_q8_0(const void *blocks, void *packed, size_t N, size_t K);
void ck_pack_q4_0(const void *blocks, void *packed, size_t N, size_t K);
// Row n of a packed q8_0 / q4_0 matrix dequantized: what ck_dequantize_* gives for its blocks.
// packed: from ck_pack_*_0 (N, K)  dst: (K)
void ck_packed_row_q8_0(const void *packed, size_t n, size_t K, float *dst);
void ck_packed_row_q4_0(const void *packed, size_t n, size_t K, float *dst);
// x: (M, K) float  packed: from ck_pack_*  y: (M, N). _avx512 needs ck_cpu_has_avx512_vnni();
// _avx2 needs ck_cpu_has_avx2_fma() (and F16C, which every AVX2 CPU with FMA has).
void ck_matmul_q8_0_avx512(const float *x, const void *packed, float *y, size_t M, size_t N, size_t K);
void ck_matmul_q4_0_avx512(const float *x, const void *packed, float *y, size_t M, size_t N, size_t K);
void ck_matmul_q8_0_avx2(const float *x, const void *packed, float *y, size_t M, size_t N, size_t K);
void ck_matmul_q4_0_avx2(const float *x, const void *packed, float *y, size_t M, size_t N, size_t K);

// y[M, N] += bias[N]
void ck_add_bias_f32(float *y, const float *bias, size_t M, size_t N);

// ---------------------------------------------------------------------------------------------
// Element-wise and row-wise ops
// ---------------------------------------------------------------------------------------------

// RMSNorm per row, Hugging Face Qwen3RMSNorm: y = w * x / sqrt(mean(x^2) + eps).
// x, y: (rows, dim), may alias (in place)  w: (dim)
void ck_rmsnorm_f32_ref(const float *x, const float *w, float *y, size_t rows, size_t dim,
                        float eps);
void ck_rmsnorm_f32_avx2(const float *x, const float *w, float *y, size_t rows, size_t dim,
                         float eps);
// The same per head of a strided tensor: token t's H heads of D floats start at x + t * ldx
// (q or k inside a row of the fused q/k/v projection); y: (T, H, D) contiguous, may alias x
// only when ldx == H * D.   x: (T, ldx)  w: (D)
void ck_rmsnorm_heads_f32_ref(const float *x, size_t ldx, const float *w, float *y, size_t T,
                              size_t H, size_t D, float eps);
void ck_rmsnorm_heads_f32_avx2(const float *x, size_t ldx, const float *w, float *y, size_t T,
                               size_t H, size_t D, float eps);

// Rotary embedding, Hugging Face rotate-half layout, in place. For token t and every head:
//   (x[i], x[i + D/2]) <- (x[i] cos - x[i + D/2] sin, x[i + D/2] cos + x[i] sin), i < D/2,
// with cos = cos_table[positions[t] * D/2 + i], sin likewise; 0 <= positions[t] < max_pos.
// x: (T, H, D)  positions: (T)  cos_table, sin_table: (max_pos, D/2)   D even
void ck_rope_f32_ref(float *x, size_t T, size_t H, size_t D, const int32_t *positions,
                     const float *cos_table, const float *sin_table);
void ck_rope_f32_avx2(float *x, size_t T, size_t H, size_t D, const int32_t *positions,
                      const float *cos_table, const float *sin_table);

// SwiGLU activation: out = silu(gate) * up, silu(g) = g / (1 + exp(-g)).
// gate, up, out: (n); out may alias gate or up.
void ck_silu_mul_f32_ref(const float *gate, const float *up, float *out, size_t n);
void ck_silu_mul_f32_avx2(const float *gate, const float *up, float *out, size_t n);
void ck_silu_mul_f32_avx512(const float *gate, const float *up, float *out, size_t n);  // AVX-512F
// The same over the rows of the fused gate/up projection: out[r] = silu(gate_up[r, :n]) * gate_up[r, n:].
// gate_up: (rows, 2n)  out: (rows, n)
void ck_swiglu_f32_ref(const float *gate_up, float *out, size_t rows, size_t n);
void ck_swiglu_f32_avx2(const float *gate_up, float *out, size_t rows, size_t n);
void ck_swiglu_f32_avx512(const float *gate_up, float *out, size_t rows, size_t n);  // AVX-512F

// y[n] += x[n]   (residual connection)
void ck_add_f32_ref(float *y, const float *x, size_t n);
void ck_add_f32_avx2(float *y, const float *x, size_t n);

// Numerically stable softmax of one row, in place. x: (n), n >= 1
void ck_softmax_f32_ref(float *x, size_t n);
void ck_softmax_f32_avx2(float *x, size_t n);

// ---------------------------------------------------------------------------------------------
// Causal attention with grouped-query heads
// ---------------------------------------------------------------------------------------------
// Queries are T new tokens at absolute positions pos0 .. pos0+T-1; the cache already holds keys
// and values for positions 0 .. pos0+T-1. Query token t attends to keys 0 .. pos0+t.
// Query head h reads KV head h / (Hq / Hkv); Hq is a multiple of Hkv.
//   q:   (T, Hq, D)          out: (T, Hq, D)
//   k, v: (Hkv, cap, D)      cap >= pos0 + T (the cache capacity, the row stride per head)
//   scale: usually 1/sqrt(D)
// Preconditions: Hkv >= 1, Hq a multiple of Hkv, D >= 1, q_block and kv_block >= 1 (the caller
// validates them; zero blocks would never advance). Kernels run min(slots, threads) threads.
// Prefill is T = prompt length, pos0 = 0; a decode step is T = 1, pos0 = tokens so far.

// Standard attention: per head, the causal block of scores (T x (pos0+T)) is materialised,
// softmaxed row by row, and multiplied by V. OpenMP over heads; each thread uses its own slot
// of scratch. With fewer heads than threads (decode in a process holding few heads), the AVX2
// and AVX-512 versions also split each head's keys (scores, softmax) and then its columns of V
// (P·V) over the threads. Floats of scratch needed for `slots` threads:
size_t ck_attention_standard_scratch(size_t T, size_t pos0, int slots);
void ck_attention_standard_f32_ref(const float *q, const float *k, const float *v, float *out,
                                   size_t T, size_t pos0, size_t Hq, size_t Hkv, size_t D,
                                   size_t cap, float scale, float *scratch, int slots);
void ck_attention_standard_f32_avx2(const float *q, const float *k, const float *v, float *out,
                                    size_t T, size_t pos0, size_t Hq, size_t Hkv, size_t D,
                                    size_t cap, float scale, float *scratch, int slots);
// AVX-512 F/BW/VL (caller checks ck_cpu_has_avx512()): the same algorithm and thread split.
void ck_attention_standard_f32_avx512(const float *q, const float *k, const float *v, float *out,
                                      size_t T, size_t pos0, size_t Hq, size_t Hkv, size_t D,
                                      size_t cap, float scale, float *scratch, int slots);

// Streaming attention (FlashAttention-style): tiles of q_block query rows against KV blocks of
// kv_block keys with an online softmax (running max and denominator); nothing T x T is stored,
// KV blocks wholly above the causal diagonal are skipped and the diagonal block is masked.
// A query row is one (token, query head) of a KV head's group, the group's heads adjacent:
// a tile is all Hq/Hkv heads over q_block / (Hq/Hkv) tokens, so the heads sharing a KV head
// share each K/V block while it is in cache. OpenMP over (KV head, row block), largest first;
// when there are fewer tiles than threads (decode), each tile's keys are split over threads and
// the partial states (below) merged by ck_attention_merge_f32's rule (flash decoding), within
// the same scratch. Scratch floats:
size_t ck_attention_streaming_scratch(size_t q_block, size_t kv_block, size_t D, int slots);
void ck_attention_streaming_f32_ref(const float *q, const float *k, const float *v, float *out,
                                    size_t T, size_t pos0, size_t Hq, size_t Hkv, size_t D,
                                    size_t cap, float scale, size_t q_block, size_t kv_block,
                                    float *scratch, int slots);
void ck_attention_streaming_f32_avx2(const float *q, const float *k, const float *v, float *out,
                                     size_t T, size_t pos0, size_t Hq, size_t Hkv, size_t D,
                                     size_t cap, float scale, size_t q_block, size_t kv_block,
                                     float *scratch, int slots);
// AVX-512 F/BW/VL tiles (caller checks ck_cpu_has_avx512()); same scratch as the others.
// A tile of fewer than CK_ATTENTION_AVX512_MIN_ROWS query rows (decode with a small group) runs
// a row-major decode tile that reads each K and V row once, keeping whole output rows in
// registers, for head size CK_ATTENTION_AVX512_ROWS_D, and the AVX2 row-major tile for others.
#define CK_ATTENTION_AVX512_MIN_ROWS 8
#define CK_ATTENTION_AVX512_ROWS_D 128
void ck_attention_streaming_f32_avx512(const float *q, const float *k, const float *v, float *out,
                                       size_t T, size_t pos0, size_t Hq, size_t Hkv, size_t D,
                                       size_t cap, float scale, size_t q_block, size_t kv_block,
                                       float *scratch, int slots);

// Partial softmax state: how attention over the keys is split (flash decoding over threads
// inside the streaming kernels, over ranks in sequence-parallel decode) and joined again.
// For every query row (token t, query head h), over a set of keys J it can see:
//   m = max_j s_j,  l = sum_j exp(s_j - m),  acc = sum_j exp(s_j - m) v_j   (s_j = scale q·k_j)
//   state: (T, Hq, D + 2), row (t, h) = acc[0 .. D), m, l
// A row that sees no key of J has acc = 0, m = -inf, l = 0, and weighs nothing in a merge.
// Floats of a state of `rows` = T * Hq query rows:
size_t ck_attention_state_floats(size_t rows, size_t D);

// The state of every query row over keys [key_lo, key_hi) cut by causality (row t sees keys up to
// pos0 + t): streaming attention's tiles, schedule and scratch (ck_attention_streaming_scratch),
// with the kernels' shapes and preconditions; an empty range gives empty states.
//   state: (T, Hq, D + 2)
void ck_attention_partial_f32_ref(const float *q, const float *k, const float *v, float *state,
                                  size_t T, size_t pos0, size_t Hq, size_t Hkv, size_t D,
                                  size_t cap, float scale, size_t key_lo, size_t key_hi,
                                  size_t q_block, size_t kv_block, float *scratch, int slots);
void ck_attention_partial_f32_avx2(const float *q, const float *k, const float *v, float *state,
                                   size_t T, size_t pos0, size_t Hq, size_t Hkv, size_t D,
                                   size_t cap, float scale, size_t key_lo, size_t key_hi,
                                   size_t q_block, size_t kv_block, float *scratch, int slots);
void ck_attention_partial_f32_avx512(const float *q, const float *k, const float *v, float *state,
                                     size_t T, size_t pos0, size_t Hq, size_t Hkv, size_t D,
                                     size_t cap, float scale, size_t key_lo, size_t key_hi,
                                     size_t q_block, size_t kv_block, float *scratch, int slots);

// A bfloat16 KV cache: k, v (Hkv, cap, D) of uint16_t bf16, everything else as above (same
// scratch sizes, partial states and merge). Three ways to compute on it:
//   _ref     the bf16 rounding points in plain C: q enters the dot products as bf16(scale q),
//            each probability enters P·V rounded to bf16; sums, softmax, l and out in f32.
//   _avx2    the cache widened to f32 on load (exact) and f32 FMAs at _ref's rounding points: half
//            the bytes of an f32 cache, the same flops.
//   _avx512  AVX512_BF16 (caller checks ck_cpu_has_avx512_bf16()): QK^T and the streaming tiles'
//            P·V with vdpbf16ps, at _ref's rounding points (the streaming tiles round
//            bf16(scale log2(e) q), their scores in log2 units, take their softmax weights by a
//            cheaper exp, within 7.5e-5 relative: ck_attention_weights_bf16_avx512, and past a
//            tile's first KV block weigh keys against the running maxima, rescaling lazily).
//            Standard attention's P·V multiplies bf16(p) by V widened in f32 (the same products:
//            its V rows serve too few query rows to pay for pairing keys). Streaming prefill
//            (several row blocks per KV head, even key_lo and kv_block) pairs each head's V once
//            for all its tiles, in a buffer the calling thread keeps: one head's V (keys x D x 2
//            bytes) beyond the scratch. Streaming tiles of fewer than CK_ATTENTION_AVX512_MIN_ROWS
//            rows (decode) run the decode tile (QK^T with vdpbf16ps, V widened in registers and
//            multiplied by bf16(p) in f32) for head size CK_ATTENTION_AVX512_ROWS_D, the _avx2
//            tile for others; head sizes that are odd or above CK_ATTENTION_BF16_MAX_D run the
//            _avx2 pieces.
#define CK_ATTENTION_BF16_MAX_D 512
void ck_attention_standard_bf16_ref(const float *q, const uint16_t *k, const uint16_t *v,
                                    float *out, size_t T, size_t pos0, size_t Hq, size_t Hkv,
                                    size_t D, size_t cap, float scale, float *scratch, int slots);
void ck_attention_standard_bf16_avx2(const float *q, const uint16_t *k, const uint16_t *v,
                                     float *out, size_t T, size_t pos0, size_t Hq, size_t Hkv,
                                     size_t D, size_t cap, float scale, float *scratch, int slots);
void ck_attention_standard_bf16_avx512(const float *q, const uint16_t *k, const uint16_t *v,
                                       float *out, size_t T, size_t pos0, size_t Hq, size_t Hkv,
                                       size_t D, size_t cap, float scale, float *scratch,
                                       int slots);
void ck_attention_streaming_bf16_ref(const float *q, const uint16_t *k, const uint16_t *v,
                                     float *out, size_t T, size_t pos0, size_t Hq, size_t Hkv,
                                     size_t D, size_t cap, float scale, size_t q_block,
                                     size_t kv_block, float *scratch, int slots);
void ck_attention_streaming_bf16_avx2(const float *q, const uint16_t *k, const uint16_t *v,
                                      float *out, size_t T, size_t pos0, size_t Hq, size_t Hkv,
                                      size_t D, size_t cap, float scale, size_t q_block,
                                      size_t kv_block, float *scratch, int slots);
void ck_attention_streaming_bf16_avx512(const float *q, const uint16_t *k, const uint16_t *v,
                                        float *out, size_t T, size_t pos0, size_t Hq, size_t Hkv,
                                        size_t D, size_t cap, float scale, size_t q_block,
                                        size_t kv_block, float *scratch, int slots);
//   state: (T, Hq, D + 2), as ck_attention_partial_f32_*
void ck_attention_partial_bf16_ref(const float *q, const uint16_t *k, const uint16_t *v,
                                   float *state, size_t T, size_t pos0, size_t Hq, size_t Hkv,
                                   size_t D, size_t cap, float scale, size_t key_lo, size_t key_hi,
                                   size_t q_block, size_t kv_block, float *scratch, int slots);
void ck_attention_partial_bf16_avx2(const float *q, const uint16_t *k, const uint16_t *v,
                                    float *state, size_t T, size_t pos0, size_t Hq, size_t Hkv,
                                    size_t D, size_t cap, float scale, size_t key_lo,
                                    size_t key_hi, size_t q_block, size_t kv_block, float *scratch,
                                    int slots);
void ck_attention_partial_bf16_avx512(const float *q, const uint16_t *k, const uint16_t *v,
                                      float *state, size_t T, size_t pos0, size_t Hq, size_t Hkv,
                                      size_t D, size_t cap, float scale, size_t key_lo,
                                      size_t key_hi, size_t q_block, size_t kv_block,
                                      float *scratch, int slots);

// The softmax weights of the _avx512 streaming tile (the vdpbf16ps one), exposed for tests:
// w[i] = exp(s[i] - m) by the cheaper exp that feeds the bf16 rounding of P (relative error
// within 7.5e-5 + 2^-24 (2 |s[i] - m| + |m| + 1), and 2^-150 absolute where w[i] is subnormal;
// -inf gives +0).  s, w: (n)
void ck_attention_weights_bf16_avx512(const float *s, size_t n, float m, float *w);

// out = attention over the union of the parts' (disjoint) key sets: with M = max_p m_p,
//   out = sum_p e^(m_p - M) acc_p / sum_p e^(m_p - M) l_p   per row; 0 for a row no part saw keys.
//   states: (parts, rows, D + 2)  out: (rows, D)
void ck_attention_merge_f32(const float *states, size_t parts, size_t rows, size_t D, float *out);

#ifdef __cplusplus
}
#endif

#endif  // CKERNELS_H
