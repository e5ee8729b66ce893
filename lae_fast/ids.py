"""User and item ids: the one set of rules every reader, model, server and shard follows.

An id array is one of three kinds:

* **int64** — any integer ids that fit (the common case);
* **uint64** — unsigned ids of which some exceed the int64 maximum (hash ids);
  they are kept exactly, never wrapped to negative numbers;
* **str** — everything else (text ids, or integers written with leading zeros
  that would otherwise merge).

Rules, applied by :func:`as_ids` (a given id map), :func:`id_column` (a column
of raw values), :func:`factorize` (values -> unique ids + codes),
:func:`union_ids` (several id spaces -> one) and :class:`IdIndex` (id -> index):

* integral floats (``3.0``) are integers up to 2**53 in magnitude (beyond, a float
  cannot tell neighbouring integers apart, so distinct ids may already have merged);
  other floats, booleans, bytes that are not UTF-8 and mixed Python objects are refused;
* an id map names each row/column once: duplicates are an error;
* an integer id and a str id are compared as text (``7`` matches ``"7"``);
* int64 ids below 0 and uint64 ids above the int64 maximum cannot share one
  integer space (``-1`` and ``2**64 - 1`` are the same 64 bits): such a union
  is refused rather than silently merged.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import numpy as np
import scipy.sparse as sp

__all__ = ["as_ids", "id_column", "factorize", "parse_id_strings", "union_ids", "ids_of", "IdIndex",
           "align_items", "dtype_label", "sorted_unique"]

_INT64_MAX = np.iinfo(np.int64).max
#: the largest magnitude below which every integer is exactly a float64
_FLOAT_EXACT = 2.0 ** 53


def sorted_unique(arr: np.ndarray) -> np.ndarray:
    """The sorted distinct values of a 1-D array: ``np.unique(arr)``, by a sort and one comparison.

    numpy 2.3+ answers ``np.unique`` without ``return_inverse`` with a hash table that is far slower
    on large arrays (5M int64: about 25 s against 0.4 s for the sort, measured with numpy 2.4);
    this is the sort path, for every numpy.
    """
    arr = np.asarray(arr).reshape(-1)
    if arr.size == 0:
        return arr.copy()
    srt = np.sort(arr)
    keep = np.empty(srt.size, dtype=bool)
    keep[0] = True
    np.not_equal(srt[1:], srt[:-1], out=keep[1:])
    return srt[keep]


def _integer_ids(arr: np.ndarray) -> np.ndarray:
    """int64 when every value fits, else uint64 (only for non-negative unsigned input)."""
    if arr.dtype.kind == "u" and arr.size and int(arr.max()) > _INT64_MAX:
        return arr.astype(np.uint64, copy=False)
    return arr.astype(np.int64, copy=False)


def id_column(values: Any, *, name: str) -> np.ndarray:
    """Raw id values as an int64, uint64 or str array (see the module rules).

    Raises
    ------
    TypeError
        Floats that are not integral, booleans, complex numbers, or objects
        that are not all str.
    ValueError
        Bytes that are not UTF-8.
    """
    arr = np.asarray(values)
    if arr.dtype.kind == "f" and isinstance(values, (list, tuple)) and any(isinstance(v, int) for v in values):
        arr = np.array(values, dtype=object)  # Python ints beyond int64 became floats: keep them exact
    if arr.ndim == 0:
        arr = arr.reshape(1)
    kind = arr.dtype.kind
    if kind in "iu":
        return _integer_ids(arr)
    if kind == "U":
        return arr
    if kind == "S":
        try:
            return np.char.decode(arr, "utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{name} holds bytes that are not UTF-8; store the ids as str") from None
    if kind == "f" and np.isfinite(arr).all() and (arr == np.round(arr)).all():
        if arr.size and (np.abs(arr).max() > _FLOAT_EXACT):
            raise TypeError(f"{name} holds float ids beyond 2**53 (e.g. {float(np.abs(arr).max()):.17g}), where a "
                            "float cannot tell neighbouring integers apart, so distinct ids may have merged "
                            "already; store the ids as integers or strings")
        return arr.astype(np.int64)
    if kind == "O" and all(isinstance(v, str) for v in arr.ravel()):
        return arr.astype(str)
    if kind == "O" and arr.size and all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
                                        for v in arr.ravel()):
        values = [int(v) for v in arr.ravel()]
        if min(values) >= np.iinfo(np.int64).min and max(values) <= _INT64_MAX:
            return np.array(values, dtype=np.int64)
        if min(values) >= 0 and max(values) <= np.iinfo(np.uint64).max:
            return np.array(values, dtype=np.uint64)
        raise TypeError(f"{name} holds integers outside the 64-bit range; store them as strings")
    raise TypeError(f"{name} must hold integers or strings, got dtype {arr.dtype}")


def as_ids(ids: Any, n: int, *, name: str) -> np.ndarray:
    """An id map: unique ids, one per row or column, of length ``n`` (``0..n-1`` when None).

    Raises
    ------
    ValueError
        Wrong length or duplicated ids.
    TypeError
        Values that are not ids (see :func:`id_column`).
    """
    if ids is None:
        return np.arange(n, dtype=np.int64)
    arr = np.asarray(ids)
    axis = "rows (users)" if name.startswith("user") else "columns (items)"
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} has shape {arr.shape} but the matrix has {n} {axis}; "
                         f"pass exactly one id per {axis.split()[0][:-1]}")
    arr = id_column(arr, name=name)
    if arr.size > 1:
        srt = np.sort(arr)
        dup = srt[1:][srt[1:] == srt[:-1]]
        if dup.size:
            raise ValueError(f"{name} has {dup.size} duplicated ids (e.g. {dup[0].item()!r}); "
                             "every id must name one row or column")
    return np.ascontiguousarray(arr)


def ids_of(X: Any, n: int, *, attr: str = "item_ids") -> np.ndarray:
    """The id map carried by ``X`` (an :class:`~lae_fast.data.Interactions`), else ``0..n-1``."""
    return as_ids(getattr(X, attr, None), n, name=attr)


def factorize(values: Any, *, name: str) -> Tuple[np.ndarray, np.ndarray]:
    """Sorted unique ids of a column and each value's position among them (int64)."""
    col = id_column(values, name=name)
    uniq, codes = np.unique(col, return_inverse=True)
    return uniq, codes.reshape(-1).astype(np.int64, copy=False)


