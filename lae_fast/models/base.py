"""What every item-item model shares: the fitted B, ranking, and model files."""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple, Type

import numpy as np
import scipy.sparse as sp

from .. import io as model_io
from .._validation import NotFittedError, as_index_array, check_dtype
from ..ranking import one_hot_rows, topk

#: model name stored in files -> class, filled by ``register``
MODEL_REGISTRY: Dict[str, Type["ItemItemModel"]] = {}


def register(cls):
    """Class decorator: make a model loadable by the name it writes into files."""
    MODEL_REGISTRY[cls.model_name] = cls
    return cls


class ItemItemModel:
    """Base class: a fitted dense item-item matrix ``B_`` scored as ``x_u · B_``.

    Subclasses implement ``fit`` and list their hyper-parameters in ``_param_names``.
    """

    model_name = "item-item"
    _param_names: Tuple[str, ...] = ()

    # -- scikit-learn style parameters ---------------------------------------------
    def get_params(self) -> Dict[str, Any]:
        """Hyper-parameters as given to ``__init__``."""
        return {name: getattr(self, name) for name in self._param_names}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items()
                         if k not in ("dtype",)) if self._param_names else ""
        return f"{type(self).__name__}({args})"

    # -- fitted state -----------------------------------------------------------------
    def _check_fitted(self) -> None:
        if getattr(self, "B_", None) is None:
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(X) or {type(self).__name__}.load(path) first"
            )

    @property
    def B(self) -> np.ndarray:
        """The fitted item-item weight matrix (n_items, n_items); scores are ``x_u · B``."""
        self._check_fitted()
        return self.B_

    @property
    def n_items(self) -> int:
        self._check_fitted()
        return self.B_.shape[0]

    def _set_item_ids(self, X: Any, n: int) -> None:
        ids = getattr(X, "item_ids", None)
        ids = np.arange(n, dtype=np.int64) if ids is None else np.asarray(ids)
        if ids.shape != (n,):
            raise ValueError(f"item_ids has shape {ids.shape} but X has {n} items; pass one id per column")
        self.item_ids_ = ids

    # -- ranking ------------------------------------------------------------------------
    def recommend(self, user_items: Any, N: int = 10, *, filter_already_liked_items: bool = True,
                  filter_items: Any = None, items: Any = None,
                  num_threads: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
        """Top-``N`` items for each user history.

        Parameters
        ----------
        user_items : sparse matrix (n_users, n_items) or 1-D array (n_items,)
            One history row per user, in the model's item index space. A 1-D
            dense vector is one user and gives 1-D results.
        N : int, default=10
        filter_already_liked_items : bool, default=True
            Never return a user's own items.
        filter_items : array-like of int, optional
            Item indices never returned.
        items : array-like of int, optional
            Rank only among these item indices.
        num_threads : int, optional
            Defaults to the model's ``num_threads``.

        Returns
        -------
        ids : ndarray of int32, shape (n_users, N)
            Item indices (``model.item_ids_[ids]`` gives the original ids), best first,
            ties broken by lower index. Padded with -1 when a user has fewer than N
            candidates; a filtered item is never returned.
        scores : ndarray of float32, shape (n_users, N)
            ``x_u · B`` for those items, -inf on padding.
        """
        self._check_fitted()
        single = not sp.issparse(user_items) and np.ndim(user_items) == 1
        if single:
            user_items = sp.csr_matrix(np.asarray(user_items).reshape(1, -1))
        ids, scores = topk(user_items, self.B_, N, filter_already_liked_items=filter_already_liked_items,
                           filter_items=filter_items, items=items, binarize=True,
                           num_threads=self._threads(num_threads))
        return (ids[0], scores[0]) if single else (ids, scores)

    def similar_items(self, item_ids: Any, N: int = 10, *, filter_items: Any = None,
                      items: Any = None) -> Tuple[np.ndarray, np.ndarray]:
        """Items most strongly predicted by each given item.

        Uses **row** i of B: ``B[i, j]`` is the score item j gets from a user whose
        only item is i, so this is exactly ``recommend`` for that one-item history
        (item i itself excluded). B is not symmetric; columns would answer the
        different question "which items predict j".

        Parameters
        ----------
        item_ids : int or array-like of int
            Item indices. A scalar gives 1-D results.
        N : int, default=10

        Returns
        -------
        ids, scores : as in :meth:`recommend`
        """
        self._check_fitted()
        scalar = np.ndim(item_ids) == 0
        idx = as_index_array(item_ids, name="item_ids", n=self.n_items)
        ids, scores = self.recommend(one_hot_rows(idx, self.n_items), N, filter_items=filter_items,
                                     items=items)
        return (ids[0], scores[0]) if scalar else (ids, scores)

    def _threads(self, num_threads: Optional[int]) -> Optional[int]:
        return num_threads if num_threads is not None else getattr(self, "num_threads", None)

    # -- model files --------------------------------------------------------------------
    def _extra_arrays(self) -> Dict[str, np.ndarray]:
        """Arrays besides B and item ids that a subclass needs to score (none by default)."""
        return {}

    def save(self, path: model_io.PathOrFile) -> None:
        """Write the fitted model atomically to ``path`` (or an open binary file).

        The file holds B, the item id map, the model name, hyper-parameters and dtype;
        no pickle. See :mod:`lae_fast.io` for the layout.
        """
        self._check_fitted()
        # numpy scalars (np.int64(500) from a grid) are not JSON serialisable: store Python numbers
        params = {k: (np.dtype(v).name if k == "dtype" else v.item() if isinstance(v, np.generic) else v)
                  for k, v in self.get_params().items()}
        meta = {"model": self.model_name, "params": params, "dtype": self.B_.dtype.name,
                "n_items": int(self.B_.shape[0]), "lae_fast_version": _version()}
        arrays = {"B": self.B_, "item_ids": self.item_ids_, **self._extra_arrays()}
        model_io.save_arrays(path, arrays, meta)

    @classmethod
    def load(cls, path: model_io.PathOrFile, *, mmap: bool = True, verify: bool = True) -> "ItemItemModel":
        """Load a model saved by :meth:`save`.

        Parameters
        ----------
        path : str, path-like or binary file object
        mmap : bool, default=True
            Memory-map B read-only (paths only) so processes share one copy.
        verify : bool, default=True
            Check the SHA-256 of every array (skip for very large trusted files).

        Raises
        ------
        lae_fast.io.ModelFileError
            Corrupt, truncated, foreign or mismatched file.
        """
        arrays, meta = model_io.load_arrays(path, mmap=mmap, verify=verify)
        name = getattr(path, "name", path)
        model_name = meta.get("model")
        target = MODEL_REGISTRY.get(model_name)
        if target is None:
            raise model_io.ModelFileError(f"{name}: unknown model type {model_name!r}")
        if cls is not ItemItemModel and not issubclass(target, cls):
            raise model_io.ModelFileError(f"{name}: holds a {target.__name__}, not a {cls.__name__}")
        B = arrays.get("B")
        ids = arrays.get("item_ids")
        if B is None or ids is None:
            raise model_io.ModelFileError(f"{name}: missing the B or item_ids array")
        n = int(meta.get("n_items", -1))
        if B.ndim != 2 or B.shape != (n, n) or ids.shape != (n,):
            raise model_io.ModelFileError(
                f"{name}: shapes disagree (B {B.shape}, item_ids {ids.shape}, n_items {n})"
            )
        if B.dtype.name != meta.get("dtype") or B.dtype not in (np.float32, np.float64):
            raise model_io.ModelFileError(f"{name}: B has dtype {B.dtype}, header says {meta.get('dtype')}")
        params = dict(meta.get("params") or {})
        try:
            if "dtype" in params:
                params["dtype"] = check_dtype(params["dtype"])
            model = target(**params)
            if hasattr(model, "_check_params"):  # __init__ only stores: validate as fit would
                model._check_params()
        except (TypeError, ValueError) as exc:
            raise model_io.ModelFileError(f"{name}: stored hyper-parameters are invalid ({exc})") from None
        model.B_ = B
        model.item_ids_ = ids
        model._load_extra(arrays)
        return model

    def _load_extra(self, arrays: Dict[str, np.ndarray]) -> None:
        """Restore subclass arrays written by ``_extra_arrays``."""


def _version() -> str:
    from .. import __version__

    return __version__
