"""Neighbourhood linear autoencoders: every column of B solved on a small support, never n×n.

The EASE-family objective separates over the columns of B. Restricting column j
to a support :math:`S_j \\ni j` (zero elsewhere) leaves one small SPD system per
column, with :math:`P_S = (G_{SS} + \\mathrm{diag}\\,\\gamma_S)^{-1}` and
:math:`\\gamma_j = \\lambda + \\frac{p}{1-p} G_{jj}`:

.. math::

    b_S = e_j - P_S e_j \\cdot \\max\\big(\\gamma_j, (1 - \\xi) / (P_S)_{jj}\\big)

and for L3AE, with :math:`\\alpha = \\lambda_X + \\lambda_E`,
:math:`P_S = (G_{SS} + \\alpha I)^{-1}` and s the text column j restricted to S,

.. math::

    b_S = \\lambda_E P_S s - P_S e_j \\frac{1 + \\lambda_E (P_S s)_j}{(P_S)_{jj}}, \\qquad b_j = 0.

The text column never needs n×n memory (Woodbury): with M = (λ_F I_d + EᵀE)⁻¹,
h_j = M e_j (row j of H = E M) and q_j = e_jᵀ h_j, :math:`s_{ij} = e_i^\\top h_j / (1 - q_j)`
for i ≠ j and s_jj = 0. With S_j = all items these are the dense models exactly.

Supports come from co-occurrence candidates: the top-K items by cosine
:math:`G_{ij} / \\sqrt{G_{ii} G_{jj}}`, found from X without G
(:func:`cooccurrence_candidates`). ``refine=True`` solves on the top-K first
(K = :func:`refine_width` (m) = 1.5 m unless given; only the order of the b_ij matters
there, so :data:`REFINE_ITERATIONS` steps of Jacobi-preconditioned conjugate
gradients stand in for the Cholesky), keeps the m items with the largest
:math:`|b_{ij}| \\sqrt{G_{ii}}` (i ≠ j: the norm of :math:`b_{ij} x_i`, what item i adds to
column j's reconstruction; on MovieLens-1M it keeps more of the dense model's recall@20 than
|b_ij| alone, ``bench/neighbors_accuracy.py``) and solves again, exactly, on those m (+ j).

Accuracy of the candidate-list source: G_SS is exact only for the pairs that one
of the two lists holds; the others are taken as 0, which can leave G_SS far from
PSD and the column near-singular or not factorisable (then retried with a raised
ridge, see :func:`solve_columns`). ``bench/neighbors_accuracy.py`` measures it on
MovieLens-1M (strong split, EASE and RDLAE, m=256, section
``neighbors_accuracy`` of bench/RESULTS.md): lists 3x the first support are
as accurate as the dense G, 2x lose a few percent and 1.5x or less collapse.
Build the lists at least :data:`LOOKUP_FACTOR` (3) times wider than the widest
support (narrower lists warn), or pass the dense G where n×n fits.

Typical use::

    cands = cooccurrence_candidates(X, 1155)                     # lists 3x the widest support
    B = solve_columns(cands, l2=800.0, m=256, refine=True).B     # CSC, n×n
    ids, scores = topk_sparse(X, ranking_csr(B), 20)
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import scipy.sparse as sp

from . import _neighbors
from ._threads import blas_threads, resolve_num_threads, sequential_blas
from ._memory import available_memory, check_fits_in_memory
from ._validation import check_dtype, check_embeddings, check_int, check_interactions
from .models._closed_form import check_family_params, check_l3ae_params, ridge_diagonal, text_factors
from .ranking import candidate_mask, check_N

#: Columns handed to the solve kernel at once (their supports and values are the only
#: per-block memory; the output grows block by block).
BLOCK_SIZE = 2048
#: Candidate lists should be this many times wider than the supports they serve (see the
#: module docstring, "Accuracy of the candidate-list source"); narrower lists warn.
LOOKUP_FACTOR = 3
#: Conjugate-gradient steps that rank the refinement's first pass (0: factor it exactly). Only the
#: order of |b| on the first support matters there: on MovieLens-1M 8 steps keep the accuracy of the
#: exact first solve and nearly all of its supports (bench/neighbors_accuracy.py shows the share), at a
#: fraction of a Cholesky's cost.
REFINE_ITERATIONS = 8
#: Size of the float64 score block behind :func:`text_candidates` (entries).
_TEXT_BLOCK_ENTRIES = 1 << 22

Progress = Callable[[int, int], None]


def refine_width(m: int) -> int:
    """Candidates of the first, refining solve for m kept neighbours: K = m + ⌈m/2⌉.

    On MovieLens-1M K = 1.5m keeps the accuracy of K = 2m (bench/neighbors_accuracy.py)
    with 56% of its G_SS to build (and (3/4)³ = 42% of its factorization where the first
    pass is solved exactly, ``refine_iterations=0``).
    """
    return m + (m + 1) // 2


# -- candidate lists -------------------------------------------------------------------------------
@dataclass(frozen=True)
class CandidateLists:
    """Each item's top-K co-occurring items by cosine, best first.

    Attributes
    ----------
    indices : ndarray of int32, shape (n_items, K)
        Row i: items j ≠ i with G_ij > 0, by cosine G_ij / sqrt(G_ii G_jj) descending,
        ties to the lower index; padded with -1.
    counts : ndarray of float32, shape (n_items, K)
        The co-occurrence counts G_ij of those items; padded with 0.
    item_counts : ndarray of float64, shape (n_items,)
        G_ii, the number of users of each item.
    """

    indices: np.ndarray
    counts: np.ndarray
    item_counts: np.ndarray
    _lookup: Optional["_FlatLists"] = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("indices", "counts", "item_counts"):  # the kernels read C-ordered buffers
            object.__setattr__(self, name, np.ascontiguousarray(getattr(self, name)))
        if self.indices.ndim != 2 or self.indices.dtype != np.int32:
            raise ValueError(f"indices must be a 2-D int32 array, got {self.indices.dtype} {self.indices.shape}")
        if self.counts.shape != self.indices.shape or self.counts.dtype != np.float32:
            raise ValueError(f"counts must be float32 of shape {self.indices.shape}, "
                             f"got {self.counts.dtype} {self.counts.shape}")
        if self.item_counts.shape != (self.indices.shape[0],):
            raise ValueError(f"item_counts must have shape ({self.indices.shape[0]},), got {self.item_counts.shape}")
        _check_list_items(self.indices)

    @property
    def n_items(self) -> int:
        return self.indices.shape[0]

    @property
    def k(self) -> int:
        return self.indices.shape[1]

    def lookup_lists(self, num_threads: int, reserve: int = 0) -> "_FlatLists":
        """The lists as the G_SS look-up reads them: oriented (:func:`_oriented_lists`) where the copy
        and ``reserve`` bytes take at most half the memory available, else as they are. Made once
        and kept with the lists, so that a tuning grid, and the column blocks shipped to dask
        workers with them, reuse it."""
        if self._lookup is None:
            flat = _flat_lists(self)
            object.__setattr__(self, "_lookup", _oriented_lists(self, flat, num_threads, reserve) or flat)
        return self._lookup


def _check_list_items(indices: np.ndarray, rows: int = 1 << 16) -> None:
    """Every row: item ids in [0, n), then only -1 padding (the kernels index with them unchecked)."""
    n = indices.shape[0]
    for r0 in range(0, n, rows):  # in blocks: a boolean copy of all n×k entries would be large
        block = indices[r0:r0 + rows]
        item = block >= 0
        bad = (block < -1) | (block >= n)
        bad[:, 1:] |= item[:, 1:] & ~item[:, :-1]  # an item after padding
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise ValueError(f"candidate list {r0 + r} holds {block[r, c]} at position {c}: each list holds item "
                             f"ids in [0, {n}) first, then only -1 padding")


def _check_k(k: Any, name: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
        raise ValueError(f"{name} must be a positive integer, got {k!r}")
    if k > np.iinfo(np.int32).max:
        raise ValueError(f"{name}={k} is too large; at most {np.iinfo(np.int32).max}")
    return int(k)


def route_bytes(n: int, m: int, k: int, dtype: Any) -> int:
    """Peak bytes of a neighbourhood fit besides X: the (n, k) candidate lists, and B (n columns of
    m + 1 entries) held three times over while it is assembled and turned into ranking CSR. The
    look-up's oriented copy of the lists is made only where it and all that take at most half the
    memory available."""
    return int(n * k * 8 + b_bytes(n, m + 1, dtype) + 4 * 8 * (n + 1))


def _raise_status(status: int, what: str) -> None:
    if status == _neighbors.ERR_MEMORY:
        raise MemoryError(f"could not allocate the per-thread scratch of {what}")
    if status != _neighbors.OK:
        raise RuntimeError(f"{what} failed with status {status}")


def _empty_lists(n: int, k: int) -> Tuple[np.ndarray, np.ndarray]:
    check_fits_in_memory(n * k * 8, what=f"the top-{k} candidate lists of {n} items")
    return np.full((n, k), -1, dtype=np.int32), np.zeros((n, k), dtype=np.float32)


def cooccurrence_candidates(X: Any, k: int, *, num_threads: Optional[int] = None) -> CandidateLists:
    """Top-``k`` co-occurring items of every item by cosine, straight from X (no n×n).

    Parameters
    ----------
    X : sparse matrix or array-like, shape (n_users, n_items)
        Interactions; every stored positive value counts as 1.
    k : int
        Candidates per item (more than exist is fine: the rest is padding).
    num_threads : int, optional

    Returns
    -------
    CandidateLists

    Notes
    -----
    Row i of G = XᵀX is accumulated exactly, per thread, in a dense length-n
    counter plus a list of the entries it touched (only those are reset), from the
    users of item i; the best k entries j ≠ i with G_ij > 0 by
    :math:`c_{ij} = G_{ij} / \\sqrt{G_{ii} G_{jj}}` (rounded to float32, ties to the
    lower index) are kept in a bounded heap. Work :math:`\\sum_u |x_u|^2`, memory
    O(n·k + nnz); the items are processed heaviest first.
    """
    k = _check_k(k)
    X = check_interactions(X)
    n = X.shape[1]
    if X.shape[0] > np.iinfo(np.int32).max:
        raise ValueError(f"X has {X.shape[0]} users; at most {np.iinfo(np.int32).max}")
    check_fits_in_memory(n * k * 8 + X.nnz * 24, what=f"the top-{k} co-occurrence candidates of {n} items")
    indices, counts = _empty_lists(n, k)
    C = X.tocsc()
    item_counts = np.diff(C.indptr).astype(np.float64)
    if X.nnz:
        lengths = np.diff(X.indptr)
        # item i costs the summed history lengths of its users
        cost = np.bincount(X.indices, weights=np.repeat(lengths, lengths).astype(np.float64), minlength=n)
        order = np.argsort(-cost, kind="stable").astype(np.int64)
        order = order[cost[order] > 0]
        status = _neighbors.cooc_topk(X.indptr.astype(np.int64), X.indices.astype(np.int32),
                                      C.indptr.astype(np.int64), C.indices.astype(np.int32), order,
                                      indices, counts, resolve_num_threads(num_threads))
        _raise_status(status, "the co-occurrence candidates")
    return CandidateLists(indices, counts, item_counts)


def candidates_from_rows(rows: Any, first: int, item_counts: Any, k: int, *,
                         num_threads: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
    """:func:`cooccurrence_candidates` for items ``first .. first + len(rows) - 1`` whose rows of G are given.

    The rows of G = XᵀX may be summed elsewhere (e.g. over user shards, as
    :mod:`lae_fast.distributed_neighbors` does): with the same counts the lists are
    identical to those of :func:`cooccurrence_candidates`.

    Parameters
    ----------
    rows : sparse matrix, shape (r, n_items)
        Row t: the co-occurrence counts G_ij of item i = first + t.
    first : int
        Item of the first row.
    item_counts : array-like of shape (n_items,)
        G_ii of every item (its number of users).
    k : int
    num_threads : int, optional

    Returns
    -------
    indices : ndarray of int32, shape (r, k)
    counts : ndarray of float32, shape (r, k)
        As the rows of :class:`CandidateLists`.
    """
    k = _check_k(k)
    R = sp.csr_matrix(rows, dtype=np.float64)
    R.sum_duplicates()  # the kernel keeps one position per item
    counts = np.ascontiguousarray(item_counts, dtype=np.float64)
    first = check_int(first, name="first", low=0)
    if R.shape[1] != counts.size or first + R.shape[0] > counts.size:
        raise ValueError(f"rows {first}..{first + R.shape[0] - 1} of a {counts.size}-item G do not fit "
                         f"rows of width {R.shape[1]}")
    indices, out = _empty_lists(R.shape[0], k)
    if R.nnz:
        _raise_status(_neighbors.csr_topk(R.indptr.astype(np.int64), R.indices.astype(np.int32), R.data, first,
                                          counts, indices, out, resolve_num_threads(num_threads)),
                      "the candidate selection")
    return indices, out


@dataclass(frozen=True)
class RelabelledGram:
    """A dense G = XᵀX whose row and column r are item ``order[r]`` (a permutation of the items).

    The neighbourhood route gathers G_SS for every support from the dense G, an entry per
    cache line where the items are scattered over G. Its fit builds G with the items in
    popularity order (:func:`popularity_order`, least used first): the supports, mostly
    popular items, then sit in one corner of G, and the gather reads every row forwards and
    touches fewer lines, more of them cached (``python bench/bench_neighbors.py gather``). The
    entries are the same, so B is the same to the last bit; the lists and B come out in item order.
    """

    G: np.ndarray
    order: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "G", np.asarray(self.G))
        if self.G.ndim != 2:
            raise ValueError(f"G must be a square n_items x n_items matrix, got shape {self.G.shape}")
        order = np.asarray(self.order)
        n = self.G.shape[0]
        if order.shape != (n,) or not np.array_equal(np.sort(order), np.arange(n)):
            raise ValueError(f"order must be a permutation of the {n} items, got {order.shape} {order.dtype}")
        object.__setattr__(self, "order", np.ascontiguousarray(order, dtype=np.int32))
        object.__setattr__(self, "_rank", _inverse(self.order))

    @property
    def n_items(self) -> int:
        return self.G.shape[0]

    @property
    def rank(self) -> np.ndarray:
        """Row (and column) of each item in ``G``: the inverse of ``order`` (computed once)."""
        return self._rank

    @property
    def item_counts(self) -> np.ndarray:
        """G_ii in item order (float64)."""
        return self.G.diagonal()[self.rank].astype(np.float64)


def popularity_order(item_counts: Any) -> np.ndarray:
    """The items by their number of users (G_ii), least first, ties to the lower index (int32).

    The column solves build every G_SS with S in this order (:func:`_rows_to_supports`),
    whatever the source, so that B does not depend on where G_SS is read from. Least used
    first because an oriented list (:func:`_oriented_lists`) belongs to the less used item
    of each pair: its hits then land in its own row of G_SS, not scattered down a column.
    """
    return np.argsort(np.asarray(item_counts, dtype=np.float64), kind="stable").astype(np.int32)


def _inverse(order: np.ndarray) -> np.ndarray:
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size, dtype=order.dtype)
    return rank


def relabel_columns(X: sp.csr_matrix, order: np.ndarray) -> sp.csr_matrix:
    """X with column r holding item ``order[r]`` (canonical CSR, for the Gram of a :class:`RelabelledGram`)."""
    Xr = sp.csr_matrix((X.data, _inverse(np.asarray(order, dtype=np.int32))[X.indices], X.indptr), shape=X.shape)
    Xr.sort_indices()
    return Xr


def n_items_of(source: Any) -> int:
    """Items of a neighbourhood source (lists, a relabelled G, or a plain square G)."""
    if isinstance(source, (CandidateLists, RelabelledGram)):
        return source.n_items
    return int(np.shape(source)[0])


def item_counts_of(source: Any) -> np.ndarray:
    """G_ii in item order, as float64, of a neighbourhood source."""
    if isinstance(source, (CandidateLists, RelabelledGram)):
        return source.item_counts
    return np.asarray(np.asarray(source).diagonal(), dtype=np.float64)


def _check_gram(G: Any, dtype: Optional[np.dtype] = None) -> RelabelledGram:
    """A square, finite G as a C-ordered float array (of ``dtype`` if given; copies only if needed),
    relabelled by the identity unless it already is a :class:`RelabelledGram`."""
    if isinstance(G, RelabelledGram):
        return RelabelledGram(_check_dense(G.G, dtype), G.order)
    G = _check_dense(G, dtype)
    return RelabelledGram(G, np.arange(G.shape[0], dtype=np.int32))


def _check_dense(G: Any, dtype: Optional[np.dtype]) -> np.ndarray:
    G = np.asarray(G)
    if G.ndim != 2 or G.shape[0] != G.shape[1] or G.shape[0] == 0:
        raise ValueError(f"G must be a non-empty square n_items x n_items matrix, got shape {G.shape}")
    if G.dtype.kind not in "biuf":
        raise TypeError(f"G must hold real numbers, got dtype {G.dtype}")
    target = dtype if dtype is not None else (G.dtype if G.dtype in (np.float32, np.float64) else np.float64)
    if G.dtype != target or not G.flags.c_contiguous:
        check_fits_in_memory(G.size * np.dtype(target).itemsize, what=f"a {np.dtype(target).name} copy of G")
        G = np.ascontiguousarray(G, dtype=target)
    rows = max(1, (1 << 24) // G.shape[0])  # row blocks: no n×n boolean temporary
    for r0 in range(0, G.shape[0], rows):
        if not np.isfinite(G[r0:r0 + rows]).all():
            raise ValueError("G holds NaN or infinite values; a Gram matrix of finite interactions never does")
    return G


def _gram_candidates(G: RelabelledGram, k: int, num_threads: int) -> CandidateLists:
    """:func:`candidates_from_dense` on a checked G."""
    indices, counts = _empty_lists(G.n_items, k)
    item_counts = G.item_counts
    _raise_status(_neighbors.gram_topk(G.G, G.order, item_counts, indices, counts, num_threads),
                  "the dense candidate selection")
    return CandidateLists(indices, counts, item_counts)


def candidates_from_dense(G: Any, k: int, *, num_threads: Optional[int] = None) -> CandidateLists:
    """:func:`cooccurrence_candidates` for a dense symmetric G = XᵀX that already exists.

    Same selection rule (cosine on the counts of G, ties to the lower index, only
    G_ij > 0), so for G = XᵀX both give identical lists.

    Parameters
    ----------
    G : ndarray of shape (n_items, n_items) or RelabelledGram
        Full symmetric co-occurrence counts.
    k : int
    num_threads : int, optional

    Returns
    -------
    CandidateLists
    """
    return _gram_candidates(_check_gram(G), _check_k(k), resolve_num_threads(num_threads))


def text_candidates(E: Any, H: Any, inv_one_minus_q: Any, k: int, *, columns: Optional[Tuple[int, int]] = None,
                    num_threads: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
    """For every item j, the ``k`` items i ≠ j with the largest text weight s_ij.

    :math:`s_{ij} = e_i^\\top h_j / (1 - q_j)`, the off-diagonal of the phase-1
    text matrix S of L3AE (see :func:`lae_fast.models.l3ae.text_factors`, which
    returns H = E M and 1/(1 − q)). Computed for blocks of columns with one GEMM
    each (n × block × d), selected with a bounded heap; never n×n.

    Parameters
    ----------
    E : ndarray of shape (n_items, d)
        Item embeddings.
    H : ndarray of shape (n_items, d)
        E M, row j = h_j.
    inv_one_minus_q : ndarray of shape (n_items,)
        1 / (1 − q_j).
    k : int
    columns : (int, int), optional
        Only the items ``first <= j < stop`` (rows of the result); default all.
    num_threads : int, optional

    Returns
    -------
    indices : ndarray of int32, shape (n_items, k)
        Row j: the items i, by s_ij descending (as float32), ties to the lower index.
    scores : ndarray of float32, shape (n_items, k)
        Their s_ij.
    """
    k = _check_k(k)
    n = np.shape(E)[0] if np.ndim(E) >= 1 else 0
    E = check_embeddings(E, n, name="E")
    H = check_embeddings(H, n, name="H")
    if H.shape != E.shape:
        raise ValueError(f"H must have the shape of E {E.shape}, got {H.shape}")
    inv = np.ascontiguousarray(inv_one_minus_q, dtype=np.float64)
    if inv.shape != (n,) or not np.isfinite(inv).all():
        raise ValueError(f"inv_one_minus_q must be {n} finite values, got shape {inv.shape}")
    nt = resolve_num_threads(num_threads)
    first, stop = _column_range(columns, n)
    check_fits_in_memory((stop - first) * k * 8 + _TEXT_BLOCK_ENTRIES * 8,
                         what=f"the top-{k} text candidates of {stop - first} items")
    indices = np.empty((stop - first, k), dtype=np.int32)
    scores = np.empty((stop - first, k), dtype=np.float32)
    step = max(1, min(n, _TEXT_BLOCK_ENTRIES // n))
    for c0 in range(first, stop, step):
        cols = np.arange(c0, min(stop, c0 + step), dtype=np.int64)
        with blas_threads(nt):
            block = H[cols] @ E.T                      # row r: e_iᵀ h_j for j = cols[r]
        block *= inv[cols, None]
        rows = slice(c0 - first, c0 - first + cols.size)
        _raise_status(_neighbors.rows_topk(block, cols, indices[rows], scores[rows], nt), "text candidates")
    return indices, scores


def _column_range(columns: Optional[Tuple[int, int]], n: int) -> Tuple[int, int]:
    """``(first, stop)`` of a checked ``columns`` pair; all n columns for None."""
    if columns is None:
        return 0, n
    try:
        first, stop = (int(check_int(c, name="columns", low=0)) for c in columns)
    except (TypeError, ValueError) as err:
        raise ValueError(f"columns must be a pair (first, stop) of item positions, got {columns!r}") from err
    if not first < stop <= n:
        raise ValueError(f"columns=({first}, {stop}) must satisfy 0 <= first < stop <= n_items = {n}")
    return first, stop


# -- supports --------------------------------------------------------------------------------------
Supports = Tuple[np.ndarray, np.ndarray, np.ndarray]


def _rows_to_supports(cols: np.ndarray, parts: Sequence[np.ndarray], order: np.ndarray, rank: np.ndarray
                      ) -> Supports:
    """Flat supports (ptr, idx) of the columns ``cols`` and the offset of j in each: j and the items
    of its rows in ``parts`` (each (len(cols), w), -1 = none), without duplicates, in popularity
    ``order`` (``rank`` its inverse: a G_SS gathered from the route's G, stored in that order,
    then reads every row of G forwards, within its corner of popular items)."""
    rows = np.concatenate([cols[:, None].astype(np.int64)] + [np.asarray(p, dtype=np.int64) for p in parts],
                          axis=1)
    rows = np.where(rows >= 0, rank[np.maximum(rows, 0)], -1)
    rows.sort(axis=1)
    keep = rows >= 0
    keep[:, 1:] &= rows[:, 1:] != rows[:, :-1]
    ptr = np.zeros(cols.size + 1, dtype=np.int64)
    np.cumsum(keep.sum(axis=1), out=ptr[1:])
    idx = order[rows[keep]]
    return ptr, idx, _jpos(cols, ptr, idx, rank)


def _pattern_supports(pattern: sp.csc_matrix, cols: np.ndarray, rank: np.ndarray) -> Supports:
    """:func:`_rows_to_supports` for the consecutive columns ``cols`` of a CSC pattern."""
    ptr = pattern.indptr[cols[0]:cols[-1] + 2].astype(np.int64)
    idx = pattern.indices[ptr[0]:ptr[-1]]
    owner = np.repeat(np.arange(cols.size), np.diff(ptr))
    idx = idx[np.lexsort((rank[idx], owner))].astype(np.int32)
    ptr -= ptr[0]
    return ptr, idx, _jpos(cols, ptr, idx, rank)


def _jpos(cols: np.ndarray, ptr: np.ndarray, idx: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Offset of column j within its support (in popularity order; ``rank`` = position in it)."""
    owner = np.repeat(np.arange(cols.size), np.diff(ptr))
    return np.bincount(owner, weights=rank[idx] < rank[cols[owner]], minlength=cols.size).astype(np.int64)


