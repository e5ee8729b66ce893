# Small dense helpers shared by the SPD-inverse kernels (_lapack, _spdinv); inline, so no module of its own.
from cython cimport floating
from libc.math cimport fabs


cdef inline double norm1_upper(const floating *a, Py_ssize_t n, double *colsum) noexcept nogil:
    """1-norm of the symmetric n×n matrix whose row-major upper triangle is stored in ``a``.

    ``colsum`` is scratch of n doubles. The norm feeds LAPACK's ?pocon condition estimate.
    """
    cdef Py_ssize_t i, j
    cdef double v, best = 0
    for j in range(n):
        colsum[j] = 0
    for i in range(n):
        for j in range(i, n):
            v = fabs(a[i * n + j])
            colsum[j] += v
            if j != i:
                colsum[i] += v
    for j in range(n):
        if colsum[j] > best:
            best = colsum[j]
    return best
