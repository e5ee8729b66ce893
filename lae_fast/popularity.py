"""Cold users: what a history with no known item gets (the most popular training items).

``x_u · B`` is zero for an empty history, so without a fallback such a user would get
items 0..N-1 (every score ties at 0). Instead, ranking and serving give every cold
user the items with the most training interactions (``item_counts_`` of a fitted
model, stored in model and serving files), best first, ties to the lower index, with
the count as score, minus ``filter_items`` and outside ``items`` as usual. Without
known counts (a bare matrix) a cold user gets an empty list (id -1, score -inf).
Callers tell cold users apart with ``return_cold=True``.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .io import ModelFileError
from .ranking import candidate_mask

__all__ = ["check_popularity", "popularity_order", "fill_cold", "fill_cold_rows"]


def check_popularity(counts: Any, n_items: int, *, source: Optional[str] = None) -> Optional[np.ndarray]:
    """Per-item training counts as float64 (n_items,), or None; ValueError (ModelFileError with a source) if bad."""
    if counts is None:
        return None
    arr = np.asarray(counts)
    ok = arr.shape == (n_items,) and arr.dtype.kind in "iuf"
    if ok:
        arr = arr.astype(np.float64)
        ok = bool(np.isfinite(arr).all() and (arr >= 0).all())
    if not ok:
        what = f"{n_items} finite non-negative numbers"
        if source is not None:
            raise ModelFileError(f"{source}: the item popularity (item_counts_) is not {what}")
        raise ValueError(f"popularity must be {what} (one training count per item), got "
                         f"shape {arr.shape} dtype {arr.dtype}")
    return arr


def popularity_order(counts: Optional[np.ndarray]) -> Optional[np.ndarray]:
    """Item indices by decreasing count, ties to the lower index (int32), or None."""
    if counts is None:
        return None
    return np.argsort(-counts, kind="stable").astype(np.int32)


def fill_cold(ids: np.ndarray, scores: np.ndarray, cold: np.ndarray, counts: Optional[np.ndarray],
              order: Optional[np.ndarray], allowed: Optional[np.ndarray]) -> None:
    """Overwrite the rows ``cold`` (bool mask or indices) of (ids, scores) with the popular list.

    ``allowed`` is the uint8 candidate mask of ``filter_items`` / ``items`` (None: all);
    the list is padded with (-1, -inf) when fewer items are allowed than columns.
    """
    if ids.shape[1] == 0 or not np.any(cold):
        return
    N = ids.shape[1]
    top = np.zeros(0, dtype=np.int32)
    if order is not None:
        top = order if allowed is None else order[allowed[order].astype(bool)]
        top = top[:N]
    k = top.size
    ids[cold, :k] = top
    ids[cold, k:] = -1
    scores[cold, k:] = -np.inf
    if k:
        scores[cold, :k] = counts[top].astype(np.float32)


def fill_cold_rows(X: Any, ids: np.ndarray, scores: np.ndarray, counts: Any, *,
                   filter_items: Any = None, items: Any = None) -> np.ndarray:
    """Give the users whose row of the canonical CSR ``X`` is empty the popular list; their bool mask.

    For a batch ranked by :func:`lae_fast.topk`: ``counts`` (per-item training counts or
    None) and the filters are checked only when some user is cold.
    """
    cold = np.diff(X.indptr) == 0
    if cold.any() and ids.shape[1]:
        n_items = X.shape[1]
        counts = check_popularity(counts, n_items)
        allowed = None if (filter_items is None and items is None) or counts is None else candidate_mask(
            n_items, filter_items=filter_items, items=items)
        fill_cold(ids, scores, cold, counts, popularity_order(counts), allowed)
    return cold