def _explicit_supports(supports: Any, n: int) -> sp.csc_matrix:
    """Column j's stored rows, plus j itself, as a canonical CSC pattern."""
    P = sp.csc_matrix(supports)
    if P.shape != (n, n):
        raise ValueError(f"supports must be an n_items x n_items pattern ({n}x{n}), got shape {P.shape}")
    P = sp.csc_matrix((np.ones(P.nnz), P.indices, P.indptr), shape=P.shape) + sp.identity(n, format="csc")
    P.sum_duplicates()
    P.sort_indices()
    return P


# -- per-column solves -----------------------------------------------------------------------------
@dataclass
class ColumnSolution:
    """The result of :func:`solve_columns` / :func:`solve_columns_l3ae`.

    Attributes
    ----------
    B : scipy.sparse.csc_matrix, shape (n_items, n_items)
        Column j holds exactly the entries of its final support S_j (explicit zeros
        included), except a diagonal entry that is exactly 0 (EASE, L3AE), which is
        left out. Scores are x_u·B; see :func:`ranking_csr` for ranking.
    retried_columns : ndarray of int64
        Columns whose Cholesky failed and that were solved with a raised ridge
        (see :func:`solve_columns`, Notes).
    seconds : dict
        Wall time of each step.
    """

    B: sp.csc_matrix
    retried_columns: np.ndarray
    seconds: Dict[str, float] = field(default_factory=dict)

    @property
    def n_retried(self) -> int:
        return int(self.retried_columns.size)

    def block(self, first: int, stop: int) -> "ColumnBlock":
        """Columns ``first .. stop - 1`` alone (what a task solving them sends back)."""
        lo, hi = self.B.indptr[first], self.B.indptr[stop]
        mine = (self.retried_columns >= first) & (self.retried_columns < stop)
        return ColumnBlock(first, stop, self.B.indptr[first:stop + 1] - lo, self.B.indices[lo:hi],
                           self.B.data[lo:hi], self.retried_columns[mine], dict(self.seconds))


