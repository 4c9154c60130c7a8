// q8_ab.c — in-process A/B of two builds of the q8_0 VNNI GEMM (bench/gemm_ab/build.sh links them
// as A_* and B_*) over the Qwen3-0.6B prefill's GEMM sequence: qkv (4096 x 1024), o_proj
// (1024 x 2048), gate/up (6144 x 1024), down (1024 x 3072), for LAYERS layers of distinct weights
// (8 layers are 134 MiB, so weights come from DRAM as in the model). Before each call both threads
// rewrite x, as the model's producers (rmsnorm, attention, SwiGLU) leave it; NOPRODUCE=1 skips that.
// A pass runs every layer with A, then with B (the order alternating pass by pass); it prints both
// medians in GOP/s and the median of the per-pass time ratios A/B, and MISMATCH if the outputs of
// the first layer differ in any bit.
//   usage: q8_ab M LAYERS PAIRS [PROJECTION 0-3]
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <math.h>
#include <sys/mman.h>
#include "ckernels.h"
#define DECL(P) void P##_ck_matmul_q8_0_avx512(const float *x, const void *packed, float *y, size_t M, size_t N, size_t K); \
  void P##_ck_quantize_q8_0(const float *w, void *blocks, size_t N, size_t K); \
  void P##_ck_pack_q8_0(const void *blocks, void *packed, size_t N, size_t K); size_t P##_ck_pack_q8_0_size(size_t N, size_t K);
DECL(A) DECL(B)
typedef void fn(const float *, const void *, float *, size_t, size_t, size_t);
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmp(const void *a, const void *b) { double x = *(double *)a, y = *(double *)b; return x < y ? -1 : x > y; }
static const size_t NS[4] = {4096, 1024, 6144, 1024}, KS[4] = {1024, 2048, 1024, 3072};
static void *huge(size_t bytes) {
    bytes = (bytes + (2 << 20) - 1) / (2 << 20) * (2 << 20);
    void *p = aligned_alloc(2 << 20, bytes);
    madvise(p, bytes, MADV_HUGEPAGE);
    return p;
}
int main(int argc, char **argv) {
    size_t M = argc > 1 ? atoi(argv[1]) : 128;
    int L = argc > 2 ? atoi(argv[2]) : 8, pairs = argc > 3 ? atoi(argv[3]) : 15;
    int only = argc > 4 ? atoi(argv[4]) : -1;  // one projection only
    void *w[64][4], *wb[64][4];
    srand(1);
    for (int l = 0; l < L; l++)
        for (int s = 0; s < 4; s++) {
            size_t N = NS[s], K = KS[s];
            float *f = malloc(N * K * 4);
            for (size_t i = 0; i < N * K; i++) f[i] = (rand() / (float)RAND_MAX - 0.5f) * 0.1f;
            void *blk = malloc(N * K / 32 * 34);
            A_ck_quantize_q8_0(f, blk, N, K);
            w[l][s] = aligned_alloc(2 << 20, (A_ck_pack_q8_0_size(N, K) + (2 << 20) - 1) / (2 << 20) * (2 << 20));
            madvise(w[l][s], (A_ck_pack_q8_0_size(N, K) + (2 << 20) - 1) / (2 << 20) * (2 << 20), MADV_HUGEPAGE);
            A_ck_pack_q8_0(blk, w[l][s], N, K);
            B_ck_quantize_q8_0(f, blk, N, K);
            wb[l][s] = aligned_alloc(2 << 20, (B_ck_pack_q8_0_size(N, K) + (2 << 20) - 1) / (2 << 20) * (2 << 20));
            madvise(wb[l][s], (B_ck_pack_q8_0_size(N, K) + (2 << 20) - 1) / (2 << 20) * (2 << 20), MADV_HUGEPAGE);
            B_ck_pack_q8_0(blk, wb[l][s], N, K);
            free(f); free(blk);
        }
    float *x = huge(M * 3072 * 4), *ya = huge(M * 6144 * 4), *yb = huge(M * 6144 * 4);
    float *x0 = huge(M * 3072 * 4);
    for (size_t i = 0; i < M * 3072; i++) x0[i] = x[i] = sinf(i * 0.37f) * 2.0f;
    const int produce = getenv("NOPRODUCE") == NULL;
    // correctness: identical outputs
    for (int s = 0; s < 4; s++) {
        A_ck_matmul_q8_0_avx512(x, w[0][s], ya, M, NS[s], KS[s]);
        B_ck_matmul_q8_0_avx512(x, wb[0][s], yb, M, NS[s], KS[s]);
        if (memcmp(ya, yb, M * NS[s] * 4)) { printf("MISMATCH shape %d\n", s); }
    }
    fn *f[2] = {A_ck_matmul_q8_0_avx512, B_ck_matmul_q8_0_avx512};
    double *ra = malloc(pairs * sizeof(double)), ta[2][256];
    for (int p = -1; p < pairs; p++) {
        double t[2];
        for (int v0 = 0; v0 < 2; v0++) {
            int v = (p & 1) ? 1 - v0 : v0;
            t[v] = 0;
            for (int l = 0; l < L; l++)
                for (int s = 0; s < 4; s++)
                    if (only < 0 || only == s) {
                        if (produce) {
                            const size_t n = M * KS[s];
#pragma omp parallel for schedule(static)
                            for (size_t i = 0; i < n; i++) x[i] = x0[i];
                        }
                        double t0 = now();
                        f[v](x, v ? wb[l][s] : w[l][s], v ? yb : ya, M, NS[s], KS[s]);
                        t[v] += now() - t0;
                    }
        }
        if (p < 0) continue;
        ra[p] = t[0] / t[1]; ta[0][p] = t[0]; ta[1][p] = t[1];
    }
    qsort(ra, pairs, sizeof(double), cmp); qsort(ta[0], pairs, sizeof(double), cmp); qsort(ta[1], pairs, sizeof(double), cmp);
    double ops = 0;
    for (int s = 0; s < 4; s++) if (only < 0 || only == s) ops += 2.0 * M * NS[s] * KS[s] * L;
    printf("M=%zu L=%d only=%d: A %.1f GOP/s  B %.1f GOP/s  A/B time ratio median %.4f (min %.4f max %.4f) -> B is %.1f%% faster\n",
           M, L, only, ops / ta[0][pairs / 2] / 1e9, ops / ta[1][pairs / 2] / 1e9, ra[pairs / 2], ra[0], ra[pairs - 1], (ra[pairs / 2] - 1) * 100);
    return 0;
}
