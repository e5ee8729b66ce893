"""Dense item-item Gram matrix G = XᵀX from a CSR interaction matrix."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
import scipy.sparse as sp

from . import _gram
from ._threads import resolve_num_threads
from ._validation import check_dtype, check_interactions
from .linalg import check_fits_in_memory, mirror_upper

_TASKS_PER_THREAD = 8


def _balanced_row_bounds(X: sp.csr_matrix, n_tasks: int) -> np.ndarray:
    """Cut item rows into ``n_tasks`` ranges holding about equal numbers of pair updates.

    Item i of a sorted user row of length L at position p costs L - p updates
    (one per j >= i), so the exact cost of G's row i is a bincount over X's entries.
    """
    n = X.shape[1]
    lengths = np.diff(X.indptr)
    pos = np.arange(X.nnz, dtype=np.int64) - np.repeat(X.indptr[:-1].astype(np.int64), lengths)
    remaining = np.repeat(lengths.astype(np.int64), lengths) - pos
    cost = np.bincount(X.indices, weights=remaining, minlength=n)
    cum = np.cumsum(cost)
    total = cum[-1] if n else 0.0
    if total == 0:
        return np.array([0, n], dtype=np.int64)
    targets = total * np.arange(1, n_tasks) / n_tasks
    cuts = np.searchsorted(cum, targets, side="left") + 1
    return np.unique(np.concatenate(([0], np.clip(cuts, 0, n), [n]))).astype(np.int64)


def gram_into(X: sp.csr_matrix, out: np.ndarray, *, weighted: bool, num_threads: int,
              mirror: bool = True) -> np.ndarray:
    """Fill ``out`` (zeroed, C-ordered n×n) with XᵀX for a canonical CSR ``X``.

    With ``mirror=False`` only the upper triangle (row-major, j >= i) is written,
    which is all that the Cholesky inverse reads.
    """
    if X.nnz:
        indices = X.indices
        indptr = X.indptr.astype(indices.dtype, copy=False)
        data = X.data.astype(out.dtype, copy=False) if weighted else np.ones(1, dtype=out.dtype)
        bounds = _balanced_row_bounds(X, max(1, num_threads * _TASKS_PER_THREAD))
        _gram.gram_upper(indptr, indices, data, bool(weighted), bounds, out, num_threads)
    if mirror:
        mirror_upper(out, num_threads=num_threads)
    return out


def gram(X: Any, *, dtype: Any = np.float32, weighted: bool = False,
         num_threads: Optional[int] = None) -> np.ndarray:
    """Dense item-item Gram matrix :math:`G = X^T X` computed straight from CSR.

    Parameters
    ----------
    X : sparse matrix or array-like, shape (n_users, n_items)
        Interactions; any scipy sparse format, int32 or int64 indices, unsorted
        or duplicated entries (summed) are accepted.
    dtype : {np.float32, np.float64}, default=np.float32
        Precision of the result.
    weighted : bool, default=False
        Use the stored values as weights; by default every stored entry counts as 1,
        so ``G[i, i]`` is the exact number of users of item i.
    num_threads : int, optional
        Threads for the kernel (see :func:`lae_fast.resolve_num_threads`).

    Returns
    -------
    G : ndarray of shape (n_items, n_items)
        Symmetric, C-ordered.

    Notes
    -----
    Threads own disjoint ranges of G's rows, balanced by the number of pair updates,
    so the kernel needs no atomics and no second n×n buffer.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> X = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 1]]))
    >>> gram(X)
    array([[1., 1., 0.],
           [1., 2., 1.],
           [0., 1., 1.]], dtype=float32)
    """
    dt = check_dtype(dtype)
    X = check_interactions(X, binarize=not weighted)
    n = X.shape[1]
    check_fits_in_memory(n * n * dt.itemsize, what=f"the {n}x{n} {dt.name} Gram matrix")
    out = np.zeros((n, n), dtype=dt)
    return gram_into(X, out, weighted=weighted, num_threads=resolve_num_threads(num_threads))
