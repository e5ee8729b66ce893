"""L3AE (text knowledge distilled into the item-item matrix) and its two text-only baselines.

With item embeddings E (n×d, F = Eᵀ) and G = XᵀX, L3AE solves two constrained ridge
problems (docs/MODELS.md §2):

.. math::

    S = \\arg\\min_{\\mathrm{diag}\\,S = 0} \\|F - FS\\|^2 + \\lambda_F \\|S\\|^2, \\qquad
    B = \\arg\\min_{\\mathrm{diag}\\,B = 0} \\|X - XB\\|^2 + \\lambda_X \\|B\\|^2
        + \\lambda_E \\|B - S\\|^2

whose closed forms are

.. math::

    P_F = (F^\\top F + \\lambda_F I)^{-1}, \\quad S = I - P_F\\,\\mathrm{diag}(1/\\mathrm{diag}\\,P_F),

    P = (G + (\\lambda_X + \\lambda_E) I)^{-1}, \\quad
    B = \\lambda_E P S - P\\,\\mathrm{diag}\\Big(\\frac{1 + \\lambda_E\\,\\mathrm{diag}(PS)}
        {\\mathrm{diag}\\,P}\\Big).

Neither P_F nor P·S is ever formed: by Woodbury, with the d×d matrix
M = (F Fᵀ + λ_F I_d)⁻¹, q_j = f_jᵀ M f_j and D = diag(1/(1 − q)),

.. math::

    S = I - D + F^\\top M F D, \\qquad
    B = P\\,\\mathrm{diag}(\\lambda_E - \\lambda_E D_{jj} - c_j) + \\lambda_E\\,U V

with U = P Fᵀ M (n×d), V = F D (d×n), diag(PS)_j = P_jj − P_jj D_jj + (UV)_jj and
c_j = (1 + λ_E diag(PS)_j) / P_jj.  A fit therefore costs one n×n SPD inverse (as EASE)
plus two n×n×d products, in one n×n buffer plus O(n·d + d²) memory.

References
----------
L3AE: linear autoencoders with text knowledge distilled into the item-item
matrix, CIKM 2025, arXiv:2508.13500.
H. Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import numpy as np
import scipy.sparse as sp

from .._memory import empty_checked
from .._threads import blas_threads
from .._validation import check_scalar
from ._closed_form import check_l3ae_params, invert_regularised, l3ae_inplace, text_factors
from .. import neighbors as nbr
from .base import COMMON_OPTIONS, NEIGHBORS_OPTION, ItemItemModel, StepTimer
from .registry import register

__all__ = ["L3AE", "EASEText", "TextSimilarity"]


def text_neighbors(m: int) -> int:
    """Text neighbours added to each support on the neighbourhood route: m/8 (at least 8), so that tail and
    cold items, which co-occur with few others, still get neighbours."""
    return max(8, m // 8)


@register
class L3AE(ItemItemModel):
    """L3AE (CIKM 2025): EASE regularised towards an item-item matrix learned from text.

    Parameters
    ----------
    l2_x : float, default=300.0
        λ_X, the L2 penalty on B. May be negative as long as ``l2_x + l2_e > 0``
        (only the sum enters the n×n inverse). In the published best settings
        ``l2_x + l2_e`` equals the tuned EASE λ of the dataset.
    l2_e : float, default=100.0
        λ_E >= 0, the pull of B towards the text matrix S (published range 50–200).
        0 gives EASE(l2_x).
    l2_f : float, default=1.0
        λ_F > 0, the ridge of the phase-1 EASE on the embeddings
        (published range 0.05–10).
    dtype : {np.float32, np.float64}, default=np.float32
        Precision of the n×n buffer (the d×d work is always float64).
    num_threads : int, optional
        Threads for the Gram, Cholesky, GEMMs and ranking
        (env ``LAE_FAST_NUM_THREADS``).
    neighbors : int, optional
        Solve every column on its ``neighbors`` strongest co-occurring items plus its
        strongest text neighbours instead of the dense n×n (docs/MODELS.md §4).
        None (default): dense when n×n fits the memory budget, else 256.

    Attributes
    ----------
    B_ : ndarray (n_items, n_items)
        Item-item weights, zero diagonal; scores are ``x_u · B_``.
    item_ids_ : ndarray (n_items,)
        Original item ids of the columns.
    item_counts_ : ndarray (n_items,)
        Training interactions per item (diag of G).
    fit_seconds_ : dict
        Wall time of each fit step.

    See Also
    --------
    EASEText : the phase-1 matrix S alone.
    TextSimilarity : B = E Eᵀ.

    Notes
    -----
    One n×n buffer (G, then P, then B in place) plus O(n·d + d²):
    flops ≈ n³ (potrf + potri) + 4n²d (U = P·FᵀM and the rank-d update)
    + O(nd²). See the module docstring for the closed form.

    References
    ----------
    .. [1] L3AE, CIKM 2025, arXiv:2508.13500 (docs/MODELS.md §2).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> X = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 1, 0], [1, 0, 1, 1],
    ...                             [0, 0, 1, 1], [1, 1, 1, 0]]))
    >>> E = np.random.default_rng(0).normal(size=(4, 3))
    >>> model = L3AE(l2_x=1.0, l2_e=2.0, l2_f=0.5).fit(X, E)
    >>> np.allclose(np.diag(model.B), 0)
    True
    """

    name = "l3ae"
    summary = "L3AE (CIKM 2025): EASE pulled towards an item-item matrix learned from item text"
    hyperparameters = ("l2_x", "l2_e", "l2_f")
    param_help = {
        "l2_x": "L3AE: λ_X, the L2 penalty on B (may be negative while l2_x + l2_e > 0).",
        "l2_e": "L3AE: λ_E >= 0, the pull of B towards the text matrix.",
        "l2_f": "L3AE, ease-text: λ_F > 0, the ridge of EASE on the item embeddings.",
    }
    takes_embeddings = True
    options = COMMON_OPTIONS + (NEIGHBORS_OPTION,)
    saved_attributes = ("item_counts_",)

    def __init__(self, l2_x: float = 300.0, l2_e: float = 100.0, l2_f: float = 1.0, *,
                 dtype: Any = np.float32, num_threads: Optional[int] = None, neighbors: Optional[int] = None):
        self.l2_x = l2_x
        self.l2_e = l2_e
        self.l2_f = l2_f
        self.dtype = dtype
        self.num_threads = num_threads
        self.neighbors = neighbors

    def _validate_params(self) -> Dict[str, Any]:
        return check_l3ae_params(self.l2_x, self.l2_e, self.l2_f)

    def fit(self, X: Any, item_embeddings: Any = None, *, progress: Any = None) -> "L3AE":
        """Fit B in closed form from interactions and item embeddings.

        Parameters
        ----------
        X : sparse matrix (n_users, n_items) or :class:`lae_fast.data.Interactions`
            Interactions; every stored positive value counts as 1.
        item_embeddings : array-like of shape (n_items, d)
            One text embedding per item, in X's column order (row j = item j),
            used as given (no normalisation). All-zero rows are allowed
            (items without text). Required.
        progress : bool or callable, optional
            As in :meth:`ItemItemModel.fit`.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Bad hyper-parameters, or embeddings of the wrong shape or with NaN/inf.
        numpy.linalg.LinAlgError
            G + (l2_x + l2_e)·I is not numerically positive definite
            (raise ``l2_x + l2_e`` or use float64).
        MemoryError
            The n×n matrix cannot fit in available memory.
        """
        return super().fit(X, item_embeddings, progress=progress)

    def _solve_gram(self, A: np.ndarray, params: Dict[str, Any], timer: StepTimer,
                    item_embeddings: Optional[np.ndarray]) -> Dict[str, Any]:
        l2_x, l2_e, nt = params["l2_x"], params["l2_e"], params["num_threads"]
        E = item_embeddings
        with timer("text"), blas_threads(nt):
            W, D = text_factors(E, params["l2_f"])
        counts = A.diagonal().astype(np.float64)
        ridge = l2_x + l2_e
        with timer("inverse"):
            invert_regularised(
                A, np.full(A.shape[0], ridge), num_threads=nt,
                hint=(f"raise l2_x + l2_e (now {l2_x} + {l2_e} = {ridge}; G + (l2_x + l2_e)·I must be "
                      f"positive definite) or use dtype=float64"),
            )
        with timer("low_rank"), blas_threads(nt):
            B = l3ae_inplace(A, E, W, D, l2_e)
        return {"B_": B, "item_counts_": counts, "embedding_dim_": E.shape[1]}

    @classmethod
    def _text_support(cls, m: int) -> int:
        return text_neighbors(m)

    def _solve_columns(self, source: Any, m: int, k: int, params: Dict[str, Any], timer: StepTimer,
                       item_embeddings: Optional[np.ndarray], columns: Optional[Tuple[int, int]] = None) -> nbr.ColumnSolution:
        """Column j on its refined support plus its strongest text neighbours (docs/MODELS.md §4);
        the text column s comes from the embeddings by Woodbury, never as n×n."""
        with timer("solve"):
            return nbr.solve_columns_l3ae(source, item_embeddings, l2_x=params["l2_x"], l2_e=params["l2_e"],
                                          l2_f=params["l2_f"], m=m, text_k=text_neighbors(m), refine=k > m, k=k if k > m else None,
                                          dtype=params["dtype"], num_threads=params["num_threads"],
                                          columns=columns, progress=self._progress)


@register
class EASEText(ItemItemModel):
    """Text-only baseline: EASE on the item embeddings (phase 1 of L3AE), B = S.

    Parameters
    ----------
    l2_f : float, default=1.0
        λ_F > 0, the ridge of EASE on the embedding matrix F = Eᵀ.
    dtype : {np.float32, np.float64}, default=np.float32
    num_threads : int, optional
        BLAS threads for the n×n product.

    Attributes
    ----------
    B_ : ndarray (n_items, n_items)
        :math:`S = I - P_F\\,\\mathrm{diag}(1/\\mathrm{diag}\\,P_F)`, zero diagonal.
    item_ids_ : ndarray (n_items,)

    Notes
    -----
    Built without the n×n inverse: with M = (EᵀE + λ_F I_d)⁻¹,
    :math:`S_{ij} = (E M E^\\top)_{ij} / (1 - q_j)` off the diagonal, one n×n×d GEMM
    into the output buffer. X is used only for its item count and ids.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> X = sp.csr_matrix(np.eye(4))
    >>> E = np.random.default_rng(0).normal(size=(4, 3))
    >>> EASEText(l2_f=0.5).fit(X, E).B.shape
    (4, 4)
    """

    name = "ease-text"
    summary = "text-only baseline: EASE on the item embeddings (L3AE's phase 1), B = S"
    hyperparameters = ("l2_f",)
    param_help = {"l2_f": "L3AE, ease-text: λ_F > 0, the ridge of EASE on the item embeddings."}
    takes_embeddings = True

    def __init__(self, l2_f: float = 1.0, *, dtype: Any = np.float32, num_threads: Optional[int] = None):
        self.l2_f = l2_f
        self.dtype = dtype
        self.num_threads = num_threads

    def _validate_params(self) -> Dict[str, Any]:
        return {"l2_f": check_scalar(self.l2_f, name="l2_f", low=0.0, low_inclusive=False)}

    def _fit(self, X: sp.csr_matrix, params: Dict[str, Any], timer: StepTimer,
             item_embeddings: Optional[np.ndarray]) -> Dict[str, Any]:
        """S = Fᵀ M F D off the diagonal: one n×n×d GEMM into the output buffer (X gives only n)."""
        n, dtype, E = X.shape[1], params["dtype"], item_embeddings
        A = empty_checked((n, n), dtype, what=f"fitting EASEText ({n} items, one {n}x{n} {dtype.name} matrix)")
        with timer("text"), blas_threads(params["num_threads"]):
            W, D = text_factors(E, params["l2_f"])
            V = np.ascontiguousarray((E * D[:, None]).T, dtype=dtype)  # F D (d×n)
            np.matmul(W.astype(dtype), V, out=A)  # the identity part of S only touches the diagonal
        A[np.diag_indices(n)] = 0
        return {"B_": A}


@register
class TextSimilarity(ItemItemModel):
    """Text-only baseline: B = E Eᵀ with zero diagonal (cosine similarity for unit-norm E).

    Parameters
    ----------
    dtype : {np.float32, np.float64}, default=np.float32
    num_threads : int, optional
        BLAS threads for the n×n product.

    Attributes
    ----------
    B_ : ndarray (n_items, n_items)
    item_ids_ : ndarray (n_items,)

    Notes
    -----
    Embeddings are used as given; normalise rows first for cosine similarity.
    X is used only for its item count and ids.
    """

    name = "text-similarity"
    summary = "text-only baseline: B = E Eᵀ with zero diagonal (cosine for unit-norm embeddings)"
    takes_embeddings = True

    def __init__(self, *, dtype: Any = np.float32, num_threads: Optional[int] = None):
        self.dtype = dtype
        self.num_threads = num_threads

    def _fit(self, X: sp.csr_matrix, params: Dict[str, Any], timer: StepTimer,
             item_embeddings: Optional[np.ndarray]) -> Dict[str, Any]:
        n, dtype = X.shape[1], params["dtype"]
        Ed = np.ascontiguousarray(item_embeddings, dtype=dtype)
        A = empty_checked((n, n), dtype, what=f"fitting TextSimilarity ({n} items, one {n}x{n} {dtype.name} "
                                              "matrix)")
        with timer("similarity"), blas_threads(params["num_threads"]):
            np.matmul(Ed, Ed.T, out=A)
        A[np.diag_indices(n)] = 0
        return {"B_": A}
