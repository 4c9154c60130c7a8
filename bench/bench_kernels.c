// bench_kernels.c — microbenchmarks of the CKernels hot loops. First the machine: the AVX2 FMA,
// AVX-512 FMA, AVX512_BF16 dot-product and AVX512_VNNI vpdpbusd peaks and the read bandwidth
// from DRAM, at the chosen thread count. Then matmul (ref, avx2, avx512 with float32 weights, bf16
// with bfloat16 weights, q8_0 and q4_0 weights with the AVX2 and VNNI kernels, in GOP/s of int8)
// on the Qwen3-0.6B projection shapes (each projection alone, and q/k/v and gate/up fused into
// one GEMM as the model calls them) at M = 1, 32, 128, 512, 1024, and standard vs streaming
// attention (16 query heads, 8 KV heads, D = 128) at prefill and decode for S = 128 .. 8192, at
// the chosen thread count and again on one thread (--attention: the peaks and attention only;
// --matmul: the peaks and matmul only).
// Each case: a warm-up run, then the median of repeated runs; GFLOP/s (GB/s of weights for the
// memory-bound M = 1 matmul) and the percentage of the measured peak of its own instructions.
//
// usage: bench_kernels [--threads N] [--quick] [--csv | --csv-file PATH] [--attention | --matmul]
//                      [--q-block N] [--kv-block N]
// --csv prints CSV rows instead of text; --csv-file prints the text and writes the same run's
// rows to PATH as CSV (make bench keeps both from one run).
#include "ckernels.h"
#include "ck_probe.h"

#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct options {
    int threads;
    int quick;
    int csv;        // CSV on stdout instead of text
    FILE *csv_out;  // where CSV rows go: stdout (--csv), a file (--csv-file), or nowhere
    int attention_only;        // skip the matmul cases
    int matmul_only;           // skip the attention cases
    size_t q_block, kv_block;  // streaming attention blocks
};

// Measured at the benchmark's thread count; 0 when the CPU lacks the instructions.
struct peaks {
    double gflops;         // AVX2 FMA peak
    double avx512_gflops;  // AVX-512 FMA peak
    double bf16_gflops;    // AVX512_BF16 vdpbf16ps peak (2 flops per bfloat16 product)
    double vnni_gops;      // AVX512_VNNI vpdpbusd peak (2 int8 operations per byte product)
    double gbps;           // read bandwidth from DRAM
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *alloc_or_die(size_t bytes) {
    void *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "bench_kernels: cannot allocate %zu bytes\n", bytes);
        exit(1);
    }
    return p;
}

// Uniform in [-1, 1), filled in parallel so the pages are first touched by the threads that
// use them.
static void fill_random(float *x, size_t n, uint32_t seed) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        uint32_t h = (uint32_t)i * 2654435761u ^ seed;
        h ^= h >> 15;
        h *= 2246822519u;
        h ^= h >> 13;
        x[i] = (float)(h >> 8) * 0x1p-23f - 1.0f;
    }
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

struct timing {
    double median, best;  // seconds
};

// Times fn(ctx): one warm-up run, then at least min_reps runs and until the time budget is
// spent (at most 100). A case whose warm-up alone exceeds the budget is slow enough to be
// steady: its warm-up counts as a sample, and only a few more are taken.
static struct timing time_runs(void (*fn)(void *), void *ctx, const struct options *o) {
    enum { MAX_REPS = 100 };
    double samples[MAX_REPS];
    const double budget = o->quick ? 0.2 : 1.0;
    const int min_reps = o->quick ? 3 : 7;
    double t = now();
    fn(ctx);
    t = now() - t;
    int n = 0, reps = min_reps;
    if (t > budget) {
        samples[n++] = t;
        reps = o->quick ? 1 : 3;
    }
    const double start = now();
    while (n < MAX_REPS && (n < reps || (t <= budget && now() - start < budget))) {
        const double t0 = now();
        fn(ctx);
        samples[n++] = now() - t0;
    }
    qsort(samples, (size_t)n, sizeof *samples, cmp_double);
    const double median = n % 2 ? samples[n / 2] : 0.5 * (samples[n / 2 - 1] + samples[n / 2]);
    return (struct timing){.median = median, .best = samples[0]};
}

