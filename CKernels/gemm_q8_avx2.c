// gemm_q8_avx2.c — the quantized-weight (q8_0, q4_0) pieces that need only AVX2: the packer of x
// (each row quantized per block of 32 to int8 with a float scale, the same bytes as the
// reference's ck_quantize_block_x) used by every quantized row of the table in gemm.c, and the
// AVX2 micro-kernels q8gemm_avx2_6x32 / q4gemm_avx2_6x32 for CPUs without AVX512_VNNI. The plain
// C references are ck_matmul_q8_0_ref / ck_matmul_q4_0_ref (matmul_ref.c).
//
// vpmaddubsw multiplies unsigned by signed bytes and adds pairs into int16 with saturation, so
// the pair sums must stay within 32767: q8_0 uses the sign trick (|w| times x with w's sign,
// at most 2 x 127 x 127 = 32258); q4_0's nibbles (0..15) times x (-127..127) stay within 3810.
// vpmaddwd by ones then widens the pairs to int32: each block sum is exact.
#include "ckernels.h"
#include "gemm_internal.h"
#include "quant_internal.h"

#include <immintrin.h>
#include <string.h>

#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))

// Rows [0, mr) x units [0, ku) of x (row stride lda; K a multiple of 32, so every unit is whole)
// into the quantized micro-panel layout of quant_internal.h, unit u at ap + u * ldp * 40:
// ldp x 32 int8, ldp scales d, ldp corrections e = d * offset * sum(q).
// The AVX512_VNNI rows use it too: an AVX-512 pack (16 blocks of a row at a time, their maxima
// and sums reduced together, vector divisions) was 15% faster alone but 1-4% slower inside the
// GEMM, where the pack mostly waits for x to arrive from L3 or memory.
AVX2_INLINE void pack_a_quant(const float *x, size_t lda, size_t mr, size_t ku, void *ap_,
                              size_t ldp, float offset) {
    unsigned char *ap = ap_;
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (size_t u = 0; u < ku; u++) {
        unsigned char *unit = ap + u * ldp * CK_QA_UNIT_BYTES;
        float *d = (float *)(unit + ldp * 32), *e = d + ldp;
        for (size_t i = 0; i < mr; i++) {
            const float *src = x + i * lda + u * CK_QK;
            __m256 v[4], m = _mm256_setzero_ps();
            for (int j = 0; j < 4; j++) {
                v[j] = _mm256_loadu_ps(src + 8 * j);
                m = _mm256_max_ps(m, _mm256_and_ps(v[j], abs_mask));
            }
            __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
            h = _mm_max_ps(h, _mm_movehl_ps(h, h));
            h = _mm_max_ss(h, _mm_movehdup_ps(h));
            const float amax = _mm_cvtss_f32(h);
            const __m256 id = _mm256_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
            __m256i q[4], sum = _mm256_setzero_si256();
            for (int j = 0; j < 4; j++) {
                q[j] = _mm256_cvtps_epi32(_mm256_mul_ps(v[j], id));  // nearest even, as nearbyintf
                sum = _mm256_add_epi32(sum, q[j]);
            }
            const __m256i bytes = _mm256_permutevar8x32_epi32(
                _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3])),
                order);
            _mm256_storeu_si256((__m256i *)(unit + i * 32), bytes);
            __m128i s = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
            s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
            s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
            d[i] = amax / 127.0f;
            e[i] = d[i] * (offset * (float)_mm_cvtsi128_si32(s));
        }
    }
}

AVX2 void ck_pack_a_q8_0(const float *x, size_t lda, size_t mr, size_t ku, size_t valid,
                         void *ap, size_t ldp) {
    pack_a_quant(x, lda, mr, ku, ap, ldp, 128.0f);
}
AVX2 void ck_pack_a_q4_0(const float *x, size_t lda, size_t mr, size_t ku, size_t valid,
                         void *ap, size_t ldp) {
    pack_a_quant(x, lda, mr, ku, ap, ldp, 8.0f);
}

// pack_b of the table rows: the layouts are the public ones of ck_pack_q8_0 / ck_pack_q4_0.
void ck_gemm_pack_q8_0(const struct ck_gemm_kernel *kern, const void *w, void *packed, size_t N,
                       size_t K) {
    ck_pack_q8_0(w, packed, N, K);
}
void ck_gemm_pack_q4_0(const struct ck_gemm_kernel *kern, const void *w, void *packed, size_t N,
                       size_t K) {
    ck_pack_q4_0(w, packed, N, K);
}

// The start of a quantized tile: the float accumulators hold C (or zero), so every output is
// C + t(block 0) * dw + t(block 1) * dw + ... in k order, whatever KC and the tiling: the result
// does not depend on the block sizes, the threads or M.
AVX2_INLINE void tile_begin_avx2(const int mr, __m256 acc[][4], const float *c, size_t ldc,
                                 size_t nr, int accumulate) {
    for (int i = 0; i < mr; i++)
        for (int v = 0; v < 4; v++) {
            if (!accumulate) {
                acc[i][v] = _mm256_setzero_ps();
            } else if (nr >= 8 * (size_t)v + 8) {
                acc[i][v] = _mm256_loadu_ps(c + i * ldc + 8 * v);
            } else {
                float tmp[8] = {0};
                for (size_t j = 8 * (size_t)v; j < nr; j++) tmp[j - 8 * v] = c[i * ldc + j];
                acc[i][v] = _mm256_loadu_ps(tmp);
            }
        }
}

