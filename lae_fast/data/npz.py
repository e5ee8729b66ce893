"""``.npz`` interaction files: scipy ``save_npz`` archives and plain CSR arrays with id maps (never pickles)."""
from __future__ import annotations

import struct
import zipfile
import zlib
from typing import Any, Dict, Tuple

import numpy as np
import scipy.sparse as sp

from .._memory import check_fits_in_memory
from .._validation import check_interactions
from ..ids import as_ids
from ..io import atomic_write
from .interactions import DataFormatError, Interactions, PathLike, as_float32, check_file

__all__ = ["read_npz", "save_npz", "NPZ_EXTENSIONS"]

#: extensions read by :func:`read_npz` (lower case)
NPZ_EXTENSIONS = (".npz",)
_CSR_KEYS = ("indptr", "indices", "data", "shape")

_NPZ_KEYS = ("format", "shape", "data", "indptr", "indices", "row", "col", "coords", "offsets",
             "user_ids", "item_ids", "timestamps")
_NPZ_FIX = "re-create it with lae_fast.data.save_npz or scipy.sparse.save_npz"


def read_npz(path: PathLike, *, binarize: bool = True) -> Interactions:
    """Read interactions from an ``.npz`` archive.

    Parameters
    ----------
    path : str or path-like
        A :func:`scipy.sparse.save_npz` file (csr, csc, coo, bsr or dia; told
        apart by its ``format`` entry), or a plain :func:`numpy.savez` file
        with a CSR matrix as ``indptr``, ``indices``, ``data`` and ``shape``
        and optionally ``user_ids`` / ``item_ids`` and ``timestamps`` (what
        :func:`save_npz` writes). Pickled arrays are never loaded.
    binarize : bool, default=True
        Store every positive value as 1.0.

    Returns
    -------
    Interactions
        Ids are taken as stored (int64 or str); ``0..n-1`` when absent.
        ``timestamps`` (one number per stored entry of a canonical CSR) become
        :attr:`Interactions.timestamps`, without those of entries that are 0.

    Raises
    ------
    DataFormatError
        Not an npz archive, corrupt or truncated, missing arrays, arrays that
        disagree with each other or the shape, indices out of range, negative,
        NaN, infinite or non-numeric values, no users, items or interactions,
        id arrays of the wrong length, or timestamps that do not match the
        stored entries one for one.
    MemoryError
        The declared shape needs index arrays larger than the available memory
        (the message gives the estimate).
    """
    name = check_file(path)
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
    check_fits_in_memory(8 * (3 * (n_users + 1) + 2 * (n_items + 1)) + 40 * int(arrays["data"].size),
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
    timestamps = _npz_timestamps(name, arrays["timestamps"], fmt, X) if "timestamps" in arrays else None
    X = check_interactions(X, name=name, binarize=binarize)
    if X.nnz == 0:
        raise DataFormatError(f"{name}: has no interactions (every stored value is 0); "
                              "an interactions file needs at least one positive value")
    try:
        user_ids = as_ids(arrays.get("user_ids"), n_users, name="user_ids")
        item_ids = as_ids(arrays.get("item_ids"), n_items, name="item_ids")
    except (ValueError, TypeError) as exc:
        raise DataFormatError(f"{name}: {exc}; {_NPZ_FIX}") from None
    return Interactions._trusted(as_float32(X, name, DataFormatError), user_ids, item_ids, timestamps=timestamps)


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


def _npz_timestamps(name: str, ts: np.ndarray, fmt: str, X: sp.csr_matrix) -> np.ndarray:
    """The timestamps of the entries that stay (non-zero), after checking they match the CSR one for one."""
    if fmt != "csr":
        raise DataFormatError(f"{name}: holds timestamps beside a {fmt.upper()} matrix; timestamps go with the "
                              f"entries of a CSR matrix; {_NPZ_FIX}")
    if ts.ndim != 1 or ts.dtype.kind not in "iuf":
        raise DataFormatError(f"{name}: timestamps must be a 1-D array of numbers, got dtype {ts.dtype} and shape "
                              f"{ts.shape}; {_NPZ_FIX}")
    if ts.size != X.nnz:
        raise DataFormatError(f"{name}: shapes disagree: timestamps has {ts.size} entries but there are nnz = "
                              f"{X.nnz} stored values; {_NPZ_FIX}")
    if ts.dtype.kind == "f" and not np.isfinite(ts).all():
        raise DataFormatError(f"{name}: timestamps has {int((~np.isfinite(ts)).sum())} NaN or infinite values; "
                              f"{_NPZ_FIX}")
    if not X.has_canonical_format:
        raise DataFormatError(f"{name}: holds timestamps but its CSR matrix is not canonical (unsorted or repeated "
                              f"column indices), so they cannot follow its entries; {_NPZ_FIX}")
    nonzero = X.data != 0
    return ts if nonzero.all() else ts[nonzero]


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
    ``user_ids`` and ``item_ids``, and ``timestamps`` when the interactions
    have them (one per stored entry); no pickles. The file is written to a
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
    if interactions.timestamps is not None:
        arrays["timestamps"] = interactions.timestamps
    with atomic_write(path) as fh:
        (np.savez_compressed if compressed else np.savez)(fh, **arrays)
