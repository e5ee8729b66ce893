"""Rows gathered block by block, then one :class:`Interactions`: ids factorised once, the CSR built once.

Every reader (delimited text through Arrow, Parquet, DataFrames, pairs) feeds its blocks of rows into one
:class:`IdColumn` per id column, plus optional ratings and timestamps, and then calls :func:`assemble`.
Integer ids stay integer arrays (int32 where they fit) and text ids are dictionary-encoded per block, so
no block is ever held as Python objects and reading peaks at a small multiple of the final CSR.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from .._validation import check_interactions
from ..ids import id_column, parse_id_strings, sorted_unique
from .interactions import DataFormatError, Interactions, as_float32

__all__ = ["IdColumn", "assemble", "coo_to_csr", "PY_WHITESPACE"]

#: the characters ``str.strip()`` removes (``str.isspace()``), so Arrow strips text ids exactly as Python does
PY_WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
                 "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
_INT32 = np.iinfo(np.int32)
_INT64_MAX = np.iinfo(np.int64).max
# a lookup table over the id range is used while that range is at most this much wider than the row count
_DENSE_SLACK = 1 << 20
# rows per hash lookup when ids are sparse integers (one hash table per group, not per block)
_LOOKUP_ROWS = 1 << 23

Block = Union[pa.Array, pa.ChunkedArray, np.ndarray]


class IdColumn:
    """One id column received block by block; :meth:`finish` numbers its ids in sorted order.

    Parameters
    ----------
    label : str
        How errors name the column (e.g. ``"ratings.csv: user ids"``).
    text : bool
        Ids read from text: whitespace around them is stripped and they become
        integers when every id is one (:func:`lae_fast.ids.parse_id_strings`).
        Otherwise ids keep the type they come in (:func:`lae_fast.ids.id_column`).
    screen : callable, optional
        Called with the distinct strings of every block that is not all integers,
        before any row is dropped (a reader raises there when its fast path cannot
        vouch for what it read).
    """

    def __init__(self, label: str, *, text: bool, screen: Optional[Callable[[pa.Array], None]] = None) -> None:
        self.label = label
        self.text = text
        self.screen = screen
        self.size = 0
        self._ints: List[np.ndarray] = []
        self._dicts: List[pa.Array] = []
        self._indices: List[np.ndarray] = []
        self._lo: Optional[int] = None
        self._hi: Optional[int] = None
        self._unsigned = False

    # -- receiving blocks ----------------------------------------------------------------------
    def add(self, values: Block, keep: Optional[np.ndarray] = None) -> None:
        """Append one block of ids (Arrow or numpy, no missing values); ``keep`` masks the rows to keep.

        The ``screen`` sees the distinct strings of the whole block, kept rows or not.
        """
        if isinstance(values, pa.ChunkedArray):
            pos = 0
            for chunk in values.chunks:
                self.add(chunk, None if keep is None else keep[pos:pos + len(chunk)])
                pos += len(chunk)
            return
        if isinstance(values, pa.Array):
            self._add_arrow(values, keep)
        else:
            arr = np.asarray(values)
            self._add_numpy(arr if keep is None else arr[keep])

    def _add_arrow(self, arr: pa.Array, keep: Optional[np.ndarray]) -> None:
        t = arr.type
        if pa.types.is_dictionary(t) and (pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type)):
            self._add_encoded(arr.dictionary, arr.indices.to_numpy(zero_copy_only=False), keep)
        elif pa.types.is_dictionary(t):
            self._add_arrow(arr.dictionary_decode(), keep)
        elif pa.types.is_string(t) or pa.types.is_large_string(t):
            if self.text and not self._dicts:
                ints = _canonical_ints(arr)
                if ints is not None:
                    self._add_ints(ints if keep is None else ints[keep])
                    return
            enc = pc.dictionary_encode(arr)
            self._add_encoded(enc.dictionary, enc.indices.to_numpy(zero_copy_only=False), keep)
        else:
            values = arr.to_numpy(zero_copy_only=False)
            self._add_numpy(values if keep is None else values[keep])

    def _add_numpy(self, arr: np.ndarray) -> None:
        if arr.dtype.kind not in "iu":
            arr = id_column(arr, name=self.label)  # integral floats -> int64, str kept, others refused
        if arr.dtype.kind in "iu" and not self._dicts:
            self._add_ints(arr)
            return
        enc = pc.dictionary_encode(pa.array(arr).cast(pa.string()))
        self._add_encoded(enc.dictionary, enc.indices.to_numpy(zero_copy_only=False), None)

    def _add_ints(self, arr: np.ndarray) -> None:
        self.size += arr.size
        if arr.size == 0:
            return
        lo, hi = int(arr.min()), int(arr.max())
        if arr.dtype == np.uint64 and hi > _INT64_MAX:
            self._unsigned = True
        elif arr.dtype.kind == "u" or arr.dtype.itemsize < 8:
            arr = arr.astype(np.int64)
        if self._unsigned and min(lo, self._lo if self._lo is not None else 0) < 0:
            raise TypeError(f"{self.label} holds unsigned ids above 2**63 - 1 and negative ids: in 64 bits they "
                            "can be the same number; write the ids as strings, or one signedness")
        if _INT32.min <= lo and hi <= _INT32.max:
            arr = arr.astype(np.int32)  # halves what a block keeps until finish
        self._lo = lo if self._lo is None else min(self._lo, lo)
        self._hi = hi if self._hi is None else max(self._hi, hi)
        self._ints.append(arr)

    def _add_encoded(self, dictionary: pa.Array, indices: np.ndarray, keep: Optional[np.ndarray]) -> None:
        """A block as its distinct strings and each row's index among them."""
        if not (pa.types.is_string(dictionary.type) or pa.types.is_large_string(dictionary.type)):
            dictionary = dictionary.cast(pa.string())
        if self.screen is not None:
            self.screen(dictionary)
        self._to_text_mode()
        indices = indices.astype(np.int32, copy=False)
        if keep is not None:  # drop the entries no kept row uses
            indices = indices[keep]
            used = np.zeros(len(dictionary), dtype=bool)
            used[indices] = True
            if not used.all():
                dictionary = dictionary.filter(pa.array(used))
                indices = (np.cumsum(used, dtype=np.int32) - 1)[indices]
        self.size += indices.size
        self._dicts.append(dictionary.cast(pa.large_string()))
        self._indices.append(indices)

    def _to_text_mode(self) -> None:
        """Integer blocks received so far become text blocks (their text is the canonical spelling)."""
        if not self._ints:
            return
        ints, self._ints = self._ints, []
        self._lo = self._hi = None
        self.size -= sum(b.size for b in ints)
        screen, self.screen = self.screen, None  # integers written canonically need no screening
        try:
            for block in ints:
                enc = pc.dictionary_encode(pa.array(block).cast(pa.string()))
                self._add_encoded(enc.dictionary, enc.indices.to_numpy(zero_copy_only=False), None)
        finally:
            self.screen = screen

    # -- numbering -----------------------------------------------------------------------------
    def finish(self) -> Tuple[np.ndarray, np.ndarray]:
        """The sorted distinct ids and the code of every row received (int32 below 2**31 ids, else int64).

        Raises
        ------
        TypeError, ValueError
            Ids that break the rules of :mod:`lae_fast.ids` (the message names the column).
        """
        if self._dicts:
            return self._finish_text()
        if not self._ints:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32)
        return self._finish_ints()

    def _finish_ints(self) -> Tuple[np.ndarray, np.ndarray]:
        lo, hi = self._lo, self._hi
        out = np.empty(self.size, dtype=np.int32)
        if not self._unsigned and hi - lo < self.size + _DENSE_SLACK:
            present = np.zeros(hi - lo + 1, dtype=bool)
            for block in self._ints:
                present[block - lo] = True
            ids = np.flatnonzero(present) + lo
            code = _code_dtype(ids.size)
            remap = np.cumsum(present, dtype=code)
            remap -= 1
            del present
            out = out.astype(code, copy=False)
            self._fill(out, lambda block: remap[block - lo])
            return ids.astype(np.int64, copy=False), out
        dtype = np.uint64 if self._unsigned else np.int64
        ids = sorted_unique(np.concatenate([sorted_unique(b.astype(dtype, copy=False)) for b in self._ints]))
        out = out.astype(_code_dtype(ids.size), copy=False)
        value_set = pa.array(ids)
        pos = 0
        blocks, self._ints = self._ints, []
        while blocks:  # a group of blocks per lookup: the hash table of value_set is built once per group
            group = []
            while blocks and sum(b.size for b in group) < _LOOKUP_ROWS:
                group.append(blocks.pop(0).astype(dtype, copy=False))
            found = pc.index_in(pa.array(np.concatenate(group)), value_set=value_set)
            n = len(found)
            out[pos:pos + n] = found.to_numpy(zero_copy_only=False)
            pos += n
        return ids, out

    def _finish_text(self) -> Tuple[np.ndarray, np.ndarray]:
        self._to_text_mode()
        dicts = pa.chunked_array(self._dicts, type=pa.large_string())
        raw = pc.unique(dicts)
        if isinstance(raw, pa.ChunkedArray):
            raw = raw.combine_chunks()
        if self.text:
            stripped = pc.utf8_trim(raw, characters=PY_WHITESPACE).to_numpy(zero_copy_only=False).astype(str)
            ids, inverse = parse_id_strings(stripped)
        else:
            try:
                values = id_column(raw.to_numpy(zero_copy_only=False), name=self.label)
            except (TypeError, ValueError) as exc:
                raise DataFormatError(f"{exc}; ids must be integers or strings") from None
            ids, inverse = np.unique(values, return_inverse=True)
        inverse = inverse.reshape(-1).astype(_code_dtype(ids.size), copy=False)
        # where each block's distinct strings sit among all of them: one hash table for every block
        positions = pc.index_in(dicts.combine_chunks(), value_set=raw).to_numpy(zero_copy_only=False)
        bounds = np.cumsum([0] + [len(d) for d in self._dicts])
        out = np.empty(self.size, dtype=inverse.dtype)
        maps = [inverse[positions[a:b]] for a, b in zip(bounds[:-1], bounds[1:])]
        del positions
        self._dicts = []
        indices, self._indices = self._indices, []
        pos = 0
        for block_map, block in zip(maps, indices):
            out[pos:pos + block.size] = block_map[block]
            pos += block.size
        return ids, out

    def _fill(self, out: np.ndarray, code_of: Callable[[np.ndarray], np.ndarray]) -> None:
        """Write each block's codes into ``out``, releasing the block as soon as it is coded."""
        pos = 0
        blocks, self._ints = self._ints, []
        while blocks:
            block = blocks.pop(0)
            out[pos:pos + block.size] = code_of(block)
            pos += block.size


