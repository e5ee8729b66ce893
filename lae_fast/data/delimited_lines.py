"""Delimited text read line by line in Python: the reference semantics, and the diagnosis of malformed files.

:func:`lae_fast.data.read_csv` reads through Arrow; whenever Arrow refuses a file or the fast path sees
something it cannot vouch for (a stray quote, a ragged row, a bad rating...), this reader reads the file
again and either returns what the file means or raises the error naming the first bad line.
"""
from __future__ import annotations

import math
import re
from typing import List, Optional

import numpy as np
import pyarrow as pa

from .columns import IdColumn, assemble
from .delimited_layout import Layout, all_ratings_zero, is_blank, iter_rows, no_rows_left
from .interactions import DataFormatError, Interactions, NoRowsError
from .timestamps import parse_timestamp

__all__ = ["read_lines"]

_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)


def read_lines(fh, layout: Layout, *, min_rating: Optional[float], binarize: bool,
               integer_ids: bool = False) -> Interactions:
    """Read the rows of the open text file ``fh`` (at its start) laid out as ``layout`` says.

    ``integer_ids``: every id, kept or not, must be an integer (``[+-]digits``).

    Raises
    ------
    DataFormatError
        A short row, an empty id, a rating that is not a finite number, a timestamp that is neither
        a finite number nor an ISO-8601 date/time (:mod:`~lae_fast.data.timestamps`), a negative
        rating kept with ``binarize=False``, no data rows, no rows left after ``min_rating``;
        messages name the file and the line.
    """
    name = layout.name
    ui, ii, ri, ti, need = layout.user, layout.item, layout.rating, layout.timestamp, layout.need
    users: List[str] = []
    items: List[str] = []
    ratings: List[float] = []
    times: List[float] = []
    n_rows = n_below = 0
    skip_first = layout.header
    for lineno, fields in iter_rows(name, fh, layout.sep):
        if skip_first:
            if not is_blank(fields):
                skip_first = False
            continue
        if len(fields) <= need:
            if is_blank(fields):
                continue
            raise DataFormatError(f"{name}: line {lineno} has {len(fields)} fields, too few: column "
                                  f"{need + 1} is needed; fix or remove that line (or check sep=)")
        user = fields[ui].strip()
        item = fields[ii].strip()
        if not user or not item:
            if is_blank(fields):
                continue
            raise DataFormatError(f"{name}: line {lineno} has an empty {'user' if not user else 'item'} id; "
                                  "fill it in or remove that line")
        if integer_ids:
            for what, text in (("user", user), ("item", item)):
                if not _INTEGER.fullmatch(text):
                    raise DataFormatError(f"{name}: line {lineno}: {what} id {text!r} is not an integer; "
                                          "fix or remove that line")
        n_rows += 1
        if ti is not None:
            try:
                times.append(parse_timestamp(fields[ti].strip()))
            except ValueError as exc:
                raise DataFormatError(f"{name}: line {lineno}: timestamp {exc}; fix or remove that line") from None
        if ri is not None:
            text = fields[ri].strip()
            value = _number(name, lineno, "rating", text, "fix the value, or pick the right rating_col")
            if min_rating is not None and value < min_rating:
                n_below += 1
                if ti is not None:
                    times.pop()
                continue
            if value < 0 and not binarize:
                raise DataFormatError(f"{name}: line {lineno}: rating {text!r} is negative; interaction "
                                      "values must be >= 0 (use min_rating= or binarize=True)")
            if not binarize:
                ratings.append(value)
        users.append(user)
        items.append(item)
    if n_rows == 0:
        raise NoRowsError(f"{name}: has a header line but no data rows; add user,item rows "
                              "(or pass header=False if the first line is data)")
    if not users:
        raise no_rows_left(name, min_rating, n_below)
    user_col = IdColumn(f"{name}: user ids", text=True)
    item_col = IdColumn(f"{name}: item ids", text=True)
    user_col.add(pa.array(users, type=pa.string()))
    item_col.add(pa.array(items, type=pa.string()))
    del users, items
    values = [np.asarray(ratings, dtype=np.float64)] if ri is not None and not binarize else None
    stamps = [np.asarray(times, dtype=np.float64)] if ti is not None else None
    inter = assemble(name, user_col, item_col, values=values, timestamps=stamps, binarize=binarize)
    if inter.nnz == 0:
        raise all_ratings_zero(name)
    return inter


def _number(name: str, lineno: int, what: str, text: str, fix: str) -> float:
    """A finite float, or the error naming the line."""
    try:
        value = float(text)
    except ValueError:
        raise DataFormatError(f"{name}: line {lineno}: {what} {text!r} is not a number; {fix}") from None
    if not math.isfinite(value):
        raise DataFormatError(f"{name}: line {lineno}: {what} {text!r} is not a finite number; "
                              "fix or remove that line")
    return value
