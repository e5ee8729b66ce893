"""Long-format text interactions (CSV, TSV, RecBole ``.inter``, MovieLens ``.dat``): one row per interaction."""
from __future__ import annotations

import csv
import math
import os
import re
from typing import Any, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import scipy.sparse as sp

from .._validation import check_interactions, check_scalar
from ..ids import parse_id_strings
from .interactions import DataFormatError, Interactions, PathLike, as_float32, check_file

__all__ = ["read_csv", "CSV_EXTENSIONS", "Column"]

Column = Union[str, int, None]

#: extensions read by :func:`read_csv` (lower case)
CSV_EXTENSIONS = (".csv", ".tsv", ".txt", ".dat", ".inter")

# header names recognised when a column is not given (compared case-insensitively)
_USER_NAMES = ("user", "user_id", "userid", "uid")
_ITEM_NAMES = ("item", "item_id", "itemid", "movieid", "movie_id", "iid")
_RATING_NAMES = ("rating", "ratings", "score", "value", "weight", "count")
_WHITESPACE = r"\s+"  # separator meaning "any run of spaces or tabs"
_SNIFF_LINES = 50
_RECBOLE_SUFFIX = re.compile(r"^(.+):([A-Za-z_]+)$")


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
    name = check_file(path)
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
    user_ids, rows = parse_id_strings(users)
    item_ids, cols = parse_id_strings(items)
    values = np.ones(len(rows), dtype=np.float32) if ratings is None else np.asarray(ratings)
    X = sp.csr_matrix((values, (rows, cols)), shape=(user_ids.size, item_ids.size))
    X = check_interactions(X, name=name, binarize=binarize)
    if X.nnz == 0:
        raise DataFormatError(f"{name}: every rating is 0, so there are no interactions; "
                              "pass binarize=True to count every row as a positive")
    return Interactions._trusted(as_float32(X, name, DataFormatError), user_ids, item_ids)


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
