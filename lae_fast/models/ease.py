"""The EASE family in one closed form: LAE, EASE, DLAE, EDLAE, RLAE, RDLAE.

.. math::

    \\gamma_j = \\lambda + \\frac{p}{1-p} G_{jj}, \\qquad
    P = (G + \\mathrm{diag}\\,\\gamma)^{-1}, \\qquad
    B = I - P\\,\\mathrm{diag}\\Big(\\max\\big(\\gamma_j, \\tfrac{1-\\xi}{P_{jj}}\\big)\\Big)

with G = XᵀX, p the dropout probability and ξ the bound on diag(B).
ξ = 0 forces diag(B) = 0 (EASE, EDLAE); ξ >= 1 leaves it free (LAE, DLAE);
0 < ξ < 1 relaxes it (RLAE, RDLAE).

References
----------
H. Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019.
H. Steck, "Autoencoders that don't overfit towards the Identity", NeurIPS 2020.
J. Moon, H. Kim, J. Lee, "It's Enough: Relaxing Diagonal Constraints in Linear
Autoencoders for Recommendation", SIGIR 2023.
"""
from __future__ import annotations

import time
from typing import Any, Optional

import numpy as np

from .._threads import resolve_num_threads
from .._validation import check_dtype, check_interactions, check_scalar
from ..gram import gram_into
from ..linalg import check_fits_in_memory, spd_inverse_inplace
from .base import ItemItemModel, register


def gram_buffer(X, dtype: np.dtype, num_threads: int, what: str) -> np.ndarray:
    """The one n×n buffer of a fit, holding the upper triangle of G = XᵀX."""
    n = X.shape[1]
    check_fits_in_memory(n * n * dtype.itemsize, what=f"{what} ({n} items, one {n}x{n} {dtype.name} matrix)")
    A = np.zeros((n, n), dtype=dtype)
    return gram_into(X, A, weighted=False, num_threads=num_threads, mirror=False)


def ridge_diagonal(l2: float, dropout: float, counts: np.ndarray) -> np.ndarray:
    """γ_j = λ + p/(1−p)·G_jj: the L2 ridge plus the dropout penalty (MATH.md §1), float64."""
    return l2 + (dropout / (1.0 - dropout)) * counts


def invert_regularised(A: np.ndarray, gamma: np.ndarray, *, num_threads: int, hint: str) -> np.ndarray:
    """Overwrite A (upper triangle of G) with P = (G + diag γ)⁻¹, full and symmetric."""
    A[np.diag_indices_from(A)] += gamma.astype(A.dtype)
    try:
        return spd_inverse_inplace(A, num_threads=num_threads)
    except np.linalg.LinAlgError as exc:
        raise np.linalg.LinAlgError(f"{exc}: G + regularisation is not positive definite; {hint}") from None


def lae_family_inplace(A: np.ndarray, gamma: np.ndarray, xi: float) -> np.ndarray:
    """Turn P (in A) into B = I − P·diag(max(γ_j, (1−ξ)/P_jj)) in place."""
    p_diag = A.diagonal().astype(np.float64)
    bound = (1.0 - xi) / p_diag
    scale = np.maximum(gamma, bound)
    np.multiply(A, (-scale).astype(A.dtype)[None, :], out=A)
    A[np.diag_indices_from(A)] += 1
    # where the bound is active diag(B) is ξ by construction: store it exactly (1 − P_jj·s_j
    # would leave a rounding residue, e.g. EASE diagonals of ±6e-8 in float32). An unused
    # item sits on the boundary (P_jj = 1/γ_j), hence the few-ulp tolerance.
    active = np.flatnonzero(bound >= gamma * (1.0 - 4 * np.finfo(A.dtype).eps))
    A[active, active] = xi
    return A


