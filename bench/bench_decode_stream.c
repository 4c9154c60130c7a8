// bench_decode_stream.c — what decode streams from memory, timed the way decode meets it: cold.
//
//   bench_decode_stream attention S f32|bf16 avx2|avx512|read   [copies reps]
//   bench_decode_stream gemv bf16|q8_0|q4_0                      [tokens]
//
// attention: one decode step (T = 1 at position S - 1) of streaming attention over an S-token
// K/V cache, Qwen3-0.6B's heads (16 query, 8 KV, head_dim 128), through the public entry point of
// the ISA (avx2, or avx512, whose decode tile is its own), cycling over `copies` caches (default:
// enough for 64 MiB) so every call reads K and V from DRAM. `read` sums the same bytes in the
// same order (per KV head, blocks of 128 keys of K then V) with no attention, on one thread
// whatever OMP_NUM_THREADS says: the bandwidth a latency-free reader gets. gemv: the 113 decode matmuls of Qwen3-0.6B (28 layers of q/k/v,
// o_proj, gate/up and down, then lm_head) at M = 1 in the model's order, the weights packed as
// the model packs them, per token. Both allocate in 2 MiB-aligned huge pages (MADV_HUGEPAGE), as
// the model does, and print best and mean GB/s over the timed calls; threads: OMP_NUM_THREADS.
// Inputs are constant (speed does not depend on values).
#include "ckernels.h"

#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void *huge_alloc(size_t bytes) {
    const size_t huge = (size_t)2 << 20, size = (bytes + huge - 1) / huge * huge;
    void *p = aligned_alloc(huge, size);
    if (p == NULL) {
        fprintf(stderr, "bench_decode_stream: cannot allocate %zu bytes\n", bytes);
        exit(1);
    }
    madvise(p, size, MADV_HUGEPAGE);
    memset(p, 0x3c, size);  // small finite floats and bf16s, all pages touched
    return p;
}

static void report(const char *what, double bytes, double best, double sum, int n) {
    printf("%s threads=%d: %.0f MB per call, best %.3f ms (%.1f GB/s), mean %.3f ms (%.1f GB/s)\n",
           what, omp_get_max_threads(), bytes / 1e6, best * 1e3, bytes / best / 1e9,
           sum / n * 1e3, bytes / (sum / n) / 1e9);
}

__attribute__((target("avx2"))) static float sum_floats(const float *a, size_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i + 32 <= n; i += 32) {
        s0 = _mm256_add_ps(s0, _mm256_loadu_ps(a + i));
        s1 = _mm256_add_ps(s1, _mm256_loadu_ps(a + i + 8));
        s2 = _mm256_add_ps(s2, _mm256_loadu_ps(a + i + 16));
        s3 = _mm256_add_ps(s3, _mm256_loadu_ps(a + i + 24));
    }
    float o[8];
    _mm256_storeu_ps(o, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    return o[0] + o[7];
}

static int attention(size_t S, int bf16, const char *how, int copies, int reps) {
    enum { HQ = 16, HKV = 8, D = 128, QB = 64 * (HQ / HKV), KVB = 128 };
    const size_t es = bf16 ? 2 : 4, side = (size_t)HKV * S * D * es;
    if (copies <= 0) copies = (int)((((size_t)64 << 20) + 2 * side - 1) / (2 * side)) + 1;
    const int avx512 = !strcmp(how, "avx512"), read = !strcmp(how, "read");
    if (!read && !avx512 && strcmp(how, "avx2")) return fprintf(stderr, "unknown kernel %s\n", how), 2;
    if (avx512 && !(ck_cpu_has_avx512() && (!bf16 || ck_cpu_has_avx512_bf16())))
        return fprintf(stderr, "this CPU lacks the avx512 kernel's instructions\n"), 2;
    void **k = malloc((size_t)copies * sizeof *k), **v = malloc((size_t)copies * sizeof *v);
    for (int c = 0; c < copies; c++) k[c] = huge_alloc(side), v[c] = huge_alloc(side);
    float *q = huge_alloc(HQ * D * 4), *out = huge_alloc(HQ * D * 4);
    const int slots = omp_get_max_threads();
    float *scratch = huge_alloc(ck_attention_streaming_scratch(QB, KVB, D, slots) * 4);
    double best = 1e30, sum = 0;
    float sink = 0;
    for (int r = 0; r < copies + reps; r++) {
        const int c = r % copies;
        const double t0 = now();
        if (read) {
            for (size_t h = 0; h < HKV; h++)
                for (size_t j = 0; j < S; j += KVB) {
                    const size_t off = (h * S + j) * D * es / 4, n = KVB * D * es / 4;
                    sink += sum_floats((const float *)k[c] + off, n);
                    sink += sum_floats((const float *)v[c] + off, n);
                }
        } else if (bf16 && avx512) {
            ck_attention_streaming_bf16_avx512(q, k[c], v[c], out, 1, S - 1, HQ, HKV, D, S, 0.088f,
                                               QB, KVB, scratch, slots);
        } else if (bf16) {
            ck_attention_streaming_bf16_avx2(q, k[c], v[c], out, 1, S - 1, HQ, HKV, D, S, 0.088f,
                                             QB, KVB, scratch, slots);
        } else if (avx512) {
            ck_attention_streaming_f32_avx512(q, k[c], v[c], out, 1, S - 1, HQ, HKV, D, S, 0.088f,
                                              QB, KVB, scratch, slots);
        } else {
            ck_attention_streaming_f32_avx2(q, k[c], v[c], out, 1, S - 1, HQ, HKV, D, S, 0.088f,
                                            QB, KVB, scratch, slots);
        }
        const double t = now() - t0;
        if (r >= copies) {  // the first pass over the copies warms up
            sum += t;
            if (t < best) best = t;
        }
    }
    volatile float keep = sink;  // the sums of `read` are used
    (void)keep;
    char what[96];
    snprintf(what, sizeof what, "attention decode S=%zu %s %s", S, bf16 ? "bf16" : "f32", how);
    report(what, 2.0 * (double)side, best, sum, reps);
    return 0;
}

