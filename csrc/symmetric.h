/* Mirror the upper triangle of a row-major n x n matrix into its lower triangle.
 *
 * Both the Gram kernel and the LAPACK inverse leave only the upper triangle
 * (row-major, j >= i) valid.  Square tiles keep the transposed reads in cache.
 */
#ifndef LAE_FAST_SYMMETRIC_H
#define LAE_FAST_SYMMETRIC_H

#include <stddef.h>
#include <stdint.h>

#define LAE_MIRROR_TILE 64

#define LAE_DEFINE_MIRROR(NAME, T)                                                   \
static void NAME(T *a, int64_t n, int nthreads) {                                    \
    int64_t ntiles = (n + LAE_MIRROR_TILE - 1) / LAE_MIRROR_TILE;                    \
    int64_t t;                                                                       \
    _Pragma("omp parallel for schedule(dynamic, 1) num_threads(nthreads)")           \
    for (t = 0; t < ntiles; ++t) {                                                   \
        int64_t bi = t * LAE_MIRROR_TILE;                                            \
        int64_t ei = bi + LAE_MIRROR_TILE < n ? bi + LAE_MIRROR_TILE : n;            \
        for (int64_t bj = 0; bj <= bi; bj += LAE_MIRROR_TILE) {                      \
            for (int64_t i = bi; i < ei; ++i) {                                      \
                int64_t ej = bj + LAE_MIRROR_TILE < i ? bj + LAE_MIRROR_TILE : i;    \
                for (int64_t j = bj; j < ej; ++j) a[i * n + j] = a[j * n + i];       \
            }                                                                        \
        }                                                                            \
    }                                                                                \
}

LAE_DEFINE_MIRROR(lae_mirror_upper_f, float)
LAE_DEFINE_MIRROR(lae_mirror_upper_d, double)

#endif
