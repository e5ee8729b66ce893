# cython: language_level=3
"""Fused scoring, masking and top-N selection for a batch of users.

scores_u = x_u · B is accumulated from the sparse history against row-major B,
one column block at a time (the block of each touched row is a short contiguous
run, and the accumulator stays in L1); every block's scores go straight into a
bounded heap per user, so no users×items score matrix is ever held.
Tasks are groups of users, scheduled dynamically (long histories are slow).
"""
from cython cimport floating
from cython.parallel cimport prange, parallel
from libc.stdlib cimport malloc, free
from libc.math cimport INFINITY
from libc.stdint cimport int32_t, uint8_t

ctypedef fused index_t:
    int
    long long

cdef extern from "topk.h" nogil:
    void lae_heap_push(float *s, int32_t *id, int32_t *size, int32_t k, float score, int32_t item)
    void lae_heap_finish(float *s, int32_t *id, int32_t size, int32_t k, float neg_inf)


cdef int _rank_group(const index_t *indptr, const index_t *indices, const floating *data,
                     const floating *B, long long n, const uint8_t *allowed, bint mask_history,
                     long long u0, long long u1, int32_t k, long long block,
                     float *out_scores, int32_t *out_ids, floating *acc, int32_t *sizes) noexcept nogil:
    cdef long long c0, c1, w, u, p, j, i
    cdef floating wi
    cdef const floating *brow
    cdef float s
    for u in range(u0, u1):
        sizes[u - u0] = 0
    c0 = 0
    while c0 < n:
        c1 = c0 + block
        if c1 > n:
            c1 = n
        w = c1 - c0
        for u in range(u0, u1):
            for j in range(w):
                acc[j] = 0
            for p in range(indptr[u], indptr[u + 1]):
                wi = data[p]
                brow = B + indices[p] * n + c0
                for j in range(w):
                    acc[j] += wi * brow[j]
            if mask_history:
                for p in range(indptr[u], indptr[u + 1]):
                    i = indices[p]
                    if i >= c0 and i < c1:
                        acc[i - c0] = -INFINITY
            for j in range(w):
                if allowed[c0 + j] and acc[j] != -INFINITY:
                    s = <float>acc[j]
                    lae_heap_push(out_scores + u * k, out_ids + u * k, &sizes[u - u0], k, s,
                                  <int32_t>(c0 + j))
        c0 = c1
    for u in range(u0, u1):
        lae_heap_finish(out_scores + u * k, out_ids + u * k, sizes[u - u0], k, -INFINITY)
    return 0


def rank_topk(const index_t[::1] indptr, const index_t[::1] indices, const floating[::1] data,
              const floating[:, ::1] B, const uint8_t[::1] allowed, bint mask_history,
              int32_t[:, ::1] out_ids, float[:, ::1] out_scores,
              long long users_per_task, long long block, int num_threads):
    """Write each user's top-``k`` (k = out_ids.shape[1]) items and scores, best first.

    Rows of the CSR history are users; ``allowed[j] == 0`` removes item j for all
    users; with ``mask_history`` a user's own items are removed too.  Rows with
    fewer than k candidates are padded with id -1 and score -inf.
    """
    cdef long long n_users = indptr.shape[0] - 1
    cdef long long n = B.shape[1]
    cdef int32_t k = <int32_t>out_ids.shape[1]
    cdef long long n_tasks, task, u0, u1
    cdef floating *acc
    cdef int32_t *sizes
    # a one-element array stays shared inside the parallel block (a plain int would be private)
    cdef int failed[1]
    failed[0] = 0
    if n_users <= 0 or k == 0:
        return
    if block > n:
        block = n if n > 0 else 1
    n_tasks = (n_users + users_per_task - 1) // users_per_task
    if num_threads > n_tasks:
        num_threads = <int>n_tasks
    with nogil, parallel(num_threads=num_threads):
        acc = <floating *>malloc(block * sizeof(floating))
        sizes = <int32_t *>malloc(users_per_task * sizeof(int32_t))
        try:
            if acc == NULL or sizes == NULL:
                failed[0] = 1
            else:
                for task in prange(n_tasks, schedule="dynamic", chunksize=1):
                    u0 = task * users_per_task
                    u1 = u0 + users_per_task
                    if u1 > n_users:
                        u1 = n_users
                    _rank_group(&indptr[0], &indices[0], &data[0], &B[0, 0], n, &allowed[0],
                                mask_history, u0, u1, k, block,
                                &out_scores[0, 0], &out_ids[0, 0], acc, sizes)
        finally:
            free(acc)
            free(sizes)
    if failed[0]:
        raise MemoryError("could not allocate per-thread ranking scratch")