@dataclass
class ColumnBlock:
    """Columns ``first .. stop - 1`` of a :class:`ColumnSolution`, CSC pieces (indptr from 0)."""

    first: int
    stop: int
    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    retried_columns: np.ndarray
    seconds: Dict[str, float] = field(default_factory=dict)


def join_column_blocks(blocks: Sequence[ColumnBlock], n: int) -> ColumnSolution:
    """The n-column solution made of blocks that cover ``0 .. n - 1`` once (any order): the same
    arrays, bit for bit, as solving every column in one process. Seconds are summed per step."""
    blocks = sorted(blocks, key=lambda b: b.first)
    stops = [0] + [b.stop for b in blocks]
    if [b.first for b in blocks] != stops[:-1] or stops[-1] != n:
        raise ValueError(f"the column blocks {[(b.first, b.stop) for b in blocks]} do not cover 0..{n - 1} once")
    ptr = np.zeros(n + 1, dtype=np.int64)
    offset = 0
    for b in blocks:
        ptr[b.first + 1:b.stop + 1] = b.indptr[1:] + offset
        offset += int(b.indptr[-1])
    B = sp.csc_matrix((np.concatenate([b.data for b in blocks]), np.concatenate([b.indices for b in blocks]), ptr),
                      shape=(n, n))
    B.has_sorted_indices = True
    seconds: Dict[str, float] = {}
    for b in blocks:
        for step, sec in b.seconds.items():
            seconds[step] = seconds.get(step, 0.0) + sec
    return ColumnSolution(B, np.concatenate([b.retried_columns for b in blocks]).astype(np.int64), seconds)


