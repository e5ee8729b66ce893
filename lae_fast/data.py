"""User-item interactions: the :class:`Interactions` container and its file readers.

Two kinds of files are read:

* ``.npz`` archives (:func:`read_npz`): files written by
  :func:`scipy.sparse.save_npz` (any format it writes) and plain
  :func:`numpy.savez` files holding a CSR matrix as ``indptr``, ``indices``,
  ``data`` and ``shape``, optionally with ``user_ids`` and ``item_ids``
  (the layout :func:`save_npz` writes). Pickles are never loaded.
* long-format text (:func:`read_csv`): one ``user,item[,rating][,timestamp]``
  row per interaction; CSV, TSV, RecBole ``.inter`` and MovieLens ``.dat``.

:func:`load_interactions` picks the reader from the file extension. Every
problem with a file raises :class:`DataFormatError`, whose message names the
file, says what is wrong and how to fix it.
"""
from __future__ import annotations

import csv
import errno
import math
import os
import re
import struct
import zipfile
import zlib
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import scipy.sparse as sp

from ._validation import check_interactions, check_scalar
from .io import atomic_write
from .linalg import check_fits_in_memory

__all__ = [
    "DataFormatError", "Interactions", "read_npz", "read_csv", "load_interactions", "save_npz",
    "align_items", "CSV_EXTENSIONS", "NPZ_EXTENSIONS",
]

PathLike = Union[str, "os.PathLike[str]"]
Column = Union[str, int, None]

#: extensions read by :func:`read_csv` / :func:`read_npz` (lower case)
CSV_EXTENSIONS = (".csv", ".tsv", ".txt", ".dat", ".inter")
NPZ_EXTENSIONS = (".npz",)

# header names recognised when a column is not given (compared case-insensitively)
_USER_NAMES = ("user", "user_id", "userid", "uid")
_ITEM_NAMES = ("item", "item_id", "itemid", "movieid", "movie_id", "iid")
_RATING_NAMES = ("rating", "ratings", "score", "value", "weight", "count")
_WHITESPACE = r"\s+"  # separator meaning "any run of spaces or tabs"
_SNIFF_LINES = 50
_RECBOLE_SUFFIX = re.compile(r"^(.+):([A-Za-z_]+)$")
_CSR_KEYS = ("indptr", "indices", "data", "shape")


class DataFormatError(ValueError):
    """An interactions file is malformed; the message names the file, the problem and the fix."""


# -- the container --------------------------------------------------------------------------

class Interactions:
    """A users x items interaction matrix with the original user and item ids.

    Parameters
    ----------
    matrix : sparse matrix or 2-D array, shape (n_users, n_items)
        Non-negative interaction values.
    user_ids, item_ids : array-like, optional
        Original id of each row / column (unique; integers or strings).
        Default ``0..n-1``.
    binarize : bool, default=True
        Store every positive value as 1.0.

    Attributes
    ----------
    matrix : scipy.sparse.csr_matrix of float32
        Canonical CSR: sorted indices, no duplicates, no stored zeros.
    user_ids : ndarray of int64 or str, shape (n_users,)
    item_ids : ndarray of int64 or str, shape (n_items,)

    Examples
    --------
    >>> import numpy as np
    >>> X = Interactions.from_matrix(np.array([[0, 3], [1, 0]]), item_ids=["a", "b"])
    >>> X
    Interactions(n_users=2, n_items=2, nnz=2, user_ids=int64, item_ids=<U1)
    >>> X.matrix.toarray()
    array([[0., 1.],
           [1., 0.]], dtype=float32)
    """

    __slots__ = ("matrix", "user_ids", "item_ids")

    def __init__(self, matrix: Any, user_ids: Any = None, item_ids: Any = None, *,
                 binarize: bool = True) -> None:
        X = _as_float32(check_interactions(matrix, name="X", binarize=binarize), "X", ValueError)
        self.matrix = X
        self.user_ids = _as_ids(user_ids, X.shape[0], name="user_ids")
        self.item_ids = _as_ids(item_ids, X.shape[1], name="item_ids")

    @classmethod
    def from_matrix(cls, X: Any, *, user_ids: Any = None, item_ids: Any = None,
                    binarize: bool = True) -> "Interactions":
        """Wrap a matrix (validated by ``check_interactions``) and optional id arrays.

        Parameters
        ----------
        X : sparse matrix or 2-D array, shape (n_users, n_items)
        user_ids, item_ids : array-like, optional
            One unique id per row / column; default ``0..n-1``.
        binarize : bool, default=True
            Store every positive value as 1.0.

        Returns
        -------
        Interactions

        Raises
        ------
        ValueError
            Negative, NaN or infinite values; id arrays of the wrong length or
            with duplicates.
        """
        return cls(X, user_ids, item_ids, binarize=binarize)

    @classmethod
    def _trusted(cls, matrix: sp.csr_matrix, user_ids: np.ndarray, item_ids: np.ndarray) -> "Interactions":
        """Build from parts the readers have already validated."""
        obj = cls.__new__(cls)
        obj.matrix = matrix
        obj.user_ids = user_ids
        obj.item_ids = item_ids
        return obj

    @property
    def shape(self) -> Tuple[int, int]:
        """``(n_users, n_items)``."""
        return self.matrix.shape

    @property
    def n_users(self) -> int:
        """Number of users (rows)."""
        return self.matrix.shape[0]

    @property
    def n_items(self) -> int:
        """Number of items (columns)."""
        return self.matrix.shape[1]

    @property
    def nnz(self) -> int:
        """Number of stored interactions."""
        return int(self.matrix.nnz)

    def __repr__(self) -> str:
        return (f"Interactions(n_users={self.n_users}, n_items={self.n_items}, nnz={self.nnz}, "
                f"user_ids={_dtype_label(self.user_ids)}, item_ids={_dtype_label(self.item_ids)})")


