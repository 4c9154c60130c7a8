// probe.c — machine probes: chains of one vector instruction that keep a core's FMA (or
// vdpbf16ps) pipes full, so the caller can time them and know the peak its kernels aim at.
// Used by bench_kernels and benchmark_mpi_attention (percent of peak).
#include "ck_probe.h"

#include <immintrin.h>

// 12 independent FMA chains (more than latency x pipes = 4 x 2) on values that stay
// finite; the empty asm keeps the compiler from folding or shortening the chains.
__attribute__((target("avx2,fma"))) float ck_probe_fma_avx2(long iters) {
    __m256 a0 = _mm256_set1_ps(0.1f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
           a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
    const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (long i = 0; i < iters; i++) {
        a0 = _mm256_fmadd_ps(a0, m, c);
        a1 = _mm256_fmadd_ps(a1, m, c);
        a2 = _mm256_fmadd_ps(a2, m, c);
        a3 = _mm256_fmadd_ps(a3, m, c);
        a4 = _mm256_fmadd_ps(a4, m, c);
        a5 = _mm256_fmadd_ps(a5, m, c);
        a6 = _mm256_fmadd_ps(a6, m, c);
        a7 = _mm256_fmadd_ps(a7, m, c);
        a8 = _mm256_fmadd_ps(a8, m, c);
        a9 = _mm256_fmadd_ps(a9, m, c);
        a10 = _mm256_fmadd_ps(a10, m, c);
        a11 = _mm256_fmadd_ps(a11, m, c);
        __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5),
                         "+x"(a6), "+x"(a7), "+x"(a8), "+x"(a9), "+x"(a10), "+x"(a11));
    }
    const __m256 s = _mm256_add_ps(
        _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
        _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)),
                      _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11))));
    return _mm256_cvtss_f32(s);
}

// The same with 512-bit FMAs. Zen 4 splits each into two 256-bit halves, so this measures
// whether AVX-512 has more FMA throughput than AVX2 on this CPU, not only wider registers.
__attribute__((target("avx512f"))) float ck_probe_fma_avx512(long iters) {
    __m512 a0 = _mm512_set1_ps(0.1f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
           a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
    const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (long i = 0; i < iters; i++) {
        a0 = _mm512_fmadd_ps(a0, m, c);
        a1 = _mm512_fmadd_ps(a1, m, c);
        a2 = _mm512_fmadd_ps(a2, m, c);
        a3 = _mm512_fmadd_ps(a3, m, c);
        a4 = _mm512_fmadd_ps(a4, m, c);
        a5 = _mm512_fmadd_ps(a5, m, c);
        a6 = _mm512_fmadd_ps(a6, m, c);
        a7 = _mm512_fmadd_ps(a7, m, c);
        a8 = _mm512_fmadd_ps(a8, m, c);
        a9 = _mm512_fmadd_ps(a9, m, c);
        a10 = _mm512_fmadd_ps(a10, m, c);
        a11 = _mm512_fmadd_ps(a11, m, c);
        __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5),
                         "+v"(a6), "+v"(a7), "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11));
    }
    const __m512 s = _mm512_add_ps(
        _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
        _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)),
                      _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11))));
    return _mm512_cvtss_f32(s);
}

// 12 chains of vdpbf16ps (latency 6 on Zen 4: 12 would cover even two issues per cycle), each
// adding 1 * 2^-24 twice per lane, so the accumulators stay finite and nothing is denormal.
__attribute__((target("avx512f,avx512bw,avx512bf16"))) float ck_probe_dpbf16_avx512(long iters) {
    __m512 a0 = _mm512_set1_ps(0.1f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
           a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
    const __m512bh m = (__m512bh)_mm512_set1_epi16(0x3f80), c = (__m512bh)_mm512_set1_epi16(0x3380);
    for (long i = 0; i < iters; i++) {
        a0 = _mm512_dpbf16_ps(a0, m, c);
        a1 = _mm512_dpbf16_ps(a1, m, c);
        a2 = _mm512_dpbf16_ps(a2, m, c);
        a3 = _mm512_dpbf16_ps(a3, m, c);
        a4 = _mm512_dpbf16_ps(a4, m, c);
        a5 = _mm512_dpbf16_ps(a5, m, c);
        a6 = _mm512_dpbf16_ps(a6, m, c);
        a7 = _mm512_dpbf16_ps(a7, m, c);
        a8 = _mm512_dpbf16_ps(a8, m, c);
        a9 = _mm512_dpbf16_ps(a9, m, c);
        a10 = _mm512_dpbf16_ps(a10, m, c);
        a11 = _mm512_dpbf16_ps(a11, m, c);
        __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5),
                         "+v"(a6), "+v"(a7), "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11));
    }
    const __m512 s = _mm512_add_ps(
        _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
        _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)),
                      _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11))));
    return _mm512_cvtss_f32(s);
}

