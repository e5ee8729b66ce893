"""``(user, item[, value])`` pairs -> :class:`Interactions`: the one place ids are factorised for the readers."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .columns import IdColumn, assemble
from .interactions import DataFormatError, Interactions, NoRowsError
from .timestamps import column_seconds

__all__ = ["interactions_from_pairs", "check_values"]


def check_values(name: str, values: Any, *, what: str = "values", allow_negative: bool = False) -> np.ndarray:
    """``values`` as float64 after refusing NaN, infinite and (unless allowed) negative entries.

    Raises
    ------
    DataFormatError
        The message names ``name``, ``what``, how many entries are bad and one of them.
    """
    arr = np.asarray(values)
    if arr.dtype.kind not in "iufb":
        raise DataFormatError(f"{name}: {what} must be numbers, got dtype {arr.dtype}; convert them first")
    arr = arr.astype(np.float64, copy=False)
    bad = ~np.isfinite(arr)
    if bad.any():
        raise DataFormatError(f"{name}: {int(bad.sum())} {what} are NaN or infinite (e.g. {arr[bad][0]}); "
                              "drop or fill those rows")
    if not allow_negative and (arr < 0).any():
        neg = arr[arr < 0]
        raise DataFormatError(f"{name}: {neg.size} {what} are negative (e.g. {neg[0]:g}); interaction values "
                              "must be >= 0 (keep positives with min_rating=, or binarize=True)")
    return arr


def interactions_from_pairs(name: str, users: Any, items: Any, values: Optional[Any] = None, *,
                            timestamps: Optional[Any] = None, binarize: bool = True) -> Interactions:
    """Pairs as an Interactions: users and items numbered in sorted order of their ids.

    Duplicated pairs count once when binarised, else their values are summed;
    ``timestamps`` (numbers, kept; or dates, as seconds since the epoch: :mod:`~lae_fast.data.timestamps`)
    keep the earliest of duplicated pairs.

    Raises
    ------
    DataFormatError
        No rows, arrays of different lengths, ids that are neither integers nor
        strings, or bad values (the message names ``name``).
    """
    users, items = np.asarray(users), np.asarray(items)
    if users.ndim != 1 or items.ndim != 1 or users.size != items.size:
        raise DataFormatError(f"{name}: users and items must be 1-D arrays of one length, got shapes "
                              f"{users.shape} and {items.shape}")
    if users.size == 0:
        raise NoRowsError(f"{name}: has no rows; remove it, or fill it with user,item pairs")
    extras = {"values": values, "timestamps": timestamps}
    for what, arr in extras.items():
        if arr is not None and np.shape(arr) != users.shape:
            raise DataFormatError(f"{name}: {what} has shape {np.shape(arr)} but there are {users.size} pairs; "
                                  f"pass one {what[:-1]} per pair")
    user_col = IdColumn(f"{name}: user ids", text=False)
    item_col = IdColumn(f"{name}: item ids", text=False)
    try:
        user_col.add(users)
        item_col.add(items)
    except (TypeError, ValueError) as exc:
        raise DataFormatError(f"{exc}; ids must be integers or strings") from None
    vals = None if values is None or binarize else [check_values(name, values)]
    ts = None if timestamps is None else [column_seconds(f"{name}: timestamps", timestamps)]
    return assemble(name, user_col, item_col, values=vals, timestamps=ts, binarize=binarize)

