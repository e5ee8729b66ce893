# cython: language_level=3
"""G = XᵀX accumulated straight from CSR into one dense buffer.

Row i of G (upper triangle, j >= i) is the sum, over the users of item i, of
that user's history from item i onwards.  One thread builds a whole row while
it sits in that core's cache: it walks the users of item i (a CSC view of X
whose entries remember their position in the CSR row) and adds w_i * w_j into
G[i, j].  Rows are owned by one thread each: no races, no atomics.  Rows are
handed out heaviest first so the last ones to finish are short.

Also here: the tiled mirror of an upper triangle into the lower one (the Gram
and the SPD inverse both leave only the upper triangle valid), and the build's
OpenMP flag.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t

cdef extern from "symmetric.h" nogil:
    void lae_mirror_upper_f(float *a, long long n, int nthreads)
    void lae_mirror_upper_d(double *a, long long n, int nthreads)

cdef extern from "openmp_compat.h" nogil:
    int lae_openmp_enabled()

ctypedef fused index_t:
    int
    long long


def gram_upper(const index_t[::1] indptr, const index_t[::1] indices,
               const floating[::1] data, bint weighted,
               const int64_t[::1] item_ptr, const index_t[::1] item_user,
               const index_t[::1] item_pos, const int64_t[::1] order,
               floating[:, ::1] out, int num_threads):
    """Add the upper triangle (row-major, j >= i) of XᵀX into ``out``.

    ``indices`` must be sorted within each row and free of duplicates. For item
    i, entries ``k`` in ``item_ptr[i]:item_ptr[i+1]`` name a user ``item_user[k]``
    and the CSR position ``item_pos[k]`` where that user's row holds i.
    ``order`` lists the items (rows of G) in the order to process them.
    """
    cdef int64_t n_rows = order.shape[0]
    cdef int64_t t, i, k, p, q, end
    cdef floating wi
    cdef floating *row
    if n_rows == 0:
        return
    for t in prange(n_rows, nogil=True, schedule="dynamic", chunksize=4, num_threads=num_threads):
        i = order[t]
        row = &out[i, 0]
        for k in range(item_ptr[i], item_ptr[i + 1]):
            p = item_pos[k]
            end = indptr[item_user[k] + 1]
            if weighted:
                wi = data[p]
                for q in range(p, end):
                    row[indices[q]] += wi * data[q]
            else:
                _add_ones(row, &indices[0], p, end)


cdef inline void _add_ones(floating *row, const index_t *indices, int64_t q, int64_t end) noexcept nogil:
    """row[indices[q:end]] += 1. A user's items are distinct, so eight entries go to eight distinct
    places: all eight are loaded before any is stored, and the loads need not wait behind the stores
    of the entries before them (as in the serving kernel's scatter.h)."""
    cdef index_t i0, i1, i2, i3, i4, i5, i6, i7
    cdef floating t0, t1, t2, t3, t4, t5, t6, t7
    while q + 8 <= end:
        i0 = indices[q]
        i1 = indices[q + 1]
        i2 = indices[q + 2]
        i3 = indices[q + 3]
        i4 = indices[q + 4]
        i5 = indices[q + 5]
        i6 = indices[q + 6]
        i7 = indices[q + 7]
        t0 = row[i0]
        t1 = row[i1]
        t2 = row[i2]
        t3 = row[i3]
        t4 = row[i4]
        t5 = row[i5]
        t6 = row[i6]
        t7 = row[i7]
        row[i0] = t0 + 1
        row[i1] = t1 + 1
        row[i2] = t2 + 1
        row[i3] = t3 + 1
        row[i4] = t4 + 1
        row[i5] = t5 + 1
        row[i6] = t6 + 1
        row[i7] = t7 + 1
        q = q + 8
    while q < end:
        row[indices[q]] += 1
        q = q + 1


def mirror_upper(floating[:, ::1] a, int num_threads=1):
    """Copy the row-major upper triangle of square ``a`` into its lower triangle."""
    cdef long long n = a.shape[0]
    if n == 0:
        return
    with nogil:
        if floating is float:
            lae_mirror_upper_f(&a[0, 0], n, num_threads)
        else:
            lae_mirror_upper_d(&a[0, 0], n, num_threads)


def built_with_openmp():
    """True when the kernels were compiled with OpenMP (else they run on one thread)."""
    return bool(lae_openmp_enabled())