def _dtype_label(ids: np.ndarray) -> str:
    """``int64`` or ``<U7``-style label for a repr."""
    return ids.dtype.str.replace(">", "<") if ids.dtype.kind == "U" else ids.dtype.name


def _as_ids(ids: Any, n: int, *, name: str) -> np.ndarray:
    """``ids`` as a unique int64 or str array of length ``n`` (``0..n-1`` when None)."""
    if ids is None:
        return np.arange(n, dtype=np.int64)
    arr = np.asarray(ids)
    axis = "rows (users)" if name == "user_ids" else "columns (items)"
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} has shape {arr.shape} but the matrix has {n} {axis}; "
                         f"pass exactly one id per {axis.split()[0][:-1]}")
    kind = arr.dtype.kind
    if kind == "u" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        raise ValueError(f"{name} holds ids larger than the int64 maximum; store them as strings")
    if kind in "iu":
        arr = arr.astype(np.int64, copy=False)
    elif kind == "S":
        try:
            arr = np.char.decode(arr, "utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{name} holds bytes that are not UTF-8; store the ids as str") from None
    elif kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        arr = arr.astype(np.int64)
    elif kind == "O" and all(isinstance(v, str) for v in arr):
        arr = arr.astype(str)
    elif kind != "U":
        raise TypeError(f"{name} must hold integers or strings, got dtype {arr.dtype}")
    if arr.size > 1:
        srt = np.sort(arr)
        dup = srt[1:][srt[1:] == srt[:-1]]
        if dup.size:
            raise ValueError(f"{name} has {dup.size} duplicated ids (e.g. {dup[0].item()!r}); "
                             "every id must name one row or column")
    return np.ascontiguousarray(arr)


# -- files ----------------------------------------------------------------------------------

def _check_file(path: PathLike) -> str:
    """The path as str; FileNotFoundError / DataFormatError when it is not a readable file."""
    name = os.fspath(path)
    if not os.path.exists(name):
        raise FileNotFoundError(errno.ENOENT, "interactions file not found", name)
    if os.path.isdir(name):
        raise DataFormatError(f"{name}: is a directory; pass the path of an interactions file")
    return name


def load_interactions(path: PathLike, **kwargs: Any) -> Interactions:
    """Read an interactions file, choosing the reader by extension.

    Parameters
    ----------
    path : str or path-like
        ``.npz`` goes to :func:`read_npz`; ``.csv``, ``.tsv``, ``.txt``,
        ``.dat`` and ``.inter`` go to :func:`read_csv`.
    **kwargs
        Passed to the reader (``read_npz`` takes only ``binarize``).

    Returns
    -------
    Interactions

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    DataFormatError
        Unsupported extension, or a malformed file.
    """
    name = _check_file(path)
    ext = os.path.splitext(name)[1].lower()
    if ext in NPZ_EXTENSIONS:
        csv_only = sorted(k for k, v in kwargs.items() if k != "binarize" and v is not None)
        if csv_only:
            raise TypeError(f"{', '.join(csv_only)} apply to CSV/TSV files only, and {name} is an npz file; "
                            "drop them")
        return read_npz(name, binarize=kwargs.get("binarize", True))
    if ext in CSV_EXTENSIONS:
        return read_csv(name, **kwargs)
    raise DataFormatError(
        f"{name}: unsupported extension {ext or '(none)'!r}; interactions files must end in "
        f"{', '.join(NPZ_EXTENSIONS + CSV_EXTENSIONS)}; rename the file, or call read_csv / read_npz directly"
    )


# -- npz ------------------------------------------------------------------------------------

