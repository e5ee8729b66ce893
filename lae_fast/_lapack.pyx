# cython: language_level=3
"""In-place SPD inverse through LAPACK potrf + potri (scipy.linalg.cython_lapack).

The buffer is C-ordered; LAPACK reads it column-major, i.e. transposed. For a
symmetric matrix that is the same matrix, so we ask LAPACK for its *lower*
triangle, which is our row-major *upper* triangle (j >= i).
"""
from cython cimport floating
from scipy.linalg.cython_lapack cimport spotrf, spotri, dpotrf, dpotri

cdef extern from "symmetric.h" nogil:
    void lae_mirror_upper_f(float *a, long long n, int nthreads)
    void lae_mirror_upper_d(double *a, long long n, int nthreads)


cdef int _potrf_potri(floating[:, ::1] a) noexcept nogil:
    cdef char uplo = b'L'
    cdef int n = <int>a.shape[0]
    cdef int lda = n
    cdef int info = 0
    if n == 0:
        return 0
    if floating is float:
        spotrf(&uplo, &n, &a[0, 0], &lda, &info)
        if info == 0:
            spotri(&uplo, &n, &a[0, 0], &lda, &info)
    else:
        dpotrf(&uplo, &n, &a[0, 0], &lda, &info)
        if info == 0:
            dpotri(&uplo, &n, &a[0, 0], &lda, &info)
    return info


def potrf_potri_upper(floating[:, ::1] a):
    """Overwrite the row-major upper triangle of SPD ``a`` with that of its inverse.

    Returns LAPACK's ``info``: 0 on success, k > 0 when the leading minor of
    order k is not positive definite (``a`` is then garbage), k < 0 on a bad argument.
    """
    cdef int info
    with nogil:
        info = _potrf_potri(a)
    return info


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


cdef extern from "openmp_compat.h" nogil:
    int lae_openmp_enabled()


def built_with_openmp():
    """True when the kernels were compiled with OpenMP (else they run on one thread)."""
    return bool(lae_openmp_enabled())
