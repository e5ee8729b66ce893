"""Parquet interaction files (``user, item[, rating][, timestamp]`` rows), read a row group at a time."""
from __future__ import annotations

import os
from typing import Any, Dict, Optional, Tuple

import numpy as np

from .._threads import arrow_threads
from .._validation import check_scalar
from ..io import atomic_write
from .delimited_layout import Column
from .interactions import DataFormatError, Interactions, PathLike, check_file
from .tables import read_blocks, resolve_columns

__all__ = ["read_parquet", "write_parquet", "PARQUET_EXTENSIONS", "INSTALL_HINT"]

#: extensions read by :func:`read_parquet` (lower case)
PARQUET_EXTENSIONS = (".parquet", ".pq")
INSTALL_HINT = "pip install pyarrow (a dependency of lae-fast: reinstall it)"
_BATCH_ROWS = 1 << 20


def pyarrow_modules() -> Tuple[Any, Any]:
    """``(pyarrow, pyarrow.parquet)``, or an ImportError saying what to install."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ImportError(f"parquet files need pyarrow ({exc}); {INSTALL_HINT}") from None
    return pa, pq


def read_parquet(path: PathLike, *, user_col: Column = None, item_col: Column = None, rating_col: Column = None,
                 timestamp_col: Column = None, min_rating: Optional[float] = None, binarize: bool = True,
                 num_threads: Optional[int] = None) -> Interactions:
    """Read ``user, item[, rating][, timestamp]`` rows from a parquet file, one row group at a time.

    Parameters
    ----------
    path : str or path-like
    user_col, item_col, rating_col, timestamp_col : str or int, optional
        Column names or 0-based positions, as for :func:`~lae_fast.data.read_csv`
        (user and item found by their usual names when None).
    min_rating : float, optional
        Keep only rows with ``rating >= min_rating`` (needs a rating column).
    binarize : bool, default=True
        Every kept row is a positive; with False the values are the ratings, summed over repeated pairs.
    num_threads : int, optional
        Threads for Arrow's decoding (default: the package's thread knob).

    Returns
    -------
    Interactions
        Ids keep the column's type (integer columns give integer ids, string columns string ids).

    Raises
    ------
    DataFormatError
        Unreadable file, missing columns or values, bad ratings, ids that are neither integers nor strings,
        no rows, or none left after ``min_rating``.
    """
    name = check_file(path)
    if min_rating is not None:
        min_rating = check_scalar(min_rating, name="min_rating")
    pa, pq = pyarrow_modules()
    try:
        available = pq.read_schema(name).names
    except (pa.ArrowException, OSError) as exc:
        raise _unreadable(name, exc) from None
    columns = resolve_columns(name, available, user=user_col, item=item_col, rating=rating_col,
                              timestamp=timestamp_col, min_rating=min_rating, binarize=binarize)

    def blocks():
        try:
            with arrow_threads(num_threads):
                for batch in pq.ParquetFile(name).iter_batches(batch_size=_BATCH_ROWS, columns=columns.names,
                                                               use_threads=True):
                    yield {c: batch.column(c) for c in columns.names}
        except (pa.ArrowException, OSError) as exc:
            raise _unreadable(name, exc) from None

    return read_blocks(name, columns, blocks(), min_rating=min_rating, binarize=binarize)


def _unreadable(name: str, exc: Exception) -> DataFormatError:
    return DataFormatError(f"{name}: is not a readable parquet file ({exc}); write it again "
                           "(e.g. pyarrow.parquet.write_table)")


def write_parquet(path: PathLike, columns: Dict[str, np.ndarray]) -> None:
    """Columns as one parquet file, written atomically."""
    pa, pq = pyarrow_modules()
    table = pa.table({k: pa.array(v) for k, v in columns.items()})
    with atomic_write(os.fspath(path)) as fh:
        pq.write_table(table, fh)
