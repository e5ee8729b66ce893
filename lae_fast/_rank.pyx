# cython: language_level=3
"""Fused scoring, masking and top-N selection for a batch of users.

scores_u = x_u · B is accumulated from the sparse history against row-major B,
one block of columns at a time (the accumulator stays in L1/L2 and each history
row of B is read in long contiguous runs). Users are taken in groups that walk
the column blocks together, so the popular rows of a block are reused from the
shared cache. Each block's scores go straight into a bounded heap per user: no
users×items score matrix is ever held. Within a block the group's users are
shared out dynamically between threads (long histories are slow).
"""
from cython cimport floating
from cython.parallel cimport prange, parallel
from libc.stdlib cimport malloc, free
from libc.math cimport INFINITY
from libc.stdint cimport int32_t, int64_t, uint8_t

from lae_fast._csrc cimport lae_accumulate_d, lae_accumulate_f, lae_heap_finish, lae_heap_push


cdef void _score_block(const int64_t *indptr, const int64_t *indices, const floating *data,
                       const floating *B, int64_t n, const uint8_t *allowed, bint mask_history,
                       int64_t u, int64_t c0, int64_t w, int32_t k,
                       float *out_scores, int32_t *out_ids, int32_t *sizes, floating *acc) noexcept nogil:
    cdef int64_t p, j, i, start = indptr[u], end = indptr[u + 1]
    if floating is float:
        lae_accumulate_f(acc, w, B, n, c0, indices + start, data + start, end - start)
    else:
        lae_accumulate_d(acc, w, B, n, c0, indices + start, data + start, end - start)
    if mask_history:
        for p in range(start, end):
            i = indices[p]
            if i >= c0 and i < c0 + w:
                acc[i - c0] = -INFINITY
    for j in range(w):
        if allowed[c0 + j] and acc[j] != -INFINITY:
            lae_heap_push(out_scores + u * k, out_ids + u * k, &sizes[u], k, <float>acc[j],
                          <int32_t>(c0 + j))


def rank_topk(const int64_t[::1] indptr, const int64_t[::1] indices, const floating[::1] data,
              const floating[:, ::1] B, const uint8_t[::1] allowed, bint mask_history,
              int32_t[:, ::1] out_ids, float[:, ::1] out_scores, int32_t[::1] sizes,
              int64_t group, int64_t block, int num_threads):
    """Write each user's top-``k`` (k = out_ids.shape[1]) items and scores, best first.

    Rows of the CSR history (int64 indptr/indices) are users; ``allowed[j] == 0``
    removes item j for all users; with ``mask_history`` a user's own items are
    removed too. Rows with fewer than k candidates are padded with id -1 and
    score -inf. ``sizes`` (one int32 per user) is scratch for the heap sizes.
    """
    cdef int64_t n_users = indptr.shape[0] - 1
    cdef int64_t n = B.shape[1]
    cdef int32_t k = <int32_t>out_ids.shape[1]
    cdef int64_t g0, g1, c0, w, u
    cdef floating *acc
    # a one-element array stays shared inside the parallel block (a plain int would be private)
    cdef int failed[1]
    failed[0] = 0
    if n_users <= 0 or k == 0 or n == 0:
        return
    if block > n:
        block = n
    if group > n_users:
        group = n_users
    if num_threads > n_users:
        num_threads = <int>n_users
    with nogil, parallel(num_threads=num_threads):
        acc = <floating *>malloc(block * sizeof(floating))
        if acc == NULL:
            failed[0] = 1
        g0 = 0
        while g0 < n_users:
            g1 = g0 + group
            if g1 > n_users:
                g1 = n_users
            for u in prange(g0, g1, schedule="static"):
                sizes[u] = 0
            c0 = 0
            while c0 < n:
                w = block
                if c0 + w > n:
                    w = n - c0
                for u in prange(g0, g1, schedule="dynamic", chunksize=4):
                    if acc != NULL:
                        _score_block(&indptr[0], &indices[0], &data[0], &B[0, 0], n, &allowed[0],
                                     mask_history, u, c0, w, k, &out_scores[0, 0], &out_ids[0, 0],
                                     &sizes[0], acc)
                c0 = c0 + w
            for u in prange(g0, g1, schedule="static"):
                lae_heap_finish(&out_scores[u, 0], &out_ids[u, 0], sizes[u], k, -INFINITY)
            g0 = g1
        free(acc)
    if failed[0]:
        raise MemoryError("could not allocate per-thread ranking scratch")
