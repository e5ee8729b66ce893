"""Serving: top-N for one user at a time, from many threads, from a shared or pruned B.

:class:`Recommender` answers one history per call. The hot part (summing the
history rows of B, masking, top-N selection) runs in a compiled kernel with the
GIL released, on the calling thread, with scratch memory of its own: call it
from as many threads as you like (a thread pool in a web server); the answers
are exactly those of a serial run.

``Recommender.load(path)`` memory-maps B read-only, so worker processes that
load the same file share one copy of it in the page cache.

:func:`prune` keeps the ``m`` largest entries of every column of B as a sparse
matrix; a :class:`Recommender` built on it reads ``m`` weights per item instead
of ``n``, which is what makes long histories fast. The accuracy cost on
MovieLens-100K is measured in ``docs/SERVING.md``.
"""
from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
import scipy.sparse as sp

from . import _serve
from . import io as model_io
from ._threads import resolve_num_threads
from ._validation import as_index_array, check_int, check_interactions
from ._memory import check_fits_in_memory
from .ids import IdIndex, as_ids
from .models.base import ItemItemModel
from .ranking import _column_block, candidate_mask, check_N, topk

__all__ = ["Recommender", "prune", "SERVING_MODEL"]

#: ``meta["model"]`` of the files written by :meth:`Recommender.save`
SERVING_MODEL = "lae-fast-serving"
#: a single call whose output would exceed this is checked against free memory first
_PREFLIGHT_BYTES = 64 * 1024 * 1024
_INT32_MAX = int(np.iinfo(np.int32).max)
_UNKNOWN = ("ignore", "raise")
_BY = ("abs", "value")


# -- pruning ------------------------------------------------------------------------------------

def prune(B: Any, m: int, *, by: str = "abs", num_threads: Optional[int] = None) -> sp.csr_matrix:
    """Keep the ``m`` largest entries of every column of ``B``, as a sparse matrix.

    Column ``j`` of B holds the weights with which every item predicts item
    ``j`` (a user's score for ``j`` is :math:`\\sum_{i \\in u} B_{ij}`), so
    keeping the strongest ``m`` predictors per column bounds the work per
    history item while every item can still be recommended.

    Parameters
    ----------
    B : ndarray of shape (n_rows, n_cols)
        Dense float weights; a C-ordered memory map is read in place.
    m : int
        Entries kept per column (``>= 1``); ``m >= n_rows`` keeps everything.
    by : {'abs', 'value'}, default='abs'
        Rank entries by absolute value (default: EASE-family B have large
        negative weights too, and dropping them costs accuracy, see
        ``docs/SERVING.md``) or by signed value.
    num_threads : int, optional
        Threads (see :func:`lae_fast.resolve_num_threads`); each owns a block
        of columns.

    Returns
    -------
    scipy.sparse.csr_matrix of shape (n_rows, n_cols), dtype of B
        Exactly ``min(m, n_rows)`` stored entries per column (explicit zeros
        included, should a column have fewer non-zeros); among equal keys the
        lower row index is kept. Rows of the result are what
        :class:`Recommender` sums for a history.

    Raises
    ------
    ValueError
        ``m < 1``, unknown ``by``, B not 2-D, or B holds NaN or infinite values.
    TypeError
        B is not a float array, or ``m`` is not an integer.
    MemoryError
        The result (``12 * m * n_cols`` bytes in float64) plus the per-column
        heaps cannot fit in available memory.

    Notes
    -----
    One pass streams the rows of B through a bounded heap per column (a row
    enters only with a key above the column's worst kept one), a second pass
    writes the kept entries row by row: about two reads of B in all.

    Examples
    --------
    >>> import numpy as np
    >>> B = np.array([[0., 3., -1.], [2., 0., 5.], [-4., 1., 0.]])
    >>> prune(B, 1).toarray()
    array([[ 0.,  3.,  0.],
           [ 0.,  0.,  5.],
           [-4.,  0.,  0.]])
    """
    if sp.issparse(B):
        raise TypeError("prune takes a dense B (the fitted model's B_); it is already sparse")
    B = np.asarray(B)
    if B.ndim != 2:
        raise ValueError(f"B must be 2-D, got shape {B.shape}")
    if B.dtype.kind != "f":
        raise TypeError(f"B must hold floats (float32 or float64), got dtype {B.dtype}")
    m = check_int(m, name="m (entries kept per column)", low=1)
    if by not in _BY:
        raise ValueError(f"by must be one of {_BY}, got {by!r}")
    n_rows, n_cols = B.shape
    if n_rows > _INT32_MAX or n_cols > _INT32_MAX:
        raise ValueError(f"B has shape {B.shape}; at most {_INT32_MAX} rows and columns are supported")
    if B.dtype not in (np.float32, np.float64):
        B = B.astype(np.float32)
    B = np.ascontiguousarray(B)
    keep_m = int(min(m, n_rows))
    nnz = keep_m * n_cols
    itemsize = B.dtype.itemsize
    check_fits_in_memory(nnz * (2 * itemsize + 8) + 8 * (n_rows + n_cols + 1),
                         what=f"pruning a {n_rows}x{n_cols} B to {keep_m} entries per column")
    data = np.empty(nnz, dtype=B.dtype)
    indices = np.empty(nnz, dtype=np.int32)
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    if nnz:
        status = _serve.prune_columns(B, keep_m, by == "abs", data, indices, indptr,
                                      resolve_num_threads(num_threads))
        if status == _serve.NONFINITE:
            raise ValueError("B has NaN or infinite values; prune a finite matrix")
        if status == _serve.ERR_MEMORY:
            raise MemoryError(f"could not allocate the per-column heaps ({nnz * (itemsize + 4)} bytes)")
        if status:
            raise RuntimeError(f"internal error: pruning kernel returned status {status}")
    return sp.csr_matrix((data, indices, indptr), shape=(n_rows, n_cols))


