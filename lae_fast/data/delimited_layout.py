"""The layout of a delimited text file: separator, header and which columns hold what.

Read from the first lines only (cheap), and shared by the two readers of :mod:`lae_fast.data.delimited`:
Arrow's block reader, and the line-by-line reader that diagnoses what Arrow cannot take.
"""
from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from typing import Any, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from .interactions import DataFormatError, NoRowsError, NoRowsLeftError

__all__ = ["Column", "Layout", "read_layout", "iter_rows", "is_blank", "WHITESPACE", "no_rows_left",
           "all_ratings_zero", "find_column", "column_name", "choose_columns"]

Column = Union[str, int, None]

# header names recognised when a column is not given (compared case-insensitively)
USER_NAMES = ("user", "user_id", "userid", "uid")
ITEM_NAMES = ("item", "item_id", "itemid", "movieid", "movie_id", "iid")
RATING_NAMES = ("rating", "ratings", "score", "value", "weight", "count")
#: separator meaning "any run of spaces or tabs"
WHITESPACE = r"\s+"
_SNIFF_LINES = 50
_RECBOLE_SUFFIX = re.compile(r"^(.+):([A-Za-z_]+)$")


@dataclass(frozen=True)
class Layout:
    """Where the data of a delimited file are (0-based column positions, 1-based lines)."""

    name: str
    sep: str                     # one character, '::', or WHITESPACE
    header: bool
    ncols: int                   # fields on the first non-blank line
    header_lines: int            # physical lines up to and including the header (0 without one)
    first_row_lines: int         # physical lines of the first non-blank row (more than 1: a quoted line break)
    user: int
    item: int
    rating: Optional[int]        # None when the ratings are not needed
    timestamp: Optional[int]
    names: Optional[Tuple[str, ...]]  # header names without RecBole suffixes

    @property
    def need(self) -> int:
        """The highest column position a data row must have."""
        return max(i for i in (self.user, self.item, self.rating, self.timestamp) if i is not None)


def read_layout(name: str, fh, *, sep: Optional[str], header: bool, user_col: Column, item_col: Column,
                rating_col: Column, timestamp_col: Column, min_rating: Optional[float], binarize: bool) -> Layout:
    """Detect the separator, read the first non-blank line and find the columns; ``fh`` is a text file.

    Raises
    ------
    DataFormatError
        Empty file, undetectable separator, a missing or repeated column (messages name the file and line).
    ValueError, TypeError
        Options that contradict each other (a column name with ``header=False``, ...).
    """
    sep = _resolve_sep(name, fh, sep)
    first, previous_line = None, 0
    for lineno, fields in iter_rows(name, fh, sep):
        if not is_blank(fields):
            first = (lineno, fields)
            break
        previous_line = lineno
    if first is None:
        raise NoRowsError(f"{name}: is empty; an interactions file needs one user,item row per interaction")
    first_line, first_fields = first
    ncols = len(first_fields)
    raw = first_fields if header else None
    if ncols < 2:
        raise DataFormatError(f"{name}: line {first_line} has a single column ({first_fields[0][:60]!r}); an "
                              f"interactions file needs user and item columns; check sep= (used {sep!r})")
    data_hint = (" (the first line looks like data: pass header=False if the file has no header)"
                 if all(_is_number(f) for f in first_fields) else "")
    if raw is not None:
        _refuse_repeated_names(name, first_line, raw, data_hint)

    ui, ii, ri, ti = choose_columns(
        name, raw, ncols, user_col=user_col, item_col=item_col, rating_col=rating_col, timestamp_col=timestamp_col,
        min_rating=min_rating, binarize=binarize, defaults=True, hint=data_hint,
        shown=[column_name(f) for f in first_fields] if header else f"{ncols} columns")
    names = tuple(column_name(f) for f in raw) if raw is not None else None
    return Layout(name=name, sep=sep, header=header, ncols=ncols, header_lines=first_line if header else 0,
                  first_row_lines=first_line - previous_line, user=ui, item=ii, rating=ri, timestamp=ti, names=names)


