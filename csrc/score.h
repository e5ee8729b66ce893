/* acc[0:w] = sum_p wts[p] * B[rows[p], c0:c0+w]  (B row-major with leading dimension ldb).
 *
 * The innermost loop of ranking. Four rows per pass keep acc's loads and stores
 * down; on x86-64 GCC builds one clone per instruction set (AVX-512, AVX2, SSE2)
 * and picks at load time, so a generic wheel still runs at the machine's width.
 */
#ifndef LAE_FAST_SCORE_H
#define LAE_FAST_SCORE_H

#include <stdint.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define LAE_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define LAE_CLONES
#endif

/* One loop for a float / double B (DECODE the identity) and for the portable decoding of a
 * compressed B (dequant.h): acc[0:w] = sum_p wts[p] * DECODE(B[rows[p], c0:c0+w]). */
#define LAE_DEFINE_ACCUMULATE_DECODED(NAME, T, Q_T, DECODE)                                  \
LAE_CLONES static void NAME(T *restrict acc, int64_t w, const Q_T *restrict B, int64_t ldb,  \
                            int64_t c0, const int64_t *restrict rows,                     \
                            const T *restrict wts, int64_t L) {                           \
    int64_t j, p = 0;                                                                      \
    for (j = 0; j < w; ++j) acc[j] = 0;                                                    \
    for (; p + 4 <= L; p += 4) {                                                           \
        const Q_T *r0 = B + rows[p] * ldb + c0, *r1 = B + rows[p + 1] * ldb + c0;          \
        const Q_T *r2 = B + rows[p + 2] * ldb + c0, *r3 = B + rows[p + 3] * ldb + c0;      \
        T a0 = wts[p], a1 = wts[p + 1], a2 = wts[p + 2], a3 = wts[p + 3];                  \
        for (j = 0; j < w; ++j)                                                            \
            acc[j] += a0 * DECODE(r0[j]) + a1 * DECODE(r1[j]) + a2 * DECODE(r2[j])         \
                      + a3 * DECODE(r3[j]);                                                \
    }                                                                                      \
    for (; p < L; ++p) {                                                                   \
        const Q_T *r0 = B + rows[p] * ldb + c0;                                            \
        T a0 = wts[p];                                                                     \
        for (j = 0; j < w; ++j) acc[j] += a0 * DECODE(r0[j]);                              \
    }                                                                                      \
}

#define LAE_AS_IS(x) (x)
LAE_DEFINE_ACCUMULATE_DECODED(lae_accumulate_f, float, float, LAE_AS_IS)
LAE_DEFINE_ACCUMULATE_DECODED(lae_accumulate_d, double, double, LAE_AS_IS)

#endif
