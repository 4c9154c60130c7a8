// kv_cache.c — new tokens' keys and values into the KV cache (ckernels.h): rows of D elements
// from the projection's layout (token-major) to the cache's (head-major), as f32 or rounded to
// bf16.
#include "bf16_scalar.h"
#include "ckernels.h"
#include "omp_internal.h"

#include <string.h>

// Below this many elements (a decode step's few rows) one thread does it: a parallel region
// costs more than the copy.
#define PARALLEL_MIN 65536

void ck_kv_store_f32(const float *k, size_t k_stride, const float *v, size_t v_stride, size_t T,
                     size_t slots, size_t D, size_t cap, size_t start, float *k_cache,
                     float *v_cache) {
    CK_PARALLEL_IF(T * slots * D >= PARALLEL_MIN, "omp parallel for collapse(2) schedule(static)",
        for (size_t s = 0; s < slots; s++)
            for (size_t t = 0; t < T; t++) {
                const size_t dst = (s * cap + start + t) * D;
                memcpy(k_cache + dst, k + t * k_stride + s * D, D * sizeof *k);
                memcpy(v_cache + dst, v + t * v_stride + s * D, D * sizeof *v);
            });
}

void ck_kv_store_bf16(const float *k, size_t k_stride, const float *v, size_t v_stride, size_t T,
                      size_t slots, size_t D, size_t cap, size_t start, uint16_t *k_cache,
                      uint16_t *v_cache) {
    CK_PARALLEL_IF(T * slots * D >= PARALLEL_MIN, "omp parallel for collapse(2) schedule(static)",
        for (size_t s = 0; s < slots; s++)
            for (size_t t = 0; t < T; t++) {
                const size_t dst = (s * cap + start + t) * D;
                const float *kt = k + t * k_stride + s * D, *vt = v + t * v_stride + s * D;
                for (size_t d = 0; d < D; d++) {
                    k_cache[dst + d] = ck_bf16_from_f32(kt[d]);
                    v_cache[dst + d] = ck_bf16_from_f32(vt[d]);
                }
            });
}