def choose_columns(name: str, raw: Optional[List[str]], ncols: int, *, user_col: Column, item_col: Column,
                   rating_col: Column, timestamp_col: Column, min_rating: Optional[float], binarize: bool,
                   defaults: bool, hint: str = "", shown: Any = None,
                   params: Sequence[str] = ("user_col", "item_col", "rating_col", "timestamp_col"),
                   ) -> Tuple[int, int, Optional[int], Optional[int]]:
    """Positions of the user, item, rating and timestamp columns among ``raw`` names (or ``ncols`` columns).

    The rating position is None unless the ratings are needed (named, ``min_rating``, or ``binarize=False``).
    ``defaults``: without names, the columns are 0, 1, 2 (and 3). ``params`` are the option names the
    messages ask for; ``hint`` follows the "no user/item column" message; ``shown`` lists the columns.

    Raises
    ------
    DataFormatError
        A missing column, one column for two roles, or ``min_rating`` without a rating column.
    """
    p_user, p_item, p_rating, p_time = params
    shown = shown if shown is not None else [column_name(f) for f in raw or []]

    def find(spec: Column, param: str, cands: Sequence[str], pos: Optional[int]) -> Optional[int]:
        return find_column(name, spec, param, raw, ncols, cands, pos if defaults else None)

    def label(i: int) -> str:
        return f"column {i}" if raw is None else f"column {i} ({column_name(raw[i])!r})"

    ui = find(user_col, p_user, USER_NAMES, 0)
    ii = find(item_col, p_item, ITEM_NAMES, 1)
    ri = find(rating_col, p_rating, RATING_NAMES, 2)
    ti = find(timestamp_col, p_time, (), 3) if timestamp_col is not None else None
    for idx, param in ((ui, p_user), (ii, p_item)):
        if idx is None:
            raise DataFormatError(f"{name}: no {param[:4]} column found; available columns: {shown}{hint}; "
                                  f"pass {param}=")
    if ui == ii:
        raise DataFormatError(f"{name}: user and item are both {label(ui)}; pass distinct {p_user} and {p_item}")
    if ri is not None and ri in (ui, ii):
        if rating_col is not None:
            raise DataFormatError(f"{name}: {p_rating} is {label(ri)}, which is also the user or item column; "
                                  f"pass a distinct {p_rating}")
        ri = None  # the default position was taken by user_col / item_col
    if ti is not None and ti in (ui, ii, ri):
        raise DataFormatError(f"{name}: {p_time} is {label(ti)}, which is also the user, item or rating "
                              f"column; pass a distinct {p_time}")
    if min_rating is not None and ri is None:
        raise DataFormatError(f"{name}: min_rating={min_rating:g} needs a rating column, but none was found "
                              f"(columns: {shown}); pass {p_rating}=, or drop min_rating")
    parse_rating = ri is not None and (rating_col is not None or min_rating is not None or not binarize)
    return ui, ii, ri if parse_rating else None, ti


def no_rows_left(name: str, min_rating: float, n_below: int) -> NoRowsLeftError:
    """The error for a source whose every rating is below ``min_rating``."""
    return NoRowsLeftError(f"{name}: no rows left after min_rating={min_rating:g} (all {n_below} ratings "
                           "are below it); lower min_rating", min_rating=min_rating, n_below=n_below)


def all_ratings_zero(name: str) -> DataFormatError:
    """The error for ``binarize=False`` on a file whose every rating is 0."""
    return DataFormatError(f"{name}: every rating is 0, so there are no interactions; "
                           "pass binarize=True to count every row as a positive")