// 12 chains of vpdpbusd: 16 lanes x 4 byte products, each a multiply and an add (128 int8
// operations per instruction), the peak the q8_0 / q4_0 GEMMs aim at. Integer sums cannot
// overflow into anything undefined (they wrap), and the asm keeps the chains.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) float ck_probe_dpbusd_avx512(long iters) {
    __m512i a0 = _mm512_set1_epi32(1), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
            a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
    const __m512i m = _mm512_set1_epi8(3), c = _mm512_set1_epi8(-2);
    for (long i = 0; i < iters; i++) {
        a0 = _mm512_dpbusd_epi32(a0, m, c);
        a1 = _mm512_dpbusd_epi32(a1, m, c);
        a2 = _mm512_dpbusd_epi32(a2, m, c);
        a3 = _mm512_dpbusd_epi32(a3, m, c);
        a4 = _mm512_dpbusd_epi32(a4, m, c);
        a5 = _mm512_dpbusd_epi32(a5, m, c);
        a6 = _mm512_dpbusd_epi32(a6, m, c);
        a7 = _mm512_dpbusd_epi32(a7, m, c);
        a8 = _mm512_dpbusd_epi32(a8, m, c);
        a9 = _mm512_dpbusd_epi32(a9, m, c);
        a10 = _mm512_dpbusd_epi32(a10, m, c);
        a11 = _mm512_dpbusd_epi32(a11, m, c);
        __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5),
                         "+v"(a6), "+v"(a7), "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11));
    }
    const __m512i s = _mm512_add_epi32(
        _mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3)),
        _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a4, a5), _mm512_add_epi32(a6, a7)),
                         _mm512_add_epi32(_mm512_add_epi32(a8, a9), _mm512_add_epi32(a10, a11))));
    return (float)_mm512_reduce_add_epi32(s);
}

// The q8_0 VNNI tile's instruction mix (gemm_q8_avx512.c): per K block and output vector, 8
// vpdpbusd and the block's float epilogue, one vcvtdq2ps, one vfmsub and one vfmadd, here on 8
// independent integer chains and the epilogue's own chain, so that only the pipes limit it. On
// Zen 4 the two FMAs take the slots of two vpdpbusd (the conversion runs beside them): the round
// costs 10 vpdpbusd slots for 8 vpdpbusd, which bounds that tile at 80% of
// ck_probe_dpbusd_avx512.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) float ck_probe_dpbusd_q8_mix_avx512(
    long iters) {
    __m512i a0 = _mm512_set1_epi32(1), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
            a7 = a0;
    __m512 f0 = _mm512_set1_ps(0.5f);
    const __m512i m = _mm512_set1_epi8(3), c = _mm512_set1_epi8(-2);
    const __m512 d = _mm512_set1_ps(0.999999f), e = _mm512_set1_ps(1e-7f);
    for (long i = 0; i < iters; i++) {
        a0 = _mm512_dpbusd_epi32(a0, m, c);
        a1 = _mm512_dpbusd_epi32(a1, m, c);
        a2 = _mm512_dpbusd_epi32(a2, m, c);
        a3 = _mm512_dpbusd_epi32(a3, m, c);
        a4 = _mm512_dpbusd_epi32(a4, m, c);
        a5 = _mm512_dpbusd_epi32(a5, m, c);
        a6 = _mm512_dpbusd_epi32(a6, m, c);
        a7 = _mm512_dpbusd_epi32(a7, m, c);
        // As the tile: (d S - e) from the int32 sum S, then acc += that x d_w.
        const __m512 t = _mm512_fmsub_ps(_mm512_cvtepi32_ps(a0), d, e);
        f0 = _mm512_fmadd_ps(t, d, f0);
        __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5),
                         "+v"(a6), "+v"(a7), "+v"(f0));
    }
    const __m512i s = _mm512_add_epi32(
        _mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3)),
        _mm512_add_epi32(_mm512_add_epi32(a4, a5), _mm512_add_epi32(a6, a7)));
    return (float)_mm512_reduce_add_epi32(s) + _mm512_reduce_add_ps(f0);
}