_NPZ_KEYS = ("format", "shape", "data", "indptr", "indices", "row", "col", "coords", "offsets",
             "user_ids", "item_ids")
_NPZ_FIX = "re-create it with lae_fast.data.save_npz or scipy.sparse.save_npz"


def read_npz(path: PathLike, *, binarize: bool = True) -> Interactions:
    """Read interactions from an ``.npz`` archive.

    Parameters
    ----------
    path : str or path-like
        A :func:`scipy.sparse.save_npz` file (csr, csc, coo, bsr or dia; told
        apart by its ``format`` entry), or a plain :func:`numpy.savez` file
        with a CSR matrix as ``indptr``, ``indices``, ``data`` and ``shape``
        and optionally ``user_ids`` / ``item_ids`` (what :func:`save_npz`
        writes). Pickled arrays are never loaded.
    binarize : bool, default=True
        Store every positive value as 1.0.

    Returns
    -------
    Interactions
        Ids are taken as stored (int64 or str); ``0..n-1`` when absent.

    Raises
    ------
    DataFormatError
        Not an npz archive, corrupt or truncated, missing arrays, arrays that
        disagree with each other or the shape, indices out of range, negative,
        NaN, infinite or non-numeric values, no users, items or interactions,
        or id arrays of the wrong length.
    MemoryError
        The declared shape needs index arrays larger than the available memory
        (the message gives the estimate).
    """
    name = _check_file(path)
    if not zipfile.is_zipfile(name):
        raise DataFormatError(f"{name}: is not an npz (zip) archive, or is truncated; {_NPZ_FIX}")
    arrays = _load_npz(name)
    fmt = "csr"
    if "format" in arrays:
        raw = arrays["format"]
        fmt = raw.item() if raw.ndim == 0 and raw.dtype.kind in "SU" else None
        if isinstance(fmt, bytes):
            fmt = fmt.decode("ascii", "replace")
        if fmt not in ("csr", "csc", "coo", "bsr", "dia"):
            raise DataFormatError(f"{name}: unknown sparse format {raw!r} in its 'format' entry; supported: "
                                  f"csr, csc, coo, bsr, dia; {_NPZ_FIX}")
    needed = {"csr": _CSR_KEYS, "csc": _CSR_KEYS, "bsr": _CSR_KEYS, "dia": ("offsets", "data", "shape"),
              "coo": ("coords", "data", "shape") if "coords" in arrays and "row" not in arrays
              else ("row", "col", "data", "shape")}[fmt]
    missing = [k for k in needed if k not in arrays]
    if missing:
        found = sorted(arrays.pop("_all"))
        raise DataFormatError(
            f"{name}: missing array(s) {', '.join(missing)} (found: {', '.join(found) or 'none'}); a {fmt.upper()} "
            f"interactions file needs {', '.join(needed)}; {_NPZ_FIX}"
        )
    n_users, n_items = _npz_shape(name, arrays["shape"])
    # a few bytes can declare billions of users: refuse index arrays and ids that cannot be built
    # (CSR indptr and its conversion copy, user ids; item ids and a CSC indptr) before allocating them
    check_fits_in_memory(8 * (3 * (n_users + 1) + 2 * (n_items + 1)) + 32 * int(arrays["data"].size),
                         what=f"{name}: a {n_users} x {n_items} interaction matrix (its index arrays and ids)")
    data = _npz_numeric(name, arrays["data"], ndim={"bsr": 3, "dia": 2}.get(fmt, 1))
    if fmt in ("csr", "csc"):
        major, minor = (n_users, n_items) if fmt == "csr" else (n_items, n_users)
        indptr, indices = _npz_compressed(name, arrays, data, major, minor, fmt)
        cls = sp.csr_matrix if fmt == "csr" else sp.csc_matrix
        X = cls((data, indices, indptr), shape=(n_users, n_items))
    elif fmt == "coo":
        if "row" in arrays:
            row, col = (_npz_int(name, arrays, k) for k in ("row", "col"))
        else:
            coords = arrays["coords"]
            if coords.ndim != 2 or coords.shape[0] != 2:
                raise DataFormatError(f"{name}: coords has shape {coords.shape}, expected (2, nnz); {_NPZ_FIX}")
            row, col = (_npz_int(name, {k: c}, k) for k, c in zip(("row", "col"), coords))
        _npz_same_length(name, ("row", row), ("col", col), ("data", data))
        _npz_in_range(name, "row", row, n_users, "users")
        _npz_in_range(name, "col", col, n_items, "items")
        X = sp.coo_matrix((data, (row, col)), shape=(n_users, n_items))
    else:
        try:
            if fmt == "bsr":
                X = sp.bsr_matrix((data, arrays["indices"], arrays["indptr"]), shape=(n_users, n_items))
                X.check_format(full_check=True)
            else:
                X = sp.dia_matrix((data, arrays["offsets"]), shape=(n_users, n_items))
        except (ValueError, TypeError, IndexError) as exc:
            raise DataFormatError(f"{name}: its {fmt.upper()} arrays are inconsistent ({exc}); {_NPZ_FIX}") from None
    X = sp.csr_matrix(X)
    _npz_values(name, X.data)
    X = check_interactions(X, name=name, binarize=binarize)
    if X.nnz == 0:
        raise DataFormatError(f"{name}: has no interactions (every stored value is 0); "
                              "an interactions file needs at least one positive value")
    try:
        user_ids = _as_ids(arrays.get("user_ids"), n_users, name="user_ids")
        item_ids = _as_ids(arrays.get("item_ids"), n_items, name="item_ids")
    except (ValueError, TypeError) as exc:
        raise DataFormatError(f"{name}: {exc}; {_NPZ_FIX}") from None
    return Interactions._trusted(_as_float32(X, name, DataFormatError), user_ids, item_ids)