static int gemv(const char *format, int tokens) {
    const size_t shapes[5][2] = {{4096, 1024}, {1024, 2048}, {6144, 1024}, {1024, 3072}, {151936, 1024}};
    enum { LAYERS = 28, CALLS = 4 * LAYERS + 1 };
    const int bf = !strcmp(format, "bf16"), q4 = !strcmp(format, "q4_0");
    if (!bf && !q4 && strcmp(format, "q8_0")) return fprintf(stderr, "unknown format %s\n", format), 2;
    if (!ck_cpu_has_avx512() || (bf && !ck_cpu_has_avx512_bf16()) || (!bf && !ck_cpu_has_avx512_vnni()))
        return fprintf(stderr, "this CPU lacks the avx512 matmul's instructions\n"), 2;
    void *w[CALLS];
    size_t n[CALLS], kk[CALLS];
    double bytes = 0;
    for (int i = 0; i < CALLS; i++) {
        const int s = i == CALLS - 1 ? 4 : i % 4;
        n[i] = shapes[s][0], kk[i] = shapes[s][1];
        const size_t b = bf ? ck_pack_bf16_size(n[i], kk[i]) * 2
                         : q4 ? ck_pack_q4_0_size(n[i], kk[i]) : ck_pack_q8_0_size(n[i], kk[i]);
        w[i] = huge_alloc(b);
        bytes += (double)b;
    }
    float *x = huge_alloc(4096 * 4), *y = huge_alloc(151936 * 4);
    double best = 1e30, sum = 0;
    for (int t = 0; t < tokens + 2; t++) {
        const double t0 = now();
        for (int i = 0; i < CALLS; i++) {
            if (bf) ck_matmul_bf16_avx512(x, w[i], y, 1, n[i], kk[i]);
            else if (q4) ck_matmul_q4_0_avx512(x, w[i], y, 1, n[i], kk[i]);
            else ck_matmul_q8_0_avx512(x, w[i], y, 1, n[i], kk[i]);
        }
        const double d = now() - t0;
        if (t >= 2) {  // two warm-up tokens
            sum += d;
            if (d < best) best = d;
        }
    }
    char what[64];
    snprintf(what, sizeof what, "gemv decode Qwen3-0.6B %s, per token", format);
    report(what, bytes, best, sum, tokens);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 5 && !strcmp(argv[1], "attention"))
        return attention((size_t)atol(argv[2]), !strcmp(argv[3], "bf16"), argv[4],
                         argc > 5 ? atoi(argv[5]) : 0, argc > 6 ? atoi(argv[6]) : 30);
    if (argc >= 3 && !strcmp(argv[1], "gemv")) return gemv(argv[2], argc > 3 ? atoi(argv[3]) : 20);
    fprintf(stderr, "usage: bench_decode_stream attention S f32|bf16 avx2|avx512|read [copies reps]\n"
                    "       bench_decode_stream gemv bf16|q8_0|q4_0 [tokens]\n");
    return 2;
}