def _refuse_repeated_names(name: str, lineno: int, raw: List[str], hint: str = "") -> None:
    seen = {}
    for pos, field in enumerate(raw):
        key = column_name(field).lower()
        if not key:
            continue  # unnamed columns (e.g. a trailing separator) are never looked up
        if key in seen:
            raise DataFormatError(f"{name}: line {lineno}: the header names column {column_name(field)!r} twice "
                                  f"(columns {seen[key]} and {pos}); rename one of them{hint}")
        seen[key] = pos


def _resolve_sep(name: str, fh, sep: Optional[str]) -> str:
    """The separator to use (``WHITESPACE`` for runs of blanks); leaves ``fh`` at its start."""
    if sep is not None:
        if not isinstance(sep, str) or not sep or "\n" in sep or "\r" in sep or '"' in sep:
            raise ValueError(f"sep must be a non-empty string such as ',' or '\\t', got {sep!r}")
        if sep == "\\t":
            return "\t"
        if sep in (WHITESPACE, "whitespace") or (sep.isspace() and sep != "\t"):
            return WHITESPACE
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
        return WHITESPACE
    raise DataFormatError(
        f"{name}: could not detect the column separator (tried '::', tab, ',', ';' and whitespace on the "
        f"first lines, e.g. {lines[0][:60]!r}); an interactions file needs user and item columns; pass sep="
    )


def iter_rows(name: str, fh, sep: str) -> Iterator[Tuple[int, List[str]]]:
    """``(line number, fields)`` for every line, blank ones included."""
    if sep == WHITESPACE:
        for lineno, line in enumerate(fh, 1):
            yield lineno, line.split()
        return
    src: Any = fh
    delimiter = sep
    if len(sep) > 1:  # csv takes one character: map the separator onto a unit separator
        src = (line.replace(sep, "\x1f") for line in fh)
        delimiter = "\x1f"
    recent: List[str] = []  # the physical lines of the record being read

    def lines() -> Iterator[str]:
        for line in src:
            recent.append(line)
            yield line

    reader = csv.reader(lines(), delimiter=delimiter, skipinitialspace=True)
    last = 0
    try:
        for fields in reader:
            # a quoted line break is allowed (as in Python's csv); a quote never closed is not: csv would
            # read the rest of the file into that one field
            if reader.line_num > last + 1 and _open_quote_at_end(recent, delimiter):
                raise DataFormatError(f"{name}: line {last + 1}: a quote opened on this line is never closed, so "
                                      f"lines {last + 1}-{reader.line_num} would be read as one field; close or "
                                      f"remove the quote on line {last + 1}")
            recent.clear()
            last = reader.line_num
            yield last, fields
    except csv.Error as exc:
        raise DataFormatError(f"{name}: line {reader.line_num} cannot be parsed ({exc}); "
                              "fix the quoting on that line or pass another sep=") from None


def _open_quote_at_end(record_lines: List[str], delimiter: str) -> bool:
    """Whether the text of one (multi-line) record ends inside a quoted field."""
    try:
        for _ in csv.reader(record_lines, delimiter=delimiter, skipinitialspace=True, strict=True):
            pass
    except csv.Error as exc:
        return "end of data" in str(exc)
    return False


def is_blank(fields: Sequence[str]) -> bool:
    """No field holds anything but whitespace."""
    return not any(f.strip() for f in fields)


def column_name(field: str) -> str:
    """A header field without its RecBole type suffix (``user_id:token`` -> ``user_id``)."""
    field = field.strip()
    m = _RECBOLE_SUFFIX.match(field)
    return m.group(1) if m else field


def find_column(name: str, spec: Column, param: str, raw: Optional[List[str]], ncols: int,
                 candidates: Sequence[str], position: Optional[int]) -> Optional[int]:
    """0-based position of a column, or None when ``spec`` is None and nothing fits."""
    names = None if raw is None else [column_name(f) for f in raw]
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
    want = column_name(spec).lower()
    if want in lower:
        return lower.index(want)
    raise DataFormatError(f"{name}: no column named {spec!r}; {available}; pass {param}= one of them")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
