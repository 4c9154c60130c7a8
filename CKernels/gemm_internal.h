// gemm_internal.h — private to CKernels: the micro-kernel descriptor the one blocked GEMM driver
// (gemm.c) is parameterised by, and the micro-kernels and packers each (weight type, ISA) file
// provides for its row of the table in gemm.c.
//
// Vocabulary. A "k unit" is what one lane of the micro-kernel consumes per step: one float for
// float32 weights, one pair of k for bfloat16 (vdpbf16ps), one block of 32 k for the quantized
// formats (whose unit also carries the block's scales, so its bytes are `unit_bytes`). Packed W: panels of NR columns,
// panel p holds units [0, ceil(K / k_unit)) x NR columns, each column's unit k_unit weights
// (packed[p][u][j][h] = W[p*NR + j][u*k_unit + h], zero past N and past K). Packed A: one
// micro-panel per row tile, unit u of row i at ap[u * ldp + i], ldp = MR inside a row block and
// ldp = mr (dense) for the single row tile of decode.
#ifndef CK_GEMM_INTERNAL_H
#define CK_GEMM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

static inline size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

// Register-tile rows of each micro-kernel: compile-time constants, since the micro-kernel keeps
// one accumulator row per register pair. The reasoning is with the block sizes in gemm.c.
#define CK_AVX2_MR 6
#define CK_AVX512_MR 14
#define CK_BF16_MR 14
#define CK_Q_MR 6

