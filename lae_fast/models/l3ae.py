"""L3AE (text knowledge distilled into the item-item matrix) and its two text-only baselines.

With item embeddings E (n×d, F = Eᵀ) and G = XᵀX, L3AE solves two constrained ridge
problems (MATH.md §2):

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

import time
from typing import Any, Optional, Tuple

import numpy as np
import scipy.linalg
from scipy.linalg import blas as scipy_blas

from .._threads import blas_threads, resolve_num_threads
from .._validation import check_dtype, check_interactions, check_scalar
from ..linalg import check_fits_in_memory
from .base import ItemItemModel, register
from .ease import gram_buffer, invert_regularised

#: rows per block when the rank-d update falls back to a blocked loop
_ROW_CHUNK = 512


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
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


def text_factors(E: np.ndarray, l2_f: float) -> Tuple[np.ndarray, np.ndarray]:
    """The low-rank pieces of phase 1: ``W = Fᵀ M`` (n×d) and ``D = 1/(1 − q)`` (n,), float64.

    M = (F Fᵀ + λ_F I_d)⁻¹ = (EᵀE + λ_F I_d)⁻¹ via Cholesky, q_j = f_jᵀ M f_j.
    Then P_F = (I − W F)/λ_F, diag P_F = (1 − q)/λ_F and S = I − D + W·F·D.
    """
    d = E.shape[1]
    K = E.T @ E
    K[np.diag_indices(d)] += l2_f
    try:
        factor = scipy.linalg.cho_factor(K, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        raise np.linalg.LinAlgError(
            f"EᵀE + l2_f·I ({d}x{d}) is not numerically positive definite; raise l2_f (now {l2_f})"
        ) from None
    W = scipy.linalg.cho_solve(factor, E.T, check_finite=False).T  # E M  (M symmetric)
    one_minus_q = 1.0 - np.einsum("ij,ij->i", W, E)
    if not np.all(one_minus_q > 0):
        raise np.linalg.LinAlgError(
            f"the embedding ridge is too weak for float64 (1 - q_j <= 0 for "
            f"{int(np.sum(~(one_minus_q > 0)))} items); raise l2_f (now {l2_f})"
        )
    return np.ascontiguousarray(W), 1.0 / one_minus_q


def add_low_rank_inplace(A: np.ndarray, U: np.ndarray, V: np.ndarray, alpha: float) -> np.ndarray:
    """``A += alpha · U @ V`` in A's own buffer (A C-contiguous n×n, U n×d, V d×n, same dtype).

    One GEMM with beta=1 on the transposed (Fortran) view of A, so no n×n temporary;
    falls back to a blocked row loop (temporary chunk×n) if BLAS would not write in place.
    """
    gemm = scipy_blas.sgemm if A.dtype == np.float32 else scipy_blas.dgemm
    U = np.ascontiguousarray(U, dtype=A.dtype)
    V = np.ascontiguousarray(V, dtype=A.dtype)
    if A.flags.c_contiguous and A.shape[0] > 0:
        # (A)ᵀ is Fortran-ordered: Aᵀ ← alpha · Vᵀ Uᵀ + Aᵀ, with Vᵀ and Uᵀ Fortran views too
        out = gemm(alpha, V.T, U.T, beta=1.0, c=A.T, overwrite_c=True)
        if np.shares_memory(out, A):
            return A
        # a copy was updated instead (never seen with scipy's BLAS); A itself is untouched
    for start in range(0, A.shape[0], _ROW_CHUNK):
        rows = slice(start, start + _ROW_CHUNK)
        A[rows] += alpha * (U[rows] @ V)
    return A


def _text_inputs(X: Any, item_embeddings: Any):
    Xc = check_interactions(X)
    n = Xc.shape[1]
    E = check_embeddings(item_embeddings, n)
    return Xc, n, E


# ---------------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------------
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
    .. [1] L3AE, CIKM 2025, arXiv:2508.13500 (MATH.md §2).

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

    model_name = "l3ae"
    _param_names = ("l2_x", "l2_e", "l2_f", "dtype", "num_threads")

    def __init__(self, l2_x: float = 300.0, l2_e: float = 100.0, l2_f: float = 1.0, *,
                 dtype: Any = np.float32, num_threads: Optional[int] = None):
        self.l2_x = l2_x
        self.l2_e = l2_e
        self.l2_f = l2_f
        self.dtype = dtype
        self.num_threads = num_threads

    def _check_params(self):
        l2_x = check_scalar(self.l2_x, name="l2_x")
        l2_e = check_scalar(self.l2_e, name="l2_e", low=0.0)
        l2_f = check_scalar(self.l2_f, name="l2_f", low=0.0, low_inclusive=False)
        if not l2_x + l2_e > 0:
            raise ValueError(
                f"l2_x + l2_e must be > 0 (it is the ridge of the item-item inverse), got "
                f"l2_x={l2_x} + l2_e={l2_e} = {l2_x + l2_e}; a negative l2_x needs l2_e > -l2_x"
            )
        return l2_x, l2_e, l2_f, check_dtype(self.dtype)

    def fit(self, X: Any, item_embeddings: Any) -> "L3AE":
        """Fit B in closed form from interactions and item embeddings.

        Parameters
        ----------
        X : sparse matrix (n_users, n_items) or :class:`lae_fast.data.Interactions`
            Interactions; every stored positive value counts as 1.
        item_embeddings : array-like of shape (n_items, d)
            One text embedding per item, in X's column order (row j = item j),
            used as given (no normalisation). All-zero rows are allowed
            (items without text).

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
        l2_x, l2_e, l2_f, dtype = self._check_params()
        Xc, n, E = _text_inputs(X, item_embeddings)
        d = E.shape[1]
        nt = resolve_num_threads(self.num_threads)
        t0 = time.perf_counter()
        with blas_threads(nt):
            W, D = text_factors(E, l2_f)
        t1 = time.perf_counter()
        A = gram_buffer(Xc, dtype, nt, what=f"fitting {type(self).__name__}")
        counts = A.diagonal().astype(np.float64)
        t2 = time.perf_counter()
        ridge = l2_x + l2_e
        invert_regularised(
            A, np.full(n, ridge), num_threads=nt,
            hint=(f"raise l2_x + l2_e (now {l2_x} + {l2_e} = {ridge}; G + (l2_x + l2_e)·I must be "
                  f"positive definite) or use dtype=float64"),
        )
        t3 = time.perf_counter()
        p_diag = A.diagonal().astype(np.float64)
        with blas_threads(nt):
            if l2_e > 0:
                U = A @ W.astype(dtype)                                    # P Fᵀ M   (n×d)
                V = np.ascontiguousarray((E * D[:, None]).T, dtype=dtype)  # F D      (d×n)
                uv_diag = np.einsum("jk,kj->j", U.astype(np.float64), V.astype(np.float64))
                ps_diag = p_diag - p_diag * D + uv_diag
                c = (1.0 + l2_e * ps_diag) / p_diag
                scale = l2_e - l2_e * D - c
            else:  # EASE(l2_x): B = −P·diag(1/diag P)
                scale = -1.0 / p_diag
            t4 = time.perf_counter()
            np.multiply(A, scale.astype(dtype)[None, :], out=A)
            if l2_e > 0:
                add_low_rank_inplace(A, U, V, l2_e)
        A[np.diag_indices(n)] = 0
        t5 = time.perf_counter()
        self.B_ = A
        self._set_item_ids(X, n)
        self.item_counts_ = counts
        self.embedding_dim_ = d
        self.fit_seconds_ = {"text": t1 - t0, "gram": t2 - t1, "inverse": t3 - t2,
                             "low_rank": t4 - t3, "update": t5 - t4}
        return self


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

    model_name = "ease-text"
    _param_names = ("l2_f", "dtype", "num_threads")

    def __init__(self, l2_f: float = 1.0, *, dtype: Any = np.float32, num_threads: Optional[int] = None):
        self.l2_f = l2_f
        self.dtype = dtype
        self.num_threads = num_threads

    def _check_params(self):
        l2_f = check_scalar(self.l2_f, name="l2_f", low=0.0, low_inclusive=False)
        return l2_f, check_dtype(self.dtype)

    def fit(self, X: Any, item_embeddings: Any) -> "EASEText":
        """Fit S from the embeddings.

        Parameters
        ----------
        X : sparse matrix (n_users, n_items) or :class:`lae_fast.data.Interactions`
            Only its number of items (and item ids) is used.
        item_embeddings : array-like of shape (n_items, d)

        Returns
        -------
        self
        """
        l2_f, dtype = self._check_params()
        _, n, E = _text_inputs(X, item_embeddings)
        nt = resolve_num_threads(self.num_threads)
        check_fits_in_memory(n * n * dtype.itemsize,
                             what=f"fitting EASEText ({n} items, one {n}x{n} {dtype.name} matrix)")
        with blas_threads(nt):
            W, D = text_factors(E, l2_f)
            V = np.ascontiguousarray((E * D[:, None]).T, dtype=dtype)  # F D (d×n)
            A = np.empty((n, n), dtype=dtype)
            np.matmul(W.astype(dtype), V, out=A)  # Fᵀ M F D; the identity part only touches the diagonal
        A[np.diag_indices(n)] = 0
        self.B_ = A
        self._set_item_ids(X, n)
        return self


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

    model_name = "text-similarity"
    _param_names = ("dtype", "num_threads")

    def __init__(self, *, dtype: Any = np.float32, num_threads: Optional[int] = None):
        self.dtype = dtype
        self.num_threads = num_threads

    def _check_params(self):
        return check_dtype(self.dtype)

    def fit(self, X: Any, item_embeddings: Any) -> "TextSimilarity":
        """Fit B = E Eᵀ.

        Parameters
        ----------
        X : sparse matrix (n_users, n_items) or :class:`lae_fast.data.Interactions`
            Only its number of items (and item ids) is used.
        item_embeddings : array-like of shape (n_items, d)

        Returns
        -------
        self
        """
        dtype = self._check_params()
        _, n, E = _text_inputs(X, item_embeddings)
        nt = resolve_num_threads(self.num_threads)
        check_fits_in_memory(n * n * dtype.itemsize,
                             what=f"fitting TextSimilarity ({n} items, one {n}x{n} {dtype.name} matrix)")
        Ed = np.ascontiguousarray(E, dtype=dtype)
        A = np.empty((n, n), dtype=dtype)
        with blas_threads(nt):
            np.matmul(Ed, Ed.T, out=A)
        A[np.diag_indices(n)] = 0
        self.B_ = A
        self._set_item_ids(X, n)
        return self
