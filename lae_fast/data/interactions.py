"""The :class:`Interactions` container: a canonical CSR matrix plus the original user and item ids."""
from __future__ import annotations

import errno
import os
from typing import Any, Optional, Tuple, Union

import numpy as np
import scipy.sparse as sp

from .._validation import check_interactions
from ..ids import as_ids, dtype_label, ids_of

__all__ = ["DataFormatError", "NoRowsError", "NoRowsLeftError", "Interactions", "PathLike", "check_file",
           "as_float32"]

PathLike = Union[str, "os.PathLike[str]"]


class DataFormatError(ValueError):
    """An interactions file is malformed; the message names the file, the problem and the fix."""


class NoRowsError(DataFormatError):
    """A source without a single interaction row (an empty file, a header alone, an empty table)."""


class NoRowsLeftError(NoRowsError):
    """A source whose rows are all below ``min_rating`` (``n_below`` of them)."""

    def __init__(self, message: str, *, min_rating: float, n_below: int) -> None:
        super().__init__(message)
        self.min_rating = min_rating
        self.n_below = n_below


class Interactions:
    """A users x items interaction matrix with the original user and item ids.

    Parameters
    ----------
    matrix : sparse matrix or 2-D array, shape (n_users, n_items)
        Non-negative interaction values.
    user_ids, item_ids : array-like, optional
        Original id of each row / column (unique; integers or strings).
        Default ``0..n-1``.
    binarize : bool, default=True
        Store every positive value as 1.0.

    Attributes
    ----------
    matrix : scipy.sparse.csr_matrix of float32
        Canonical CSR: sorted indices, no duplicates, no stored zeros.
    user_ids : ndarray of int64, uint64 or str, shape (n_users,)
    item_ids : ndarray of int64, uint64 or str, shape (n_items,)
    timestamps : ndarray, shape (nnz,), or None
        When the source had a timestamp column: the earliest time of each
        stored interaction, aligned with ``matrix.indices`` / ``matrix.data``
        (kept for time-based splits). Numbers stay as given (e.g. Unix
        seconds); dates and times (typed, or ISO-8601 text) become seconds
        since 1970-01-01 UTC as float64. None otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> X = Interactions.from_matrix(np.array([[0, 3], [1, 0]]), item_ids=["a", "b"])
    >>> X
    Interactions(n_users=2, n_items=2, nnz=2, user_ids=int64, item_ids=<U1)
    >>> X.matrix.toarray()
    array([[0., 1.],
           [1., 0.]], dtype=float32)
    """

    __slots__ = ("matrix", "user_ids", "item_ids", "timestamps")

    def __init__(self, matrix: Any, user_ids: Any = None, item_ids: Any = None, *,
                 binarize: bool = True) -> None:
        X = as_float32(check_interactions(matrix, name="X", binarize=binarize), "X", ValueError)
        self.matrix = X
        self.user_ids = as_ids(user_ids, X.shape[0], name="user_ids")
        self.item_ids = as_ids(item_ids, X.shape[1], name="item_ids")
        self.timestamps = None

    @classmethod
    def from_matrix(cls, X: Any, *, user_ids: Any = None, item_ids: Any = None,
                    binarize: bool = True) -> "Interactions":
        """Wrap a matrix (validated by ``check_interactions``) and optional id arrays.

        Parameters
        ----------
        X : sparse matrix or 2-D array, shape (n_users, n_items)
        user_ids, item_ids : array-like, optional
            One unique id per row / column; default ``0..n-1``.
        binarize : bool, default=True
            Store every positive value as 1.0.

        Returns
        -------
        Interactions

        Raises
        ------
        ValueError
            Negative, NaN or infinite values; id arrays of the wrong length or
            with duplicates.
        """
        return cls(X, user_ids, item_ids, binarize=binarize)

    @classmethod
    def from_pairs(cls, users: Any, items: Any, values: Any = None, *, timestamps: Any = None,
                   binarize: bool = True) -> "Interactions":
        """One interaction per ``(users[k], items[k])`` pair, ids kept as given.

        Parameters
        ----------
        users, items : array-like, shape (n,)
            Original ids: integers (int64, or uint64 beyond the int64 range)
            or strings, following :mod:`lae_fast.ids`.
        values : array-like, shape (n,), optional
            Interaction values (e.g. ratings); summed over repeated pairs when
            ``binarize=False``.
        timestamps : array-like, shape (n,), optional
            Kept as :attr:`timestamps` (the earliest of repeated pairs): numbers as
            given; ``datetime64`` values or ISO-8601 strings as seconds since the epoch
            (:mod:`lae_fast.data.timestamps`).
        binarize : bool, default=True
            Every pair is a positive (1.0); a repeated pair counts once.

        Returns
        -------
        Interactions
            Users and items numbered in sorted order of their ids.

        Raises
        ------
        DataFormatError
            No pairs, arrays of different lengths, ids that are neither integers
            nor strings, or values that are negative, NaN or infinite.

        Examples
        --------
        >>> X = Interactions.from_pairs(["u2", "u1", "u2"], [10, 20, 20])
        >>> X.user_ids.tolist(), X.item_ids.tolist()
        (['u1', 'u2'], [10, 20])
        >>> X.matrix.toarray()
        array([[0., 1.],
               [1., 1.]], dtype=float32)
        """
        from .pairs import interactions_from_pairs

        return interactions_from_pairs("pairs", users, items, values, timestamps=timestamps, binarize=binarize)

    @classmethod
    def from_frame(cls, frame: Any, *, user: Any = None, item: Any = None, rating: Any = None,
                   timestamp: Any = None, min_rating: Optional[float] = None, binarize: bool = True,
                   num_threads: Optional[int] = None) -> "Interactions":
        """Interactions from a table of ``user, item[, rating][, timestamp]`` rows.

        Parameters
        ----------
        frame : pandas.DataFrame, polars.DataFrame, pyarrow.Table or dask.dataframe.DataFrame
            One row per interaction. A dask DataFrame is read one partition at a time.
        user, item, rating, timestamp : str or int, optional
            Column names or 0-based positions. When None, the user and item columns
            are found by name as :func:`~lae_fast.data.read_csv` does (``user``,
            ``user_id``, ``userId``, ... / ``item``, ``item_id``, ``movieId``, ...).
        min_rating : float, optional
            Keep only rows with ``rating >= min_rating`` (needs the rating column).
        binarize : bool, default=True
            Every kept row is a positive; with False the values are the ratings,
            summed over repeated pairs.
        num_threads : int, optional
            Threads for Arrow's compute (default: the package's thread knob).

        Returns
        -------
        Interactions
            Ids keep their type (integers stay integers, strings stay strings).

        Raises
        ------
        DataFormatError
            A missing column, missing values, bad ratings, no rows left.
        TypeError
            ``frame`` is not a table this function reads.

        Examples
        --------
        >>> import pandas as pd
        >>> df = pd.DataFrame({"user": [1, 1, 2], "item": ["a", "b", "a"], "rating": [5, 2, 4]})
        >>> Interactions.from_frame(df, min_rating=4).matrix.toarray()
        array([[1.],
               [1.]], dtype=float32)
        """
        from .frames import read_frame

        return read_frame(frame, user=user, item=item, rating=rating, timestamp=timestamp, min_rating=min_rating,
                          binarize=binarize, num_threads=num_threads)

    @classmethod
    def _trusted(cls, matrix: sp.csr_matrix, user_ids: np.ndarray, item_ids: np.ndarray, *,
                 timestamps: Optional[np.ndarray] = None) -> "Interactions":
        """Build from parts the readers have already validated."""
        obj = cls.__new__(cls)
        obj.matrix = matrix
        obj.user_ids = user_ids
        obj.item_ids = item_ids
        obj.timestamps = timestamps
        return obj

    @classmethod
    def wrap(cls, X: Any, *, name: str = "X") -> "Interactions":
        """``X`` as binary interactions, keeping the ids it carries.

        Parameters
        ----------
        X : Interactions, sparse matrix or 2-D array
            An ``Interactions`` (or any object with ``.matrix`` and
            ``.user_ids`` / ``.item_ids``) keeps its ids; a bare matrix gets
            ``0..n-1``.
        name : str, default="X"
            Named in error messages.

        Returns
        -------
        Interactions
            Every stored positive is 1.0.
        """
        M = as_float32(check_interactions(X, name=name), name, ValueError)
        return cls._trusted(M, ids_of(X, M.shape[0], attr="user_ids"), ids_of(X, M.shape[1], attr="item_ids"))

    def select_users(self, rows: Any) -> "Interactions":
        """The interactions of the users at ``rows`` (indices or a slice), in the same item space."""
        return Interactions._trusted(self.matrix[rows], self.user_ids[rows], self.item_ids)

    def with_matrix(self, matrix: sp.csr_matrix) -> "Interactions":
        """Other entries for the same users and items (``matrix`` must have this shape, canonical CSR)."""
        if matrix.shape != self.shape:
            raise ValueError(f"matrix has shape {matrix.shape}, these interactions {self.shape}")
        return Interactions._trusted(matrix, self.user_ids, self.item_ids)

    @property
    def shape(self) -> Tuple[int, int]:
        """``(n_users, n_items)``."""
        return self.matrix.shape

    @property
    def n_users(self) -> int:
        """Number of users (rows)."""
        return self.matrix.shape[0]

    @property
    def n_items(self) -> int:
        """Number of items (columns)."""
        return self.matrix.shape[1]

    @property
    def nnz(self) -> int:
        """Number of stored interactions."""
        return int(self.matrix.nnz)

    def __repr__(self) -> str:
        return (f"Interactions(n_users={self.n_users}, n_items={self.n_items}, nnz={self.nnz}, "
                f"user_ids={dtype_label(self.user_ids)}, item_ids={dtype_label(self.item_ids)})")


def as_float32(X: sp.csr_matrix, name: str, error: type) -> sp.csr_matrix:
    """``X`` stored as float32; values beyond float32's range are refused, not turned into inf."""
    if X.dtype == np.float32:
        return X
    with np.errstate(over="ignore"):
        out = X.astype(np.float32)
    if out.nnz and not np.isfinite(out.data).all():
        raise error(f"{name}: values up to {float(np.abs(X.data).max()):.6g} do not fit in float32 (at most "
                    f"{float(np.finfo(np.float32).max):.6g}); interactions are stored as float32, scale them down")
    return out


def check_file(path: PathLike) -> str:
    """The path as str; FileNotFoundError / DataFormatError when it is not a readable file."""
    name = os.fspath(path)
    if not os.path.exists(name):
        raise FileNotFoundError(errno.ENOENT, "interactions file not found", name)
    if os.path.isdir(name):
        raise DataFormatError(f"{name}: is a directory; pass the path of an interactions file")
    return name