def _code_dtype(n_ids: int) -> np.dtype:
    return np.dtype(np.int32 if n_ids <= _INT32.max else np.int64)


def _canonical_ints(arr: pa.Array) -> Optional[np.ndarray]:
    """The int64 values of a string block when each is a canonically written integer, else None.

    Canonical (no sign ``+``, no leading zero, no ``-0``) means the text is exactly the integer's
    decimal spelling, so keeping the integer loses nothing; anything else goes the text way.
    Arrow's integer parser already refuses ``+`` and blanks; leading zeros are looked for only in
    the (rare) blocks where some id starts with ``0`` or ``-0``.
    """
    if arr.null_count:
        return None
    try:
        ints = pc.cast(arr, pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    for prefix in ("0", "-0"):
        starts = pc.starts_with(arr, prefix)
        if pc.any(starts).as_py():  # "0" alone is canonical; "00", "07", "-0", "-07" are not
            if pc.any(pc.and_(starts, pc.greater(pc.binary_length(arr), 1 if prefix == "0" else 0))).as_py():
                return None
    return ints.to_numpy()


def coo_to_csr(rows: np.ndarray, cols: np.ndarray, shape: Tuple[int, int], *, values: Optional[np.ndarray] = None,
               timestamps: Optional[np.ndarray] = None) -> Tuple[sp.csr_matrix, Optional[np.ndarray]]:
    """A canonical CSR from coordinates, and the timestamps aligned with its entries.

    Repeated ``(row, col)`` pairs are one entry: their ``values`` summed (their count when
    ``values`` is None) and the earliest of their ``timestamps`` kept. Entries whose sum is 0 are dropped.
    Rows already sorted by ``(row, col)`` (as most files are) are not sorted again.
    """
    n = rows.size
    in_order = n < 2 or bool(np.all((rows[1:] > rows[:-1]) | ((rows[1:] == rows[:-1]) & (cols[1:] >= cols[:-1]))))
    if not in_order and timestamps is None:
        data = np.ones(n, dtype=np.float32) if values is None else values
        X = sp.csr_matrix((data, (rows, cols)), shape=shape)  # scipy's counting sort; sums the duplicates
        X.sum_duplicates()
        if values is not None:
            X.eliminate_zeros()
        return X, None
    if not in_order:
        order = np.lexsort((timestamps, cols, rows))
        rows, cols, timestamps = rows[order], cols[order], timestamps[order]
        values = None if values is None else values[order]
        del order
    starts = np.flatnonzero(np.concatenate(([True], (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])))) \
        if n else np.zeros(0, dtype=np.int64)
    indices = cols[starts]
    entry_rows = rows[starts]
    if values is None:  # the number of times each pair was seen
        data = np.diff(np.append(starts, n)).astype(np.float32)
    else:
        data = np.add.reduceat(values, starts) if n else values[:0]
    ts = None
    if timestamps is not None:
        ts = np.minimum.reduceat(timestamps, starts) if n else timestamps[:0]
    if values is not None:
        nonzero = data != 0
        if not nonzero.all():
            indices, entry_rows, data = indices[nonzero], entry_rows[nonzero], data[nonzero]
            ts = None if ts is None else ts[nonzero]
    index_dtype = np.int32 if indices.size <= _INT32.max and shape[1] <= _INT32.max else np.int64
    indptr = np.zeros(shape[0] + 1, dtype=index_dtype)
    np.cumsum(np.bincount(entry_rows, minlength=shape[0]), out=indptr[1:])
    X = sp.csr_matrix((data, indices.astype(index_dtype, copy=False), indptr), shape=shape)
    X.has_canonical_format = True
    return X, ts


