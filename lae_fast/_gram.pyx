# cython: language_level=3
"""G = XᵀX accumulated straight from CSR into one dense buffer.

Each parallel task owns a contiguous range of G's rows, so no two threads ever
write the same element (no atomics).  For every user row (column indices sorted)
the task finds, by binary search, the entries whose item falls in its range and
adds w_i * w_j to G[i, j] for all j >= i of that row: the upper triangle only.
Row ranges are cut so that each holds about the same number of pair updates.
"""
from cython cimport floating
from cython.parallel cimport prange
ctypedef fused index_t:
    int
    long long


cdef inline long long _lower_bound(const index_t *idx, long long lo, long long hi,
                                   long long value) noexcept nogil:
    cdef long long mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if idx[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo


def gram_upper(const index_t[::1] indptr, const index_t[::1] indices,
               const floating[::1] data, bint weighted,
               const long long[::1] bounds, floating[:, ::1] out, int num_threads):
    """Add the upper triangle (row-major, j >= i) of XᵀX into ``out``.

    ``indices`` must be sorted within each row and free of duplicates;
    ``bounds`` (length tasks + 1) splits the item rows into tasks.
    """
    cdef long long n_users = indptr.shape[0] - 1
    cdef long long n_tasks = bounds.shape[0] - 1
    cdef long long n = out.shape[1]
    cdef long long task, u, p, q, start, end, lo, hi, i
    cdef floating wi
    cdef floating *row
    if n_users <= 0 or n_tasks <= 0 or n == 0:
        return
    for task in prange(n_tasks, nogil=True, schedule="dynamic", chunksize=1,
                       num_threads=num_threads):
        lo = bounds[task]
        hi = bounds[task + 1]
        for u in range(n_users):
            start = indptr[u]
            end = indptr[u + 1]
            if start == end or indices[end - 1] < lo or indices[start] >= hi:
                continue
            p = _lower_bound(&indices[0], start, end, lo)
            while p < end and indices[p] < hi:
                i = indices[p]
                row = &out[i, 0]
                if weighted:
                    wi = data[p]
                    for q in range(p, end):
                        row[indices[q]] += wi * data[q]
                else:
                    for q in range(p, end):
                        row[indices[q]] += 1
                p = p + 1