def _as_float32(X: sp.csr_matrix, name: str, error: type) -> sp.csr_matrix:
    """``X`` stored as float32; values beyond float32's range are refused, not turned into inf."""
    if X.dtype == np.float32:
        return X
    with np.errstate(over="ignore"):
        out = X.astype(np.float32)
    if out.nnz and not np.isfinite(out.data).all():
        raise error(f"{name}: values up to {float(np.abs(X.data).max()):.6g} do not fit in float32 (at most "
                    f"{float(np.finfo(np.float32).max):.6g}); interactions are stored as float32, scale them down")
    return out


def _load_npz(name: str) -> Dict[str, Any]:
    """The arrays of interest in an npz file, plus ``_all``: every key it holds."""
    key = None
    try:
        with np.load(name, allow_pickle=False) as npz:
            if not hasattr(npz, "files"):
                raise DataFormatError(f"{name}: is a single .npy array, not an npz archive; {_NPZ_FIX}")
            out: Dict[str, Any] = {"_all": list(npz.files)}
            for key in _NPZ_KEYS:
                if key in npz.files:
                    out[key] = npz[key]
    except DataFormatError:
        raise
    except MemoryError as exc:  # an array header (perhaps a flipped bit) declares more than fits
        where = f" array {key!r}" if key else " an array"
        raise DataFormatError(f"{name}:{where} needs more memory than is available ({exc}); the file is "
                              f"corrupt, or too large for this machine; {_NPZ_FIX}") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, struct.error, EOFError, OSError, ValueError,
            OverflowError, NotImplementedError, RuntimeError) as exc:  # RuntimeError: a flipped "encrypted" flag
        if isinstance(exc, ValueError) and "allow_pickle" in str(exc):
            raise DataFormatError(f"{name}: array {key!r} holds Python objects, and lae-fast never loads "
                                  f"pickles; store numbers or strings; {_NPZ_FIX}") from None
        where = f" (array {key!r})" if key else ""
        raise DataFormatError(f"{name}: is corrupt or truncated{where}: {exc}; {_NPZ_FIX}") from None
    return out


def _npz_shape(name: str, shape: np.ndarray) -> Tuple[int, int]:
    if shape.ndim != 1 or shape.size != 2 or shape.dtype.kind not in "iu" or (shape < 0).any():
        raise DataFormatError(f"{name}: shape must be two non-negative integers (n_users, n_items), "
                              f"got {shape.tolist()!r}; {_NPZ_FIX}")
    n_users, n_items = int(shape[0]), int(shape[1])
    if n_users == 0 or n_items == 0:
        raise DataFormatError(f"{name}: the matrix is empty (shape {n_users} users x {n_items} items); "
                              "an interactions file needs at least one user, item and interaction")
    return n_users, n_items


def _npz_numeric(name: str, data: np.ndarray, ndim: int) -> np.ndarray:
    if data.dtype.kind not in "biuf":
        raise DataFormatError(f"{name}: data is not numeric (dtype {data.dtype}); store interaction values "
                              "as numbers (e.g. float32 ones)")
    if data.ndim != ndim:
        raise DataFormatError(f"{name}: data must be {ndim}-D, got shape {data.shape}; {_NPZ_FIX}")
    return data


def _npz_int(name: str, arrays: Dict[str, Any], key: str) -> np.ndarray:
    arr = arrays[key]
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise DataFormatError(f"{name}: {key} must be a 1-D integer array, got dtype {arr.dtype} and shape "
                              f"{arr.shape}; {_NPZ_FIX}")
    return arr


