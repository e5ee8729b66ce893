"""Parquet interaction files (``user, item`` rows) through pyarrow, an optional dependency."""
from __future__ import annotations

import os
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from ..io import atomic_write
from .interactions import DataFormatError, Interactions, PathLike, check_file
from .pairs import interactions_from_pairs

__all__ = ["read_parquet", "write_parquet", "parquet_columns", "require_columns", "PARQUET_EXTENSIONS",
           "INSTALL_HINT"]

#: extensions read by :func:`read_parquet` (lower case)
PARQUET_EXTENSIONS = (".parquet", ".pq")
INSTALL_HINT = "pip install pyarrow (or 'lae-fast[dask]')"


def pyarrow_modules() -> Tuple[Any, Any]:
    """``(pyarrow, pyarrow.parquet)``, or an ImportError saying what to install."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ImportError(f"parquet files need pyarrow ({exc}); {INSTALL_HINT}") from None
    return pa, pq


def require_columns(name: str, found: Sequence[str], user_col: str, item_col: str) -> None:
    """DataFormatError naming the missing user/item column(s) and the flags that choose them."""
    missing = [c for c in (user_col, item_col) if c not in found]
    if missing:
        raise DataFormatError(
            f"{name}: missing column(s) {', '.join(map(repr, missing))} (found: {', '.join(map(str, found))}); "
            f"name the user and item columns {user_col!r} and {item_col!r}, "
            "or pass user_col= / item_col= (--user-col / --item-col)")


def parquet_columns(path: str, columns: Sequence[str], user_col: str, item_col: str) -> List[np.ndarray]:
    """Some columns of a parquet file as numpy arrays, after checking the names and for missing values."""
    pa, pq = pyarrow_modules()
    try:
        require_columns(path, pq.read_schema(path).names, user_col, item_col)
        table = pq.read_table(path, columns=list(columns))
    except (pa.ArrowException, OSError) as exc:
        raise DataFormatError(f"{path}: is not a readable parquet file ({exc}); write it again "
                              "(e.g. pyarrow.parquet.write_table)") from None
    out = []
    for col in columns:
        arr = table.column(col)
        if arr.null_count:
            raise DataFormatError(f"{path}: column {col!r} has {arr.null_count} missing values; drop those rows")
        out.append(arr.to_numpy())
    return out


def read_parquet(path: PathLike, *, user_col: str = "user", item_col: str = "item") -> Interactions:
    """Read ``user, item`` rows from a parquet file (duplicated pairs count once).

    Raises
    ------
    DataFormatError
        Unreadable file, missing columns or values, ids that are neither integers nor strings, no rows.
    """
    name = check_file(path)
    users, items = parquet_columns(name, (user_col, item_col), user_col, item_col)
    return interactions_from_pairs(name, users, items)


def write_parquet(path: PathLike, columns: Dict[str, np.ndarray]) -> None:
    """Columns as one parquet file, written atomically."""
    pa, pq = pyarrow_modules()
    table = pa.table({k: pa.array(v) for k, v in columns.items()})
    with atomic_write(os.fspath(path)) as fh:
        pq.write_table(table, fh)
