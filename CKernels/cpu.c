// cpu.c — runtime CPU-feature detection, the OpenMP thread controls and returning freed heap memory.
#define _GNU_SOURCE  // sched_getaffinity, CPU_COUNT
#include "ckernels.h"

#include <sched.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <cpuid.h>
#include <omp.h>

// XCR0 says which register states the OS saves on a context switch; a CPUID bit alone is not
// enough to use YMM/ZMM registers.
static uint64_t read_xcr0(void) {
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

static int os_saves_ymm(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!(c & bit_OSXSAVE)) return 0;
    return (read_xcr0() & 0x6) == 0x6;
}

static int os_saves_zmm(void) {
    return os_saves_ymm() && (read_xcr0() & 0xe6) == 0xe6;
}

int ck_cpu_has_avx2_fma(void) {
    unsigned a, b, c, d;
    if (!os_saves_ymm()) return 0;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_FMA)) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b & bit_AVX2) != 0;
}

int ck_cpu_has_avx512(void) {
    unsigned a, b, c, d;
    if (!os_saves_zmm() || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b & bit_AVX512F) && (b & bit_AVX512BW) && (b & bit_AVX512VL);
}

// The bf16 kernels also use AVX512DQ (the attention tile's vreduceps); every CPU with
// AVX512_BF16 has it, but a virtual machine may hide features one by one, so both are checked.
int ck_cpu_has_avx512_bf16(void) {
    unsigned a, b, c, d;
    if (!ck_cpu_has_avx512() || !__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(b & bit_AVX512DQ))
        return 0;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return 0;
    return (a & bit_AVX512BF16) != 0;
}

void ck_set_num_threads(int n) { omp_set_num_threads(n < 1 ? 1 : n); }

int ck_affinity_cores(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
    return CPU_COUNT(&set);
}

int ck_get_max_threads(void) { return omp_get_max_threads(); }

int ck_parallel_region_threads(void) {
    int n = 0;
#pragma omp parallel
    {
#pragma omp single
        n = omp_get_num_threads();
    }
    return n;
}

int ck_cpu_has_avx512_vnni(void) {
    unsigned a, b, c, d;
    if (!ck_cpu_has_avx512() || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (c & bit_AVX512VNNI) != 0;
}

void ck_release_free_memory(void) {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}
