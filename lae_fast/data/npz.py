"""``.npz`` interaction files: scipy ``save_npz`` archives and plain CSR arrays with id maps (never pickles)."""
from __future__ import annotations

import zipfile
from typing import Any, Dict, Tuple

import numpy as np
import scipy.sparse as sp

from .._validation import check_interactions
from ..ids import as_ids
from ..io import atomic_write
from .archive import NpzArchive
from .interactions import DataFormatError, Interactions, PathLike, as_float32, check_file

__all__ = ["read_npz", "read_npz_shape", "read_npz_item_ids", "save_npz", "NPZ_EXTENSIONS"]

#: extensions read by :func:`read_npz` (lower case)
NPZ_EXTENSIONS = (".npz",)
_CSR_KEYS = ("indptr", "indices", "data", "shape")

#: bytes a real 'format' or 'shape' entry may take (a short string; two int64)
_SMALL_ENTRY = 64
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
    with NpzArchive(name, fix=_NPZ_FIX) as npz:
        fmt, n_users, n_items, arrays = _load_npz(npz)
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


def _npz_format(name: str, raw: Any) -> str:
    if raw is None:
        return "csr"
    fmt = raw.item() if raw.ndim == 0 and raw.dtype.kind in "SU" else None
    if isinstance(fmt, bytes):
        fmt = fmt.decode("ascii", "replace")
    if fmt not in ("csr", "csc", "coo", "bsr", "dia"):
        raise DataFormatError(f"{name}: unknown sparse format {raw!r} in its 'format' entry; supported: "
                              f"csr, csc, coo, bsr, dia; {_NPZ_FIX}")
    return fmt


def _small_entries(npz: NpzArchive) -> Dict[str, np.ndarray]:
    """The 'format' and 'shape' entries, read only if they declare the few bytes a real file holds."""
    small = {}
    for key in ("format", "shape"):
        if key in npz:
            decl = npz.declared(key)
            if decl.nbytes > _SMALL_ENTRY:
                raise DataFormatError(f"{npz.name}: its {key!r} entry declares shape {decl.shape} ({decl.nbytes:,} "
                                      f"bytes); it holds a few bytes in a real file; {_NPZ_FIX}")
            small[key] = npz.read(key)
    return small


def read_npz_shape(path: PathLike) -> Tuple[int, int]:
    """``(n_users, n_items)`` an npz interactions file declares, from its 'shape' entry alone.

    For a memory preflight before reading: a few bytes can declare a billion items.
    """
    name = check_file(path)
    if not zipfile.is_zipfile(name):
        raise DataFormatError(f"{name}: is not an npz (zip) archive, or is truncated; {_NPZ_FIX}")
    with NpzArchive(name, fix=_NPZ_FIX) as npz:
        small = _small_entries(npz)
        if "shape" not in small:
            raise DataFormatError(f"{name}: missing array(s) shape (found: {', '.join(sorted(npz.files)) or 'none'}); "
                                  f"{_NPZ_FIX}")
    return _npz_shape(name, small["shape"])


def read_npz_item_ids(path: PathLike) -> np.ndarray:
    """The item id map of an npz interactions file (``0..n-1`` when it has none), its matrix left unread.

    Raises
    ------
    DataFormatError, MemoryError
        As :func:`read_npz` for the entries it reads.
    """
    name = check_file(path)
    _, n_items = read_npz_shape(name)
    with NpzArchive(name, fix=_NPZ_FIX) as npz:
        ids = None
        if "item_ids" in npz:
            npz.check_budget(["item_ids"], what=f"{name}: the ids of {n_items} items")
            ids = npz.read("item_ids")
    try:
        return as_ids(ids, n_items, name="item_ids")
    except (ValueError, TypeError) as exc:
        raise DataFormatError(f"{name}: {exc}; {_NPZ_FIX}") from None