def assemble(name: str, users: IdColumn, items: IdColumn, *, values: Optional[Sequence[np.ndarray]] = None,
             timestamps: Optional[Sequence[np.ndarray]] = None, binarize: bool = True) -> Interactions:
    """The Interactions of the rows received: users and items numbered in sorted order of their ids.

    ``values`` (ratings, one array per block) are summed over repeated pairs when ``binarize`` is False;
    ``timestamps`` (one array per block) keep the earliest of repeated pairs. Values must already be
    checked (finite, and >= 0 when kept).

    Raises
    ------
    DataFormatError
        Ids that are neither integers nor strings, or values beyond float32 (the message names ``name``).
    """
    try:
        uid, rows = users.finish()
        iid, cols = items.finish()
    except TypeError as exc:
        raise DataFormatError(f"{exc}; ids must be integers or strings") from None
    vals = None if binarize or values is None else _concat(values, np.float64)
    ts = None if timestamps is None else _concat(timestamps, None)
    X, ts = coo_to_csr(rows, cols, (uid.size, iid.size), values=vals, timestamps=ts)
    del rows, cols, vals
    X = check_interactions(X, name=name, binarize=binarize)
    return Interactions._trusted(as_float32(X, name, DataFormatError), uid, iid, timestamps=ts)


def _concat(blocks: Sequence[np.ndarray], dtype) -> np.ndarray:
    arrays = [np.asarray(b) for b in blocks]
    if not arrays:
        return np.zeros(0, dtype=dtype or np.float64)
    out = np.concatenate(arrays) if len(arrays) > 1 else arrays[0]
    return out if dtype is None else out.astype(dtype, copy=False)
