"""Serving: top-N for one user at a time, from many threads, from a shared, compressed or pruned B.

:class:`Recommender` answers one history per call. The hot part (summing the
history rows of B, masking, top-N selection) runs in a compiled kernel with the
GIL released, on the calling thread, with scratch memory of its own: call it
from as many threads as you like (a thread pool in a web server); the answers
are exactly those of a serial run.

``Recommender.load(path)`` memory-maps B read-only, so worker processes that
load the same file share one copy of it in the page cache, and
:meth:`Recommender.reload` swaps in a new file between calls.

Three forms of B, by what a query reads per history item:

- **dense** (float32/float64): ``4 n`` bytes; scores bit-identical to ``model.recommend``.
- **compressed** (:meth:`Recommender.compress`, :mod:`lae_fast.compression`):
  float16 or int8 codes with one scale per row, ``2 n`` or ``n`` bytes, decoded in
  the kernel with SIMD; top-20 lists within 1% of float32 on MovieLens-1M.
- **pruned** (:func:`prune`): the ``m`` largest entries of every column, ``8 m``
  bytes; the accuracy cost on MovieLens-100K is measured in ``docs/SERVING.md``.

A history with no known item gets the most popular training items (see
:mod:`lae_fast.popularity`); ``return_cold=True`` tells such users apart.
"""
from __future__ import annotations

import json
import os
import threading
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
import scipy.sparse as sp

from . import _serve
from . import io as model_io
from ._memory import check_fits_in_memory
from ._threads import resolve_num_threads
from ._validation import as_index_array, check_int, check_interactions, check_square
from .compression import CODECS, CompressedB, check_codec, compress, decompress
from .ids import IdIndex, as_ids
from .models.base import ItemItemModel
from .popularity import check_popularity, fill_cold, popularity_order
from .ranking import _column_block, candidate_mask, check_N, topk

__all__ = ["Recommender", "prune", "prune_rows", "load_model", "SERVING_MODEL"]

#: ``meta["model"]`` of the files written by :meth:`Recommender.save`
SERVING_MODEL = "lae-fast-serving"
_INT32_MAX = int(np.iinfo(np.int32).max)
_UNKNOWN = ("ignore", "raise")
_BY = ("abs", "value")
#: Columns per block of the compressed kernel: the float32 accumulator (64 KiB) stays in L2 and
#: each history row is read in runs of 16-32 KiB, long enough for the hardware prefetcher
#: (measured in bench/bench_serving.py: 4,096-column blocks, the dense kernel's, were ~10% slower).
COMPRESSED_BLOCK = 16384
#: loads retried when the file is replaced while it is being read
_RELOAD_TRIES = 3


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


