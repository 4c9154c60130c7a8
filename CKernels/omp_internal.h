// omp_internal.h — private to CKernels: loops that run under an OpenMP pragma only when the work
// is worth a parallel region.
#ifndef CK_OMP_INTERNAL_H
#define CK_OMP_INTERNAL_H

// CK_PARALLEL_IF(parallel, "omp parallel for ...", loop): the loop under the pragma if `parallel`,
// else plainly, without entering any region. An `if` clause on the pragma would also run it
// serially, but LLVM's libomp still sets up a serialized region for it, about 0.4 us a call,
// and decode calls these kernels on one row several times per layer and token (when the bf16
// KV cache converted each head's row of 128 in its own call, that was ten times the work).
#define CK_PARALLEL_IF(parallel, pragma, ...) \
    do {                                      \
        if (parallel) {                       \
            _Pragma(pragma) __VA_ARGS__       \
        } else {                              \
            __VA_ARGS__                       \
        }                                     \
    } while (0)

#endif  // CK_OMP_INTERNAL_H
