/* acc[indices[q] - c0] += data[q] over entries q of one CSR row: the innermost loop of serving a
 * sparse B, in two forms:
 *
 *   lae_scatter_row(acc, c0, indices, data, q, q1, limit)  the entries from q on whose column is
 *                                                          below limit (at most up to q1); returns
 *                                                          where it stopped
 *   lae_scatter_rest(acc, c0, indices, data, q, q1)        every entry of [q, q1): the last
 *                                                          column block, no bound to test
 *
 * A row of a canonical CSR holds strictly increasing columns, so eight consecutive entries
 * update eight distinct accumulators: all eight are loaded before any is stored, and the loads
 * no longer wait behind the stores of the entries before them (side experiment on the model of
 * bench/bench_serving_sparse.py, kernels alternated call by call in one process: about 10% fewer
 * µs per history of the data's users on 1 and on 2 threads, within 2% on uniform histories,
 * whose rows are short). Sorted columns also mean that when the eighth is below the limit all
 * eight are, so one compare covers eight entries. A short row keeps the one-entry loop: its
 * second loop exit would cost more than it saves (so does the last block, whose short rows need
 * no compare at all). Each accumulator still gets one add per row, rows in the caller's order:
 * the same float sums.
 */
#ifndef LAE_FAST_SCATTER_H
#define LAE_FAST_SCATTER_H

#include <stdint.h>

/* the shortest rest of a row that lae_scatter_row takes eight entries at a time */
#define LAE_SCATTER_LONG 512

#define LAE_SCATTER_EIGHT(acc, c0, indices, data, q)                                               \
    do {                                                                                           \
        const int32_t *ix_ = (indices) + (q);                                                      \
        const float *v_ = (data) + (q);                                                            \
        const int64_t i0 = ix_[0] - (c0), i1 = ix_[1] - (c0), i2 = ix_[2] - (c0), i3 = ix_[3] - (c0); \
        const int64_t i4 = ix_[4] - (c0), i5 = ix_[5] - (c0), i6 = ix_[6] - (c0), i7 = ix_[7] - (c0); \
        float t0 = acc[i0], t1 = acc[i1], t2 = acc[i2], t3 = acc[i3];                              \
        float t4 = acc[i4], t5 = acc[i5], t6 = acc[i6], t7 = acc[i7];                              \
        acc[i0] = t0 + v_[0]; acc[i1] = t1 + v_[1]; acc[i2] = t2 + v_[2]; acc[i3] = t3 + v_[3];    \
        acc[i4] = t4 + v_[4]; acc[i5] = t5 + v_[5]; acc[i6] = t6 + v_[6]; acc[i7] = t7 + v_[7];    \
    } while (0)

static inline int64_t lae_scatter_row(float *restrict acc, int64_t c0, const int32_t *restrict indices,
                                      const float *restrict data, int64_t q, int64_t q1, int64_t limit) {
    if (q1 - q >= LAE_SCATTER_LONG)
        for (; q + 8 <= q1 && indices[q + 7] < limit; q += 8) LAE_SCATTER_EIGHT(acc, c0, indices, data, q);
    for (; q < q1 && indices[q] < limit; ++q) acc[indices[q] - c0] += data[q];
    return q;
}

static inline void lae_scatter_rest(float *restrict acc, int64_t c0, const int32_t *restrict indices,
                                    const float *restrict data, int64_t q, int64_t q1) {
    if (q1 - q >= LAE_SCATTER_LONG)
        for (; q + 8 <= q1; q += 8) LAE_SCATTER_EIGHT(acc, c0, indices, data, q);
    for (; q < q1; ++q) acc[indices[q] - c0] += data[q];
}

#endif
