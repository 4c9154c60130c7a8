// ck_probe.h — machine probes: the floating-point peak a core can reach with each ISA's
// instructions, the yardstick for the kernels' "percent of peak".
#ifndef CK_PROBE_H
#define CK_PROBE_H

#ifdef __cplusplus
extern "C" {
#endif

// Each runs `iters` rounds of 12 independent chains of one vector instruction on the calling
// thread (more chains than latency x pipes, so the pipes stay full) and returns a value derived
// from the chains so the work cannot be dropped. Flops per round: CK_PROBE_*_FLOPS_PER_ITER.
// The caller checks the CPU features (ck_cpu_has_*) first, and times the call.
#define CK_PROBE_FMA_AVX2_FLOPS_PER_ITER 192.0     // 12 x 8 lanes x 2 (vfmadd231ps ymm)
#define CK_PROBE_FMA_AVX512_FLOPS_PER_ITER 384.0   // 12 x 16 lanes x 2 (vfmadd231ps zmm)
#define CK_PROBE_DPBF16_AVX512_FLOPS_PER_ITER 768.0 // 12 x 16 lanes x 2 products x 2 (vdpbf16ps)
float ck_probe_fma_avx2(long iters);
float ck_probe_fma_avx512(long iters);
float ck_probe_dpbf16_avx512(long iters);
// int8 operations (multiply, add) rather than flops; needs ck_cpu_has_avx512_vnni().
#define CK_PROBE_DPBUSD_AVX512_OPS_PER_ITER 1536.0 // 12 x 16 lanes x 4 products x 2 (vpdpbusd)
float ck_probe_dpbusd_avx512(long iters);
// 8 vpdpbusd chains with the q8_0 tile's float epilogue of one output vector per round (one
// vcvtdq2ps, two FMAs): its int8 operations per round, timed against ck_probe_dpbusd_avx512, give
// the share of the vpdpbusd peak that mix can reach.
#define CK_PROBE_DPBUSD_Q8_MIX_OPS_PER_ITER 1024.0 // 8 x 16 lanes x 4 products x 2
float ck_probe_dpbusd_q8_mix_avx512(long iters);

#ifdef __cplusplus
}
#endif

#endif  // CK_PROBE_H