def _load_npz(npz: NpzArchive) -> Tuple[str, int, int, Dict[str, Any]]:
    """``(format, n_users, n_items, arrays)``: only the arrays this format needs, each inflated only
    after the sizes every member declares agree with each other and fit in memory."""
    name = npz.name
    small = _small_entries(npz)
    fmt = _npz_format(name, small.get("format"))
    needed = {"csr": _CSR_KEYS, "csc": _CSR_KEYS, "bsr": _CSR_KEYS, "dia": ("offsets", "data", "shape"),
              "coo": ("coords", "data", "shape") if "coords" in npz and "row" not in npz
              else ("row", "col", "data", "shape")}[fmt]
    missing = [k for k in needed if k not in npz]
    if missing:
        raise DataFormatError(
            f"{name}: missing array(s) {', '.join(missing)} (found: {', '.join(sorted(npz.files)) or 'none'}); a "
            f"{fmt.upper()} interactions file needs {', '.join(needed)}; {_NPZ_FIX}"
        )
    n_users, n_items = _npz_shape(name, small["shape"])
    keys = [k for k in needed if k != "shape"] + [k for k in ("user_ids", "item_ids", "timestamps") if k in npz]
    _npz_declared_agree(npz, fmt, n_users, n_items)
    # a few bytes can declare billions of users, a deflated member can inflate a thousand-fold: refuse what
    # cannot be built (the members, CSR indptr and its conversion copy, user ids; item ids and a CSC indptr)
    nnz = npz.declared("data").length
    npz.check_budget(keys, extra=8 * (3 * (n_users + 1) + 2 * (n_items + 1)) + 40 * nnz,
                     what=f"{name}: a {n_users} x {n_items} interaction matrix (its arrays, index arrays and ids)")
    arrays = {k: npz.read(k) for k in keys}
    arrays.update(small)
    return fmt, n_users, n_items, arrays


def _npz_declared_agree(npz: NpzArchive, fmt: str, n_users: int, n_items: int) -> None:
    """Lengths the members declare must agree before any is inflated (the same messages as after reading)."""
    name = npz.name
    decl = {k: npz.declared(k) for k in ("indptr", "indices", "row", "col", "coords", "offsets", "data",
                                         "user_ids", "item_ids") if k in npz}
    if any(not d.shape for d in decl.values()):
        return  # 0-d arrays: the checks after reading name them
    if fmt in ("csr", "csc"):
        n_major = n_users if fmt == "csr" else n_items
        if decl["indptr"].shape[0] != n_major + 1:
            raise DataFormatError(f"{name}: shapes disagree: indptr has {decl['indptr'].shape[0]} entries but "
                                  f"{n_major} {'users' if fmt == 'csr' else 'items'} need {n_major + 1}; {_NPZ_FIX}")
    groups = {"csr": ("indices", "data"), "csc": ("indices", "data"), "bsr": ("indices", "data"),
              "dia": ("offsets", "data"), "coo": ("row", "col", "data")}[fmt]
    if fmt == "coo" and "row" not in decl:
        coords = decl["coords"]
        if len(coords.shape) == 2:
            _npz_same_length(name, ("coords", coords.shape[1:]), ("data", decl["data"].shape))
        return
    _npz_same_length(name, *((k, decl[k].shape) for k in groups))
    for key, n in (("user_ids", n_users), ("item_ids", n_items)):
        if key in decl and decl[key].shape[0] != n:
            axis = "rows (users)" if key == "user_ids" else "columns (items)"
            raise DataFormatError(f"{name}: {key} has shape {decl[key].shape} but the matrix has {n} {axis}; "
                                  f"pass exactly one id per {axis.split()[0][:-1]}; {_NPZ_FIX}")


def _npz_shape(name: str, shape: np.ndarray) -> Tuple[int, int]:
    if shape.ndim != 1 or shape.size != 2 or shape.dtype.kind not in "iu" or (shape < 0).any():
        # shown by value only when small: an empty array of shape (2**34, 0) is free, its list is not
        got = repr(shape.tolist()) if shape.size <= 8 and shape.ndim <= 1 else f"an array of shape {shape.shape}"
        raise DataFormatError(f"{name}: shape must be two non-negative integers (n_users, n_items), "
                              f"got {got} ({shape.dtype}); {_NPZ_FIX}")
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


def _npz_same_length(name: str, *named: Tuple[str, Any]) -> None:
    """Arrays (or declared shapes) whose first axis must be the same length."""
    sizes = {k: (a if isinstance(a, tuple) else a.shape)[0] for k, a in named}
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
