// scratch_internal.h — private to CKernels: buffers a kernel needs beyond its caller's, held per
// calling thread.
#ifndef CK_SCRATCH_INTERNAL_H
#define CK_SCRATCH_INTERNAL_H

#include <stddef.h>

enum ck_scratch_slot {
    CK_SCRATCH_GEMM_X,   // gemm.c: x packed once for every thread
    CK_SCRATCH_ATTN_V,   // attention.c: a KV head's bf16 values in key pairs
    CK_SCRATCH_SLOTS
};

// The calling thread's buffer `slot` of at least `bytes`, 64-byte aligned, or NULL if it cannot
// be had. It grows to the largest size the thread has asked for, is kept between calls (one
// allocation per thread and slot, not one per call) and is freed when the thread exits. Its
// contents do not survive a call that grows it.
void *ck_thread_scratch(enum ck_scratch_slot slot, size_t bytes);

#endif  // CK_SCRATCH_INTERNAL_H