@register
class LinearAutoencoder(ItemItemModel):
    """Unified EASE-family model (MATH §1); the named classes are presets of it.

    Parameters
    ----------
    l2 : float, default=500.0
        L2 regularisation λ (> 0 unless G itself is positive definite).
    dropout : float in [0, 1), default=0.0
        Dropout probability p; adds p/(1-p)·G_jj to item j's regularisation.
    xi : float >= 0, default=0.0
        Upper bound on diag(B): 0 = zero diagonal (EASE), >= 1 = free (LAE).
    dtype : {np.float32, np.float64}, default=np.float32
    num_threads : int, optional
        Threads for the Gram, Cholesky and ranking (env ``LAE_FAST_NUM_THREADS``).

    Attributes
    ----------
    B_ : ndarray (n_items, n_items)
        Item-item weights; scores are ``x_u · B_`` (B_ is not symmetric).
    item_ids_ : ndarray (n_items,)
        Original item ids of the columns.
    fit_seconds_ : dict
        Wall time of each fit step (gram, inverse, scaling).
    """

    model_name = "lae"
    _param_names = ("l2", "dropout", "xi", "dtype", "num_threads")

    def __init__(self, l2: float = 500.0, *, dropout: float = 0.0, xi: float = 0.0,
                 dtype: Any = np.float32, num_threads: Optional[int] = None):
        self.l2 = l2
        self.dropout = dropout
        self.xi = xi
        self.dtype = dtype
        self.num_threads = num_threads

    def _check_params(self):
        l2 = check_scalar(self.l2, name="l2", low=0.0)
        p = check_scalar(self.dropout, name="dropout", low=0.0, high=1.0, high_inclusive=False)
        xi = check_scalar(self.xi, name="xi", low=0.0)
        return l2, p, xi, check_dtype(self.dtype)

    def fit(self, X: Any) -> "LinearAutoencoder":
        """Fit B in closed form.

        Parameters
        ----------
        X : sparse matrix (n_users, n_items) or :class:`lae_fast.data.Interactions`
            Interactions; every stored positive value counts as 1.

        Returns
        -------
        self

        Raises
        ------
        numpy.linalg.LinAlgError
            G + diag(γ) is not positive definite (raise ``l2``).
        MemoryError
            The n×n matrix cannot fit in available memory.
        """
        _, _, _, dtype = self._check_params()
        Xc = check_interactions(X)
        nt = resolve_num_threads(self.num_threads)
        t0 = time.perf_counter()
        A = gram_buffer(Xc, dtype, nt, what=f"fitting {type(self).__name__}")
        self._fit_upper_gram(A, nt, gram_seconds=time.perf_counter() - t0)
        self._set_item_ids(X, Xc.shape[1])
        return self

    def fit_gram(self, G: np.ndarray, *, item_ids: Any = None, copy: bool = True) -> "LinearAutoencoder":
        """Fit B in closed form from a precomputed Gram matrix :math:`G = X^T X`.

        What :meth:`fit` does after its Gram step, for a G built elsewhere (e.g. summed
        over user partitions by :func:`lae_fast.distributed.distributed_gram`).

        Parameters
        ----------
        G : ndarray of shape (n_items, n_items)
            Binary co-occurrence counts; only the upper triangle (row-major, j >= i)
            is read, so a full symmetric G and an upper-triangle-only buffer both work.
        item_ids : array-like of shape (n_items,), optional
            Original item id of each column; default ``0..n-1``.
        copy : bool, default=True
            With False, a C-contiguous G of the model's dtype is overwritten and
            becomes ``B_`` (no second n×n buffer).

        Returns
        -------
        self
        """
        _, _, _, dtype = self._check_params()
        G = np.asarray(G)
        if G.ndim != 2 or G.shape[0] != G.shape[1] or G.shape[0] == 0:
            raise ValueError(f"G must be a non-empty square n_items x n_items matrix, got shape {G.shape}")
        if G.dtype.kind not in "biuf":
            raise TypeError(f"G must hold numbers, got dtype {G.dtype}")
        n = G.shape[0]
        self._set_item_ids(_ItemIds(item_ids), n)  # checked before the O(n³) work
        if copy or G.dtype != dtype or not G.flags.c_contiguous or not G.flags.writeable:
            check_fits_in_memory(n * n * dtype.itemsize,
                                 what=f"fitting {type(self).__name__} ({n} items, one {n}x{n} {dtype.name} matrix)")
            A = np.array(G, dtype=dtype, order="C", copy=True)
        else:
            A = G
        self._fit_upper_gram(A, resolve_num_threads(self.num_threads), gram_seconds=0.0)
        return self

    def _fit_upper_gram(self, A: np.ndarray, nt: int, *, gram_seconds: float) -> None:
        """Closed form on A holding (at least) the upper triangle of G; A becomes B_."""
        l2, p, xi, _ = self._check_params()
        t1 = time.perf_counter()
        counts = A.diagonal().astype(np.float64)
        gamma = ridge_diagonal(l2, p, counts)
        invert_regularised(A, gamma, num_threads=nt,
                           hint=f"raise l2 (now {self.l2}) or use dtype=float64")
        t2 = time.perf_counter()
        self.B_ = lae_family_inplace(A, gamma, xi)
        t3 = time.perf_counter()
        self.item_counts_ = counts
        self.fit_seconds_ = {"gram": gram_seconds, "inverse": t2 - t1, "scaling": t3 - t2}


class _ItemIds:
    """Duck-typed holder so ``fit_gram`` reuses ``_set_item_ids`` (which reads ``.item_ids``)."""

    def __init__(self, item_ids: Any) -> None:
        self.item_ids = item_ids


