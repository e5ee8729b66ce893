"""Typed tables (Parquet files, DataFrames, Arrow tables) -> :class:`Interactions`, block by block.

The columns are found by name or position as in delimited text (:func:`resolve_columns`); each block of
rows is checked (no missing values, finite ratings), filtered by ``min_rating`` and handed to the id
columns, so a table is never copied whole. Ids keep their type: integer columns give integer ids and
string columns string ids (:mod:`lae_fast.ids`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np
import pyarrow as pa

from .columns import IdColumn, assemble
from .delimited_layout import Column, choose_columns, no_rows_left
from .interactions import DataFormatError, Interactions, NoRowsError
from .pairs import check_values
from .timestamps import column_seconds

__all__ = ["TableColumns", "resolve_columns", "read_blocks"]


@dataclass(frozen=True)
class TableColumns:
    """The names of the columns to read (rating None when the ratings are not needed)."""

    user: str
    item: str
    rating: Optional[str]
    timestamp: Optional[str]

    @property
    def names(self) -> List[str]:
        return [c for c in (self.user, self.item, self.rating, self.timestamp) if c is not None]


def resolve_columns(name: str, available: Sequence[str], *, user: Column, item: Column, rating: Column,
                    timestamp: Column, min_rating: Optional[float], binarize: bool,
                    params: Sequence[str] = ("user_col", "item_col", "rating_col", "timestamp_col")) -> TableColumns:
    """Find the columns by name or 0-based position (user and item also by their usual names).

    ``params`` are the option names the messages tell the caller to pass.

    Raises
    ------
    DataFormatError
        A missing column, the same column for two roles, or ``min_rating`` without a rating column.
    """
    names = [str(c) for c in available]
    ui, ii, ri, ti = choose_columns(name, names, len(names), user_col=user, item_col=item, rating_col=rating,
                                    timestamp_col=timestamp, min_rating=min_rating, binarize=binarize,
                                    defaults=False, shown=names, params=params)
    return TableColumns(names[ui], names[ii], None if ri is None else names[ri], None if ti is None else names[ti])


def read_blocks(name: str, columns: TableColumns, blocks: Iterable[Mapping[str, Any]], *,
                min_rating: Optional[float], binarize: bool) -> Interactions:
    """Interactions from blocks of rows, each a mapping from column name to an Arrow or numpy array.

    Raises
    ------
    DataFormatError
        Missing values, ratings that are not finite numbers, timestamps that are neither numbers nor dates
        (:mod:`~lae_fast.data.timestamps`), negative ratings kept with
        ``binarize=False``, ids that are neither integers nor strings, no rows, no rows left.
    """
    users = IdColumn(f"{name}: column {columns.user!r}", text=False)
    items = IdColumn(f"{name}: column {columns.item!r}", text=False)
    values: Optional[List[np.ndarray]] = [] if columns.rating is not None and not binarize else None
    stamps: Optional[List[np.ndarray]] = [] if columns.timestamp is not None else None
    n_rows = n_below = 0
    for block in blocks:
        arrays: Dict[str, Any] = {c: block[c] for c in columns.names}
        for col, arr in arrays.items():
            missing = _missing(arr)
            if missing:
                raise DataFormatError(f"{name}: column {col!r} has {missing} missing values; drop those rows")
        first_row = n_rows + 1
        n_rows += len(arrays[columns.user])
        keep = None
        if columns.rating is not None:
            rating = check_values(name, _numpy(arrays[columns.rating]), what=f"values of column {columns.rating!r}",
                                  allow_negative=True)
            if min_rating is not None:
                keep = rating >= min_rating
                n_below += int(keep.size - np.count_nonzero(keep))
                rating = rating[keep]
            if values is not None:
                values.append(check_values(name, rating, what=f"kept values of column {columns.rating!r}"))
        if stamps is not None:
            ts = column_seconds(f"{name}: column {columns.timestamp!r}", arrays[columns.timestamp], first_row=first_row)
            stamps.append(ts if keep is None else ts[keep])
        try:
            users.add(arrays[columns.user], keep)
            items.add(arrays[columns.item], keep)
        except (TypeError, ValueError) as exc:
            raise DataFormatError(f"{exc}; ids must be integers or strings") from None
    if n_rows == 0:
        raise NoRowsError(f"{name}: has no rows; fill it with user,item rows")
    if users.size == 0:
        raise no_rows_left(name, min_rating, n_below)
    inter = assemble(name, users, items, values=values, timestamps=stamps, binarize=binarize)
    if inter.nnz == 0:
        raise DataFormatError(f"{name}: every value of column {columns.rating!r} is 0, so there are no "
                              "interactions; pass binarize=True to count every row as a positive")
    return inter


def _missing(arr: Any) -> int:
    if isinstance(arr, (pa.Array, pa.ChunkedArray)):
        return int(arr.null_count)
    arr = np.asarray(arr)
    if arr.dtype.kind == "f":
        return int(np.isnan(arr).sum())
    if arr.dtype.kind == "O":
        return int(sum(v is None or (isinstance(v, float) and v != v) for v in arr))
    return 0


def _numpy(arr: Any) -> np.ndarray:
    if isinstance(arr, (pa.Array, pa.ChunkedArray)):
        return arr.to_numpy(zero_copy_only=False) if isinstance(arr, pa.Array) else arr.to_numpy()
    return np.asarray(arr)