def parse_id_strings(values: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
    """Ids read as text: int64 (or uint64) when every value is an integer, else str; and the codes.

    Non-canonical spellings (``"007"``, ``"+7"``) are integers only if that merges no two ids.
    """
    arr = np.array(values)
    ints: Optional[np.ndarray] = None
    for dtype in (np.int64, np.uint64):
        try:
            ints = arr.astype(dtype)
            break
        except (ValueError, OverflowError):
            continue
    if ints is not None and not np.array_equal(ints.astype(arr.dtype), arr):
        if sorted_unique(ints).size != sorted_unique(arr).size:
            ints = None
    ids, inverse = np.unique(arr if ints is None else ints, return_inverse=True)
    return ids, inverse.reshape(-1)


def _kind(ids: np.ndarray) -> str:
    return "str" if ids.dtype.kind == "U" else "int"


def union_ids(id_arrays: Sequence[np.ndarray], *, names: Sequence[str]) -> np.ndarray:
    """One sorted id space holding every id of every array.

    Raises
    ------
    ValueError
        Integer ids in some arrays and str in others, or negative int64 ids
        beside uint64 ids above the int64 maximum (they would collide).
    """
    arrays = [id_column(a, name=nm) for a, nm in zip(id_arrays, names)]
    if not arrays:
        return np.zeros(0, dtype=np.int64)
    kinds = {_kind(a) for a in arrays}
    if len(kinds) > 1:
        first_int = next(nm for a, nm in zip(arrays, names) if _kind(a) == "int")
        first_str = next(nm for a, nm in zip(arrays, names) if _kind(a) == "str")
        raise ValueError(f"ids are integers in {first_int} but strings in {first_str}; use one type everywhere")
    big = [nm for a, nm in zip(arrays, names) if a.dtype == np.uint64]
    if big:
        negative = [nm for a, nm in zip(arrays, names) if a.dtype.kind == "i" and a.size and a.min() < 0]
        if negative:
            raise ValueError(f"{big[0]} holds unsigned ids above 2**63 - 1 and {negative[0]} holds negative ids: "
                             "in 64 bits they can be the same number; write the ids as strings, or one signedness")
        arrays = [a.astype(np.uint64) for a in arrays]
    return sorted_unique(np.concatenate(arrays))


def dtype_label(ids: np.ndarray) -> str:
    """``int64``, ``uint64`` or ``<U7``-style label for a repr."""
    return ids.dtype.str.replace(">", "<") if ids.dtype.kind == "U" else ids.dtype.name


class IdIndex:
    """Original id -> index in an id map, by binary search (read-only after construction, thread-safe).

    Parameters
    ----------
    ids : ndarray
        The id map (as :func:`as_ids` returns it).

    Integer ids are compared exactly as integers (int64 and uint64 included);
    an integer looked up among str ids, or the reverse, is compared as text.
    """

    def __init__(self, ids: np.ndarray) -> None:
        ids = id_column(ids, name="ids")
        self.is_int = ids.dtype.kind in "iu"
        self.order = np.argsort(ids, kind="stable")
        self.sorted = ids[self.order]
        self._text: Optional[Tuple[np.ndarray, np.ndarray]] = None

    def __len__(self) -> int:
        return int(self.sorted.size)

    def _text_ids(self) -> Tuple[np.ndarray, np.ndarray]:
        text = self._text
        if text is None:  # built on first use; racing threads build equal tuples, either may win
            t = self.sorted.astype(str)
            o = np.argsort(t, kind="stable")
            text = (t[o], self.order[o])
            self._text = text
        return text

    def positions(self, values: Any, *, name: str = "ids") -> np.ndarray:
        """Index of each value in the id map, -1 where it is unknown (int64, same length)."""
        arr = id_column(values, name=name)
        out = np.full(arr.size, -1, dtype=np.int64)
        if arr.size == 0 or self.sorted.size == 0:
            return out
        if arr.dtype.kind in "iu" and self.is_int:
            target = self.sorted.dtype
            if arr.dtype == np.uint64 and target == np.int64:
                ok = arr <= np.uint64(_INT64_MAX)
            elif arr.dtype == np.int64 and target == np.uint64:
                ok = arr >= 0
            else:
                ok = np.ones(arr.size, dtype=bool)
            query = np.where(ok, arr, 0).astype(target)
            sorted_ids, order = self.sorted, self.order
        else:
            ok = np.ones(arr.size, dtype=bool)
            query = arr.astype(str)
            sorted_ids, order = self._text_ids() if self.is_int else (self.sorted, self.order)
        pos = np.minimum(np.searchsorted(sorted_ids, query), sorted_ids.size - 1)
        found = ok & (sorted_ids[pos] == query)
        out[found] = order[pos[found]]
        return out

    def lookup(self, values: Any, *, name: str = "ids") -> Tuple[np.ndarray, np.ndarray]:
        """(indices of the known values as int64, the unknown values)."""
        arr = id_column(values, name=name)
        pos = self.positions(arr, name=name)
        known = pos >= 0
        return pos[known], arr[~known]


def align_items(interactions: Any, item_ids: Any) -> Tuple[sp.csr_matrix, int]:
    """Re-index interactions into another item id space (e.g. a fitted model's).

    Parameters
    ----------
    interactions : Interactions
    item_ids : array-like, shape (n_items,)
        The target item ids; column ``j`` of the result is ``item_ids[j]``.
        Compared as :class:`IdIndex` does.

    Returns
    -------
    X : scipy.sparse.csr_matrix of float32, shape (n_users, n_items)
        One row per user of ``interactions``, same order.
    n_unknown : int
        Stored interactions whose item is not in ``item_ids`` (dropped).
    """
    target = id_column(item_ids, name="item_ids")
    column = IdIndex(target).positions(interactions.item_ids, name="item_ids")
    M = interactions.matrix
    new_cols = column[M.indices]
    keep = new_cols >= 0
    rows = np.repeat(np.arange(M.shape[0]), np.diff(M.indptr))[keep]
    X = sp.csr_matrix((M.data[keep], (rows, new_cols[keep])), shape=(M.shape[0], target.size), dtype=np.float32)
    X.sum_duplicates()
    return X, int(M.nnz - keep.sum())