def _npz_same_length(name: str, *named: Tuple[str, np.ndarray]) -> None:
    sizes = {k: a.shape[0] for k, a in named}
    if len(set(sizes.values())) > 1:
        listing = ", ".join(f"{k} has {n}" for k, n in sizes.items())
        raise DataFormatError(f"{name}: shapes disagree: {listing} entries; they must be the same length; "
                              f"{_NPZ_FIX}")


def _npz_in_range(name: str, key: str, arr: np.ndarray, n: int, what: str) -> None:
    if arr.size == 0:
        return
    bad = (arr < 0) | (arr >= n)
    if bad.any():
        raise DataFormatError(f"{name}: {key} has {int(bad.sum())} values out of range [0, {n}) "
                              f"(e.g. {arr[bad][0]}); the shape says there are {n} {what}; {_NPZ_FIX}")


def _npz_compressed(name: str, arrays: Dict[str, Any], data: np.ndarray, n_major: int, n_minor: int,
                    fmt: str) -> Tuple[np.ndarray, np.ndarray]:
    """Check CSR/CSC structure; ``major`` is the compressed axis."""
    indptr = _npz_int(name, arrays, "indptr")
    indices = _npz_int(name, arrays, "indices")
    major, minor = ("users", "items") if fmt == "csr" else ("items", "users")
    if indptr.size != n_major + 1:
        raise DataFormatError(f"{name}: shapes disagree: indptr has {indptr.size} entries but {n_major} {major} "
                              f"need {n_major + 1}; {_NPZ_FIX}")
    _npz_same_length(name, ("indices", indices), ("data", data))
    if indptr[0] != 0:
        raise DataFormatError(f"{name}: indptr must start at 0, got {indptr[0]}; {_NPZ_FIX}")
    steps = np.diff(indptr)
    if (steps < 0).any():
        at = int(np.flatnonzero(steps < 0)[0])
        raise DataFormatError(f"{name}: indptr is not monotone (it decreases after position {at}); {_NPZ_FIX}")
    if indptr[-1] != data.size:
        raise DataFormatError(f"{name}: shapes disagree: indptr[-1] = {indptr[-1]} but there are nnz = "
                              f"{data.size} stored values; {_NPZ_FIX}")
    _npz_in_range(name, "indices", indices, n_minor, minor)
    return indptr, indices


def _npz_values(name: str, data: np.ndarray) -> None:
    if data.dtype.kind == "f":
        bad = ~np.isfinite(data)
        if bad.any():
            raise DataFormatError(f"{name}: data has {int(bad.sum())} NaN or infinite values; "
                                  "drop or fill them and save the file again")
    if data.dtype.kind in "if" and (data < 0).any():
        raise DataFormatError(f"{name}: data has {int((data < 0).sum())} negative values; interactions "
                              "must be >= 0 (threshold explicit ratings into positives before saving)")


def save_npz(path: PathLike, interactions: Interactions, *, compressed: bool = True) -> None:
    """Write interactions as a plain npz file that :func:`read_npz` reads back.

    The archive holds ``indptr``, ``indices``, ``data`` (float32), ``shape``,
    ``user_ids`` and ``item_ids``; no pickles. The file is written to a
    temporary name and renamed, so a reader never sees half of it. The name
    is used as given (no ``.npz`` is appended).

    Parameters
    ----------
    path : str or path-like
    interactions : Interactions
    compressed : bool, default=True
        Deflate the arrays (smaller; slower to write and read).
    """
    if not isinstance(interactions, Interactions):
        raise TypeError(f"interactions must be an Interactions, got {type(interactions).__name__}; "
                        "wrap a matrix with Interactions.from_matrix(X) first")
    X = interactions.matrix
    arrays = {"indptr": X.indptr, "indices": X.indices, "data": X.data.astype(np.float32, copy=False),
              "shape": np.asarray(X.shape, dtype=np.int64), "user_ids": interactions.user_ids,
              "item_ids": interactions.item_ids}
    with atomic_write(path) as fh:
        (np.savez_compressed if compressed else np.savez)(fh, **arrays)


# -- delimited text -------------------------------------------------------------------------