def prune_rows(B: Any, r: int, *, by: str = "abs", num_threads: Optional[int] = None) -> sp.csr_matrix:
    """Keep at most ``r`` entries, the largest, of every row of a sparse ``B``.

    Row ``i`` of B is what item ``i`` adds to the scores of every history
    that holds it, and serving sums one row per history item: capping the
    rows bounds the work of a call, whatever the history. On a neighbourhood
    model (every column m + 1 entries) the rows of popular items are long,
    since they are neighbours of many columns; a cap trims those rows and
    leaves the others as they are (see ``docs/SCALE.md`` for the accuracy
    and latency it buys).

    Parameters
    ----------
    B : scipy sparse matrix of shape (n_rows, n_cols)
        Finite weights (a fitted neighbourhood model's ``B_``, or the result
        of :func:`prune`).
    r : int
        Most entries kept per row (``>= 1``).
    by : {'abs', 'value'}, default='abs'
        Rank a row's entries by absolute value or by signed value.
    num_threads : int, optional
        Threads (see :func:`lae_fast.resolve_num_threads`); rows are shared out.

    Returns
    -------
    scipy.sparse.csr_matrix of float32, shape (n_rows, n_cols)
        ``min(row length, r)`` entries per row, sorted by column (float32:
        what :class:`Recommender` serves); among equal keys the lower column
        is kept.

    Raises
    ------
    ValueError
        ``r < 1``, unknown ``by``, B not 2-D, or B holds NaN or infinite values.
    TypeError
        B is not a scipy sparse matrix (for a dense B, :func:`prune` first), or
        ``r`` is not an integer.
    MemoryError
        The result (8 bytes a kept entry) cannot fit in available memory.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> B = sp.csr_matrix(np.array([[0., 3., -1.], [2., 0., 5.], [-4., 1., 0.]]))
    >>> prune_rows(B, 1).toarray()
    array([[ 0.,  3.,  0.],
           [ 0.,  0.,  5.],
           [-4.,  0.,  0.]], dtype=float32)
    """
    if not sp.issparse(B):
        raise TypeError(f"prune_rows takes a scipy sparse B, got {type(B).__name__}; "
                        "prune(B, m) a dense B first (it keeps the m largest entries of every column)")
    if len(B.shape) != 2:
        raise ValueError(f"B must be 2-D, got shape {B.shape}")
    r = min(check_int(r, name="r (entries kept per row)", low=1), max(B.shape[1], 1))  # no row holds more
    if by not in _BY:
        raise ValueError(f"by must be one of {_BY}, got {by!r}")
    in_ptr, in_idx, in_data = _finite_csr(B, "prune a finite matrix")
    lengths = np.minimum(np.diff(in_ptr), r)
    indptr = np.zeros(in_ptr.size, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    nnz = int(indptr[-1])
    check_fits_in_memory(nnz * 8 + indptr.nbytes, what=f"capping the rows of a {B.shape[0]}x{B.shape[1]} B "
                                                       f"at {r} entries")
    indices = np.empty(nnz, dtype=np.int32)
    values = np.empty(nnz, dtype=np.float32)
    status = _serve.prune_rows_csr(in_ptr, in_idx, in_data, r, by == "abs", indptr, indices, values,
                                   resolve_num_threads(num_threads))
    if status == _serve.ERR_MEMORY:
        raise MemoryError(f"could not allocate a row's heap ({r * 8} bytes)")
    if status:
        raise RuntimeError(f"internal error: row-capping kernel returned status {status}")
    return sp.csr_matrix((values, indices, indptr), shape=B.shape)


# -- what one call reads ---------------------------------------------------------------------------

class _Snapshot:
    """B in one of its forms, the item ids and the popularity: fixed once built.

    A call reads ``recommender._snap`` once and uses only that object, so a
    :meth:`Recommender.reload` (one attribute assignment) never mixes two files
    within a call, and the old B stays mapped until its last call returns.
    """

    __slots__ = ("kind", "B", "csr", "packed", "codes", "n_items", "item_ids", "index", "m", "by", "row_cap",
                 "popularity", "pop_order", "block", "identity", "_id_json")

    def __init__(self, B: Any, item_ids: Any, popularity: Any, *, m: Optional[int] = None,
                 by: Optional[str] = None, row_cap: Optional[int] = None,
                 identity: Optional[Tuple[int, ...]] = None, source: Optional[str] = None) -> None:
        self.B: Optional[np.ndarray] = None
        self.csr: Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]] = None
        self.packed: Optional[CompressedB] = None
        self.codes: Optional[np.ndarray] = None  # what the compressed kernel reads (int8, or float16 as uint16)
        if sp.issparse(B):
            self.kind = "pruned"
            self.csr = _as_serving_csr(B)
            n = self.csr[0].shape[0] - 1
        elif isinstance(B, CompressedB):
            self.kind = "compressed"
            self.packed = _as_serving_compressed(B)
            self.codes = self.packed.codes.view(np.uint16) if self.packed.codec == "float16" else self.packed.codes
            n = self.codes.shape[0]
        else:
            self.kind = "dense"
            self.B = _as_serving_dense(B)
            n = self.B.shape[0]
        self.n_items = int(n)
        self.item_ids = as_ids(item_ids, self.n_items, name="item_ids")
        self.index = IdIndex(self.item_ids)
        self.popularity = check_popularity(popularity, self.n_items, source=source)
        self.pop_order = popularity_order(self.popularity)
        self.m = m
        self.by = by
        self.row_cap = row_cap
        self.block = COMPRESSED_BLOCK if self.kind == "compressed" else _column_block(self.n_items)
        self.identity = identity
        self._id_json: Optional[List[str]] = None

    @property
    def dtype(self) -> str:
        if self.kind == "pruned":
            return "float32"
        return self.packed.codec if self.kind == "compressed" else self.B.dtype.name

    def id_json(self) -> List[str]:
        """Each item id as a JSON literal, built on first use (racing threads build equal lists)."""
        enc = self._id_json
        if enc is None:
            enc = [json.dumps(v) for v in self.item_ids.tolist()]
            self._id_json = enc
        return enc


