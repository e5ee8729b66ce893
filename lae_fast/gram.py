"""Dense item-item Gram matrix G = XᵀX from a CSR interaction matrix."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
import scipy.sparse as sp

from . import _gram
from ._threads import resolve_num_threads
from ._validation import check_dtype, check_interactions
from .linalg import check_fits_in_memory, mirror_upper


def _item_major_view(X: sp.csr_matrix):
    """For every item: its users and the CSR position of the item in each user's row.

    A CSC transpose of a matrix whose values are the CSR positions 0..nnz-1
    (scipy's counting sort, O(nnz)); also the rows of G ordered heaviest first:
    item i at position p of a row of length L costs L - p updates.
    """
    n = X.shape[1]
    positions = sp.csr_matrix((np.arange(X.nnz, dtype=np.int64), X.indices, X.indptr), shape=X.shape).tocsc()
    lengths = np.diff(X.indptr)
    pos_in_row = np.arange(X.nnz, dtype=np.int64) - np.repeat(X.indptr[:-1].astype(np.int64), lengths)
    cost = np.bincount(X.indices, weights=np.repeat(lengths, lengths) - pos_in_row, minlength=n)
    order = np.argsort(-cost, kind="stable").astype(np.int64)
    order = order[cost[order] > 0]
    return (positions.indptr.astype(np.int64), positions.indices.astype(X.indices.dtype),
            positions.data, order)


def gram_into(X: sp.csr_matrix, out: np.ndarray, *, weighted: bool, num_threads: int,
              mirror: bool = True) -> np.ndarray:
    """Fill ``out`` (zeroed, C-ordered n×n) with XᵀX for a canonical CSR ``X``.

    With ``mirror=False`` only the upper triangle (row-major, j >= i) is written,
    which is all that the Cholesky inverse reads. Extra memory: O(nnz), never n×n.
    """
    if X.nnz:
        indices = X.indices
        indptr = X.indptr.astype(indices.dtype, copy=False)
        data = X.data.astype(out.dtype, copy=False) if weighted else np.ones(1, dtype=out.dtype)
        item_ptr, item_user, item_pos, order = _item_major_view(X)
        _gram.gram_upper(indptr, indices, data, bool(weighted), item_ptr, item_user, item_pos, order,
                         out, num_threads)
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
    Each row of G is built by one thread from the users of that item, while the
    row sits in the core's cache; no atomics and no second n×n buffer.

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
