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

// Rows (slot s, token t) of both caches, elements float (bf16 = 0) or bfloat16 (bf16 = 1).
static inline void store(const float *k, size_t k_stride, const float *v, size_t v_stride,
                         size_t T, size_t slots, size_t D, size_t cap, size_t start,
                         void *k_cache, void *v_cache, const int bf16) {
    CK_PARALLEL_IF(T * slots * D >= PARALLEL_MIN, "omp parallel for collapse(2) schedule(static)",
        for (size_t s = 0; s < slots; s++)
            for (size_t t = 0; t < T; t++) {
                const size_t dst = (s * cap + start + t) * D;
                const float *kt = k + t * k_stride + s * D, *vt = v + t * v_stride + s * D;
                if (bf16) {
                    uint16_t *kc = (uint16_t *)k_cache + dst, *vc = (uint16_t *)v_cache + dst;
                    for (size_t d = 0; d < D; d++) {
                        kc[d] = ck_bf16_from_f32(kt[d]);
                        vc[d] = ck_bf16_from_f32(vt[d]);
                    }
                } else {
                    memcpy((float *)k_cache + dst, kt, D * sizeof *kt);
                    memcpy((float *)v_cache + dst, vt, D * sizeof *vt);
                }
            });
}

void ck_kv_store_f32(const float *k, size_t k_stride, const float *v, size_t v_stride, size_t T,
                     size_t slots, size_t D, size_t cap, size_t start, float *k_cache,
                     float *v_cache) {
    store(k, k_stride, v, v_stride, T, slots, D, cap, start, k_cache, v_cache, 0);
}

void ck_kv_store_bf16(const float *k, size_t k_stride, const float *v, size_t v_stride, size_t T,
                      size_t slots, size_t D, size_t cap, size_t start, uint16_t *k_cache,
                      uint16_t *v_cache) {
    store(k, k_stride, v, v_stride, T, slots, D, cap, start, k_cache, v_cache, 1);
}