class Recommender:
    """Top-N items for one history at a time; thread-safe, GIL-free in the hot part.

    Parameters
    ----------
    model : fitted lae_fast model
        Anything with ``B_`` (n_items, n_items) and ``item_ids_``; B is used
        as is (no copy when it is C-ordered float32/float64). The model's
        ``item_counts_`` (training popularity), when it has them, serve cold users.

    Attributes
    ----------
    item_ids : ndarray, shape (n_items,)
        Original id of each item index.
    n_items : int
    kind : {'dense', 'compressed', 'pruned'}
        The form of B served (see :meth:`compress`, :meth:`prune`).
    dtype : str
        Type of B's stored weights: float32/float64 (dense), float16/int8
        (compressed), float32 (pruned).
    pruned : bool
        Whether scores come from a pruned, sparse B.
    m : int or None
        Entries kept per column of a pruned B.
    row_cap : int or None
        Most entries per row of a B whose rows were capped (:meth:`prune_rows`).
    popularity : ndarray of float64, shape (n_items,), or None
        Training interactions per item: what a cold user's list is ranked by.
    path : str or None
        The file :meth:`load` read, which :meth:`reload` re-opens.

    Notes
    -----
    A call allocates its own scratch (one score per item) and writes only its
    own output arrays, so any number of threads may call one Recommender at
    once. Each call runs on its calling thread (concurrency comes from the
    callers), except a heavy history of a sparse B, whose columns are split
    between ``num_threads`` threads (see :meth:`recommend_one`).
    Ordering follows :func:`lae_fast.topk`: best first, ties to the lower
    index, a masked item is never returned, padding is id -1 / score -inf.
    On a dense B the scores are bit-identical to ``model.recommend``.

    A history with no item (or, by id, none the model knows) is a **cold**
    user: it gets the items with the most training interactions, best first,
    ties to the lower index, scored by their count (an empty list when the
    popularity is unknown, e.g. :meth:`from_matrix` without ``popularity``).
    Pass ``return_cold=True`` to any ``recommend_*`` method to be told.

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
    >>> rec.recommend_one([], N=2, return_cold=True)[::2]   # cold: the most popular items
    (array([1, 0], dtype=int32), True)
    """

    def __init__(self, model: Any) -> None:
        check = getattr(model, "_check_fitted", None)
        if callable(check):
            check()
        B = getattr(model, "B_", None)
        if B is None:
            raise TypeError(f"Recommender needs a fitted lae_fast model (with B_ and item_ids_), "
                            f"got {type(model).__name__}; use Recommender.from_matrix(B) for a bare matrix")
        self._start(_Snapshot(B, getattr(model, "item_ids_", None), getattr(model, "item_counts_", None)))

    def _start(self, snap: _Snapshot, path: Optional[str] = None) -> "Recommender":
        self._snap = snap
        self._path = path
        self._reload_lock = threading.Lock()
        self._num_threads = resolve_num_threads(None)
        return self

    @classmethod
    def from_matrix(cls, B: Any, *, item_ids: Any = None, popularity: Any = None) -> "Recommender":
        """Serve from a bare B: dense (n, n) floats, a scipy sparse (n, n) matrix, or a
        :class:`~lae_fast.compression.CompressedB`.

        Parameters
        ----------
        B : ndarray, scipy sparse matrix or CompressedB, shape (n_items, n_items)
            Finite weights; scores are ``x_u · B``.
        item_ids : array-like, shape (n_items,), optional
            Original item ids (default ``0..n-1``).
        popularity : array-like, shape (n_items,), optional
            Training interactions per item, for cold users (default: none, and
            a cold user gets an empty list).

        Returns
        -------
        Recommender
        """
        return cls.__new__(cls)._start(_Snapshot(B, item_ids, popularity))

    # -- files ------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: model_io.PathOrFile, *, verify: bool = True) -> "Recommender":
        """Open a model file (any lae_fast model) or a file written by :meth:`save`.

        Parameters
        ----------
        path : str, path-like or binary file object
            Paths are memory-mapped read-only: processes that load the same
            file share one copy of B, and :meth:`reload` can re-open it. A file
            object is read into memory.
        verify : bool, default=True
            Check the SHA-256 of every array and that the weights of a dense
            or compressed B are finite (reads the whole file once, which also
            brings it into the page cache); ``False`` skips both for large
            trusted files. Header, shapes, dtypes and the sparse structure
            (values included) are always checked.

        Returns
        -------
        Recommender

        Raises
        ------
        lae_fast.ModelFileError
            Corrupt, truncated, foreign (including any pickle) or inconsistent file,
            or NaN/infinite weights.
        FileNotFoundError
            No such file.
        """
        if hasattr(path, "read"):
            arrays, meta = model_io.load_arrays(path, mmap=True, verify=verify)
            return cls.__new__(cls)._start(_snapshot_from_file(arrays, meta, model_io.source_name(path),
                                                               check_values=verify))
        name = os.path.abspath(os.fspath(path))
        return cls.__new__(cls)._start(_read_snapshot(name, verify), path=name)

    def reload(self, *, verify: bool = True, force: bool = False) -> bool:
        """Re-open :attr:`path` if the file there was replaced; swap it in between calls.

        Safe while other threads are serving: calls that started before the swap
        finish on the old B (which stays mapped until they return), calls that
        start after it use the new one; no call sees a mix. The new file may hold
        another form of B, other items or another size. Replace the file
        atomically (write a temporary file, then rename it over the path, as
        :meth:`save` and ``model.save`` do); a file overwritten in place can
        crash a process that maps it.

        Parameters
        ----------
        verify : bool, default=True
            As in :meth:`load` (the checksum pass also warms the page cache, so
            the first queries on the new B do not wait on the disk).
        force : bool, default=False
            Re-open even when the file looks unchanged (same inode, size and
            modification time).

        Returns
        -------
        bool
            True when a new file was swapped in, False when the file was unchanged.

        Raises
        ------
        ValueError
            This Recommender was not loaded from a path.
        lae_fast.ModelFileError, FileNotFoundError
            The new file is bad or missing; the old B is still served.
        """
        if self._path is None:
            raise ValueError("this Recommender was not loaded from a file path, so there is nothing to reload; "
                             "use Recommender.load(path)")
        with self._reload_lock:  # one reload at a time; calls never wait on it
            if not force and _file_identity(self._path) == self._snap.identity:
                return False
            self._snap = _read_snapshot(self._path, verify)
            return True

    def save(self, path: model_io.PathOrFile) -> None:
        """Write this Recommender's B (any form), item ids and popularity, atomically.

        :meth:`load` reads it back memory-mapped; :func:`lae_fast.load_model`
        refuses it (it holds no model hyper-parameters).
        """
        st = self._snap
        meta = {"model": SERVING_MODEL, "n_items": st.n_items, "kind": st.kind, "dtype": st.dtype,
                "m": st.m, "by": st.by, "row_cap": st.row_cap}
        if st.kind == "pruned":
            indptr, indices, data = st.csr
            arrays = {"indptr": indptr, "indices": indices, "data": data}
        elif st.kind == "compressed":
            arrays = {"B": st.packed.codes, "row_scale": st.packed.row_scale, "diagonal": st.packed.diagonal}
        else:
            arrays = {"B": st.B}
        arrays["item_ids"] = st.item_ids
        if st.popularity is not None:
            arrays["item_counts_"] = st.popularity
        model_io.save_arrays(path, arrays, meta)

    # -- other forms of B ---------------------------------------------------------------------------
    def prune(self, m: int, *, by: str = "abs") -> "Recommender":
        """A new Recommender serving from B pruned to ``m`` entries per column (see :func:`prune`).

        Scores are then sums of float32 sparse rows, no longer equal to the
        model's; the accuracy cost is measured in ``docs/SERVING.md``.
        """
        st = self._dense_source("prune")
        B = prune(st.B, m, by=by)
        return type(self).__new__(type(self))._start(
            _Snapshot(B, st.item_ids, st.popularity, m=int(min(m, st.n_items)), by=by))

    def prune_rows(self, r: int, *, by: str = "abs") -> "Recommender":
        """A new Recommender serving from this sparse B with at most ``r`` entries per row (see :func:`prune_rows`).

        Each history item then adds at most ``r`` weights to a call, so the
        latency no longer follows the popularity of the history's items.
        Scores are those of the capped B, no longer equal to the model's; the
        accuracy cost and the latency are measured in ``docs/SCALE.md``.

        Raises
        ------
        ValueError
            This Recommender serves a dense or compressed B (:meth:`prune` it first), or a bad ``r``.
        """
        st = self._snap
        if st.kind != "pruned":
            raise ValueError(f"prune_rows caps the rows of a sparse B; this Recommender serves a {st.kind} B "
                             "(prune(m) it first, or serve a neighbourhood model)")
        indptr, indices, data = st.csr
        B = prune_rows(sp.csr_matrix((data, indices, indptr), shape=(st.n_items, st.n_items)), r, by=by)
        cap = min(int(r), st.n_items, st.row_cap or st.n_items)
        return type(self).__new__(type(self))._start(
            _Snapshot(B, st.item_ids, st.popularity, m=st.m, by=st.by, row_cap=cap))

    def compress(self, dtype: str = "float16") -> "Recommender":
        """A new Recommender serving from a float16 or int8 copy of B (see :mod:`lae_fast.compression`).

        Parameters
        ----------
        dtype : {'float16', 'int8'}, default='float16'
            2 or 1 byte per weight instead of 4, one float32 scale per row, the
            diagonal kept in float32. Scores are those of the decoded B (within
            float16 / int8 rounding of the model's); accuracy against float32 on
            MovieLens-1M is in ``docs/SERVING.md``.

        Returns
        -------
        Recommender
            ``kind == 'compressed'``; :meth:`save` it once and have every worker
            :meth:`load` the file (compressing in each worker would give each a
            private copy).
        """
        codec = check_codec(dtype)
        st = self._dense_source("compress")
        return type(self).__new__(type(self))._start(_Snapshot(compress(st.B, codec), st.item_ids, st.popularity))

    def _dense_source(self, action: str) -> _Snapshot:
        st = self._snap
        if st.kind != "dense":
            raise ValueError(f"this Recommender already serves a {st.kind} B; {action} from the dense model "
                             "(its model file or Recommender(model))")
        return st

    # -- what it serves -----------------------------------------------------------------------------
    item_ids = property(lambda self: self._snap.item_ids, doc="Original id of each item index.")
    n_items = property(lambda self: self._snap.n_items, doc="Number of items.")
    kind = property(lambda self: self._snap.kind, doc="'dense', 'compressed' or 'pruned'.")
    dtype = property(lambda self: self._snap.dtype, doc="Type of B's stored weights.")
    m = property(lambda self: self._snap.m, doc="Entries kept per column of a pruned B, else None.")
    row_cap = property(lambda self: self._snap.row_cap,
                       doc="Most entries per row of a B whose rows were capped (:meth:`prune_rows`), else None.")
    by = property(lambda self: self._snap.by, doc="Key a pruned B was pruned by ('abs' or 'value'), else None.")
    popularity = property(lambda self: self._snap.popularity,
                          doc="Training interactions per item (float64), or None.")
    path = property(lambda self: self._path, doc="The file this Recommender was loaded from, or None.")
    # the B arrays, for tests and benchmarks
    _B = property(lambda self: self._snap.B)
    _csr = property(lambda self: self._snap.csr)

    @property
    def pruned(self) -> bool:
        """Whether scores come from a sparse (pruned) B."""
        return self._snap.kind == "pruned"

    @property
    def n_weights(self) -> int:
        """Weights of B that scores are read from: n_items² for a dense or compressed B, the stored
        entries of a pruned one."""
        st = self._snap
        return int(st.csr[0][-1]) if st.kind == "pruned" else st.n_items * st.n_items

    @property
    def row_lengths(self) -> Optional[np.ndarray]:
        """Entries in each row of a pruned B (int64): what each item of a history adds to the work of a
        call, since a call sums the rows of its items; None for a dense or compressed B."""
        st = self._snap
        return np.diff(st.csr[0]).astype(np.int64) if st.kind == "pruned" else None

    @property
    def nbytes(self) -> int:
        """Bytes of B read to serve (dense n*n, the compressed codes and scales, or the pruned CSR arrays)."""
        st = self._snap
        if st.kind == "pruned":
            return int(sum(a.nbytes for a in st.csr))
        return st.packed.nbytes if st.kind == "compressed" else int(st.B.nbytes)

    def __repr__(self) -> str:
        st = self._snap
        cap = f" row_cap={st.row_cap}" if st.row_cap is not None else ""
        per_column = f" m={st.m}" if st.m is not None else ""  # a neighbourhood model's B has no column cap
        form = f"pruned{per_column}{cap}" if st.kind == "pruned" else f"{st.kind} {st.dtype}"
        return f"Recommender(n_items={st.n_items}, {form})"

    # -- ranking ------------------------------------------------------------------------------------
    def recommend_one(self, item_indices: Any, N: int = 10, *, filter_items: Any = None, items: Any = None,
                      filter_already_liked_items: bool = True, return_cold: bool = False,
                      num_threads: Optional[int] = None) -> tuple:
        """Top-``N`` items for one history given as item indices.

        Parameters
        ----------
        item_indices : array-like of int
            The user's items as positions in ``item_ids`` (any order;
            duplicates count once). May be empty (a cold user).
        N : int, default=10
            Length of the list; at most ``n_items`` (a larger N is capped).
        filter_items : array-like of int, optional
            Item indices never returned.
        items : array-like of int, optional
            Rank only among these item indices.
        filter_already_liked_items : bool, default=True
            Never return the history's own items.
        return_cold : bool, default=False
            Also return whether the history was empty (and the popular items
            were returned instead).
        num_threads : int, optional
            Threads for one heavy history of a sparse B (one that sums at
            least 32,768 weights: its columns are split between the threads,
            with the same answer to the last bit).
            Default: the package's knob (``LAE_FAST_NUM_THREADS``, else the
            CPUs) as it was when this Recommender was made. A service that answers many requests at
            once from several threads should pass 1. Dense and compressed Bs
            are scored on the calling thread.

        Returns
        -------
        ids : ndarray of int32, shape (min(N, n_items),)
            Item indices, best first; ties go to the lower index. Padded with
            -1 when fewer items may be returned; a masked item never is.
        scores : ndarray of float32, shape (min(N, n_items),)
            ``x_u · B`` of those items (for a cold user: their training
            counts), -inf on padding.
        cold : bool
            Only with ``return_cold=True``.

        Raises
        ------
        ValueError
            An index outside ``[0, n_items)``, or a bad ``N``.
        TypeError
            Non-integer indices.
        """
        st = self._snap
        N = check_N(N, st.n_items)
        hist = self._history(st, item_indices, "item_indices")
        ids, scores, cold = self._one(st, hist, N, filter_items, items, filter_already_liked_items, item_indices,
                                      num_threads)
        return (ids, scores, cold) if return_cold else (ids, scores)

    def _one(self, st: _Snapshot, hist: np.ndarray, N: int, filter_items: Any, items: Any, mask_history: bool,
             original: Any, num_threads: Optional[int]) -> Tuple[np.ndarray, np.ndarray, bool]:
        # resolving the knob reads the environment and the CPU affinity (~15 us): the default is resolved once
        nt = self._num_threads if num_threads is None else resolve_num_threads(num_threads)
        allowed = None if filter_items is None and items is None else candidate_mask(
            st.n_items, filter_items=filter_items, items=items)
        ids = np.empty(N, dtype=np.int32)
        scores = np.empty(N, dtype=np.float32)
        cold = hist.size == 0
        if N == 0:
            return ids, scores, cold
        if cold:
            fill_cold(ids[None], scores[None], [True], st.popularity, st.pop_order, allowed)
            return ids, scores, cold
        if st.kind == "dense":
            status = _serve.one_dense(st.B, None, None, hist, allowed, mask_history, ids, scores, st.block)
        elif st.kind == "compressed":
            status = _serve.one_dense(st.codes, st.packed.row_scale, st.packed.diagonal, hist, allowed,
                                      mask_history, ids, scores, st.block)
        else:
            indptr, indices, data = st.csr
            status = _serve.one_sparse(indptr, indices, data, hist, allowed, mask_history, ids, scores, nt)
        if status:
            _raise(st, status, original, "item_indices")
        return ids, scores, cold

    def recommend_one_ids(self, item_ids: Any, N: int = 10, *, filter_items: Any = None, items: Any = None,
                          unknown: str = "ignore", filter_already_liked_items: bool = True,
                          return_cold: bool = False, num_threads: Optional[int] = None) -> tuple:
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
        return_cold : bool, default=False
            Also return whether no history id was known (a cold user, given
            the most popular items).
        num_threads : int, optional
            As in :meth:`recommend_one`.

        Returns
        -------
        ids : ndarray, shape (k,), k <= N
            Original item ids, best first. Unlike :meth:`recommend_one` there
            is no padding (no value is safe as a sentinel among original ids):
            fewer than N candidates give a shorter array.
        scores : ndarray of float32, shape (k,)
        n_unknown : int
            History ids not in the model (ignored).
        cold : bool
            Only with ``return_cold=True``.

        Raises
        ------
        ValueError
            ``unknown='raise'`` and an id is not in the model; a bad ``N``.
        TypeError
            Ids that are neither integers nor strings.
        """
        st = self._snap
        idx, scores, n_unknown, cold = self._one_ids(st, item_ids, N, filter_items, items, unknown,
                                                     filter_already_liked_items, num_threads)
        ids = st.item_ids[idx]
        return (ids, scores, n_unknown, cold) if return_cold else (ids, scores, n_unknown)

    def _one_ids(self, st: _Snapshot, item_ids: Any, N: int, filter_items: Any, items: Any, unknown: str,
                 mask_history: bool, num_threads: Optional[int]) -> Tuple[np.ndarray, np.ndarray, int, bool]:
        if unknown not in _UNKNOWN:
            raise ValueError(f"unknown must be one of {_UNKNOWN}, got {unknown!r}")
        N = check_N(N, st.n_items)
        hist, missing = st.index.lookup(item_ids, name="item_ids")
        if missing.size and unknown == "raise":
            raise ValueError(f"{missing.size} of item_ids are not in the model (e.g. {missing[0]!r}); "
                             "map them first, or pass unknown='ignore'")
        fi = None if filter_items is None else st.index.lookup(filter_items, name="filter_items")[0]
        it = None if items is None else st.index.lookup(items, name="items")[0]
        ids, scores, cold = self._one(st, hist, N, fi, it, mask_history, hist, num_threads)
        k = int(np.count_nonzero(ids >= 0))  # padding only ever sits at the end
        return ids[:k], scores[:k], int(missing.size), cold

    def recommend_json(self, item_ids: Any, N: int = 10, *, filter_items: Any = None, items: Any = None,
                       unknown: str = "ignore", filter_already_liked_items: bool = True,
                       digits: int = 6, num_threads: Optional[int] = None) -> bytes:
        """:meth:`recommend_one_ids` as a ready JSON body (UTF-8 bytes) for a web response.

        ``{"items": [...], "scores": [...], "n_unknown": 0, "cold": false}``:
        ``items`` are the original ids (JSON numbers or strings), best first,
        ``scores`` their scores with ``digits`` significant digits. Encoding
        takes a few microseconds, where generic encoders of numpy results
        spend tens (float32 scores printed with 17 digits). Parameters as in
        :meth:`recommend_one_ids`.

        Examples
        --------
        >>> import numpy as np
        >>> rec = Recommender.from_matrix(np.array([[0, 2, 1], [1, 0, 3], [0.5, 0.25, 0]]),
        ...                               item_ids=["a", "b", "c"], popularity=[5, 9, 1])
        >>> rec.recommend_json(["a", "zzz"], N=2)
        b'{"items":["b","c"],"scores":[2,1],"n_unknown":1,"cold":false}'
        >>> rec.recommend_json([], N=2)
        b'{"items":["b","a"],"scores":[9,5],"n_unknown":0,"cold":true}'
        """
        digits = check_int(digits, name="digits", low=1, high=9)
        st = self._snap
        idx, scores, n_unknown, cold = self._one_ids(st, item_ids, N, filter_items, items, unknown,
                                                     filter_already_liked_items, num_threads)
        return _json_body(st, idx, scores, n_unknown, cold, digits)

    def recommend_batch(self, histories: Any, N: int = 10, *, filter_items: Any = None, items: Any = None,
                        filter_already_liked_items: bool = True, num_threads: Optional[int] = None,
                        return_cold: bool = False) -> tuple:
        """Top-``N`` for many histories at once (the same answers as :meth:`recommend_one`).

        Parameters
        ----------
        histories : sequence of array-like of int, or sparse matrix (n_users, n_items)
            One history of item indices per user.
        N : int, default=10
            At most ``n_items`` (a larger N is capped).
        filter_items, items, filter_already_liked_items : as in :meth:`recommend_one`
        num_threads : int, optional
            Threads for this batch (see :func:`lae_fast.resolve_num_threads`).
        return_cold : bool, default=False
            Also return which users had an empty history (given the popular items).

        Returns
        -------
        ids : ndarray of int32, shape (n_users, min(N, n_items))
        scores : ndarray of float32, shape (n_users, min(N, n_items))
        cold : ndarray of bool, shape (n_users,)
            Only with ``return_cold=True``.

        Raises
        ------
        MemoryError
            The outputs (``n_users * N * 8`` bytes) and the histories cannot fit
            in available memory; the message gives the estimate.
        """
        st = self._snap
        N = check_N(N, st.n_items)
        hptr, hidx = _histories(st, histories)
        n_users = hptr.shape[0] - 1
        # outputs, plus the int64 CSR copy the kernels make and one score row per thread
        nbytes = n_users * N * 8 + hidx.size * 24 + hptr.size * 8 + st.n_items * 8 * 16
        check_fits_in_memory(nbytes, what=f"recommend_batch: the top-{N} lists of {n_users} users")
        allowed = None if filter_items is None and items is None else candidate_mask(
            st.n_items, filter_items=filter_items, items=items)
        cold = np.diff(hptr) == 0
        if st.kind == "dense":
            X = sp.csr_matrix((np.ones(hidx.size, dtype=np.float32), hidx, hptr), shape=(n_users, st.n_items))
            ids, scores = topk(X, st.B, N, filter_already_liked_items=filter_already_liked_items,
                               filter_items=filter_items, items=items, binarize=True, num_threads=num_threads)
        else:
            ids = np.empty((n_users, N), dtype=np.int32)
            scores = np.empty((n_users, N), dtype=np.float32)
            if n_users and N:
                status = np.zeros(n_users, dtype=np.int8)
                nt = resolve_num_threads(num_threads)
                if st.kind == "compressed":
                    _serve.batch_dense(st.codes, st.packed.row_scale, st.packed.diagonal, hptr, hidx, allowed,
                                       filter_already_liked_items, ids, scores, status, st.block, nt)
                else:
                    indptr, indices, data = st.csr
                    _serve.batch_sparse(indptr, indices, data, hptr, hidx, allowed, filter_already_liked_items,
                                        ids, scores, status, nt)
                bad = np.flatnonzero(status)
                if bad.size:
                    u = int(bad[0])
                    _raise(st, int(status[u]), hidx[hptr[u]:hptr[u + 1]], f"histories[{u}]")
        fill_cold(ids, scores, cold, st.popularity, st.pop_order, allowed)
        return (ids, scores, cold) if return_cold else (ids, scores)

    # -- helpers ------------------------------------------------------------------------------------
    @staticmethod
    def _history(st: _Snapshot, values: Any, name: str) -> np.ndarray:
        """int64 C-contiguous 1-D indices; the kernel checks their range (fast path)."""
        if type(values) is np.ndarray and values.dtype == np.int64 and values.ndim == 1:
            return values if values.flags.c_contiguous else np.ascontiguousarray(values)
        return as_index_array(values, name=name, n=st.n_items)


# -- helpers -------------------------------------------------------------------------------------

def _histories(st: _Snapshot, histories: Any) -> Tuple[np.ndarray, np.ndarray]:
    """Histories as int64 CSR (indptr, indices) over ``st``'s items."""
    if sp.issparse(histories) or (hasattr(histories, "matrix") and sp.issparse(histories.matrix)):
        X = check_interactions(histories, name="histories", n_items=st.n_items)
        return X.indptr.astype(np.int64), X.indices.astype(np.int64)
    if isinstance(histories, (str, bytes)) or not isinstance(histories, (Sequence, np.ndarray)):
        raise TypeError(f"histories must be a sequence of item-index lists or a sparse matrix, "
                        f"got {type(histories).__name__}")
    parts: List[np.ndarray] = [as_index_array(h, name=f"histories[{u}]", n=st.n_items)
                               for u, h in enumerate(histories)]
    hptr = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([p.size for p in parts], out=hptr[1:])
    hidx = np.concatenate(parts).astype(np.int64, copy=False) if parts else np.zeros(0, dtype=np.int64)
    return hptr, hidx


