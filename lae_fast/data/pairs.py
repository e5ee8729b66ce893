"""``(user, item[, value])`` pairs -> :class:`Interactions`: the one place ids are factorised for the readers."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
import scipy.sparse as sp

from .._validation import check_interactions
from ..ids import factorize
from .interactions import DataFormatError, Interactions, as_float32

__all__ = ["interactions_from_pairs"]


def interactions_from_pairs(name: str, users: Any, items: Any, values: Optional[Any] = None, *,
                            binarize: bool = True) -> Interactions:
    """Pairs as an Interactions: users and items numbered in sorted order of their ids.

    Duplicated pairs count once when binarised, else their values are summed.

    Raises
    ------
    DataFormatError
        No rows, or ids that are neither integers nor strings (the message names ``name``).
    """
    users, items = np.asarray(users), np.asarray(items)
    if users.size == 0:
        raise DataFormatError(f"{name}: has no rows; remove it, or fill it with user,item pairs")
    try:
        uid, rows = factorize(users, name=f"{name}: user ids")
        iid, cols = factorize(items, name=f"{name}: item ids")
    except (TypeError, ValueError) as exc:
        raise DataFormatError(f"{exc}; ids must be integers or strings") from None
    data = np.ones(users.size, dtype=np.float32) if values is None else np.asarray(values)
    X = sp.csr_matrix((data, (rows, cols)), shape=(uid.size, iid.size))
    X = check_interactions(X, name=name, binarize=binarize)
    return Interactions._trusted(as_float32(X, name, DataFormatError), uid, iid)
