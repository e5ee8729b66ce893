# cython: language_level=3
"""In-place SPD inverse by recursion on BLAS-3 calls (scipy.linalg.cython_blas).

Three passes over the one n×n buffer, n³/3 flops each, every one in place:

1. Cholesky ``A = L Lᵀ``: factor A11, ``A21 ← A21 L11⁻ᵀ`` (trsm),
   ``A22 ← A22 − A21 A21ᵀ`` (syrk), factor A22.
2. Triangular inverse ``M = L⁻¹``: ``A21 ← −L22⁻¹ A21 L11⁻¹`` (two trsm), then
   invert L11 and L22.
3. ``A⁻¹ = Mᵀ M``: ``A11 ← M11ᵀ M11`` (recursion), ``A11 += M21ᵀ M21`` (syrk),
   ``A21 ← M22ᵀ M21`` (trmm), ``A22 ← M22ᵀ M22`` (recursion).

Blocks at or below ``leaf`` go to LAPACK (potrf, trtri, lauum). Splitting in
halves keeps nearly all flops in large BLAS-3 calls, where OpenBLAS runs at its
GEMM rate; LAPACK's own potrf/potri sweep narrow panels instead.

Like ``_lapack.pyx`` the buffer is C-ordered and read by BLAS column-major, so
BLAS's *lower* triangle is our row-major *upper* triangle (j >= i). The only
scratch is pocon's O(n) work arrays.
"""
from cython cimport floating
from libc.stdlib cimport malloc, free
from scipy.linalg.cython_blas cimport strsm, dtrsm, ssyrk, dsyrk, strmm, dtrmm
from scipy.linalg.cython_lapack cimport (spotrf, dpotrf, strtri, dtrtri, slauum, dlauum,
                                         spocon, dpocon)

from lae_fast._dense cimport norm1_upper

#: smallest block handed to LAPACK; below ~100 the BLAS-3 calls are too thin to pay
DEFAULT_LEAF = 128


cdef inline int _split(int n) noexcept nogil:
    """First block of a split: half, rounded down to a multiple of 32 once large."""
    cdef int n1 = n // 2
    if n1 >= 64:
        n1 -= n1 % 32
    return n1


cdef int _chol(floating *a, int n, int lda, int leaf) noexcept nogil:
    """Lower Cholesky factor in place (column-major); LAPACK's info convention."""
    cdef char cl = b'L', cr = b'R', ct = b'T', cn = b'N'
    cdef int info = 0, n1, n2
    cdef floating one = 1, mone = -1
    cdef floating *a21
    cdef floating *a22
    if n <= leaf:
        if floating is float:
            spotrf(&cl, &n, a, &lda, &info)
        else:
            dpotrf(&cl, &n, a, &lda, &info)
        return info
    n1 = _split(n)
    n2 = n - n1
    a21 = a + n1
    a22 = a + n1 + <Py_ssize_t>n1 * lda
    info = _chol(a, n1, lda, leaf)
    if info != 0:
        return info
    if floating is float:
        strsm(&cr, &cl, &ct, &cn, &n2, &n1, &one, a, &lda, a21, &lda)
        ssyrk(&cl, &cn, &n2, &n1, &mone, a21, &lda, &one, a22, &lda)
    else:
        dtrsm(&cr, &cl, &ct, &cn, &n2, &n1, &one, a, &lda, a21, &lda)
        dsyrk(&cl, &cn, &n2, &n1, &mone, a21, &lda, &one, a22, &lda)
    info = _chol(a22, n2, lda, leaf)
    if info > 0:
        info += n1
    return info


cdef int _trtri(floating *a, int n, int lda, int leaf) noexcept nogil:
    """Inverse of a lower triangular matrix in place (column-major)."""
    cdef char cl = b'L', cr = b'R', cn = b'N'
    cdef int info = 0, n1, n2
    cdef floating one = 1, mone = -1
    cdef floating *a21
    cdef floating *a22
    if n <= leaf:
        if floating is float:
            strtri(&cl, &cn, &n, a, &lda, &info)
        else:
            dtrtri(&cl, &cn, &n, a, &lda, &info)
        return info
    n1 = _split(n)
    n2 = n - n1
    a21 = a + n1
    a22 = a + n1 + <Py_ssize_t>n1 * lda
    # block (2,1) of L⁻¹ is −L22⁻¹ L21 L11⁻¹, formed while L11 and L22 are still factors
    if floating is float:
        strsm(&cl, &cl, &cn, &cn, &n2, &n1, &mone, a22, &lda, a21, &lda)
        strsm(&cr, &cl, &cn, &cn, &n2, &n1, &one, a, &lda, a21, &lda)
    else:
        dtrsm(&cl, &cl, &cn, &cn, &n2, &n1, &mone, a22, &lda, a21, &lda)
        dtrsm(&cr, &cl, &cn, &cn, &n2, &n1, &one, a, &lda, a21, &lda)
    info = _trtri(a, n1, lda, leaf)
    if info != 0:
        return info
    info = _trtri(a22, n2, lda, leaf)
    if info > 0:
        info += n1
    return info


