"""Top-N ranking of items for users: scores x_u·B, masking and selection in one kernel."""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np
import scipy.sparse as sp

from . import _rank
from ._threads import resolve_num_threads, sequential_blas
from ._validation import as_index_array, check_int, check_interactions
from .linalg import check_fits_in_memory

#: Users scored together against each column block of B (their heaps stay live meanwhile).
USERS_PER_GROUP = 256
#: Columns of B per block: the accumulator (16 KiB in float32) stays in L1/L2, and each
#: history row of B is read in runs long enough for the hardware prefetcher. Measured
#: in bench/: narrower, cache-sized blocks were slower (scattered short reads).
COLUMN_BLOCK = 4096


def _column_block(n: int) -> int:
    return int(max(1, min(n, COLUMN_BLOCK)))


def check_N(N: Any, n_items: int) -> int:
    """The length of a top-N list: ``N`` (an integer >= 0) capped at ``n_items``.

    A list can hold each item at most once, so a larger N would only add padding:
    capping it first means an absurd N (2³¹ − 1 on an 80-item model) costs nothing.
    """
    return min(check_int(N, name="N", low=0), int(n_items))


def candidate_mask(n_items: int, *, filter_items: Any = None, items: Any = None) -> np.ndarray:
    """uint8 mask of items that may be recommended: the whitelist minus the filter."""
    if items is not None:
        allowed = np.zeros(n_items, dtype=np.uint8)
        allowed[as_index_array(items, name="items", n=n_items)] = 1
    else:
        allowed = np.ones(n_items, dtype=np.uint8)
    if filter_items is not None:
        allowed[as_index_array(filter_items, name="filter_items", n=n_items)] = 0
    return allowed


def topk(user_items: Any, B: np.ndarray, N: int = 10, *, filter_already_liked_items: bool = True,
         filter_items: Any = None, items: Any = None, binarize: bool = True,
         num_threads: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Best ``N`` items for each user row by score :math:`x_u B`.

    Parameters
    ----------
    user_items : sparse matrix, shape (n_users, n_items)
        One history row per user.
    B : ndarray or scipy sparse matrix, shape (n_items, n_items)
        Item-item weights, row-major (C-contiguous is fastest; anything else is copied). A sparse
        B (the neighbourhood route, a pruned B) is ranked by its rows in CSR form; items a history
        does not reach score 0 and compete like any other.
    N : int, default=10
        Number of items per user; at most ``n_items`` are returned.
    filter_already_liked_items : bool, default=True
        Remove each user's own items from their list.
    filter_items : array-like of int, optional
        Item indices removed for every user (duplicates and any order are fine).
    items : array-like of int, optional
        Rank only among these item indices.
    binarize : bool, default=True
        Treat every stored history entry as 1 (as ``fit`` does).
    num_threads : int, optional

    Returns
    -------
    ids : ndarray of int32, shape (n_users, min(N, n_items))
        Item indices, best first; ties go to the lower index.
    scores : ndarray of float32, shape (n_users, min(N, n_items))
        Their scores. A user with fewer candidates than columns (masked items)
        gets padding of id -1 and score -inf: a masked item is never returned.
    """
    if sp.issparse(B):
        from .neighbors import topk_sparse  # neighbors imports this module: a top-level import would cycle

        return topk_sparse(user_items, B, N, filter_already_liked_items=filter_already_liked_items,
                           filter_items=filter_items, items=items, num_threads=num_threads)
    if B.ndim != 2 or B.shape[0] != B.shape[1]:
        raise ValueError(f"B must be square, got shape {B.shape}")
    n = B.shape[1]
    N = check_N(N, n)
    X = check_interactions(user_items, name="user_items", n_items=n, binarize=binarize)
    if B.dtype not in (np.float32, np.float64):
        B = B.astype(np.float32)
    B = np.ascontiguousarray(B)
    allowed = candidate_mask(n, filter_items=filter_items, items=items)
    n_users = X.shape[0]
    check_fits_in_memory(n_users * N * 8, what=f"the top-{N} lists of {n_users} users")
    ids = np.empty((n_users, N), dtype=np.int32)
    scores = np.empty((n_users, N), dtype=np.float32)
    if n_users == 0 or N == 0:
        return ids, scores
    # int64 everywhere in the kernel: one code path, and row offsets idx*n cannot overflow
    indices = X.indices.astype(np.int64) if X.nnz else np.zeros(1, dtype=np.int64)
    indptr = X.indptr.astype(np.int64)
    data = X.data.astype(B.dtype, copy=False) if X.nnz else np.zeros(1, dtype=B.dtype)
    sizes = np.empty(n_users, dtype=np.int32)
    nt = resolve_num_threads(num_threads)
    with sequential_blas():
        _rank.rank_topk(indptr, indices, data, B, allowed, bool(filter_already_liked_items),
                        ids, scores, sizes, USERS_PER_GROUP, _column_block(n), nt)
    return ids, scores


def one_hot_rows(item_indices: np.ndarray, n_items: int) -> sp.csr_matrix:
    """One CSR row per item, holding just that item: the history of a single-item user."""
    k = item_indices.size
    return sp.csr_matrix((np.ones(k, dtype=np.float32), item_indices.astype(np.int32),
                          np.arange(k + 1, dtype=np.int32)), shape=(k, n_items))
