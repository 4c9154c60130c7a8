// bf16_scalar.h — private to CKernels: one bfloat16 or float16 value to and from float32, the
// rules every scalar path shares (conversion at load, the KV cache, attention's and the GEMMs'
// references, the quantized blocks' float16 scales).
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

// As vcvtne2ps2bf16 rounds (the AVX512_BF16 GEMM's x): the same, except that zero and denormal
// inputs become a zero of their sign.
static inline uint16_t ck_bf16_from_f32_ftz(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u);
    return ck_bf16_from_f32(f);
}

// One IEEE binary16 value, exactly. Normal numbers re-bias the exponent (15 -> 127); subnormals
// are mantissa * 2^-24, exact in float32; exponent 31 is inf or NaN (the payload is kept, so a
// NaN stays NaN).
static inline float ck_f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    const uint32_t mant = h & 0x3ffu;
    float f;
    if (exp == 0) {
        f = (float)mant * 0x1p-24f;
        return sign ? -f : f;
    }
    const uint32_t u = exp == 0x1fu ? sign | 0x7f800000u | (mant << 13)
                                    : sign | ((exp + 112u) << 23) | (mant << 13);
    memcpy(&f, &u, sizeof f);
    return f;
}

#endif
