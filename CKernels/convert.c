// convert.c — bfloat16 / half precision <-> float32, used once at load (plain C: the compiler
// vectorises the bit manipulation, and load time is bound by reading the checkpoint).
#include "bf16_scalar.h"
#include "ckernels.h"
#include "omp_internal.h"

#include <string.h>

// Below this many elements a parallel region costs more than it saves (omp_internal.h).
#define PARALLEL_MIN 65536

static inline uint32_t bits_from_f32(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

// src, dst: (n). bfloat16 is the upper half of a float32, so widening is exact.
void ck_convert_bf16_to_f32(const uint16_t *src, float *dst, size_t n) {
    CK_PARALLEL_IF(n >= PARALLEL_MIN, "omp parallel for schedule(static)",
                   for (size_t i = 0; i < n; i++) dst[i] = ck_f32_from_bf16(src[i]););
}

// src, dst: (n)
void ck_convert_f16_to_f32(const uint16_t *src, float *dst, size_t n) {
    CK_PARALLEL_IF(n >= PARALLEL_MIN, "omp parallel for schedule(static)",
                   for (size_t i = 0; i < n; i++) dst[i] = ck_f16_to_f32(src[i]););
}

// src, dst: (n), rounded to nearest even (bf16_scalar.h)
void ck_convert_f32_to_bf16(const float *src, uint16_t *dst, size_t n) {
    CK_PARALLEL_IF(n >= PARALLEL_MIN, "omp parallel for schedule(static)",
                   for (size_t i = 0; i < n; i++) dst[i] = ck_bf16_from_f32(src[i]););
}

// x: (n). An exponent field of all ones is inf or NaN; comparing the bits avoids depending on
// floating-point compare semantics under any fast-math flags.
size_t ck_count_nonfinite_f32(const float *x, size_t n) {
    size_t count = 0;
    CK_PARALLEL_IF(n >= PARALLEL_MIN, "omp parallel for schedule(static) reduction(+ : count)",
        for (size_t i = 0; i < n; i++)
            count += (bits_from_f32(x[i]) & 0x7f800000u) == 0x7f800000u;);
    return count;
}
