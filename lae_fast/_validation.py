"""Input checks shared by every public entry point.

Each failure says what is wrong, shows the offending value and how to fix it.
"""
from __future__ import annotations

import numbers
from typing import Any, Optional

import numpy as np
import scipy.sparse as sp


class NotFittedError(ValueError, AttributeError):
    """Raised when a model is used before ``fit`` (or ``load``)."""


class InvalidParameterError(ValueError, TypeError):
    """A parameter has the wrong type or value (both a ValueError and a TypeError, as in scikit-learn)."""


def check_int(value: Any, *, name: str, low: Optional[int] = None, high: Optional[int] = None) -> int:
    """Return ``value`` as an int after checking it is an integer (not a bool) in ``[low, high]``.

    Raises
    ------
    InvalidParameterError
        Not an integer (floats such as 2.0 included), or out of range; the message names
        the parameter, the accepted range and the value received.
    """
    bounds = (f" in [{low}, {high}]" if low is not None and high is not None
              else f" >= {low}" if low is not None else f" <= {high}" if high is not None else "")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise InvalidParameterError(f"{name} must be an integer{bounds}, got {value!r} ({type(value).__name__})")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise InvalidParameterError(f"{name} must be an integer{bounds}, got {value}")
    return value


def check_scalar(value: Any, *, name: str, low: Optional[float] = None, high: Optional[float] = None,
                 low_inclusive: bool = True, high_inclusive: bool = True) -> float:
    """Return ``value`` as a float after checking it is a finite real number in range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value < low or (value == low and not low_inclusive)):
        op = ">=" if low_inclusive else ">"
        raise ValueError(f"{name} must be {op} {low}, got {value}")
    if high is not None and (value > high or (value == high and not high_inclusive)):
        op = "<=" if high_inclusive else "<"
        raise ValueError(f"{name} must be {op} {high}, got {value}")
    return value


def check_square(A: Any, *, name: str) -> None:
    """``A`` (an array or a scipy sparse matrix) is a non-empty square matrix of real numbers.

    Raises
    ------
    ValueError
        Not 2-D, not square, or empty (the shape is named).
    TypeError
        Its dtype is not a real number type.
    """
    if A.ndim != 2 or A.shape[0] != A.shape[1] or A.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty square (n_items, n_items) matrix, got shape {A.shape}")
    if A.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {A.dtype}")


def check_dtype(dtype: Any) -> np.dtype:
    """float32 or float64, nothing else."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return dt