def read_csv(path: PathLike, *, user_col: Column = None, item_col: Column = None, rating_col: Column = None,
             timestamp_col: Column = None, sep: Optional[str] = None, header: bool = True,
             min_rating: Optional[float] = None, binarize: bool = True) -> Interactions:
    """Read long-format interactions: one ``user,item[,rating][,timestamp]`` row each.

    Parameters
    ----------
    path : str or path-like
        UTF-8 text. Blank lines are skipped; whitespace around fields is
        stripped; fields may be quoted (except with whitespace separators).
    user_col, item_col, rating_col, timestamp_col : str or int, optional
        Column names (with ``header``) or 0-based positions. RecBole type
        suffixes in the header (``user_id:token``) are ignored. When None, the
        user and item columns are found by name (``user``, ``user_id``,
        ``userId``, ``uid`` / ``item``, ``item_id``, ``itemId``, ``movieId``,
        ``iid``, any case) and the rating by ``rating``, ``score``, ... ;
        without a header they are columns 0, 1 and 2. The timestamp column
        is only checked to exist; it is not stored.
    sep : str, optional
        Column separator. None: tab for ``.tsv`` / ``.inter``, otherwise
        detected among ``'::'``, tab, ``','``, ``';'`` and whitespace.
        ``' '`` or ``r'\\s+'`` means any run of spaces/tabs; ``'\\\\t'`` is a tab.
    header : bool, default=True
        Whether the first non-blank line names the columns.
    min_rating : float, optional
        Keep only rows with ``rating >= min_rating`` (needs a rating column).
    binarize : bool, default=True
        Every kept row is a positive (1.0), whatever its rating; a repeated
        (user, item) pair is one positive. With ``binarize=False`` the values
        are the ratings (1.0 where there is no rating column), repeated pairs
        are **summed**, and rows rated 0 store nothing.

    Returns
    -------
    Interactions
        Users and items are numbered in sorted order of their ids. Ids are
        int64 when every id is an integer (and reading them as integers
        merges no two distinct ids, as ``"7"`` and ``"007"`` would), else str.

    Raises
    ------
    DataFormatError
        Empty file, no data rows, a missing column, a short row, an empty id,
        a rating that is not a finite number, or no rows left after
        ``min_rating``; messages name the file and the line.
    """
    name = _check_file(path)
    if min_rating is not None:
        min_rating = check_scalar(min_rating, name="min_rating")
    try:
        with open(name, encoding="utf-8-sig", newline="") as fh:
            sep = _resolve_sep(name, fh, sep)
            users, items, ratings = _read_rows(name, fh, sep, header, user_col, item_col, rating_col,
                                               timestamp_col, min_rating, binarize)
    except UnicodeDecodeError:
        raise DataFormatError(f"{name}: is not UTF-8 text; convert it to UTF-8 (e.g. with iconv) "
                              "or save the interactions as .npz") from None
    user_ids, rows = _parse_ids(users)
    item_ids, cols = _parse_ids(items)
    values = np.ones(len(rows), dtype=np.float32) if ratings is None else np.asarray(ratings)
    X = sp.csr_matrix((values, (rows, cols)), shape=(user_ids.size, item_ids.size))
    X = check_interactions(X, name=name, binarize=binarize)
    if X.nnz == 0:
        raise DataFormatError(f"{name}: every rating is 0, so there are no interactions; "
                              "pass binarize=True to count every row as a positive")
    return Interactions._trusted(_as_float32(X, name, DataFormatError), user_ids, item_ids)


def _resolve_sep(name: str, fh, sep: Optional[str]) -> str:
    """The separator to use (``_WHITESPACE`` for runs of blanks); leaves ``fh`` at its start."""
    if sep is not None:
        if not isinstance(sep, str) or not sep or "\n" in sep or "\r" in sep or '"' in sep:
            raise ValueError(f"sep must be a non-empty string such as ',' or '\\t', got {sep!r}")
        if sep == "\\t":
            return "\t"
        if sep in (_WHITESPACE, "whitespace") or (sep.isspace() and sep != "\t"):
            return _WHITESPACE
        return sep
    if os.path.splitext(name)[1].lower() in (".tsv", ".inter"):
        return "\t"
    lines: List[str] = []
    for line in fh:
        line = line.rstrip("\r\n")
        if line.strip():
            lines.append(line)
            if len(lines) >= _SNIFF_LINES:
                break
    fh.seek(0)
    if not lines:
        return ","  # empty file: reported by the reader
    candidates = ("::", "\t", ",", ";")
    for cand in candidates:  # the same number of separators on every line
        counts = {line.count(cand) for line in lines}
        if len(counts) == 1 and counts.pop() > 0:
            return cand
    for cand in candidates:  # quoted or short lines: on the first line and on most of the others
        if cand in lines[0] and 2 * sum(cand in line for line in lines) > len(lines):
            return cand
    if all(len(line.split()) >= 2 for line in lines):
        return _WHITESPACE
    raise DataFormatError(
        f"{name}: could not detect the column separator (tried '::', tab, ',', ';' and whitespace on the "
        f"first lines, e.g. {lines[0][:60]!r}); an interactions file needs user and item columns; pass sep="
    )