# -- the serving object -------------------------------------------------------------------------

class Recommender:
    """Top-N items for one history at a time; thread-safe, GIL-free in the hot part.

    Parameters
    ----------
    model : fitted lae_fast model
        Anything with ``B_`` (n_items, n_items) and ``item_ids_``; B is used
        as is (no copy when it is C-ordered float32/float64).

    Attributes
    ----------
    item_ids : ndarray, shape (n_items,)
        Original id of each item index.
    n_items : int
    pruned : bool
        Whether scores come from a pruned, sparse B (see :meth:`prune`).
    m : int or None
        Entries kept per column of a pruned B.

    Notes
    -----
    A call allocates its own scratch (one score per item) and writes only its
    own output arrays, so any number of threads may call one Recommender at
    once. Each call runs on one thread: concurrency comes from the callers.
    Ordering follows :func:`lae_fast.topk`: best first, ties to the lower
    index, a masked item is never returned, padding is id -1 / score -inf.
    On a dense B the scores are bit-identical to ``model.recommend``.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from lae_fast import EASE
    >>> X = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 1, 0], [1, 0, 1, 1],
    ...                             [0, 1, 1, 1], [1, 1, 0, 1]]))
    >>> rec = Recommender(EASE(l2=1.0).fit(X))
    >>> ids, scores = rec.recommend_one([0, 1], N=2)
    >>> ids
    array([3, 2], dtype=int32)
    """

    def __init__(self, model: Any) -> None:
        check = getattr(model, "_check_fitted", None)
        if callable(check):
            check()
        B = getattr(model, "B_", None)
        if B is None:
            raise TypeError(f"Recommender needs a fitted lae_fast model (with B_ and item_ids_), "
                            f"got {type(model).__name__}; use Recommender.from_matrix(B) for a bare matrix")
        self._setup(B, getattr(model, "item_ids_", None))

    @classmethod
    def from_matrix(cls, B: Any, *, item_ids: Any = None) -> "Recommender":
        """Serve from a bare B: a dense (n, n) float array or a scipy sparse (n, n) matrix.

        Parameters
        ----------
        B : ndarray or scipy sparse matrix, shape (n_items, n_items)
            Finite weights; scores are ``x_u · B``.
        item_ids : array-like, shape (n_items,), optional
            Original item ids (default ``0..n-1``).

        Returns
        -------
        Recommender
        """
        obj = cls.__new__(cls)
        obj._setup(B, item_ids)
        return obj

    def _setup(self, B: Any, item_ids: Any, m: Optional[int] = None, by: Optional[str] = None) -> None:
        self._B: Optional[np.ndarray] = None
        self._csr: Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]] = None
        if sp.issparse(B):
            self._csr = _as_serving_csr(B)
            n = self._csr[0].shape[0] - 1
        else:
            self._B = _as_serving_dense(B)
            n = self._B.shape[0]
        self.n_items = int(n)
        self.item_ids = as_ids(item_ids, self.n_items, name="item_ids")
        self.m = m
        self.by = by
        self._block = _column_block(self.n_items)
        self._index = IdIndex(self.item_ids)

    # -- construction from files and pruning ---------------------------------------------------
    @classmethod
    def load(cls, path: model_io.PathOrFile, *, verify: bool = True) -> "Recommender":
        """Open a model file (any lae_fast model) or a file written by :meth:`save`.

        Parameters
        ----------
        path : str, path-like or binary file object
            Paths are memory-mapped read-only: processes that load the same
            file share one copy of B. A file object is read into memory.
        verify : bool, default=True
            Check the SHA-256 of every array (reads the whole file once);
            ``False`` skips it for large trusted files. Header, shapes,
            dtypes and the sparse structure are always checked.

        Returns
        -------
        Recommender

        Raises
        ------
        lae_fast.ModelFileError
            Corrupt, truncated, foreign (including any pickle) or inconsistent file.
        FileNotFoundError
            No such file.
        """
        arrays, meta = model_io.load_arrays(path, mmap=True, verify=verify)
        name = str(getattr(path, "name", path))
        if meta.get("model") != SERVING_MODEL:
            return cls(ItemItemModel.from_arrays(arrays, meta, name))
        return cls._from_serving_arrays(arrays, meta, name)

    @classmethod
    def _from_serving_arrays(cls, arrays: dict, meta: dict, name: str) -> "Recommender":
        kind = meta.get("kind")
        n = meta.get("n_items")
        ids = arrays.get("item_ids")
        if not isinstance(n, int) or isinstance(n, bool) or n < 1 or ids is None or ids.shape != (n,):
            raise model_io.ModelFileError(f"{name}: n_items {n!r} and item_ids disagree or are missing")
        obj = cls.__new__(cls)
        if kind == "dense":
            B = arrays.get("B")
            if B is None or B.shape != (n, n) or B.dtype not in (np.float32, np.float64):
                raise model_io.ModelFileError(f"{name}: B is missing or is not a ({n}, {n}) float array")
            obj._setup(B, ids)
            return obj
        if kind != "pruned":
            raise model_io.ModelFileError(f"{name}: unknown serving file kind {kind!r}")
        indptr, indices, data = (arrays.get(k) for k in ("indptr", "indices", "data"))
        if (indptr is None or indices is None or data is None or indptr.dtype != np.int64
                or indices.dtype != np.int32 or data.dtype != np.float32 or indptr.shape != (n + 1,)
                or indices.ndim != 1 or indices.shape != data.shape):
            raise model_io.ModelFileError(f"{name}: the pruned B arrays are missing or have wrong dtypes or shapes")
        nnz = indices.shape[0]
        if (indptr[0] != 0 or indptr[-1] != nnz or (np.diff(indptr) < 0).any()
                or (nnz and (indices.min() < 0 or indices.max() >= n)) or not np.isfinite(data).all()):
            raise model_io.ModelFileError(f"{name}: the pruned B is inconsistent (indptr, indices or values)")
        m, by = meta.get("m"), meta.get("by")
        obj._setup(sp.csr_matrix((data, indices, indptr), shape=(n, n)), ids,
                   m=m if isinstance(m, int) else None, by=by if by in _BY else None)
        return obj

    def save(self, path: model_io.PathOrFile) -> None:
        """Write this Recommender's B (dense or pruned) and item ids, atomically.

        :meth:`load` reads it back memory-mapped; :func:`lae_fast.load_model`
        refuses it (it holds no model hyper-parameters).
        """
        meta = {"model": SERVING_MODEL, "n_items": self.n_items, "kind": "pruned" if self.pruned else "dense",
                "m": self.m, "by": self.by}
        if self._csr is not None:
            indptr, indices, data = self._csr
            arrays = {"indptr": indptr, "indices": indices, "data": data}
            meta["dtype"] = "float32"
        else:
            arrays = {"B": self._B}
            meta["dtype"] = self._B.dtype.name
        arrays["item_ids"] = self.item_ids
        model_io.save_arrays(path, arrays, meta)

    def prune(self, m: int, *, by: str = "abs") -> "Recommender":
        """A new Recommender serving from B pruned to ``m`` entries per column (see :func:`prune`).

        Scores are then sums of float32 sparse rows, no longer equal to the
        model's; the accuracy cost is measured in ``docs/SERVING.md``.
        """
        if self._B is None:
            raise ValueError("this Recommender already serves a sparse B; prune from the dense model")
        obj = type(self).__new__(type(self))
        obj._setup(prune(self._B, m, by=by), self.item_ids, m=int(min(m, self.n_items)), by=by)
        return obj

    @property
    def pruned(self) -> bool:
        """Whether scores come from a sparse (pruned) B."""
        return self._csr is not None

    @property
    def nbytes(self) -> int:
        """Bytes of B read to serve (dense n*n, or the pruned CSR arrays)."""
        if self._csr is not None:
            return int(sum(a.nbytes for a in self._csr))
        return int(self._B.nbytes)

    def __repr__(self) -> str:
        kind = f"pruned m={self.m}" if self.pruned else f"dense {self._B.dtype.name}"
        return f"Recommender(n_items={self.n_items}, {kind})"

    # -- ranking ------------------------------------------------------------------------------
    def recommend_one(self, item_indices: Any, N: int = 10, *, filter_items: Any = None, items: Any = None,
                      filter_already_liked_items: bool = True) -> Tuple[np.ndarray, np.ndarray]:
        """Top-``N`` items for one history given as item indices.

        Parameters
        ----------
        item_indices : array-like of int
            The user's items as positions in ``item_ids`` (any order;
            duplicates count once). May be empty.
        N : int, default=10
        filter_items : array-like of int, optional
            Item indices never returned.
        items : array-like of int, optional
            Rank only among these item indices.
        filter_already_liked_items : bool, default=True
            Never return the history's own items.

        Returns
        -------
        ids : ndarray of int32, shape (N,)
            Item indices, best first; ties go to the lower index. Padded with
            -1 when fewer than N items may be returned; a masked item never is.
        scores : ndarray of float32, shape (N,)
            ``x_u · B`` of those items, -inf on padding.

        Raises
        ------
        ValueError
            An index outside ``[0, n_items)``, or a bad ``N``.
        TypeError
            Non-integer indices.
        """
        N = check_N(N)
        hist = self._history(item_indices, "item_indices")
        allowed = None if filter_items is None and items is None else candidate_mask(
            self.n_items, filter_items=filter_items, items=items)
        if N > _PREFLIGHT_BYTES // 8:
            check_fits_in_memory(N * 8 + self.n_items * 8, what=f"a top-{N} list")
        ids = np.empty(N, dtype=np.int32)
        scores = np.empty(N, dtype=np.float32)
        if N == 0:
            return ids, scores
        if self._B is not None:
            status = _serve.one_dense(self._B, hist, allowed, filter_already_liked_items, ids, scores, self._block)
        else:
            indptr, indices, data = self._csr
            status = _serve.one_sparse(indptr, indices, data, hist, allowed, filter_already_liked_items,
                                       ids, scores)
        if status:
            self._raise(status, item_indices, "item_indices")
        return ids, scores

    def recommend_one_ids(self, item_ids: Any, N: int = 10, *, filter_items: Any = None, items: Any = None,
                          unknown: str = "ignore", filter_already_liked_items: bool = True
                          ) -> Tuple[np.ndarray, np.ndarray, int]:
        """Top-``N`` for one history given as original item ids.

        Parameters
        ----------
        item_ids : array-like
            The user's items as ids of ``self.item_ids`` (int or str; ints
            given for str ids, or the reverse, are compared as text).
        N : int, default=10
        filter_items, items : array-like, optional
            Original ids never returned / the only ids ranked. Ids the model
            does not know are ignored here whatever ``unknown`` says (they
            could never be returned anyway).
        unknown : {'ignore', 'raise'}, default='ignore'
            What to do with history ids the model does not know: skip them
            (their number is returned) or raise ``ValueError``.
        filter_already_liked_items : bool, default=True

        Returns
        -------
        ids : ndarray, shape (k,), k <= N
            Original item ids, best first. Unlike :meth:`recommend_one` there
            is no padding (no value is safe as a sentinel among original ids):
            fewer than N candidates give a shorter array.
        scores : ndarray of float32, shape (k,)
        n_unknown : int
            History ids not in the model (ignored).

        Raises
        ------
        ValueError
            ``unknown='raise'`` and an id is not in the model; a bad ``N``.
        TypeError
            Ids that are neither integers nor strings.
        """
        if unknown not in _UNKNOWN:
            raise ValueError(f"unknown must be one of {_UNKNOWN}, got {unknown!r}")
        hist, missing = self._index.lookup(item_ids, name="item_ids")
        if missing.size and unknown == "raise":
            raise ValueError(f"{missing.size} of item_ids are not in the model (e.g. {missing[0]!r}); "
                             "map them first, or pass unknown='ignore'")
        fi = None if filter_items is None else self._index.lookup(filter_items, name="filter_items")[0]
        it = None if items is None else self._index.lookup(items, name="items")[0]
        ids, scores = self.recommend_one(hist, N, filter_items=fi, items=it,
                                         filter_already_liked_items=filter_already_liked_items)
        k = int(np.count_nonzero(ids >= 0))  # padding only ever sits at the end
        return self.item_ids[ids[:k]], scores[:k], int(missing.size)

    def recommend_batch(self, histories: Any, N: int = 10, *, filter_items: Any = None, items: Any = None,
                        filter_already_liked_items: bool = True,
                        num_threads: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
        """Top-``N`` for many histories at once (the same answers as :meth:`recommend_one`).

        Parameters
        ----------
        histories : sequence of array-like of int, or sparse matrix (n_users, n_items)
            One history of item indices per user.
        N : int, default=10
        filter_items, items, filter_already_liked_items : as in :meth:`recommend_one`
        num_threads : int, optional
            Threads for this batch (see :func:`lae_fast.resolve_num_threads`).

        Returns
        -------
        ids : ndarray of int32, shape (n_users, N)
        scores : ndarray of float32, shape (n_users, N)

        Raises
        ------
        MemoryError
            The outputs (``n_users * N * 8`` bytes) and the histories cannot fit
            in available memory; the message gives the estimate.
        """
        N = check_N(N)
        hptr, hidx = self._histories(histories)
        n_users = hptr.shape[0] - 1
        # outputs, plus the int64 CSR copy the kernels make and one score row per thread
        nbytes = n_users * N * 8 + hidx.size * 24 + hptr.size * 8 + self.n_items * 8 * 16
        check_fits_in_memory(nbytes, what=f"recommend_batch: the top-{N} lists of {n_users} users")
        if self._B is not None:
            X = sp.csr_matrix((np.ones(hidx.size, dtype=np.float32), hidx, hptr), shape=(n_users, self.n_items))
            return topk(X, self._B, N, filter_already_liked_items=filter_already_liked_items,
                        filter_items=filter_items, items=items, binarize=True, num_threads=num_threads)
        allowed = None if filter_items is None and items is None else candidate_mask(
            self.n_items, filter_items=filter_items, items=items)
        ids = np.empty((n_users, N), dtype=np.int32)
        scores = np.empty((n_users, N), dtype=np.float32)
        if n_users == 0 or N == 0:
            return ids, scores
        status = np.zeros(n_users, dtype=np.int8)
        indptr, indices, data = self._csr
        _serve.batch_sparse(indptr, indices, data, hptr, hidx, allowed, filter_already_liked_items,
                            ids, scores, status, resolve_num_threads(num_threads))
        bad = np.flatnonzero(status)
        if bad.size:
            u = int(bad[0])
            self._raise(int(status[u]), hidx[hptr[u]:hptr[u + 1]], f"histories[{u}]")
        return ids, scores

    # -- helpers ------------------------------------------------------------------------------
    def _history(self, values: Any, name: str) -> np.ndarray:
        """int64 C-contiguous 1-D indices; the kernel checks their range (fast path)."""
        if type(values) is np.ndarray and values.dtype == np.int64 and values.ndim == 1:
            return values if values.flags.c_contiguous else np.ascontiguousarray(values)
        return as_index_array(values, name=name, n=self.n_items)

    def _histories(self, histories: Any) -> Tuple[np.ndarray, np.ndarray]:
        if sp.issparse(histories) or (hasattr(histories, "matrix") and sp.issparse(histories.matrix)):
            X = check_interactions(histories, name="histories", n_items=self.n_items)
            return X.indptr.astype(np.int64), X.indices.astype(np.int64)
        if isinstance(histories, (str, bytes)) or not isinstance(histories, (Sequence, np.ndarray)):
            raise TypeError(f"histories must be a sequence of item-index lists or a sparse matrix, "
                            f"got {type(histories).__name__}")
        parts: List[np.ndarray] = [as_index_array(h, name=f"histories[{u}]", n=self.n_items)
                                   for u, h in enumerate(histories)]
        hptr = np.zeros(len(parts) + 1, dtype=np.int64)
        np.cumsum([p.size for p in parts], out=hptr[1:])
        hidx = np.concatenate(parts).astype(np.int64, copy=False) if parts else np.zeros(0, dtype=np.int64)
        return hptr, hidx

    def _raise(self, status: int, values: Any, name: str) -> None:
        if status == _serve.ERR_INDEX:
            as_index_array(values, name=name, n=self.n_items)  # raises with the offending value
            raise ValueError(f"{name} has indices outside [0, {self.n_items})")
        if status == _serve.ERR_MEMORY:
            raise MemoryError(f"could not allocate the {self.n_items * 8} bytes of scratch for one ranking")
        raise RuntimeError(f"internal error: serving kernel returned status {status}")


# -- helpers -------------------------------------------------------------------------------------

def _as_serving_dense(B: Any) -> np.ndarray:
    B = np.asarray(B)
    if B.ndim != 2 or B.shape[0] != B.shape[1] or B.shape[0] == 0:
        raise ValueError(f"B must be a non-empty square (n_items, n_items) matrix, got shape {B.shape}")
    if B.shape[0] > _INT32_MAX:
        raise ValueError(f"B has {B.shape[0]} items; at most {_INT32_MAX} are supported")
    if B.dtype not in (np.float32, np.float64):
        if B.dtype.kind not in "iuf":
            raise TypeError(f"B must hold real numbers, got dtype {B.dtype}")
        B = B.astype(np.float32)
    return np.ascontiguousarray(B)


def _as_serving_csr(B: Any) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    if B.ndim != 2 or B.shape[0] != B.shape[1] or B.shape[0] == 0:
        raise ValueError(f"B must be a non-empty square (n_items, n_items) matrix, got shape {B.shape}")
    if B.shape[0] > _INT32_MAX:
        raise ValueError(f"B has {B.shape[0]} items; at most {_INT32_MAX} are supported")
    if B.dtype.kind not in "iuf":
        raise TypeError(f"B must hold real numbers, got dtype {B.dtype}")
    C = sp.csr_matrix(B)
    if not C.has_canonical_format:
        C = C.copy()
        C.sum_duplicates()
    data = np.ascontiguousarray(C.data, dtype=np.float32)
    if not np.isfinite(data).all():
        raise ValueError("B has NaN or infinite values; serve a finite matrix")
    return (np.ascontiguousarray(C.indptr, dtype=np.int64), np.ascontiguousarray(C.indices, dtype=np.int32),
            data)