static void report_header(const struct options *o) {
    if (o->csv_out)
        fprintf(o->csv_out, "case,method,shape,threads,median_ms,best_ms,rate,best_rate,unit,percent,of\n");
}

// One line per case: rate = work / median time (and / best time); percent = rate / peak.
static void report(const struct options *o, const char *kase, const char *method,
                   const char *shape, struct timing t, double work, const char *unit, double peak,
                   const char *of) {
    const double rate = work / t.median, best = work / t.best;
    const double percent = peak > 0 ? 100.0 * rate / peak : 0.0;
    if (o->csv_out)
        fprintf(o->csv_out, "%s,%s,%s,%d,%.4f,%.4f,%.2f,%.2f,%s,%.1f,%s\n", kase, method, shape,
                o->threads, t.median * 1e3, t.best * 1e3, rate, best, unit, percent, of);
    if (!o->csv) {
        printf("%-9s %-15s %-18s threads=%d  median %9.3f ms  %7.2f %-7s (best %7.2f)  "
               "%5.1f%% of %s\n",
               kase, method, shape, o->threads, t.median * 1e3, rate, unit, best, percent, of);
    }
    fflush(stdout);
    if (o->csv_out) fflush(o->csv_out);
}

// ---------------------------------------------------------------------------------------------
// Machine probes
// ---------------------------------------------------------------------------------------------

// The instruction chains the peaks are timed with live in CKernels/probe.c (ck_probe.h).

struct fma_ctx {
    float (*chains)(long iters);
    long iters;
    volatile float sink;
};

static void run_fma(void *p) {
    struct fma_ctx *c = p;
    float sum = 0.0f;
#pragma omp parallel reduction(+ : sum)
    sum += c->chains(c->iters);
    c->sink = sum;
}

// One peak probe: 12 chains per thread of an instruction doing flops_per_op flops.
static double probe_chains(const struct options *o, float (*chains)(long), double flops_per_op,
                           const char *method) {
    struct fma_ctx fc = {.chains = chains, .iters = o->quick ? 20000000 : 100000000};
    const struct timing t = time_runs(run_fma, &fc, o);
    const double flops = 12.0 * flops_per_op * (double)fc.iters * o->threads;
    const double peak = flops / t.best / 1e9;
    report(o, "peak", method, "12 chains/thread", t, flops / 1e9, "GFLOP/s", peak, "best");
    return peak;
}

// The q8_0 VNNI tile's instruction mix (ck_probe_dpbusd_q8_mix_avx512), as a share of the
// vpdpbusd peak: the ceiling of that tile on this CPU.
static void probe_q8_mix(const struct options *o, double vnni_gops) {
    struct fma_ctx fc = {.chains = ck_probe_dpbusd_q8_mix_avx512,
                         .iters = o->quick ? 20000000 : 100000000};
    const struct timing t = time_runs(run_fma, &fc, o);
    const double ops = CK_PROBE_DPBUSD_Q8_MIX_OPS_PER_ITER * (double)fc.iters * o->threads;
    report(o, "peak", "avx512-vnni-q8-mix", "8 dpbusd+epilogue", t, ops / 1e9, "GOP/s", vnni_gops,
           "dpbusd-peak");
}