def check_interactions(X: Any, *, name: str = "X", n_items: Optional[int] = None,
                       binarize: bool = True, allow_empty_rows: bool = True) -> sp.csr_matrix:
    """Return ``X`` as a canonical CSR matrix (sorted indices, no duplicates, no stored zeros).

    With ``binarize`` every stored positive value becomes 1.0 (float32).  Duplicate
    entries are summed before that, as scipy does.

    Raises
    ------
    TypeError
        ``X`` is not a matrix, or holds non-numeric values.
    ValueError
        Wrong number of dimensions or items, NaN/inf or negative values, no items.
    """
    if hasattr(X, "matrix") and sp.issparse(getattr(X, "matrix")):  # Interactions container
        X = X.matrix
    if sp.issparse(X):
        if X.ndim != 2:
            raise ValueError(f"{name} must be 2-D (users x items), got {X.ndim}-D")
        if X.dtype.kind in "iu":
            # duplicates are summed (by the conversion below or by sum_duplicates) in the
            # stored type: in int8/uint8 200 + 200 wraps to a negative value or to 0
            X = X.astype(np.float64)
        X = sp.csr_matrix(X)  # copies only when the format differs
        if X.dtype == object or not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
            raise TypeError(f"{name} must hold numbers, got dtype {X.dtype}")
    else:
        arr = np.asarray(X)
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise TypeError(
                f"{name} must be a scipy sparse matrix or a numeric 2-D array, got "
                f"{type(X).__name__} with dtype {arr.dtype}"
            )
        if arr.ndim != 2:
            raise ValueError(f"{name} must be 2-D (users x items), got shape {arr.shape}")
        X = sp.csr_matrix(arr)
    if np.issubdtype(X.dtype, np.complexfloating):
        raise TypeError(f"{name} must hold real numbers, got dtype {X.dtype}")
    m, n = X.shape
    if n == 0:
        raise ValueError(f"{name} has no items (shape {X.shape}); pass a users x items matrix")
    if n_items is not None and n != n_items:
        raise ValueError(
            f"{name} has {n} items (columns) but the model was fitted on {n_items}; "
            "map the items with the model's item ids first"
        )
    data = X.data
    if data.size and np.issubdtype(data.dtype, np.floating):
        bad = ~np.isfinite(data)
        if bad.any():
            raise ValueError(
                f"{name} has {int(bad.sum())} NaN or infinite values; drop or fill them first"
            )
    if data.size and (data < 0).any():
        raise ValueError(
            f"{name} has {int((data < 0).sum())} negative values; interactions must be >= 0 "
            "(threshold explicit ratings into positives first)"
        )
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
        if X.nnz and np.issubdtype(X.dtype, np.floating) and not np.isfinite(X.data).all():
            raise ValueError(f"{name}: summing its duplicate entries overflows {X.dtype}; "
                             "pass float64 values or remove the duplicates")
    if data.size and (X.data == 0).any():
        X = X.copy()
        X.eliminate_zeros()
    if binarize:
        X = sp.csr_matrix((np.ones(X.nnz, dtype=np.float32), X.indices, X.indptr), shape=X.shape)
    if not allow_empty_rows and m and np.diff(X.indptr).min() == 0:
        empty = np.flatnonzero(np.diff(X.indptr) == 0)
        raise ValueError(f"{name} has {empty.size} empty rows (e.g. row {empty[0]}); drop them first")
    return X


def as_1d(values: Any, *, name: str, what: str) -> np.ndarray:
    """``values`` as a 1-D array (a scalar becomes one element); ``what`` names the elements in the error."""
    arr = np.asarray(values)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D list of {what}, got shape {arr.shape}")
    return arr


def as_index_array(values: Any, *, name: str, n: int) -> np.ndarray:
    """1-D int array of item indices in [0, n); duplicates and any order allowed."""
    arr = as_1d(values, name=name, what="item indices")
    if arr.size == 0:
        return arr.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"{name} must hold integer item indices, got dtype {arr.dtype}")
    bad = (arr < 0) | (arr >= n)
    if bad.any():
        raise ValueError(
            f"{name} has {int(bad.sum())} indices outside [0, {n}) (e.g. {arr[bad][0]}); "
            "item indices are positions in the model's item id map"
        )
    return arr.astype(np.int64)


def check_embeddings(E: Any, n_items: int, *, name: str = "item_embeddings") -> np.ndarray:
    """Return item embeddings as a C-contiguous float64 (n_items, d) array after checking them.

    Raises
    ------
    TypeError
        Not a numeric array (sparse, object, complex or boolean values).
    ValueError
        Wrong shape, no dimensions, or NaN/inf values.
    """
    if E is None:
        raise TypeError(f"{name} is required: pass an (n_items, d) array of item embeddings")
    if hasattr(E, "toarray") and not isinstance(E, np.ndarray):
        raise TypeError(f"{name} must be a dense (n_items, d) array, got {type(E).__name__}; "
                        "call .toarray() first")
    arr = np.asarray(E)
    if arr.dtype == object or arr.dtype == bool or not np.issubdtype(arr.dtype, np.number) \
            or np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_items, d), got shape {arr.shape}")
    if arr.shape[0] != n_items:
        raise ValueError(
            f"{name} has {arr.shape[0]} rows but X has {n_items} items (columns); "
            "pass one embedding row per item, in X's column order"
        )
    if arr.shape[1] == 0:
        raise ValueError(f"{name} has shape {arr.shape}: embeddings need at least one dimension")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise ValueError(
            f"{name} has {int(bad.sum())} NaN or infinite values in {rows.size} rows "
            f"(e.g. row {rows[0]}); re-encode those items or use zero rows for items without text"
        )
    return arr