def _json_body(st: _Snapshot, idx: np.ndarray, scores: np.ndarray, n_unknown: int, cold: bool,
               digits: int) -> bytes:
    """The body of :meth:`Recommender.recommend_json`: ids from the snapshot's JSON literals, scores
    printed with ``digits`` significant digits (a few µs for N = 20)."""
    enc = st.id_json()
    values = scores.tolist()
    fmt = f"%.{digits}g"
    text = ",".join([fmt % v for v in values])
    if "n" in text:  # inf or nan (a B holding them): JSON has no literal for them
        text = ",".join([fmt % v if np.isfinite(v) else "null" for v in values])
    return ('{"items":[%s],"scores":[%s],"n_unknown":%d,"cold":%s}' % (
        ",".join([enc[i] for i in idx.tolist()]), text, n_unknown, "true" if cold else "false")).encode()


def _raise(st: _Snapshot, status: int, values: Any, name: str) -> None:
    if status == _serve.ERR_INDEX:
        as_index_array(values, name=name, n=st.n_items)  # raises with the offending value
        raise ValueError(f"{name} has indices outside [0, {st.n_items})")
    if status == _serve.ERR_MEMORY:
        raise MemoryError(f"could not allocate the {st.n_items * 8} bytes of scratch for one ranking")
    raise RuntimeError(f"internal error: serving kernel returned status {status}")


