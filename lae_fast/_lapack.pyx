# cython: language_level=3
"""In-place SPD inverse through LAPACK potrf + potri (scipy.linalg.cython_lapack).

The buffer is C-ordered; LAPACK reads it column-major, i.e. transposed. For a
symmetric matrix that is the same matrix, so we ask LAPACK for its *lower*
triangle, which is our row-major *upper* triangle (j >= i).
"""
from cython cimport floating
from libc.stdlib cimport malloc, free
from scipy.linalg.cython_lapack cimport spotrf, spotri, spocon, dpotrf, dpotri, dpocon

from lae_fast._dense cimport norm1_upper


cdef int _potrf_potri(floating[:, ::1] a, double *rcond_out) noexcept nogil:
    """Cholesky, reciprocal condition estimate, then inverse from the factor.

    Returns LAPACK's info; -1000 if scratch memory could not be allocated.
    """
    cdef char uplo = b'L'
    cdef int n = <int>a.shape[0]
    cdef int lda = n
    cdef int info = 0
    cdef floating anorm, rcond = 0
    cdef floating *work
    cdef int *iwork
    cdef double *colsum
    rcond_out[0] = 1.0
    if n == 0:
        return 0
    work = <floating *>malloc(3 * n * sizeof(floating))
    iwork = <int *>malloc(n * sizeof(int))
    colsum = <double *>malloc(n * sizeof(double))
    if work == NULL or iwork == NULL or colsum == NULL:
        free(work)
        free(iwork)
        free(colsum)
        return -1000
    anorm = <floating>norm1_upper(&a[0, 0], n, colsum)
    if floating is float:
        spotrf(&uplo, &n, &a[0, 0], &lda, &info)
        if info == 0:
            spocon(&uplo, &n, &a[0, 0], &lda, &anorm, &rcond, work, iwork, &info)
        if info == 0:
            rcond_out[0] = rcond
            spotri(&uplo, &n, &a[0, 0], &lda, &info)
    else:
        dpotrf(&uplo, &n, &a[0, 0], &lda, &info)
        if info == 0:
            dpocon(&uplo, &n, &a[0, 0], &lda, &anorm, &rcond, work, iwork, &info)
        if info == 0:
            rcond_out[0] = rcond
            dpotri(&uplo, &n, &a[0, 0], &lda, &info)
    free(work)
    free(iwork)
    free(colsum)
    return info


def potrf_potri_upper(floating[:, ::1] a):
    """Overwrite the row-major upper triangle of SPD ``a`` with that of its inverse.

    Returns ``(info, rcond)``: LAPACK's ``info`` (0 on success, k > 0 when the
    leading minor of order k is not positive definite, ``a`` then being garbage,
    k < 0 on a bad argument) and the estimated reciprocal 1-norm condition number.
    """
    cdef int info
    cdef double rcond = 0
    with nogil:
        info = _potrf_potri(a, &rcond)
    if info == -1000:
        raise MemoryError("could not allocate LAPACK scratch for the condition estimate")
    return info, rcond
