"""Dense item-item Gram matrix G = XᵀX from a CSR interaction matrix."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
import scipy.sparse as sp

from . import _gram
from ._threads import resolve_num_threads
from ._validation import check_dtype, check_interactions
from ._memory import zeros_checked
from .linalg import mirror_upper


def _item_major_view(X: sp.csr_matrix, index_dtype: np.dtype):
    """For every item: its users and the CSR position of the item in each user's row.

    A CSC transpose of a matrix whose values are the CSR positions 0..nnz-1
    (scipy's counting sort, O(nnz)); also the rows of G ordered heaviest first:
    item i at CSR position k of user u's row costs indptr[u+1] - k updates.
    Positions are stored in ``index_dtype`` (int32 whenever nnz < 2³¹) to keep
    the O(nnz) temporaries small beside the n×n output.
    """
    n = X.shape[1]
    positions = sp.csr_matrix((np.arange(X.nnz, dtype=index_dtype), X.indices, X.indptr),
                              shape=X.shape).tocsc()
    row_ends = np.repeat(X.indptr[1:], np.diff(X.indptr))
    cost = np.bincount(X.indices, weights=row_ends - np.arange(X.nnz), minlength=n)
    del row_ends
    order = np.argsort(-cost, kind="stable").astype(np.int64)
    order = order[cost[order] > 0]
    return (positions.indptr.astype(np.int64), positions.indices.astype(index_dtype, copy=False),
            positions.data, order)


def _weights(X: sp.csr_matrix, dtype: np.dtype) -> np.ndarray:
    """The stored values in the output's dtype; values beyond its range are refused, not made inf."""
    with np.errstate(over="ignore"):
        data = X.data.astype(dtype, copy=False)
    if not np.isfinite(data).all():
        raise ValueError(f"weights up to {float(np.abs(X.data).max()):.6g} do not fit in {np.dtype(dtype).name}; "
                         "pass dtype=np.float64 or scale the weights down")
    return data


def gram_into(X: sp.csr_matrix, out: np.ndarray, *, weighted: bool, num_threads: int,
              mirror: bool = True) -> np.ndarray:
    """Add XᵀX for a canonical CSR ``X`` into ``out`` (C-ordered n×n; zeroed for G itself).

    Adding, not overwriting, lets a caller sum the Grams of user partitions in
    one buffer (:mod:`lae_fast.distributed`).

    With ``mirror=False`` only the upper triangle (row-major, j >= i) is written,
    which is all that the Cholesky inverse reads. Extra memory: O(nnz), never n×n.
    """
    if X.nnz:
        # one index type for CSR indices, indptr and positions: int32 unless some value needs more
        wide = X.indices.dtype == np.int64 or X.nnz > np.iinfo(np.int32).max
        index_dtype = np.dtype(np.int64 if wide else np.int32)
        indices = X.indices.astype(index_dtype, copy=False)
        indptr = X.indptr.astype(index_dtype, copy=False)
        data = _weights(X, out.dtype) if weighted else np.ones(1, dtype=out.dtype)
        item_ptr, item_user, item_pos, order = _item_major_view(X, index_dtype)
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
    out = zeros_checked((n, n), dt, what=f"the {n}x{n} {dt.name} Gram matrix")
    return gram_into(X, out, weighted=weighted, num_threads=resolve_num_threads(num_threads))


def gram_buffer(X: sp.csr_matrix, dtype: np.dtype, num_threads: int, *, what: str) -> np.ndarray:
    """The one n×n buffer of a dense fit, holding the upper triangle of G = XᵀX (memory checked first).

    ``X`` is canonical binary CSR (as :func:`lae_fast._validation.check_interactions` returns).
    """
    n = X.shape[1]
    A = zeros_checked((n, n), dtype, what=f"{what} ({n} items, one {n}x{n} {np.dtype(dtype).name} matrix)")
    return gram_into(X, A, weighted=False, num_threads=num_threads, mirror=False)
