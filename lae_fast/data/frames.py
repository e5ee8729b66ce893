"""DataFrames in the way users hold them -> :class:`Interactions`: pandas, polars, pyarrow and dask.

Each kind of frame is turned into blocks of Arrow (or numpy) columns without copying the whole table,
then read by :func:`lae_fast.data.tables.read_blocks` like a Parquet file; a dask DataFrame is read one
partition at a time. The frame libraries are imported only if the frame comes from them.
"""
from __future__ import annotations

from typing import Any, Dict, Iterator, List, Optional, Sequence

import numpy as np
import pyarrow as pa

from .._threads import arrow_threads
from .._validation import check_scalar
from .delimited_layout import Column
from .interactions import Interactions
from .tables import read_blocks, resolve_columns

__all__ = ["read_frame", "is_frame"]

_PARAMS = ("user", "item", "rating", "timestamp")
_BLOCK_ROWS = 1 << 20


def is_frame(obj: Any) -> bool:
    """Whether ``obj`` is a table :func:`read_frame` takes (pandas, polars, pyarrow or dask)."""
    return _kind(obj) is not None


def _kind(obj: Any) -> Optional[str]:
    module = type(obj).__module__.split(".")[0]
    if isinstance(obj, (pa.Table, pa.RecordBatch)):
        return "arrow"
    if module == "polars" and hasattr(obj, "to_arrow"):
        return "polars"
    if module in ("dask", "dask_expr") and hasattr(obj, "npartitions") and hasattr(obj, "columns"):
        return "dask"
    if module == "pandas" and hasattr(obj, "columns") and hasattr(obj, "iloc"):
        return "pandas"
    return None


def read_frame(frame: Any, *, user: Column = None, item: Column = None, rating: Column = None,
               timestamp: Column = None, min_rating: Optional[float] = None, binarize: bool = True,
               num_threads: Optional[int] = None, name: Optional[str] = None,
               params: Sequence[str] = _PARAMS) -> Interactions:
    """See :meth:`lae_fast.data.Interactions.from_frame`.

    ``name`` is how messages call the frame (default: its type, e.g. ``DataFrame``); ``params`` the names of
    the four column options they ask for (default ``user``, ``item``, ``rating``, ``timestamp``).
    """
    kind = _kind(frame)
    if kind is None:
        lazy = " (call .collect() on a polars LazyFrame first)" if type(frame).__name__ == "LazyFrame" else ""
        raise TypeError(f"expected a pandas, polars or dask DataFrame or a pyarrow Table, got "
                        f"{type(frame).__module__}.{type(frame).__name__}{lazy}")
    if min_rating is not None:
        min_rating = check_scalar(min_rating, name="min_rating")
    label = name or type(frame).__name__
    if kind == "polars":
        frame, kind = frame.to_arrow(), "arrow"
    available = frame.schema.names if kind == "arrow" else [str(c) for c in frame.columns]
    columns = resolve_columns(label, available, user=user, item=item, rating=rating, timestamp=timestamp,
                              min_rating=min_rating, binarize=binarize, params=params)
    blocks = {"arrow": _arrow_blocks, "pandas": _pandas_blocks, "dask": _dask_blocks}[kind](frame, columns.names)
    with arrow_threads(num_threads):
        return read_blocks(label, columns, blocks, min_rating=min_rating, binarize=binarize)


def _arrow_blocks(table: Any, names: Sequence[str]) -> Iterator[Dict[str, Any]]:
    table = table.select(names)
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    for batch in table.to_batches(max_chunksize=_BLOCK_ROWS):
        yield {c: batch.column(c) for c in names}


def _pandas_blocks(df: Any, names: Sequence[str]) -> Iterator[Dict[str, Any]]:
    by_name = {str(c): c for c in df.columns}
    for start in range(0, max(len(df), 1), _BLOCK_ROWS):
        part = df.iloc[start:start + _BLOCK_ROWS]
        yield {c: _pandas_column(part[by_name[c]]) for c in names}


def _pandas_column(series: Any) -> Any:
    """An Arrow array when Arrow takes the column as it is (no copy for numbers), else numpy (ids rules)."""
    try:
        return pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return np.asarray(series.to_numpy())


def _dask_blocks(ddf: Any, names: Sequence[str]) -> Iterator[Dict[str, Any]]:
    selected = ddf[list(_original_names(ddf, names))]
    for i in range(selected.npartitions):
        part = selected.get_partition(i).compute()
        yield from _pandas_blocks(part, names)


def _original_names(df: Any, names: Sequence[str]) -> List[Any]:
    by_name = {str(c): c for c in df.columns}
    return [by_name[c] for c in names]