def _iter_rows(name: str, fh, sep: str) -> Iterator[Tuple[int, List[str]]]:
    """``(line number, fields)`` for every line, blank ones included."""
    if sep == _WHITESPACE:
        for lineno, line in enumerate(fh, 1):
            yield lineno, line.split()
        return
    src: Any = fh
    delimiter = sep
    if len(sep) > 1:  # csv takes one character: map the separator onto a unit separator
        src = (line.replace(sep, "\x1f") for line in fh)
        delimiter = "\x1f"
    reader = csv.reader(src, delimiter=delimiter, skipinitialspace=True)
    try:
        for fields in reader:
            yield reader.line_num, fields
    except csv.Error as exc:
        raise DataFormatError(f"{name}: line {reader.line_num} cannot be parsed ({exc}); "
                              "fix the quoting on that line or pass another sep=") from None


def _blank(fields: Sequence[str]) -> bool:
    return not any(f.strip() for f in fields)


def _column_name(field: str) -> str:
    """A header field without its RecBole type suffix (``user_id:token`` -> ``user_id``)."""
    field = field.strip()
    m = _RECBOLE_SUFFIX.match(field)
    return m.group(1) if m else field


def _find_column(name: str, spec: Column, param: str, raw: Optional[List[str]], ncols: int,
                 candidates: Sequence[str], position: Optional[int]) -> Optional[int]:
    """0-based position of a column, or None when ``spec`` is None and nothing fits."""
    names = None if raw is None else [_column_name(f) for f in raw]
    available = f"available columns: {names}" if names is not None else f"the file has {ncols} columns"
    if spec is None:
        if names is None:
            return position if position is not None and position < ncols else None
        lower = [n.lower() for n in names]
        for cand in candidates:
            if cand in lower:
                return lower.index(cand)
        return None
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        if 0 <= spec < ncols:
            return int(spec)
        raise DataFormatError(f"{name}: {param}={spec} is not a column position; {available}; "
                              f"pass {param}= a position in [0, {ncols})")
    if not isinstance(spec, str):
        raise TypeError(f"{param} must be a column name (str) or 0-based position (int), got {spec!r}")
    if names is None:
        raise ValueError(f"{param}={spec!r} names a column but header=False; pass a 0-based position, "
                         "or header=True if the first line names the columns")
    stripped = [f.strip() for f in raw]
    if spec.strip() in stripped:  # exact, RecBole suffix included
        return stripped.index(spec.strip())
    lower = [n.lower() for n in names]
    want = _column_name(spec).lower()
    if want in lower:
        return lower.index(want)
    raise DataFormatError(f"{name}: no column named {spec!r}; {available}; pass {param}= one of them")


def _read_rows(name: str, fh, sep: str, header: bool, user_col: Column, item_col: Column,
               rating_col: Column, timestamp_col: Column, min_rating: Optional[float],
               binarize: bool) -> Tuple[List[str], List[str], Optional[List[float]]]:
    """Id strings of every kept row, and their ratings when they are needed."""
    rows = _iter_rows(name, fh, sep)
    first = next(((n, f) for n, f in rows if not _blank(f)), None)
    if first is None:
        raise DataFormatError(f"{name}: is empty; an interactions file needs one user,item row per interaction")
    first_line, first_fields = first
    ncols = len(first_fields)
    raw = first_fields if header else None
    if ncols < 2:
        raise DataFormatError(f"{name}: line {first_line} has a single column ({first_fields[0][:60]!r}); an "
                              f"interactions file needs user and item columns; check sep= (used {sep!r})")
    find = lambda spec, param, cands, pos: _find_column(name, spec, param, raw, ncols, cands, pos)  # noqa: E731
    ui = find(user_col, "user_col", _USER_NAMES, 0)
    ii = find(item_col, "item_col", _ITEM_NAMES, 1)
    ri = find(rating_col, "rating_col", _RATING_NAMES, 2)
    ti = find(timestamp_col, "timestamp_col", (), 3) if timestamp_col is not None else None
    for idx, param in ((ui, "user_col"), (ii, "item_col")):
        if idx is None:
            looks_like_data = all(_is_number(f) for f in first_fields)
            hint = (" (the first line looks like data: pass header=False if the file has no header)"
                    if looks_like_data else "")
            raise DataFormatError(f"{name}: no {param[:4]} column found; available columns: "
                                  f"{[_column_name(f) for f in first_fields]}{hint}; pass {param}=")
    if ui == ii:
        raise DataFormatError(f"{name}: user and item are both column {ui}; pass distinct user_col and item_col")
    if ri is not None and ri in (ui, ii):
        if rating_col is not None:
            raise DataFormatError(f"{name}: rating_col is column {ri}, which is also the user or item column; "
                                  "pass a distinct rating_col")
        ri = None  # the default position was taken by user_col / item_col
    if min_rating is not None and ri is None:
        columns = [_column_name(f) for f in first_fields] if header else f"{ncols} columns"
        raise DataFormatError(f"{name}: min_rating={min_rating:g} needs a rating column, but none was found "
                              f"(columns: {columns}); pass rating_col=, or drop min_rating")
    parse_rating = ri is not None and (rating_col is not None or min_rating is not None or not binarize)
    need = max(i for i in (ui, ii, ri if parse_rating else None, ti) if i is not None)

    users: List[str] = []
    items: List[str] = []
    ratings: List[float] = []
    n_rows = n_below = 0
    data_rows = rows if header else _chain_first(first, rows)
    for lineno, fields in data_rows:
        if len(fields) <= need:
            if _blank(fields):
                continue
            raise DataFormatError(f"{name}: line {lineno} has {len(fields)} fields, too few: column "
                                  f"{need + 1} is needed; fix or remove that line (or check sep=)")
        user = fields[ui].strip()
        item = fields[ii].strip()
        if not user or not item:
            if _blank(fields):
                continue
            raise DataFormatError(f"{name}: line {lineno} has an empty {'user' if not user else 'item'} id; "
                                  "fill it in or remove that line")
        n_rows += 1
        if parse_rating:
            text = fields[ri].strip()
            try:
                value = float(text)
            except ValueError:
                raise DataFormatError(f"{name}: line {lineno}: rating {text!r} is not a number; fix the value, "
                                      "or pick the right rating_col") from None
            if not math.isfinite(value):
                raise DataFormatError(f"{name}: line {lineno}: rating {text!r} is not a finite number; "
                                      "fix or remove that line")
            if min_rating is not None and value < min_rating:
                n_below += 1
                continue
            if value < 0 and not binarize:
                raise DataFormatError(f"{name}: line {lineno}: rating {text!r} is negative; interaction "
                                      "values must be >= 0 (use min_rating= or binarize=True)")
            if not binarize:
                ratings.append(value)
        users.append(user)
        items.append(item)
    if n_rows == 0:
        raise DataFormatError(f"{name}: has a header line but no data rows; add user,item rows "
                              "(or pass header=False if the first line is data)")
    if not users:
        raise DataFormatError(f"{name}: no rows left after min_rating={min_rating:g} (all {n_below} ratings "
                              "are below it); lower min_rating")
    return users, items, (ratings if parse_rating and not binarize else None)