AVX2_INLINE void tile_store_avx2(const int mr, __m256 acc[][4], float *c, size_t ldc, size_t nr) {
    for (int i = 0; i < mr; i++)
        for (int v = 0; v < 4; v++) {
            if (nr >= 8 * (size_t)v + 8) {
                _mm256_storeu_ps(c + i * ldc + 8 * v, acc[i][v]);
            } else if (nr > 8 * (size_t)v) {
                float tmp[8];
                _mm256_storeu_ps(tmp, acc[i][v]);
                for (size_t j = 8 * (size_t)v; j < nr; j++) c[i * ldc + j] = tmp[j - 8 * v];
            }
        }
}

// C[0:mr, 0:nr] = (accumulate ? C : 0) + A[0:mr, 0:32ku] · B[0:32ku, 0:32] for q8_0 or q4_0.
// a: unit u of row i at a + u * cs * 40 (+ i * 32)  b: (ku, 1088 or 576 bytes) packed units
// Per unit and 8-column vector: 8 k groups into int32 sums per row, then, in float,
// acc += (d_x * sum - e) * d_w (q8_0's sign trick has no offset, so e is not used).
AVX2_INLINE void qgemm_avx2_6x32(const int mr, const int q4, size_t ku, const unsigned char *a,
                                 size_t cs, const unsigned char *b, float *c, size_t ldc,
                                 size_t nr, int accumulate) {
    const size_t row_bytes = q4 ? CK_Q_NR * CK_Q4_0_BLOCK_BYTES : CK_Q_NR * CK_Q8_0_BLOCK_BYTES;
    const __m256i ones = _mm256_set1_epi16(1), low = _mm256_set1_epi8(0x0f);
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    __m256 acc[CK_AVX2_MR][4];
    tile_begin_avx2(mr, acc, c, ldc, nr, accumulate);
    for (size_t u = 0; u < ku; u++) {
        const unsigned char *bu = b + u * row_bytes, *au = a + u * cs * CK_QA_UNIT_BYTES;
        const float *da = (const float *)(au + cs * 32), *ea = da + cs;
        const uint16_t *dw = (const uint16_t *)(bu + (q4 ? 512 : 1024));
        for (int v = 0; v < 4; v++) {  // columns 8v .. 8v + 7
            __m256i s[CK_AVX2_MR];
            for (int i = 0; i < mr; i++) s[i] = _mm256_setzero_si256();
            for (int g = 0; g < (q4 ? 4 : 8); g++) {
                const __m256i raw = _mm256_loadu_si256((const __m256i *)(bu + g * 128 + v * 32));
                if (q4) {
                    const __m256i lo = _mm256_and_si256(raw, low);
                    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low);
                    for (int i = 0; i < mr; i++) {
                        int32_t xl, xh;
                        memcpy(&xl, au + i * 32 + 4 * g, 4);
                        memcpy(&xh, au + i * 32 + 4 * (g + 4), 4);
                        const __m256i pl = _mm256_maddubs_epi16(lo, _mm256_set1_epi32(xl));
                        const __m256i ph = _mm256_maddubs_epi16(hi, _mm256_set1_epi32(xh));
                        s[i] = _mm256_add_epi32(s[i], _mm256_madd_epi16(_mm256_add_epi16(pl, ph), ones));
                    }
                } else {
                    const __m256i w = _mm256_xor_si256(raw, flip);  // back to signed q
                    const __m256i wabs = _mm256_abs_epi8(w);
                    for (int i = 0; i < mr; i++) {
                        int32_t xg;
                        memcpy(&xg, au + i * 32 + 4 * g, 4);
                        const __m256i xs = _mm256_sign_epi8(_mm256_set1_epi32(xg), w);
                        s[i] = _mm256_add_epi32(s[i], _mm256_madd_epi16(_mm256_maddubs_epi16(wabs, xs), ones));
                    }
                }
            }
            const __m256 scale = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(dw + 8 * v)));
            for (int i = 0; i < mr; i++) {
                const __m256 sf = _mm256_cvtepi32_ps(s[i]);
                const __m256 t = q4 ? _mm256_fmsub_ps(sf, _mm256_set1_ps(da[i]), _mm256_set1_ps(ea[i]))
                                    : _mm256_mul_ps(sf, _mm256_set1_ps(da[i]));
                acc[i][v] = _mm256_fmadd_ps(t, scale, acc[i][v]);
            }
        }
    }
    tile_store_avx2(mr, acc, c, ldc, nr);
}

AVX2 void ck_q8gemm_avx2_6x32(size_t mr, size_t ku, const void *a, size_t ldp, const void *b,
                              float *c, size_t ldc, size_t nr, int accumulate, const void *pf,
                              size_t pf_lines) {
#define KERNEL(R, CS) qgemm_avx2_6x32(R, 0, ku, a, CS, b, c, ldc, nr, accumulate)
    CK_TILE_CASES(CK_AVX2_MR, mr, ldp, KERNEL);
#undef KERNEL
}

AVX2 void ck_q4gemm_avx2_6x32(size_t mr, size_t ku, const void *a, size_t ldp, const void *b,
                              float *c, size_t ldc, size_t nr, int accumulate, const void *pf,
                              size_t pf_lines) {
#define KERNEL(R, CS) qgemm_avx2_6x32(R, 1, ku, a, CS, b, c, ldc, nr, accumulate)
    CK_TILE_CASES(CK_AVX2_MR, mr, ldp, KERNEL);
#undef KERNEL
}