def load_model(path: model_io.PathOrFile, *, mmap: bool = True, verify: bool = True) -> ItemItemModel:
    """Any model file lae-fast writes, as a model that ranks, evaluates and serves.

    A fitted model's file gives its class (:meth:`ItemItemModel.load`); a serving file written by
    :meth:`Recommender.save` (dense, pruned or compressed B) gives an
    :meth:`ItemItemModel.from_weights` model holding that B, a compressed one decoded to float32
    (serve it with :class:`Recommender` to keep it compressed).

    Raises
    ------
    lae_fast.ModelFileError
        Corrupt, truncated, foreign or inconsistent file.
    """
    arrays, meta = model_io.load_arrays(path, mmap=mmap, verify=verify)
    name = model_io.source_name(path)
    if meta.get("model") != SERVING_MODEL:
        return ItemItemModel.from_arrays(arrays, meta, name, check_values=verify)
    snap = _snapshot_from_file(arrays, meta, name, check_values=verify)
    B = (sp.csr_matrix((snap.csr[2], snap.csr[1], snap.csr[0]), shape=(snap.n_items, snap.n_items))
         if snap.kind == "pruned" else decompress(snap.packed) if snap.kind == "compressed" else snap.B)
    return ItemItemModel.from_weights(B, item_ids=snap.item_ids, item_counts=snap.popularity)