// The edge in m, at the micro-kernel's boundary: KERNEL(R, CS) is expanded with R, the row count
// of the tile (1..MR), and CS, the row stride of its micro-panel, both constants, so each gets
// its own register-only kernel. CS is MR in a row block (ldp = MR) and R in the dense
// micro-panel of a decode tile (ldp = mr). MR is 6 or 14.
#define CK_TILE_CASES(MR, mr, ldp, KERNEL) CK_TILE_CASES_(MR, mr, ldp, KERNEL)
#define CK_TILE_CASES_(MR, mr, ldp, KERNEL)                                                       \
    do {                                                                                          \
        if ((ldp) == MR) {                                                                        \
            switch (mr) { CK_ROW_CASES_##MR(KERNEL, CK_STRIDE_##MR) }                             \
        } else {                                                                                  \
            switch (mr) { CK_ROW_CASES_##MR(KERNEL, CK_STRIDE_DENSE) }                            \
        }                                                                                         \
    } while (0)
#define CK_STRIDE_6(R) 6
#define CK_STRIDE_14(R) 14
#define CK_STRIDE_DENSE(R) R
#define CK_ROW_CASES_14(KERNEL, CS)                                                               \
    case 14: KERNEL(14, CS(14)); break;                                                           \
    case 13: KERNEL(13, CS(13)); break;                                                           \
    case 12: KERNEL(12, CS(12)); break;                                                           \
    case 11: KERNEL(11, CS(11)); break;                                                           \
    case 10: KERNEL(10, CS(10)); break;                                                           \
    case 9: KERNEL(9, CS(9)); break;                                                              \
    case 8: KERNEL(8, CS(8)); break;                                                              \
    case 7: KERNEL(7, CS(7)); break;                                                              \
        CK_ROW_CASES_6(KERNEL, CS)
#define CK_ROW_CASES_6(KERNEL, CS)                                                                \
    case 6: KERNEL(6, CS(6)); break;                                                              \
    case 5: KERNEL(5, CS(5)); break;                                                              \
    case 4: KERNEL(4, CS(4)); break;                                                              \
    case 3: KERNEL(3, CS(3)); break;                                                              \
    case 2: KERNEL(2, CS(2)); break;                                                              \
    default: KERNEL(1, CS(1)); break;

struct ck_gemm_kernel;

// Rows [0, mr) x units [0, ku) of x (row stride lda floats; `valid` floats of each row exist
// from x on, the rest of a partial unit is zero) into a micro-panel with row stride ldp.
typedef void ck_gemm_pack_a_fn(const float *x, size_t lda, size_t mr, size_t ku, size_t valid,
                               void *ap, size_t ldp);

// w: (N, K) in the caller's element type  packed: the packed W layout above.
typedef void ck_gemm_pack_b_fn(const struct ck_gemm_kernel *kern, const void *w, void *packed,
                               size_t N, size_t K);

// C[0:mr, 0:nr] = (accumulate ? C : 0) + A[0:mr, 0:ku] · B[0:ku, 0:NR]
// a: packed micro-panel of row stride ldp (MR, or mr for a dense decode tile)
// b: (ku, NR) units of a packed micro-panel  c: (mr, ldc) rows of y
// pf: pf_lines 64-byte lines to prefetch into L2, one per unit step (this tile's share of the
// next B micro-panel), or NULL. The edges are handled here: mr (1..MR) is switched to a kernel
// with a constant row count, columns past nr are zero padding, computed but not stored.
typedef void ck_gemm_tile_fn(size_t mr, size_t ku, const void *a, size_t ldp, const void *b,
                             float *c, size_t ldc, size_t nr, int accumulate, const void *pf,
                             size_t pf_lines);

// One row of the table: a micro-kernel and everything the driver needs to block around it.
struct ck_gemm_kernel {
    size_t mr, nr;            // register tile: rows of x, columns of W
    size_t kc;                // K block, in k units
    size_t mc;                // row block, in rows (a multiple of mr)
    size_t k_unit;            // k per unit: 1 (float), 2 (bfloat16 pair)
    size_t w_bytes;           // bytes of one weight as packed (4 float, 2 bfloat16)
    size_t unit_bytes;        // bytes of one column's k unit when it is not k_unit * w_bytes:
                              // a quantized block with its scale (34 q8_0, 18 q4_0); else 0
    size_t a_unit_bytes;      // bytes of one packed unit of x
    size_t serial_below;      // M * N * K under which one thread does it all
    int share_x;              // threads splitting only the panels pack x once, together (gemm.c)
    ck_gemm_pack_b_fn *pack_b;
    ck_gemm_pack_a_fn *pack_a;
    ck_gemm_tile_fn *tile;
};

// W packed into panels element by element (any element size, any k unit): the pack_b of the
// float32 and bfloat16 rows.
ck_gemm_pack_b_fn ck_gemm_pack_panels;

// float32 weights, AVX2+FMA (gemm_f32_avx2.c)
ck_gemm_pack_a_fn ck_pack_a_f32_avx2;
ck_gemm_tile_fn ck_sgemm_avx2_6x16;
// float32 weights, AVX-512F (gemm_f32_avx512.c)
ck_gemm_pack_a_fn ck_pack_a_f32_avx512;
ck_gemm_tile_fn ck_sgemm_avx512_14x32;
// bfloat16 weights, AVX512_BF16 (gemm_bf16_avx512.c)
ck_gemm_pack_a_fn ck_pack_a_bf16_avx512;
ck_gemm_tile_fn ck_sbgemm_avx512_14x32;

// quantized weights (q8_0, q4_0): x packed as int8 blocks (gemm_q8_avx2.c, AVX2, for both
// ISAs), W packed by ck_pack_q8_0 / ck_pack_q4_0 (quant.c); AVX2 and AVX512_VNNI micro-kernels
ck_gemm_pack_a_fn ck_pack_a_q8_0;
ck_gemm_pack_a_fn ck_pack_a_q4_0;
ck_gemm_pack_b_fn ck_gemm_pack_q8_0;
ck_gemm_pack_b_fn ck_gemm_pack_q4_0;
ck_gemm_tile_fn ck_q8gemm_avx2_6x32;
ck_gemm_tile_fn ck_q4gemm_avx2_6x32;
ck_gemm_tile_fn ck_q8gemm_avx512_6x32;
ck_gemm_tile_fn ck_q4gemm_avx512_6x32;

#endif  // CK_GEMM_INTERNAL_H