def _chain_first(first: Tuple[int, List[str]], rest: Iterator[Tuple[int, List[str]]]):
    yield first
    yield from rest


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parse_ids(values: List[str]) -> Tuple[np.ndarray, np.ndarray]:
    """Sorted unique ids (int64 when all are integers, else str) and each value's index among them."""
    arr = np.array(values)
    try:
        ints = arr.astype(np.int64)
    except (ValueError, OverflowError):
        ints = None
    if ints is not None and not np.array_equal(ints.astype(arr.dtype), arr):
        # non-canonical spellings ("007", "+7"): integers only if that merges no two ids
        if np.unique(ints).size != np.unique(arr).size:
            ints = None
    ids, inverse = np.unique(arr if ints is None else ints, return_inverse=True)
    return ids, inverse.reshape(-1)


# -- item spaces ----------------------------------------------------------------------------

def align_items(interactions: Interactions, item_ids: Any) -> Tuple[sp.csr_matrix, int]:
    """Re-index interactions into another item id space (e.g. a fitted model's).

    Parameters
    ----------
    interactions : Interactions
    item_ids : array-like, shape (n_items,)
        The target item ids; column ``j`` of the result is ``item_ids[j]``.
        Ids are compared as strings when one side is integer and the other str.

    Returns
    -------
    X : scipy.sparse.csr_matrix of float32, shape (n_users, n_items)
        One row per user of ``interactions``, same order.
    n_unknown : int
        Stored interactions whose item is not in ``item_ids`` (dropped).
    """
    target = np.asarray(item_ids)
    own = interactions.item_ids
    if (target.dtype.kind in "iu") != (own.dtype.kind in "iu"):
        target, own = target.astype(str), own.astype(str)
    order = np.argsort(target, kind="stable")
    ordered = target[order]
    pos = np.minimum(np.searchsorted(ordered, own), max(ordered.size - 1, 0))
    found = ordered[pos] == own if ordered.size else np.zeros(own.size, dtype=bool)
    column = np.where(found, order[pos] if ordered.size else -1, -1)
    M = interactions.matrix
    new_cols = column[M.indices]
    keep = new_cols >= 0
    rows = np.repeat(np.arange(M.shape[0]), np.diff(M.indptr))[keep]
    X = sp.csr_matrix((M.data[keep], (rows, new_cols[keep])), shape=(M.shape[0], target.size), dtype=np.float32)
    X.sum_duplicates()
    return X, int(M.nnz - keep.sum())
