"""Top-K lists written to files: CSV (Python's csv module), JSON or Parquet, always atomically.

Rows are ``user, rank, item, score`` (rank 1 = best). CSV quotes what needs quoting, so ids holding
commas, quotes or line breaks read back as they were (with :func:`lae_fast.data.read_csv` or any CSV
reader); Parquet keeps the id types and the float32 scores exactly. Used by ``lae-fast recommend`` and
``recommend-all``.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from typing import Any, BinaryIO, Dict, List, Optional, Tuple, Union

import numpy as np

from .io import atomic_write

__all__ = ["REC_FORMATS", "RecWriter", "top_rows", "format_for", "rows_as_text"]

#: formats a list of recommendations can be written in (JSON only as one whole file)
REC_FORMATS = ("csv", "json", "parquet")
HEADER = ("user", "rank", "item", "score")
_EXTENSIONS = {".csv": "csv", ".json": "json", ".parquet": "parquet", ".pq": "parquet"}


def format_for(path: Optional[str], fmt: Optional[str]) -> str:
    """The format asked for, else the one the output's extension names, else CSV."""
    if fmt is not None:
        return fmt
    if path is not None:
        return _EXTENSIONS.get(os.path.splitext(path)[1].lower(), "csv")
    return "csv"


def top_rows(user_ids: np.ndarray, ids: np.ndarray, scores: np.ndarray,
             item_ids: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(users, ranks, items, scores)`` of a block of top-K lists, padding (-1) left out.

    Row-major order is kept: each user's list from rank 1 on (padding only ever trails a row).
    """
    keep = ids >= 0
    ranks = np.broadcast_to(np.arange(1, ids.shape[1] + 1, dtype=np.int32), ids.shape)[keep]
    return np.repeat(user_ids, keep.sum(axis=1)), ranks, item_ids[ids[keep]], scores[keep]


class RecWriter:
    """Write blocks of ``user, rank, item, score`` rows to ``target`` in ``fmt``; a file appears on close.

    Parameters
    ----------
    target : str, path-like or io.BytesIO
    fmt : {"csv", "json", "parquet"}

    Use as a context manager; on an error nothing is left at ``path``.
    """

    def __init__(self, target: Union[str, "os.PathLike[str]", io.BytesIO], fmt: str) -> None:
        if fmt not in REC_FORMATS:
            raise ValueError(f"format must be one of {', '.join(REC_FORMATS)}, got {fmt!r}")
        self.fmt, self.rows = fmt, 0
        # a path is written atomically; a buffer (text for stdout) directly
        self._atomic = contextlib.nullcontext(target) if isinstance(target, io.BytesIO) else atomic_write(target)
        self._json: Dict[str, List[Dict[str, Any]]] = {}
        self._fh: Optional[BinaryIO] = None
        self._text: Any = None
        self._csv: Any = None
        self._parquet: Any = None

    def __enter__(self) -> "RecWriter":
        self._fh = self._atomic.__enter__()
        if self.fmt == "csv":
            self._text = io.TextIOWrapper(self._fh, encoding="utf-8", newline="", write_through=True)
            self._csv = csv.writer(self._text, lineterminator="\n")
            self._csv.writerow(HEADER)
        return self

    def write(self, users: np.ndarray, ranks: np.ndarray, items: np.ndarray, scores: np.ndarray) -> None:
        """Append rows (arrays of one length)."""
        self.rows += len(ranks)
        if self.fmt == "csv":
            self._csv.writerows(zip(users.tolist(), ranks.tolist(), items.tolist(),
                                    (f"{s:.6g}" for s in scores.tolist())))
        elif self.fmt == "json":
            for user, rank, item, score in zip(users.tolist(), ranks.tolist(), items.tolist(), scores.tolist()):
                self._json.setdefault(str(user), []).append({"rank": rank, "item": item, "score": score})
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.table({"user": pa.array(users), "rank": pa.array(ranks, pa.int32()),
                              "item": pa.array(items), "score": pa.array(scores)})
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self._fh, table.schema)
            self._parquet.write_table(table)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Optional[bool]:
        try:
            if exc_type is None:
                self._finish()
        finally:
            if self._text is not None:
                self._text.detach()  # the binary file is closed by atomic_write, not by the wrapper
        return self._atomic.__exit__(exc_type, exc, tb)

    def _finish(self) -> None:
        if self.fmt == "json":
            self._fh.write(json.dumps(self._json, indent=1).encode())
        elif self.fmt == "parquet":
            if self._parquet is None:  # no rows at all: the columns, empty
                self.write(np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int64), np.zeros(0, np.float32))
            self._parquet.close()


def rows_as_text(fmt: str, users: np.ndarray, ranks: np.ndarray, items: np.ndarray, scores: np.ndarray) -> str:
    """The rows as CSV or JSON text, for printing to stdout."""
    buf = io.BytesIO()
    with RecWriter(buf, fmt) as writer:
        writer.write(users, ranks, items, scores)
    return buf.getvalue().decode()