def _file_identity(path: str) -> Optional[Tuple[int, ...]]:
    """What tells a replaced file from the one loaded: device, inode, size, modification time."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _read_snapshot(path: str, verify: bool) -> _Snapshot:
    """Load ``path``; if the file there is replaced while it is read, read the new one."""
    for _ in range(_RELOAD_TRIES):
        before = _file_identity(path)
        arrays, meta = model_io.load_arrays(path, mmap=True, verify=verify)
        if _file_identity(path) == before:
            return _snapshot_from_file(arrays, meta, path, identity=before, check_values=verify)
    raise model_io.ModelFileError(f"{path}: the file kept changing while it was read ({_RELOAD_TRIES} tries); "
                                  "replace model files atomically (write elsewhere, then rename)")


def _snapshot_from_file(arrays: dict, meta: dict, name: str, identity: Optional[Tuple[int, ...]] = None, *,
                        check_values: bool = True) -> _Snapshot:
    """What a file holds, checked; ``check_values`` also reads every weight of a dense or compressed B."""
    if meta.get("model") != SERVING_MODEL:
        model = ItemItemModel.from_arrays(arrays, meta, name, check_values=check_values)
        return _Snapshot(model.B_, model.item_ids_, getattr(model, "item_counts_", None), identity=identity,
                         source=name)
    kind = meta.get("kind")
    n = meta.get("n_items")
    ids = arrays.get("item_ids")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1 or ids is None or ids.shape != (n,):
        raise model_io.ModelFileError(f"{name}: n_items {n!r} and item_ids disagree or are missing")
    popularity = arrays.get("item_counts_")
    if kind == "dense":
        B = arrays.get("B")
        if B is None or B.shape != (n, n) or B.dtype not in (np.float32, np.float64):
            raise model_io.ModelFileError(f"{name}: B is missing or is not a ({n}, {n}) float array")
        if check_values:
            model_io.check_finite(B, source=name, key="B")
        return _Snapshot(B, ids, popularity, identity=identity, source=name)
    if kind == "compressed":
        codes, row_scale, diagonal = (arrays.get(k) for k in ("B", "row_scale", "diagonal"))
        if (codes is None or row_scale is None or diagonal is None or codes.shape != (n, n)
                or codes.dtype not in CODECS.values() or row_scale.shape != (n,) or diagonal.shape != (n,)
                or row_scale.dtype != np.float32 or diagonal.dtype != np.float32):
            raise model_io.ModelFileError(f"{name}: the compressed B arrays are missing or have wrong dtypes "
                                          "or shapes")
        if not (np.isfinite(row_scale).all() and np.isfinite(diagonal).all()):
            raise model_io.ModelFileError(f"{name}: the compressed B has NaN or infinite scales or diagonal")
        if check_values:
            model_io.check_finite(codes, source=name, key="B")  # float16 codes can hold NaN / inf too
        return _Snapshot(CompressedB(codes, row_scale, diagonal), ids, popularity, identity=identity, source=name)
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
    m, by, cap = meta.get("m"), meta.get("by"), meta.get("row_cap")
    return _Snapshot(sp.csr_matrix((data, indices, indptr), shape=(n, n)), ids, popularity,
                     m=m if isinstance(m, int) else None, by=by if by in _BY else None,
                     row_cap=cap if isinstance(cap, int) else None, identity=identity, source=name)


def _check_serving_shape(B: Any) -> None:
    check_square(B, name="B")
    if B.shape[0] > _INT32_MAX:
        raise ValueError(f"B has {B.shape[0]} items; at most {_INT32_MAX} are supported")


def _as_serving_dense(B: Any) -> np.ndarray:
    B = np.asarray(B)
    _check_serving_shape(B)
    if B.dtype not in (np.float32, np.float64):
        B = B.astype(np.float32)
    return np.ascontiguousarray(B)


def _as_serving_compressed(c: CompressedB) -> CompressedB:
    codes = np.asarray(c.codes)
    _check_serving_shape(codes)
    if codes.dtype not in CODECS.values():
        raise TypeError(f"compressed B codes must be float16 or int8, got dtype {codes.dtype}")
    n = codes.shape[0]
    row_scale = np.ascontiguousarray(c.row_scale, dtype=np.float32)
    diagonal = np.ascontiguousarray(c.diagonal, dtype=np.float32)
    if row_scale.shape != (n,) or diagonal.shape != (n,):
        raise ValueError(f"row_scale and diagonal must have shape ({n},), got {row_scale.shape} and {diagonal.shape}")
    return CompressedB(np.ascontiguousarray(codes), row_scale, diagonal)


def _as_serving_csr(B: Any) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    _check_serving_shape(B)
    return _finite_csr(B, "serve a finite matrix")


def _finite_csr(B: Any, fix: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indptr int64, indices int32, data float32) of a sparse B in canonical CSR, its weights checked finite
    (a float64 weight beyond float32 becomes inf and is refused too); ``fix`` ends the error message."""
    C = sp.csr_matrix(B)
    if not C.has_canonical_format:
        C = C.copy()
        C.sum_duplicates()
    data = np.ascontiguousarray(C.data, dtype=np.float32)
    if not np.isfinite(data).all():
        raise ValueError(f"B has NaN or infinite values; {fix}")
    return (np.ascontiguousarray(C.indptr, dtype=np.int64), np.ascontiguousarray(C.indices, dtype=np.int32),
            data)
