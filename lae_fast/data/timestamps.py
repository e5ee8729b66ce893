"""Timestamps as numbers, with one meaning for every reader (text, Parquet, DataFrames, pairs).

A timestamp is either a **number**, kept as it is (Unix seconds, milliseconds, ...: integers stay integers),
or a **date and time**, turned into seconds since 1970-01-01T00:00:00 UTC as a float64, to the microsecond
(``float(microseconds) / 1e6``). Dates and times are typed columns (Arrow timestamps and dates, numpy
``datetime64``) or ISO-8601 text::

    YYYY-MM-DD[(T| )HH[:MM[:SS[.fraction]]][Z|±HH|±HHMM|±HH:MM]]

A time without a zone is UTC; fractions beyond the microsecond are cut (toward the past). This is the
extended ISO-8601 form that Arrow's parser reads; :func:`parse_timestamp` is its definition in Python
(the reference used by the line-by-line reader), and :func:`arrow_text_seconds` the block-wise fast path,
which takes a block only when Arrow reads every value of it and hands the rest to the reference.
"""
from __future__ import annotations

import math
import re
from datetime import date, datetime
from typing import Any, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .columns import PY_WHITESPACE
from .interactions import DataFormatError

__all__ = ["parse_timestamp", "arrow_text_seconds", "column_seconds", "ISO_HINT"]

#: how messages describe what a timestamp may be
ISO_HINT = "a number or an ISO-8601 date/time such as 2024-05-01T12:30:00Z"
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
                  r"(Z|[+-]\d{2}(?::?\d{2})?)?)?", re.ASCII)
_EPOCH_DAY = date(1970, 1, 1).toordinal()
_US_PER_UNIT = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": None}  # ns: floor-divided by 1000


def parse_timestamp(text: str) -> float:
    """The number a timestamp field holds (the reference meaning; ``text`` already stripped).

    Raises
    ------
    ValueError
        Neither a finite number nor an ISO-8601 date/time (see the module notes).
    """
    try:
        value = float(text)
    except ValueError:
        micro = _iso_microseconds(text)
        if micro is None:
            raise ValueError(f"{text!r} is not {ISO_HINT}") from None
        return float(micro) / 1e6
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def _iso_microseconds(text: str) -> Optional[int]:
    """Microseconds since the epoch of an ISO-8601 date/time, or None when ``text`` is not one."""
    m = _ISO.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = m.groups()
    try:
        stamp = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
    except ValueError:
        return None
    offset = 0
    if zone and zone != "Z":
        digits = zone[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:] or 0)
        if hours > 23 or minutes > 59:
            return None
        offset = (hours * 60 + minutes) * 60 * (-1 if zone[0] == "-" else 1)
    seconds = ((stamp.toordinal() - _EPOCH_DAY) * 86400 + stamp.hour * 3600 + stamp.minute * 60 + stamp.second
               - offset)
    return seconds * 1_000_000 + int((fraction or "").ljust(6, "0")[:6])


def arrow_text_seconds(arr: pa.Array) -> Optional[np.ndarray]:
    """A block of text timestamps as numbers (float64), or None when Arrow cannot read all of it alike.

    Every value a number (Arrow's float parser reads a subset of Python's, to the same value), or every value
    an ISO-8601 date/time without a zone, or every value one with a zone; non-finite numbers give None too.
    """
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.null_count:
        return None
    text = pc.utf8_trim(arr, characters=PY_WHITESPACE)
    try:
        values = pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    else:
        return values if np.isfinite(values).all() else None
    for zone in (None, "UTC"):
        try:
            stamps = pc.cast(text, pa.timestamp("ns", tz=zone))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        return _microseconds(stamps).astype(np.float64) / 1e6
    return None


def _microseconds(stamps: pa.Array) -> np.ndarray:
    """int64 microseconds since the epoch of an Arrow timestamp or date array (no nulls)."""
    t = stamps.type
    if pa.types.is_date32(t):
        return stamps.cast(pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64) * 86_400_000_000
    if pa.types.is_date64(t):
        return stamps.cast(pa.int64()).to_numpy(zero_copy_only=False) * 1000
    raw = stamps.cast(pa.int64()).to_numpy(zero_copy_only=False)
    factor = _US_PER_UNIT[t.unit]
    return raw // 1000 if factor is None else raw * factor


def column_seconds(label: str, values: Any, *, first_row: int = 1) -> np.ndarray:
    """One block of a typed timestamp column (Arrow or numpy) as numbers (see the module notes).

    ``label`` names the column in messages (e.g. ``"ratings.parquet: column 'ts'"``) and ``first_row`` is the
    1-based row number of the block's first value.

    Raises
    ------
    DataFormatError
        Missing, non-finite or unreadable values, or a type that holds no times.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        arr = np.asarray(values)
        if arr.dtype.kind in "iu":
            return arr
        if arr.dtype.kind == "f":
            return _finite(label, arr)
        try:
            values = pa.array(arr if arr.dtype.kind != "O" else list(arr), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            raise DataFormatError(f"{label}: timestamps must be {ISO_HINT}, got dtype {arr.dtype}") from None
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if values.null_count:
        raise DataFormatError(f"{label}: {values.null_count} timestamps are missing; drop or fill those rows")
    t = values.type
    if pa.types.is_integer(t):
        return values.to_numpy(zero_copy_only=False)
    if pa.types.is_floating(t):
        return _finite(label, values.to_numpy(zero_copy_only=False).astype(np.float64, copy=False))
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return _microseconds(values).astype(np.float64) / 1e6
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        fast = arrow_text_seconds(values)
        if fast is not None:
            return fast
        out = np.empty(len(values), dtype=np.float64)
        for k, text in enumerate(values.to_pylist()):
            try:
                out[k] = parse_timestamp(text.strip())
            except ValueError as exc:
                raise DataFormatError(f"{label}: row {first_row + k}: timestamp {exc}; fix or drop that row") from None
        return out
    raise DataFormatError(f"{label}: timestamps must be {ISO_HINT}, got type {t}")


def _finite(label: str, arr: np.ndarray) -> np.ndarray:
    bad = ~np.isfinite(arr)
    if bad.any():
        raise DataFormatError(f"{label}: {int(bad.sum())} timestamps are NaN or infinite (e.g. {arr[bad][0]}); "
                              "drop or fill those rows")
    return arr