// Streams a buffer far larger than the caches with 4 independent vector sums per thread.
__attribute__((target("avx2"))) static float read_range(const float *x, size_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i + 32 <= n; i += 32) {
        s0 = _mm256_add_ps(s0, _mm256_load_ps(x + i));
        s1 = _mm256_add_ps(s1, _mm256_load_ps(x + i + 8));
        s2 = _mm256_add_ps(s2, _mm256_load_ps(x + i + 16));
        s3 = _mm256_add_ps(s3, _mm256_load_ps(x + i + 24));
    }
    return _mm256_cvtss_f32(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

struct read_ctx {
    const float *x;
    size_t n;
    volatile float sink;
};

static void run_read(void *p) {
    struct read_ctx *c = p;
    float sum = 0.0f;
#pragma omp parallel reduction(+ : sum)
    {
        const size_t nt = (size_t)omp_get_num_threads(), t = (size_t)omp_get_thread_num();
        const size_t chunk = c->n / nt / 32 * 32;  // 128-byte aligned shares
        sum += read_range(c->x + t * chunk, chunk);
    }
    c->sink = sum;
}

// Peaks are the best run, not the median: a peak is what the machine can do, and the kernels'
// medians are then measured against it.
static struct peaks probe_machine(const struct options *o) {
    struct peaks pk = {0};
    if (ck_cpu_has_avx2_fma()) pk.gflops = probe_chains(o, ck_probe_fma_avx2, 16.0, "avx2-fma");
    if (ck_cpu_has_avx512()) pk.avx512_gflops = probe_chains(o, ck_probe_fma_avx512, 32.0, "avx512-fma");
    if (ck_cpu_has_avx512_bf16())
        pk.bf16_gflops = probe_chains(o, ck_probe_dpbf16_avx512, 64.0, "avx512-bf16dp");
    if (ck_cpu_has_avx512_vnni()) {
        pk.vnni_gops = probe_chains(o, ck_probe_dpbusd_avx512, 128.0, "avx512-vnni-dpbusd");
        probe_q8_mix(o, pk.vnni_gops);
    }
    const size_t n = (size_t)(o->quick ? 256 : 512) << 18;  // 256 or 512 MiB
    float *x = alloc_or_die(n * sizeof *x);
    fill_random(x, n, 1);
    struct read_ctx rc = {.x = x, .n = n};
    const struct timing t = time_runs(run_read, &rc, o);
    const double bytes = (double)(n / (size_t)o->threads / 32 * 32 * (size_t)o->threads) * 4.0;
    pk.gbps = bytes / t.best / 1e9;
    report(o, "peak", "read-bw", o->quick ? "256 MiB" : "512 MiB", t, bytes / 1e9, "GB/s", pk.gbps,
           "best");
    free(x);
    return pk;
}

// ---------------------------------------------------------------------------------------------
// Matmul
// ---------------------------------------------------------------------------------------------

// At M = 1 the weights are read once per call, as in decode. To measure them coming from DRAM
// and not from a warm L3, each call uses the next of `copies` weight matrices totalling this:
#define DECODE_WEIGHT_BYTES ((size_t)256 << 20)

enum matmul_method {
    MATMUL_REF, MATMUL_AVX2, MATMUL_AVX512, MATMUL_BF16,
    MATMUL_Q8_AVX2, MATMUL_Q4_AVX2, MATMUL_Q8_VNNI, MATMUL_Q4_VNNI, MATMUL_METHODS
};

static const char *const matmul_names[MATMUL_METHODS] = {
    "matmul-ref", "matmul-avx2", "matmul-avx512", "matmul-bf16",
    "matmul-q8_0-avx2", "matmul-q4_0-avx2", "matmul-q8_0-vnni", "matmul-q4_0-vnni"};

struct matmul_ctx {
    enum matmul_method method;
    const float *x;
    const char *w;  // `copies` weight matrices of w_bytes each, in the method's layout
    float *y;
    size_t M, N, K, w_bytes, copies, next;
};

static const void *next_weights(struct matmul_ctx *c) {
    const char *w = c->w + c->next * c->w_bytes;
    c->next = (c->next + 1) % c->copies;
    return w;
}

static void run_matmul(void *p) {
    struct matmul_ctx *c = p;
    const void *w = next_weights(c);
    switch (c->method) {
    case MATMUL_REF: ck_matmul_f32_ref(c->x, w, c->y, c->M, c->N, c->K); break;
    case MATMUL_AVX2: ck_matmul_f32_avx2(c->x, w, c->y, c->M, c->N, c->K); break;
    case MATMUL_AVX512: ck_matmul_f32_avx512(c->x, w, c->y, c->M, c->N, c->K); break;
    case MATMUL_BF16: ck_matmul_bf16_avx512(c->x, w, c->y, c->M, c->N, c->K); break;
    case MATMUL_Q8_AVX2: ck_matmul_q8_0_avx2(c->x, w, c->y, c->M, c->N, c->K); break;
    case MATMUL_Q4_AVX2: ck_matmul_q4_0_avx2(c->x, w, c->y, c->M, c->N, c->K); break;
    case MATMUL_Q8_VNNI: ck_matmul_q8_0_avx512(c->x, w, c->y, c->M, c->N, c->K); break;
    default: ck_matmul_q4_0_avx512(c->x, w, c->y, c->M, c->N, c->K); break;
    }
}

static int is_q4(enum matmul_method m) { return m == MATMUL_Q4_AVX2 || m == MATMUL_Q4_VNNI; }
static int is_quantized(enum matmul_method m) { return m >= MATMUL_Q8_AVX2; }

// Bytes of W in the method's layout, and the peak (and its name) its GFLOP/s are measured
// against; 0 bytes when the CPU lacks the instructions.
static size_t matmul_weight_bytes(enum matmul_method m, size_t N, size_t K) {
    switch (m) {
    case MATMUL_REF: return N * K * sizeof(float);
    case MATMUL_AVX2:
        return ck_cpu_has_avx2_fma() ? ck_pack_f32_avx2_size(N, K) * sizeof(float) : 0;
    case MATMUL_AVX512:
        return ck_cpu_has_avx512() ? ck_pack_f32_avx512_size(N, K) * sizeof(float) : 0;
    case MATMUL_BF16:
        return ck_cpu_has_avx512_bf16() ? ck_pack_bf16_size(N, K) * sizeof(uint16_t) : 0;
    case MATMUL_Q8_AVX2: return ck_cpu_has_avx2_fma() ? ck_pack_q8_0_size(N, K) : 0;
    case MATMUL_Q4_AVX2: return ck_cpu_has_avx2_fma() ? ck_pack_q4_0_size(N, K) : 0;
    case MATMUL_Q8_VNNI: return ck_cpu_has_avx512_vnni() ? ck_pack_q8_0_size(N, K) : 0;
    default: return ck_cpu_has_avx512_vnni() ? ck_pack_q4_0_size(N, K) : 0;
    }
}

static double matmul_peak(enum matmul_method m, const struct peaks *pk, const char **of) {
    switch (m) {
    case MATMUL_AVX512: *of = "avx512-peak"; return pk->avx512_gflops;
    case MATMUL_BF16: *of = "bf16dp-peak"; return pk->bf16_gflops;
    // int8 rows, AVX2 included, against what this machine does in int8: the vpdpbusd peak.
    case MATMUL_Q8_AVX2: case MATMUL_Q4_AVX2: case MATMUL_Q8_VNNI: case MATMUL_Q4_VNNI:
        *of = "dpbusd-peak"; return pk->vnni_gops;
    default: *of = "fma-peak"; return pk->gflops;
    }
}

// W in the method's layout, once per copy: packed by the kernel's own packing (bfloat16 weights
// are the float ones rounded, as a checkpoint would hold them).
static void prepare_weights(enum matmul_method m, const float *src, char *w, size_t w_bytes,
                            size_t copies, size_t N, size_t K) {
    uint16_t *bf = NULL;
    unsigned char *blocks = NULL;
    if (m == MATMUL_BF16) {
        bf = alloc_or_die(N * K * sizeof *bf);
        ck_convert_f32_to_bf16(src, bf, N * K);
    }
    if (is_quantized(m)) {
        blocks = alloc_or_die(N * K / CK_QK * CK_Q8_0_BLOCK_BYTES);
        if (is_q4(m)) ck_quantize_q4_0(src, blocks, N, K);
        else ck_quantize_q8_0(src, blocks, N, K);
    }
    for (size_t i = 0; i < copies; i++) {
        char *dst = w + i * w_bytes;
        switch (m) {
        case MATMUL_REF: memcpy(dst, src, w_bytes); break;
        case MATMUL_AVX2: ck_pack_f32_avx2(src, (float *)dst, N, K); break;
        case MATMUL_AVX512: ck_pack_f32_avx512(src, (float *)dst, N, K); break;
        case MATMUL_BF16: ck_pack_bf16(bf, (uint16_t *)dst, N, K); break;
        default:
            if (is_q4(m)) ck_pack_q4_0(blocks, dst, N, K);
            else ck_pack_q8_0(blocks, dst, N, K);
            break;
        }
    }
    free(bf);
    free(blocks);
}

// The reference's plain loops take seconds per call above M = 512; it is measured up to there.
#define REF_MAX_M 512

static void bench_matmul(const struct options *o, const struct peaks *pk, size_t M, size_t K,
                         size_t N) {
    float *x = alloc_or_die(M * K * sizeof *x), *y = alloc_or_die(M * N * sizeof *y);
    float *src = alloc_or_die(N * K * sizeof *src);
    fill_random(x, M * K, 2);
    fill_random(src, N * K, 3);
    char shape[64];
    snprintf(shape, sizeof shape, "M=%zu K=%zu N=%zu", M, K, N);

    for (int m = 0; m < MATMUL_METHODS; m++) {
        const enum matmul_method method = (enum matmul_method)m;
        const size_t bytes = matmul_weight_bytes(method, N, K);
        if (bytes == 0 || (method == MATMUL_REF && M > REF_MAX_M)) continue;
        const size_t copies = M == 1 ? (DECODE_WEIGHT_BYTES + bytes - 1) / bytes : 1;
        char *w = alloc_or_die(copies * bytes);
        prepare_weights(method, src, w, bytes, copies, N, K);
        struct matmul_ctx c = {.method = method, .x = x, .w = w, .y = y, .M = M, .N = N, .K = K,
                               .w_bytes = bytes, .copies = copies};
        const struct timing t = time_runs(run_matmul, &c, o);
        const char *of;
        const double peak = matmul_peak(method, pk, &of);
        if (M == 1)
            report(o, "matmul", matmul_names[m], shape, t, (double)bytes / 1e9, "GB/s", pk->gbps,
                   "read-bw");
        else
            report(o, "matmul", matmul_names[m], shape, t, 2.0 * (double)(M * N * K) / 1e9,
                   is_quantized(method) ? "GOP/s" : "GFLOP/s", peak, of);
        free(w);
    }
    free(src);
    free(x);
    free(y);
}

// ---------------------------------------------------------------------------------------------
// Attention
// ---------------------------------------------------------------------------------------------

enum { HQ = 16, HKV = 8, HEAD_DIM = 128 };

enum attention_method {
    STANDARD_REF, STANDARD_AVX2, STREAMING_REF, STREAMING_AVX2, STREAMING_AVX512, ATTENTION_METHODS
};

static const char *const attention_names[ATTENTION_METHODS] = {
    "standard-ref", "standard-avx2", "streaming-ref", "streaming-avx2", "streaming-avx512"};

// The plain C references take minutes per call above this many tokens; they are measured up to
// there (the tests check them; here they only show what the SIMD kernels gain).
#define ATTENTION_REF_MAX_S 512

struct attention_ctx {
    enum attention_method method;
    const float *q, *k, *v;
    float *out, *scratch;
    size_t T, pos0, cap, q_block, kv_block;
    int slots;
};

static void run_attention(void *p) {
    const struct attention_ctx *c = p;
    const float scale = 1.0f / sqrtf((float)HEAD_DIM);
    switch (c->method) {
    case STANDARD_REF:
    case STANDARD_AVX2:
        (c->method == STANDARD_REF ? ck_attention_standard_f32_ref
                                   : ck_attention_standard_f32_avx2)(
            c->q, c->k, c->v, c->out, c->T, c->pos0, HQ, HKV, HEAD_DIM, c->cap, scale, c->scratch,
            c->slots);
        break;
    default:
        (c->method == STREAMING_REF    ? ck_attention_streaming_f32_ref
         : c->method == STREAMING_AVX2 ? ck_attention_streaming_f32_avx2
                                       : ck_attention_streaming_f32_avx512)(
            c->q, c->k, c->v, c->out, c->T, c->pos0, HQ, HKV, HEAD_DIM, c->cap, scale, c->q_block,
            c->kv_block, c->scratch, c->slots);
        break;
    }
}

static int attention_supported(enum attention_method m) {
    if (m == STANDARD_AVX2 || m == STREAMING_AVX2) return ck_cpu_has_avx2_fma();
    if (m == STREAMING_AVX512) return ck_cpu_has_avx512();
    return 1;
}

// Prefill (T = S, pos0 = 0) and one decode step (T = 1, pos0 = S - 1) over an S-token cache, at
// the options' thread count. FLOPs count the causal QK^T and PV products: 4 Hq D per (query,
// visible key) pair, 4 D Hq S (S + 1) / 2 for a prefill. Each streaming line is followed by its
// speed-up over the standard AVX2 attention of the same case.
static void bench_attention(const struct options *o, const struct peaks *pk, size_t S) {
    float *q = alloc_or_die(S * HQ * HEAD_DIM * sizeof *q);
    float *k = alloc_or_die(HKV * S * HEAD_DIM * sizeof *k);
    float *v = alloc_or_die(HKV * S * HEAD_DIM * sizeof *v);
    float *out = alloc_or_die(S * HQ * HEAD_DIM * sizeof *out);
    fill_random(q, S * HQ * HEAD_DIM, 4);
    fill_random(k, HKV * S * HEAD_DIM, 5);
    fill_random(v, HKV * S * HEAD_DIM, 6);
    const int slots = o->threads;
    const size_t standard_floats = ck_attention_standard_scratch(S, 0, slots);
    const size_t streaming_floats =
        ck_attention_streaming_scratch(o->q_block, o->kv_block, HEAD_DIM, slots);
    const size_t scratch_floats =
        standard_floats > streaming_floats ? standard_floats : streaming_floats;
    float *scratch = alloc_or_die(scratch_floats * sizeof *scratch);
    fill_random(scratch, scratch_floats, 7);

    for (int decode = 0; decode <= 1; decode++) {
        const size_t T = decode ? 1 : S, pos0 = decode ? S - 1 : 0;
        const double pairs = (double)T * (double)pos0 + (double)T * (double)(T + 1) / 2.0;
        const double flops = 4.0 * HQ * HEAD_DIM * pairs;
        char shape[64];
        snprintf(shape, sizeof shape, "%s S=%zu", decode ? "decode" : "prefill", S);
        double standard_ms = 0;
        for (int m = 0; m < ATTENTION_METHODS; m++) {
            const enum attention_method method = (enum attention_method)m;
            if (!attention_supported(method)) continue;
            if ((method == STANDARD_REF || method == STREAMING_REF) && S > ATTENTION_REF_MAX_S &&
                !decode)
                continue;
            struct attention_ctx c = {
                .method = method, .q = decode ? q + (S - 1) * HQ * HEAD_DIM : q, .k = k, .v = v,
                .out = out, .scratch = scratch, .T = T, .pos0 = pos0, .cap = S,
                .q_block = o->q_block, .kv_block = o->kv_block, .slots = slots};
            const struct timing t = time_runs(run_attention, &c, o);
            const double peak = method == STREAMING_AVX512 ? pk->avx512_gflops : pk->gflops;
            report(o, "attention", attention_names[m], shape, t, flops / 1e9, "GFLOP/s", peak,
                   method == STREAMING_AVX512 ? "avx512-peak" : "fma-peak");
            if (method == STANDARD_AVX2) standard_ms = t.median * 1e3;
            if ((method == STREAMING_AVX2 || method == STREAMING_AVX512) && standard_ms > 0) {
                if (o->csv_out)
                    fprintf(o->csv_out, "speedup,%s/standard-avx2,%s,%d,,,%.2f,,x,,\n",
                            attention_names[m], shape, o->threads, standard_ms / (t.median * 1e3));
                if (!o->csv)
                    printf("%-9s %-15s %-18s threads=%d  %.2fx faster than standard-avx2\n",
                           "speedup", attention_names[m], shape, o->threads,
                           standard_ms / (t.median * 1e3));
            }
        }
    }
    free(q);
    free(k);
    free(v);
    free(out);
    free(scratch);
}

// Every attention case at every sequence length, at the options' thread count and, when that
// is more than one, again on one thread, against the peaks measured on one thread.
static void bench_attention_all(const struct options *o, const struct peaks *pk) {
    static const size_t seq[] = {128, 512, 1024, 2048, 4096, 8192};
    for (size_t i = 0; i < sizeof seq / sizeof *seq; i++) bench_attention(o, pk, seq[i]);
    if (o->threads == 1) return;
    struct options one = *o;
    one.threads = 1;
    ck_set_num_threads(1);
    const struct peaks pk1 = probe_machine(&one);
    for (size_t i = 0; i < sizeof seq / sizeof *seq; i++) bench_attention(&one, &pk1, seq[i]);
    ck_set_num_threads(o->threads);
}

// ---------------------------------------------------------------------------------------------

static void usage(const char *argv0) {
    fprintf(stderr,
            "usage: %s [--threads N] [--quick] [--csv | --csv-file PATH] [--attention | --matmul] "
            "[--q-block N] [--kv-block N]\n",
            argv0);
    exit(2);
}

int main(int argc, char **argv) {
    struct options o = {.threads = ck_get_max_threads(), .q_block = 128, .kv_block = 128};
    const char *csv_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) o.quick = 1;
        else if (!strcmp(argv[i], "--csv")) o.csv = 1;
        else if (!strcmp(argv[i], "--csv-file") && i + 1 < argc) csv_path = argv[++i];
        else if (!strcmp(argv[i], "--attention")) o.attention_only = 1;
        else if (!strcmp(argv[i], "--matmul")) o.matmul_only = 1;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) o.threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--q-block") && i + 1 < argc) o.q_block = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--kv-block") && i + 1 < argc)
            o.kv_block = (size_t)atol(argv[++i]);
        else usage(argv[0]);
    }
    if (o.threads < 1 || o.q_block < 1 || o.kv_block < 1 || (o.csv && csv_path)) usage(argv[0]);
    o.csv_out = o.csv ? stdout : NULL;
    if (csv_path && !(o.csv_out = fopen(csv_path, "w"))) {
        fprintf(stderr, "bench_kernels: cannot write %s\n", csv_path);
        return 1;
    }
    ck_set_num_threads(o.threads);
    if (!o.csv) {
        printf("# bench_kernels: threads=%d (parallel region starts %d), avx2+fma=%d, "
               "avx512=%d, avx512-bf16=%d, %s, streaming q_block=%zu kv_block=%zu\n",
               o.threads, ck_parallel_region_threads(), ck_cpu_has_avx2_fma(),
               ck_cpu_has_avx512(), ck_cpu_has_avx512_bf16(), o.quick ? "quick" : "full",
               o.q_block, o.kv_block);
    }
    report_header(&o);
    const struct peaks pk = probe_machine(&o);

    // (K, N): q_proj, k/v_proj, o_proj, gate/up_proj, down_proj, then the fused GEMMs the model
    // calls: q/k/v as one (N = 2048 + 1024 + 1024) and gate/up as one (N = 3072 + 3072).
    static const size_t kn[][2] = {{1024, 2048}, {1024, 1024}, {2048, 1024}, {1024, 3072},
                                   {3072, 1024}, {1024, 4096}, {1024, 6144}};
    static const size_t ms[] = {1, 32, 128, 512, 1024};
    for (size_t i = 0; i < sizeof ms / sizeof *ms && !o.attention_only; i++)
        for (size_t j = 0; j < sizeof kn / sizeof *kn; j++)
            bench_matmul(&o, &pk, ms[i], kn[j][0], kn[j][1]);

    if (!o.matmul_only) bench_attention_all(&o, &pk);
    if (o.csv_out && o.csv_out != stdout) fclose(o.csv_out);
    return 0;
}
