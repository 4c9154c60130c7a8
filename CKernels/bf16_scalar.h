// bf16_scalar.h — private to CKernels: one bfloat16 value to and from float32, the rounding rule
// every scalar bf16 path shares (conversion at load, the KV cache, attention's references).
#ifndef CK_BF16_SCALAR_H
#define CK_BF16_SCALAR_H

#include <stdint.h>
#include <string.h>

// bfloat16 is the upper half of a float32, so widening is exact.
static inline float ck_f32_from_bf16(uint16_t h) {
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

// Round to nearest, ties to even: adding 0x7fff plus the lowest kept bit carries into the kept
// half exactly when the dropped half is above one half, or equal to it with the kept half odd.
// The carry may run into the exponent, which is the right rounding (up to inf on overflow).
// NaN is kept as a quiet NaN with its sign: truncating could turn a NaN whose payload is all in
// the low half into inf.
static inline uint16_t ck_bf16_from_f32(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

#endif
