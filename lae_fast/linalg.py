"""SPD inverse in place: LAPACK potrf + potri, or lae-fast's recursive BLAS-3 route."""
from __future__ import annotations

from typing import Optional

import numpy as np

from . import _gram, _lapack, _spdinv
from ._memory import available_memory, check_fits_in_memory  # noqa: F401 (re-exported: the old home)
from ._threads import blas_threads, resolve_num_threads

#: Routes of :func:`spd_inverse_inplace`.
SPD_METHODS = ("auto", "lapack", "blocked")

#: Smallest n from which ``method="auto"`` takes the recursive BLAS-3 route, per dtype
#: (None = never). Measured side by side (``lae-fast bench solvers``, bench/RESULTS.md;
#: OpenBLAS 0.3.30, 2 cores): on an idle machine the two routes are within a few per cent
#: of each other from n ~ 1500 up (both ~1.15-1.25x n³/SGEMM at n = 8000, float32) and
#: LAPACK is up to ~10 % ahead below; when another job shares the cores, potrf+potri slow
#: down more (1.2-1.3x slower than the recursive route at n = 4000 beside one competing
#: thread, up to 2-4x in runs on the busy shared machine), so the recursive route is the
#: safer default from 1536 up.
_BLOCKED_FROM_N = {np.dtype(np.float32): 1536, np.dtype(np.float64): 1536}

#: Below this n the inverse runs on one BLAS thread: the work per thread is too small to pay
#: for waking a second one (n = 200 float32, idle 2-core machine: 1.0 ms on one thread,
#: 8.0 ms on two; even at n = 500), and on a busy machine a spinning second thread can cost
#: 100x (n = 500: 1.5 s against 0.02 s).
_PARALLEL_FROM_N = 512


def mirror_upper(a: np.ndarray, *, num_threads: int = 1) -> np.ndarray:
    """Copy the upper triangle (row-major, j >= i) of square ``a`` into its lower one, in place."""
    _gram.mirror_upper(a, resolve_num_threads(num_threads))
    return a


def _check_upper_finite(a: np.ndarray, rows: int = 256) -> None:
    """Refuse NaN/inf in the triangle the inverse reads (LAPACK would only call it singular).

    Row blocks keep the temporary small; one O(n²) pass beside the n³ inverse.
    """
    n = a.shape[0]
    for start in range(0, n, rows):
        block = a[start:start + rows, start:]
        if not np.isfinite(block).all():
            bad = np.triu(~np.isfinite(block))  # block[i, j] is a[start + i, start + j]: upper iff j >= i
            if bad.any():
                i, j = np.argwhere(bad)[0]
                raise np.linalg.LinAlgError(f"the matrix holds {block[i, j]} at ({start + i}, {start + j}); "
                                 "a Gram matrix of finite interactions never does: check the input data")


def choose_spd_method(n: int, dtype) -> str:
    """The route ``method="auto"`` takes for an n×n matrix of this dtype.

    Returns
    -------
    {'lapack', 'blocked'}
    """
    start = _BLOCKED_FROM_N.get(np.dtype(dtype))
    return "blocked" if start is not None and n >= start else "lapack"


def spd_inverse_inplace(a: np.ndarray, *, num_threads: Optional[int] = None,
                        mirror: bool = True, method: str = "auto") -> np.ndarray:
    """Invert a symmetric positive definite matrix in its own buffer.

    Only the upper triangle (row-major, ``a[i, j]`` with j >= i) is read; with
    ``mirror`` the full symmetric inverse is written back, otherwise only its
    upper triangle.  Both routes cost n³ flops: Cholesky (n³/3), triangular
    inverse (n³/3) and the product of the inverse factors (n³/3).

    Parameters
    ----------
    a : ndarray of shape (n, n), float32 or float64, C-contiguous
    num_threads : int, optional
        BLAS threads for the factorisation (one below n = 512, where a second thread only costs).
    mirror : bool, default=True
        Write the lower triangle too.
    method : {'auto', 'lapack', 'blocked'}, default='auto'
        ``'lapack'``: LAPACK potrf + potri. ``'blocked'``: lae-fast's recursive
        route, halving the matrix down to 128×128 blocks so nearly all flops run
        in large BLAS-3 calls (trsm, syrk, trmm), all in place.  ``'auto'``: the
        faster of the two for this n and dtype, as measured (see
        :func:`choose_spd_method`): LAPACK below n = 1536, the recursive route
        from there.  Both give the same inverse to rounding and the same errors.

    Returns
    -------
    a : ndarray
        The same buffer, now holding the inverse.

    Raises
    ------
    numpy.linalg.LinAlgError
        If ``a`` is not positive definite, or so ill-conditioned that its inverse
        would be noise in this precision (LAPACK pocon estimate below machine
        epsilon); its contents are then undefined. Also, naming the entry, if the
        upper triangle holds NaN or inf (checked before anything is written).
    ValueError
        If ``a`` is not square, float32/float64, C-contiguous and writeable.
    """
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"expected a square matrix, got shape {a.shape}")
    if a.dtype not in (np.float32, np.float64) or not a.flags.c_contiguous or not a.flags.writeable:
        raise ValueError("expected a writeable C-contiguous float32 or float64 matrix")
    if method not in SPD_METHODS:
        raise ValueError(f"method={method!r} is not one of {', '.join(map(repr, SPD_METHODS))}")
    if method == "auto":
        method = choose_spd_method(a.shape[0], a.dtype)
    _check_upper_finite(a)
    nt = resolve_num_threads(num_threads) if a.shape[0] >= _PARALLEL_FROM_N else 1
    with blas_threads(nt):
        if method == "lapack":
            info, rcond = _lapack.potrf_potri_upper(a)
        else:
            info, rcond = _spdinv.spd_inverse_recursive(a)
    if info > 0:
        raise np.linalg.LinAlgError(
            f"the matrix is not positive definite (leading minor of order {info} failed in "
            f"Cholesky, {a.dtype.name})"
        )
    if info < 0:  # a bug on our side, not the user's data
        raise RuntimeError(f"internal error: LAPACK potrf/potri rejected argument {-info}")
    if not rcond >= np.finfo(a.dtype).eps:
        # Cholesky went through, but the inverse would be noise in this precision
        raise np.linalg.LinAlgError(
            f"the matrix is singular to {a.dtype.name} precision (estimated reciprocal condition "
            f"number {rcond:.1e} < {np.finfo(a.dtype).eps:.1e})"
        )
    if mirror:
        mirror_upper(a, num_threads=nt)
    return a
