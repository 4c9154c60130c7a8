// matmul_ref.c — the reference and baseline y = x · W^T: one float dot product per output over
// W in its checkpoint layout, no blocking, no intrinsics.
#include "ckernels.h"

// x: (M, K)  w: (N, K)  y: (M, N)
// OpenMP over the M x N outputs together, so decode (M = 1) still splits across threads. The
// serial float sum in k order is what the tests' error bounds assume (error <= K eps sum|x w|).
void ck_matmul_f32_ref(const float *x, const float *w, float *y, size_t M, size_t N, size_t K) {
#pragma omp parallel for collapse(2) schedule(static) if (M * N * K >= 65536)
    for (size_t m = 0; m < M; m++) {
        for (size_t n = 0; n < N; n++) {
            const float *xm = x + m * K;
            const float *wn = w + n * K;
            float acc = 0.0f;
            for (size_t k = 0; k < K; k++) acc += xm[k] * wn[k];
            y[m * N + n] = acc;
        }
    }
}