@register
class LAE(LinearAutoencoder):
    """Linear autoencoder with L2 only: :math:`B = I - \\lambda P = P G` (diagonal free).

    Parameters
    ----------
    l2 : float, default=500.0
    dtype, num_threads : see :class:`LinearAutoencoder`
    """

    model_name = "lae-l2"
    _param_names = ("l2", "dtype", "num_threads")

    def __init__(self, l2: float = 500.0, *, dtype: Any = np.float32, num_threads: Optional[int] = None):
        super().__init__(l2, dropout=0.0, xi=1.0, dtype=dtype, num_threads=num_threads)


@register
class EASE(LinearAutoencoder):
    """EASE (Steck, WWW 2019): :math:`B = I - P\\,\\mathrm{diag}(1/\\mathrm{diag}\\,P)`, zero diagonal.

    Parameters
    ----------
    l2 : float, default=500.0
    dtype, num_threads : see :class:`LinearAutoencoder`

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> X = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 1, 0], [1, 0, 1, 1],
    ...                             [0, 0, 1, 1], [1, 1, 1, 0]]))
    >>> model = EASE(l2=1.0).fit(X)
    >>> np.allclose(np.diag(model.B), 0)
    True
    >>> ids, scores = model.recommend(X[:1], N=2)
    >>> ids.shape
    (1, 2)
    """

    model_name = "ease"
    _param_names = ("l2", "dtype", "num_threads")

    def __init__(self, l2: float = 500.0, *, dtype: Any = np.float32, num_threads: Optional[int] = None):
        super().__init__(l2, dropout=0.0, xi=0.0, dtype=dtype, num_threads=num_threads)


@register
class DLAE(LinearAutoencoder):
    """Dropout linear autoencoder (Steck, NeurIPS 2020): :math:`B = I - P\\,\\mathrm{diag}(\\gamma)`.

    Parameters
    ----------
    l2 : float, default=400.0
    dropout : float in [0, 1), default=0.3
    dtype, num_threads : see :class:`LinearAutoencoder`
    """

    model_name = "dlae"
    _param_names = ("l2", "dropout", "dtype", "num_threads")

    def __init__(self, l2: float = 400.0, *, dropout: float = 0.3, dtype: Any = np.float32,
                 num_threads: Optional[int] = None):
        super().__init__(l2, dropout=dropout, xi=1.0, dtype=dtype, num_threads=num_threads)


@register
class EDLAE(LinearAutoencoder):
    """Emphasized denoising LAE (Steck, NeurIPS 2020): EASE with γ_j in place of λ.

    Parameters
    ----------
    l2 : float, default=400.0
    dropout : float in [0, 1), default=0.3
    dtype, num_threads : see :class:`LinearAutoencoder`
    """

    model_name = "edlae"
    _param_names = ("l2", "dropout", "dtype", "num_threads")

    def __init__(self, l2: float = 400.0, *, dropout: float = 0.3, dtype: Any = np.float32,
                 num_threads: Optional[int] = None):
        super().__init__(l2, dropout=dropout, xi=0.0, dtype=dtype, num_threads=num_threads)


@register
class RLAE(LinearAutoencoder):
    """Relaxed-diagonal LAE (Moon et al., SIGIR 2023): diag(B) <= ξ.

    Parameters
    ----------
    l2 : float, default=1000.0
    xi : float >= 0, default=0.6
    dtype, num_threads : see :class:`LinearAutoencoder`
    """

    model_name = "rlae"
    _param_names = ("l2", "xi", "dtype", "num_threads")

    def __init__(self, l2: float = 1000.0, *, xi: float = 0.6, dtype: Any = np.float32,
                 num_threads: Optional[int] = None):
        super().__init__(l2, dropout=0.0, xi=xi, dtype=dtype, num_threads=num_threads)


@register
class RDLAE(LinearAutoencoder):
    """Relaxed-diagonal denoising LAE (Moon et al., SIGIR 2023): dropout and diag(B) <= ξ.

    Parameters
    ----------
    l2 : float, default=1000.0
    dropout : float in [0, 1), default=0.2
    xi : float >= 0, default=0.6
    dtype, num_threads : see :class:`LinearAutoencoder`
    """

    model_name = "rdlae"
    _param_names = ("l2", "dropout", "xi", "dtype", "num_threads")

    def __init__(self, l2: float = 1000.0, *, dropout: float = 0.2, xi: float = 0.6,
                 dtype: Any = np.float32, num_threads: Optional[int] = None):
        super().__init__(l2, dropout=dropout, xi=xi, dtype=dtype, num_threads=num_threads)


#: CLI / config names of the family
MODELS = {"lae": LAE, "ease": EASE, "dlae": DLAE, "edlae": EDLAE, "rlae": RLAE, "rdlae": RDLAE}