@dataclass(frozen=True)
class _FlatLists:
    """Item a's list is ``items[start[a]:start[a] + length[a]]`` with ``counts`` alongside."""

    start: np.ndarray
    length: np.ndarray
    items: np.ndarray
    counts: np.ndarray

    @property
    def longest(self) -> int:
        """Entries of the longest list (it sizes the look-up's per-thread scratch)."""
        return int(self.length.max()) if self.length.size else 0


def _flat_lists(lists: CandidateLists) -> _FlatLists:
    """The candidate lists as they are (each pair known from both its items' lists is read twice)."""
    n, k = lists.indices.shape
    return _FlatLists(np.arange(n, dtype=np.int64) * k,
                      np.count_nonzero(lists.indices >= 0, axis=1).astype(np.int64),
                      lists.indices.reshape(-1), lists.counts.reshape(-1))


def _oriented_lists(lists: CandidateLists, flat: _FlatLists, num_threads: int,
                    reserve: int = 0) -> Optional[_FlatLists]:
    """The same pairs, each once: in the list of its less popular item (fewer users; ties to the
    lower index), with the count either list gives. The G_SS look-up then scans a little over half
    as many entries (on the amazon-book shape) and builds the same A. It only speeds the fit up,
    so it takes at most half the memory still available, together with ``reserve`` bytes (what
    the rest of the fit needs); where it would take more, None: the lists are then scanned as
    they are, with the same result (a million-item fit, whose lists fill most of a 24 GB machine,
    keeps its peak that way)."""
    n = lists.n_items
    chunks = max(1, min(num_threads, 64))
    need = int(flat.length.sum()) * 8 + (chunks + 3) * (n + 1) * 8
    available = available_memory()
    if n == 0 or (available is not None and need + reserve > available // 2):
        return None
    # the supports' own order (least used first): each pair's list then belongs to the support's earlier item
    rank = _inverse(popularity_order(lists.item_counts)).astype(np.int64)
    up = np.zeros(n, dtype=np.int64)
    down = np.zeros((chunks, n), dtype=np.int64)
    _neighbors.orient_counts(lists.indices, lists.counts, flat.length, rank, up, down, num_threads)
    start = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(up + down.sum(axis=0), out=start[1:])
    if start[-1] == 0:
        return None
    # chunk c's down entries to o go after o's up entries and those of chunks 0 .. c-1
    cursor = np.cumsum(down, axis=0) - down + (start[:-1] + up)
    del down
    items = np.empty(start[-1], dtype=np.int32)
    counts = np.empty(start[-1], dtype=np.float32)
    length = np.empty(n, dtype=np.int64)
    _raise_status(_neighbors.orient_fill(lists.indices, lists.counts, flat.length, rank, start, cursor, up,
                                         items, counts, length, num_threads), "orienting the candidate lists")
    return _FlatLists(start[:-1], length, items, counts)


class _Solver:
    """The fixed arguments of ``_neighbors.solve_block`` for one fit; called per block of columns."""

    def __init__(self, source: Union[CandidateLists, RelabelledGram], ridge: np.ndarray, dtype: np.dtype,
                 num_threads: int, *, xi: float = 0.0, text: Optional[Tuple] = None, l2_e: float = 0.0,
                 refine_iterations: int = REFINE_ITERATIONS, reserve: int = 0):
        one = np.zeros((1, 1), dtype=np.float64)
        self.dense = not isinstance(source, CandidateLists)
        self.diag = source.item_counts
        if not self.dense:
            self.G = np.zeros((1, 1), dtype=dtype)
            self.row_of = np.zeros(1, np.int32)
            self.lists = source.lookup_lists(num_threads, reserve)
            self.longest = self.lists.longest
        else:
            self.G, self.row_of = source.G, source.rank
            self.lists = _FlatLists(np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(1, np.int32),
                                    np.zeros(1, np.float32))
            self.longest = 0
        self.ridge = np.ascontiguousarray(ridge, dtype=np.float64)
        self.dtype, self.nt, self.xi, self.l2_e = dtype, num_threads, xi, l2_e
        self.refine_iterations = check_int(refine_iterations, name="refine_iterations", low=0, high=1 << 20)
        self.mode = _neighbors.MODE_EASE if text is None else _neighbors.MODE_L3AE
        self.E, self.H, self.inv = text if text is not None else (one, one, np.zeros(1))
        self.retried: List[np.ndarray] = []

    def __call__(self, cols: np.ndarray, supports: Supports, keep: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Lengths, items and values of the solved columns (refined to keep + 1 items if keep > 0)."""
        ptr, idx, jpos = supports
        lengths = np.diff(ptr)
        if keep:
            lengths = np.minimum(lengths, keep + 1)
        out_ptr = np.zeros(cols.size + 1, dtype=np.int64)
        np.cumsum(lengths, out=out_ptr[1:])
        out_idx = np.empty(out_ptr[-1], dtype=np.int32)
        out = np.empty(out_ptr[-1], dtype=self.dtype)
        retries = np.zeros(cols.size, dtype=np.int8)
        status = np.zeros(cols.size, dtype=np.int8)
        with sequential_blas():  # one LAPACK thread inside each OpenMP thread
            _neighbors.solve_block(cols, ptr, idx, jpos, keep, self.refine_iterations, self.dense, self.G,
                                   self.row_of, self.longest, self.lists.items, self.lists.counts,
                                   self.lists.start, self.lists.length, self.diag, self.ridge, self.mode, self.xi,
                                   self.E, self.H, self.inv, self.l2_e, out_ptr, out_idx, out, retries, status,
                                   self.nt)
        if (status == _neighbors.ERR_MEMORY).any():
            raise MemoryError("could not allocate the per-thread scratch of the column solves")
        bad = cols[status == _neighbors.ERR_NOT_PD]
        if bad.size:
            raise np.linalg.LinAlgError(
                f"{bad.size} columns (e.g. {bad[0]}) stayed not positive definite after "
                f"{_neighbors.RETRY_LIMIT} raised ridges; check G and the regularisation")
        self.retried.append(cols[retries > 0])
        return lengths, out_idx, out


def b_bytes(n: int, per_column: int, dtype: Any) -> int:
    """B of n columns held three times over (pieces, CSC, ranking CSR), as in :func:`route_bytes`; what
    the look-up's oriented lists must leave room for (:meth:`CandidateLists.lookup_lists`)."""
    return 3 * n * per_column * (np.dtype(dtype).itemsize + 4)


def _run(n: int, solver: _Solver, supports_of: Callable[[np.ndarray], Supports],
         refine_m: Optional[int], nnz_per_column: int, block_size: int,
         progress: Optional[Progress], columns: Tuple[int, int]) -> ColumnSolution:
    """Solve the columns ``columns[0] .. columns[1] - 1`` block by block (the kernel refines, if asked)
    and assemble the CSC B (the other columns empty)."""
    block_size = _check_k(block_size, "block_size")
    itemsize = np.dtype(solver.dtype).itemsize
    first, stop = columns
    # the per-block pieces and their concatenation coexist once
    check_fits_in_memory(2 * (stop - first) * nnz_per_column * (itemsize + 4),
                         what=f"the sparse B ({stop - first} columns, up to {nnz_per_column} entries each)")
    counts, indices, values = [], [], []
    t0 = time.perf_counter()
    for c0 in range(first, stop, block_size):
        cols = np.arange(c0, min(stop, c0 + block_size), dtype=np.int64)
        lengths, items, vals = solver(cols, supports_of(cols), refine_m or 0)
        # an exactly-zero diagonal is not stored; dropped block by block, so that the only
        # full-size temporaries are the pieces and their one concatenation
        owner = np.repeat(np.arange(cols.size), lengths)
        keep = (items != cols[owner]) | (vals != 0)
        counts.append(np.bincount(owner[keep], minlength=cols.size))
        indices.append(items[keep])
        values.append(vals[keep])
        del owner, keep, items, vals
        if progress is not None:
            progress(int(cols[-1]) + 1 - first, stop - first)
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.concatenate(counts), out=ptr[first + 1:stop + 1])
    ptr[stop + 1:] = ptr[stop]
    idx = np.concatenate(indices)
    del indices
    vals = np.concatenate(values)
    del values
    B = sp.csc_matrix((vals, idx, ptr), shape=(n, n))
    B.has_sorted_indices = True
    retried = np.unique(np.concatenate(solver.retried)) if solver.retried else np.zeros(0, np.int64)
    return ColumnSolution(B, retried.astype(np.int64), {"solve": time.perf_counter() - t0})


def _prepare(source: Any, dtype: np.dtype, *, m: Optional[int], refine: bool, k: Optional[int],
             supports: Any, extra: Sequence[np.ndarray] = (), extra_first: int = 0, num_threads: int
             ) -> Tuple[Union[CandidateLists, RelabelledGram], Callable, Optional[int], int, np.ndarray, float]:
    """Checked source, the support builder of a block, the refine width, the bound on entries per
    column, diag G and the seconds spent choosing candidates. Row r of each ``extra`` array holds
    more support items of column ``extra_first + r``."""
    t0 = time.perf_counter()
    if not isinstance(source, CandidateLists):
        source = _check_gram(source, dtype)
    n, counts = source.n_items, source.item_counts
    order = popularity_order(counts)
    rank = _inverse(order)
    extra = [np.asarray(e) for e in extra]
    if supports is not None:
        if m is not None or refine or k is not None:
            raise ValueError("pass either supports or m (with refine / k), not both")
        pattern = _explicit_supports(supports, n)
        per_column = int(np.diff(pattern.indptr).max())

        def supports_of(cols):
            return _pattern_supports(pattern, cols, rank)

        return source, supports_of, None, per_column, counts, time.perf_counter() - t0
    if m is None:
        raise ValueError("pass m (neighbours per column) or explicit supports")
    m = _check_k(m, "m")
    width = (_check_k(k, "k") if k is not None else refine_width(m)) if refine else m
    if refine and width < m:
        raise ValueError(f"refinement solves on k >= m candidates first, got k={width} < m={m}")
    lists = source if isinstance(source, CandidateLists) else _gram_candidates(source, width, num_threads)
    if lists.k < width:
        raise ValueError(f"the candidate lists hold {lists.k} items per column but {width} are needed; "
                         f"build them with k >= {width}")
    support = width + sum(e.shape[1] for e in extra)
    complete = lists.k >= lists.n_items - 1  # a list of every other item misses no pair
    if (isinstance(source, CandidateLists) and not complete and lists.k < LOOKUP_FACTOR * support
            and (lists.indices[:, -1] >= 0).any()):
        warnings.warn(
            f"G_SS is looked up in candidate lists of {lists.k} items for supports of up to {support + 1}: "
            f"pairs in neither list are taken as 0, and lists narrower than {LOOKUP_FACTOR}x the support "
            "miss enough of them to spoil the model (bench/neighbors_accuracy.py, MovieLens-1M: with "
            "lists 1.5x the support the test recall is a fraction of the dense model's). Build the lists "
            f"with k >= {LOOKUP_FACTOR * support}, or pass the dense G if it fits.", RuntimeWarning, stacklevel=3)

    def supports_of(cols):
        return _rows_to_supports(cols, [lists.indices[cols, :width]] + [e[cols - extra_first] for e in extra],
                                 order, rank)

    per_column = 1 + (m if refine else width + sum(e.shape[1] for e in extra))
    return source, supports_of, (m if refine else None), per_column, counts, time.perf_counter() - t0


def solve_columns(source: Union[CandidateLists, RelabelledGram, np.ndarray], *, l2: float, dropout: float = 0.0,
                  xi: float = 0.0, m: Optional[int] = None, refine: bool = False, k: Optional[int] = None,
                  refine_iterations: int = REFINE_ITERATIONS, supports: Any = None,
                  dtype: Any = np.float32, block_size: int = BLOCK_SIZE,
                  columns: Optional[Tuple[int, int]] = None, progress: Optional[Progress] = None,
                  num_threads: Optional[int] = None) -> ColumnSolution:
    """EASE-family B with every column restricted to a small support.

    Column j is the exact minimiser of the model's objective with b zero outside
    S_j (module docstring):
    :math:`b_S = e_j - P_S e_j \\max(\\gamma_j, (1-\\xi)/(P_S)_{jj})` with
    :math:`P_S = (G_{SS} + \\mathrm{diag}\\,\\gamma_S)^{-1}`,
    :math:`\\gamma = \\lambda + \\frac{p}{1-p}\\mathrm{diag}\\,G`; one ?potrf and one
    ?potrs per column.

    Parameters
    ----------
    source : CandidateLists, RelabelledGram or ndarray of shape (n_items, n_items)
        Where G_SS comes from and, with ``m``, the neighbour choice: the candidate
        lists of :func:`cooccurrence_candidates` (no n×n memory; see Notes) or a
        dense symmetric G (exact; candidates then from :func:`candidates_from_dense`),
        plain or relabelled (same B, gathered faster).
    l2, dropout, xi : float
        λ, p and ξ, as in :class:`lae_fast.LinearAutoencoder`.
    m : int, optional
        Neighbours per column: S_j = j plus its top-m candidates by cosine, or with
        ``refine`` the m largest |b_ij| √G_ii of a first solve on the top-k.
    refine : bool, default=False
    k : int, optional
        Width of the first, refining solve (default :func:`refine_width` (m) = 1.5m).
    refine_iterations : int, default=REFINE_ITERATIONS (8)
        The first solve only ranks the k candidates by |b_ij|, so it takes this many
        Jacobi-preconditioned conjugate-gradient steps instead of a Cholesky; 0 factors
        it exactly (as does a first system that PCG finds not positive definite). The
        kept columns are always solved exactly.
    supports : sparse matrix or array of shape (n_items, n_items), optional
        Explicit supports instead of ``m``: column j's nonzero pattern is S_j
        (j is always added).
    dtype : {np.float32, np.float64}, default=np.float32
        Precision of the solves and of B.
    block_size : int, default=2048
        Columns per kernel call.
    columns : (int, int), optional
        Solve only the columns ``first <= j < stop`` (the others stay empty); each
        column comes out the same as in a full solve, so blocks solved apart (e.g. on
        dask workers) join into the full B (:func:`join_column_blocks`).
    progress : callable, optional
        ``progress(done, total)`` after each block of columns.
    num_threads : int, optional

    Returns
    -------
    ColumnSolution
        ``.B`` as scipy CSC; ``.retried_columns``; ``.seconds``.

    Raises
    ------
    numpy.linalg.LinAlgError
        A column stayed not positive definite after every retry.

    Notes
    -----
    From candidate lists, G_ab is known when b is in a's list or a in b's; any
    other off-diagonal entry of G_SS is taken as 0. Column j's own row and
    column of G_SS are exact (its support is drawn from its own list), but the
    entries between two neighbours may be missing, so the column is the solution
    of a different system, and G_SS with zeros may even be indefinite; how much
    that costs depends on the list width (module docstring: with lists 3x the
    support the MovieLens-1M accuracy is that of the exact G_SS, with 1.5x it
    collapses). A column whose Cholesky fails is solved again with the ridge
    raised for every item of S_j by :math:`\\delta_t = 10^{t-5} \\max(1, \\max_a A_{aa})`,
    t = 1, 2, … until it succeeds (γ_j + δ then also enters the max above); those
    columns are listed in ``retried_columns``.
    """
    l2, p, xi = check_family_params(l2, dropout, xi).values()
    dt = check_dtype(dtype)
    nt = resolve_num_threads(num_threads)
    source, supports_of, refine_m, per_column, counts, t_cand = _prepare(
        source, dt, m=m, refine=refine, k=k, supports=supports, num_threads=nt)
    solver = _Solver(source, ridge_diagonal(l2, p, counts), dt, nt, xi=xi, refine_iterations=refine_iterations,
                     reserve=b_bytes(counts.size, per_column, dt))
    result = _run(counts.size, solver, supports_of, refine_m, per_column, block_size, progress,
                  _column_range(columns, counts.size))
    result.seconds["candidates"] = t_cand
    return result


def solve_columns_l3ae(source: Union[CandidateLists, RelabelledGram, np.ndarray], item_embeddings: Any, *, l2_x: float,
                       l2_e: float, l2_f: float, m: Optional[int] = None, text_k: int = 0,
                       refine: bool = False, k: Optional[int] = None,
                       refine_iterations: int = REFINE_ITERATIONS, supports: Any = None,
                       dtype: Any = np.float32, block_size: int = BLOCK_SIZE,
                       columns: Optional[Tuple[int, int]] = None, progress: Optional[Progress] = None,
                       num_threads: Optional[int] = None) -> ColumnSolution:
    """L3AE with every column restricted to a small support.

    :math:`b_S = \\lambda_E P_S s - P_S e_j (1 + \\lambda_E (P_S s)_j)/(P_S)_{jj}`,
    then b_j = 0, with :math:`P_S = (G_{SS} + (\\lambda_X + \\lambda_E) I)^{-1}` and
    s the text column of item j restricted to S_j, :math:`s_{ij} = e_i^\\top h_j / (1 - q_j)`
    (computed in the kernel, O(d) per entry). One factorisation, two right-hand sides.

    Parameters
    ----------
    source : CandidateLists or ndarray of shape (n_items, n_items)
        As in :func:`solve_columns`.
    item_embeddings : array-like of shape (n_items, d)
    l2_x, l2_e, l2_f : float
        λ_X, λ_E, λ_F, as in :class:`lae_fast.L3AE`.
    m, refine, k, refine_iterations, supports, dtype, block_size, columns, progress, num_threads
        As in :func:`solve_columns` (the first pass ranks by |b| of the L3AE column, two PCG solves).
    text_k : int, default=0
        Also put item j's ``text_k`` largest-s_ij items (:func:`text_candidates`)
        into S_j (before refinement, if any). G_ij of a text neighbour that is in
        neither candidate list is taken as 0.

    Returns
    -------
    ColumnSolution

    Notes
    -----
    G_SS from candidate lists and the retry of a failed Cholesky are as in
    :func:`solve_columns`; a retry raises α = λ_X + λ_E by δ_t for the column.
    """
    l2_x, l2_e, l2_f = check_l3ae_params(l2_x, l2_e, l2_f).values()
    dt = check_dtype(dtype)
    nt = resolve_num_threads(num_threads)
    n = n_items_of(source)
    E = check_embeddings(item_embeddings, n)
    span = _column_range(columns, n)
    t0 = time.perf_counter()
    with blas_threads(nt):
        H, inv = text_factors(E, l2_f)
    extra = []
    if text_k:
        if supports is not None:
            raise ValueError("text_k adds to the m-neighbour supports; with explicit supports pass text_k=0")
        extra.append(text_candidates(E, H, inv, text_k, columns=span, num_threads=nt)[0])
    t_text = time.perf_counter() - t0
    source, supports_of, refine_m, per_column, counts, t_cand = _prepare(
        source, dt, m=m, refine=refine, k=k, supports=supports, extra=extra, extra_first=span[0], num_threads=nt)
    solver = _Solver(source, np.full(counts.size, l2_x + l2_e), dt, nt, text=(E, H, inv), l2_e=l2_e,
                     refine_iterations=refine_iterations, reserve=b_bytes(counts.size, per_column, dt))
    result = _run(counts.size, solver, supports_of, refine_m, per_column, block_size, progress, span)
    result.seconds.update(candidates=t_cand, text=t_text)
    return result


# -- ranking ---------------------------------------------------------------------------------------
def ranking_csr(B: Any) -> sp.csr_matrix:
    """A sparse B (e.g. ``ColumnSolution.B``) as the canonical CSR :func:`topk_sparse` reads.

    Rows are history items: int64 indptr, int32 indices sorted per row without
    duplicates (summed), float32 or float64 values (other types become float32).
    The input is never modified; one already in that form is returned as is.
    """
    if not sp.issparse(B):
        raise TypeError(f"B must be a scipy sparse matrix, got {type(B).__name__}; use lae_fast.topk for dense B")
    if B.ndim != 2 or B.shape[0] != B.shape[1]:
        raise ValueError(f"B must be square, got shape {B.shape}")
    if (B.format == "csr" and B.dtype in (np.float32, np.float64) and B.indices.dtype == np.int32
            and B.indptr.dtype == np.int64 and B.has_canonical_format):
        return B  # already what the kernel reads: ranking many batches makes no copies
    dtype = B.dtype if B.dtype in (np.float32, np.float64) else np.float32
    C = B.copy() if B.format == "csr" else B.tocsr()  # a new matrix either way: B is not modified
    if C.dtype != dtype:
        C = C.astype(dtype)
    C.sum_duplicates()
    C.sort_indices()
    C.indices = C.indices.astype(np.int32, copy=False)
    C.indptr = C.indptr.astype(np.int64, copy=False)
    return C


def topk_sparse(user_items: Any, B_csr: Any, N: int = 10, *, filter_already_liked_items: bool = True,
                filter_items: Any = None, items: Any = None,
                num_threads: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Best ``N`` items for each user by :math:`x_u B`, for a sparse B.

    Same contract as :func:`lae_fast.topk` on ``B_csr.toarray()``: higher score
    first, ties to the lower index, own items masked with
    ``filter_already_liked_items``, ``filter_items`` removed, ``items`` a whitelist,
    min(N, n_items) columns padded with id -1 / score -inf. Items a history does not reach
    score exactly 0 and compete like any other.

    Parameters
    ----------
    user_items : sparse matrix, shape (n_users, n_items)
        One history row per user; every stored entry counts as 1.
    B_csr : scipy sparse matrix, shape (n_items, n_items)
        Passed through :func:`ranking_csr` (no copy of the values beyond that).
    N : int, default=10
    filter_already_liked_items : bool, default=True
    filter_items, items : array-like of int, optional
    num_threads : int, optional

    Returns
    -------
    ids : ndarray of int32, shape (n_users, min(N, n_items))
    scores : ndarray of float32, shape (n_users, min(N, n_items))

    Notes
    -----
    Per user, the rows of B of the history items are scattered into a dense
    per-thread accumulator with a touched list; after the touched items, the
    untouched allowed items are offered with score 0 in index order until one can
    no longer enter the heap. Work O(Σ nnz of the history rows + N log N) per user.
    """
    B = ranking_csr(B_csr)
    n = B.shape[0]
    N = check_N(N, n)
    X = check_interactions(user_items, name="user_items", n_items=n)
    allowed = candidate_mask(n, filter_items=filter_items, items=items)
    n_users = X.shape[0]
    check_fits_in_memory(n_users * int(N) * 8, what=f"the top-{N} lists of {n_users} users")
    ids = np.empty((n_users, int(N)), dtype=np.int32)
    scores = np.empty((n_users, int(N)), dtype=np.float32)
    if n_users == 0 or N == 0:
        return ids, scores

    def nonempty(a: np.ndarray, dtype) -> np.ndarray:  # the kernel takes &a[0]
        return a.astype(dtype, copy=False) if a.size else np.zeros(1, dtype=dtype)

    status = _neighbors.rank_sparse(X.indptr.astype(np.int64), nonempty(X.indices, np.int32), B.indptr,
                                    nonempty(B.indices, np.int32), nonempty(B.data, B.dtype), allowed,
                                    bool(filter_already_liked_items), ids, scores,
                                    resolve_num_threads(num_threads))
    _raise_status(status, "the sparse ranking")
    return ids, scores
