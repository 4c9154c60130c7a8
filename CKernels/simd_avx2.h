// simd_avx2.h — helpers shared between the AVX2 kernel files; not part of the public ABI.
#ifndef CKERNELS_SIMD_AVX2_H
#define CKERNELS_SIMD_AVX2_H

#include <stddef.h>

// The step shared by the row softmax (activation.c) and the online softmax of streaming attention:
// x[i] <- exp(x[i] - shift) in place; returns the sum of the new x.   x: (n)
float ck_exp_shift_sum_f32_avx2(float *x, size_t n, float shift);

#endif