cdef int _lauum(floating *a, int n, int lda, int leaf) noexcept nogil:
    """Lower triangle of Mᵀ M for lower triangular M, in place (column-major)."""
    cdef char cl = b'L', ct = b'T', cn = b'N'
    cdef int info = 0, n1, n2
    cdef floating one = 1
    cdef floating *a21
    cdef floating *a22
    if n <= leaf:
        if floating is float:
            slauum(&cl, &n, a, &lda, &info)
        else:
            dlauum(&cl, &n, a, &lda, &info)
        return info
    n1 = _split(n)
    n2 = n - n1
    a21 = a + n1
    a22 = a + n1 + <Py_ssize_t>n1 * lda
    info = _lauum(a, n1, lda, leaf)
    if floating is float:
        ssyrk(&cl, &ct, &n1, &n2, &one, a21, &lda, &one, a, &lda)
        strmm(&cl, &cl, &ct, &cn, &n2, &n1, &one, a22, &lda, a21, &lda)
    else:
        dsyrk(&cl, &ct, &n1, &n2, &one, a21, &lda, &one, a, &lda)
        dtrmm(&cl, &cl, &ct, &cn, &n2, &n1, &one, a22, &lda, a21, &lda)
    if info == 0:
        info = _lauum(a22, n2, lda, leaf)
    return info


cdef int _spd_inverse(floating *a, int n, int leaf, double *rcond_out) noexcept nogil:
    """Cholesky, pocon, triangular inverse, LᵀL product; -1000 if scratch failed."""
    cdef char cl = b'L'
    cdef int info = 0, lda = n
    cdef floating anorm, rcond = 0
    cdef floating *work
    cdef int *iwork
    cdef double *colsum
    rcond_out[0] = 1.0
    if n == 0:
        return 0
    work = <floating *>malloc(3 * <size_t>n * sizeof(floating))
    iwork = <int *>malloc(<size_t>n * sizeof(int))
    colsum = <double *>malloc(<size_t>n * sizeof(double))
    if work == NULL or iwork == NULL or colsum == NULL:
        free(work)
        free(iwork)
        free(colsum)
        return -1000
    anorm = <floating>norm1_upper(a, n, colsum)
    info = _chol(a, n, lda, leaf)
    if info == 0:
        if floating is float:
            spocon(&cl, &n, a, &lda, &anorm, &rcond, work, iwork, &info)
        else:
            dpocon(&cl, &n, a, &lda, &anorm, &rcond, work, iwork, &info)
    free(work)
    free(iwork)
    free(colsum)
    if info != 0:
        return info
    rcond_out[0] = rcond
    info = _trtri(a, n, lda, leaf)
    if info != 0:  # cannot happen after a successful Cholesky (positive diagonal)
        return -2000
    return _lauum(a, n, lda, leaf)


def _check_leaf(int leaf):
    if leaf < 1:
        raise ValueError(f"leaf must be >= 1, got {leaf}")


def spd_inverse_recursive(floating[:, ::1] a, int leaf=DEFAULT_LEAF):
    """Overwrite the row-major upper triangle of SPD ``a`` with that of its inverse.

    Same contract as ``_lapack.potrf_potri_upper``: returns ``(info, rcond)``,
    ``info`` > 0 naming the leading minor that is not positive definite (``a`` is
    then garbage), ``rcond`` LAPACK pocon's reciprocal 1-norm condition estimate.
    """
    cdef int info, n = <int>a.shape[0]
    cdef double rcond = 0
    if a.shape[0] != a.shape[1]:
        raise ValueError(f"expected a square matrix, got shape {tuple(a.shape)[:2]}")
    _check_leaf(leaf)
    if n == 0:
        return 0, 1.0
    with nogil:
        info = _spd_inverse(&a[0, 0], n, leaf, &rcond)
    if info == -1000:
        raise MemoryError("could not allocate scratch for the condition estimate")
    if info == -2000:
        raise RuntimeError("internal error: triangular inverse failed after a successful Cholesky")
    return info, rcond


# The three passes on their own, for tests and per-phase timing (row-major upper = BLAS lower).
def cholesky_upper(floating[:, ::1] a, int leaf=DEFAULT_LEAF):
    """Row-major upper triangle of ``a`` ← Cholesky factor U (A = UᵀU); returns info."""
    cdef int info = 0, n = <int>a.shape[0]
    _check_leaf(leaf)
    if n:
        with nogil:
            info = _chol(&a[0, 0], n, n, leaf)
    return info


def trtri_upper(floating[:, ::1] a, int leaf=DEFAULT_LEAF):
    """Row-major upper triangular ``a`` ← its inverse; returns info."""
    cdef int info = 0, n = <int>a.shape[0]
    _check_leaf(leaf)
    if n:
        with nogil:
            info = _trtri(&a[0, 0], n, n, leaf)
    return info


def lauum_upper(floating[:, ::1] a, int leaf=DEFAULT_LEAF):
    """Row-major upper triangular V in ``a`` ← upper triangle of V Vᵀ; returns info."""
    cdef int info = 0, n = <int>a.shape[0]
    _check_leaf(leaf)
    if n:
        with nogil:
            info = _lauum(&a[0, 0], n, n, leaf)
    return info
