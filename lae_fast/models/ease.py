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

from typing import Any, Dict, Optional, Tuple

import numpy as np

from ._closed_form import check_family_params, invert_regularised, lae_family_inplace, ridge_diagonal
from .. import neighbors as nbr
from .base import COMMON_OPTIONS, NEIGHBORS_OPTION, ItemItemModel, StepTimer
from .registry import MODEL_REGISTRY, model_names, register

__all__ = ["LinearAutoencoder", "LAE", "EASE", "DLAE", "EDLAE", "RLAE", "RDLAE", "MODELS"]


@register
class LinearAutoencoder(ItemItemModel):
    """The EASE family in one closed form (docs/MODELS.md §1); the named classes are presets of it.

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
    neighbors : int, optional
        Solve every column on its ``neighbors`` strongest co-occurring items instead of
        inverting the dense n×n (docs/MODELS.md §4): memory O(n·neighbors), a sparse B.
        None (default): the dense route when its n×n matrix fits the memory budget, else
        neighbourhoods of 256 items (with a :class:`~lae_fast.models.base.RouteWarning`).

    Attributes
    ----------
    B_ : ndarray (n_items, n_items) or scipy.sparse.csr_matrix
        Item-item weights; scores are ``x_u · B_`` (B_ is not symmetric). Sparse (CSR,
        rows are history items) on the neighbourhood route.
    solver_ : {'dense', 'neighbors'}
        The route the fit took.
    item_ids_ : ndarray (n_items,)
        Original item ids of the columns.
    item_counts_ : ndarray (n_items,)
        Training interactions per item (diag of G).
    n_users_, nnz_ : int
        Users and interactions of the training data.
    fit_seconds_ : dict
        Wall time of each fit step (gram, inverse, scaling).
    """

    name = "family"
    summary = "the general EASE-family form: l2, dropout and xi all free"
    hyperparameters = ("l2", "dropout", "xi")
    param_help = {
        "l2": "L2 regularisation λ (> 0).",
        "dropout": "Dropout probability p in [0, 1): adds p/(1-p)·G_jj to item j's ridge.",
        "xi": "Bound ξ >= 0 on diag(B): 0 = zero diagonal, >= 1 = free, between = relaxed.",
    }
    options = COMMON_OPTIONS + (NEIGHBORS_OPTION,)
    saved_attributes = ("item_counts_",)

    def __init__(self, l2: float = 500.0, *, dropout: float = 0.0, xi: float = 0.0,
                 dtype: Any = np.float32, num_threads: Optional[int] = None,
                 neighbors: Optional[int] = None):
        self.l2 = l2
        self.dropout = dropout
        self.xi = xi
        self.dtype = dtype
        self.num_threads = num_threads
        self.neighbors = neighbors

    def _validate_params(self) -> Dict[str, Any]:
        return check_family_params(self.l2, self.dropout, self.xi)

    def _solve_gram(self, A: np.ndarray, params: Dict[str, Any], timer: StepTimer,
                    item_embeddings: Optional[np.ndarray]) -> Dict[str, Any]:
        """Closed form on A holding (at least) the upper triangle of G; A becomes B."""
        counts = A.diagonal().astype(np.float64)
        gamma = ridge_diagonal(params["l2"], params["dropout"], counts)
        with timer("inverse"):
            invert_regularised(A, gamma, num_threads=params["num_threads"],
                               hint=f"raise l2 (now {self.l2}) or use dtype=float64")
        with timer("scaling"):
            B = lae_family_inplace(A, gamma, params["xi"])
        return {"B_": B, "item_counts_": counts}

    def _solve_columns(self, source: Any, m: int, k: int, params: Dict[str, Any], timer: StepTimer,
                       item_embeddings: Optional[np.ndarray], columns: Optional[Tuple[int, int]] = None) -> nbr.ColumnSolution:
        """Column j on its refined support: b_S = e_j − P_S e_j·max(γ_j, (1−ξ)/(P_S)_jj) (§4)."""
        with timer("solve"):
            return nbr.solve_columns(source, l2=params["l2"], dropout=params["dropout"], xi=params["xi"], m=m,
                                     refine=k > m, k=k if k > m else None, dtype=params["dtype"], num_threads=params["num_threads"],
                                     columns=columns, progress=self._progress)


@register
class LAE(LinearAutoencoder):
    """Linear autoencoder with L2 only: :math:`B = I - \\lambda P = P G` (diagonal free).

    Parameters
    ----------
    l2 : float, default=500.0
    dtype, num_threads, neighbors : see :class:`LinearAutoencoder`
    """

    name = "lae"
    summary = "linear autoencoder, L2 only, free diagonal: B = I - λP"
    hyperparameters = ("l2",)
    fixed = {"dropout": 0.0, "xi": 1.0}

    def __init__(self, l2: float = 500.0, *, dtype: Any = np.float32, num_threads: Optional[int] = None,
                 neighbors: Optional[int] = None):
        super().__init__(l2, dropout=0.0, xi=1.0, dtype=dtype, num_threads=num_threads,
                         neighbors=neighbors)


@register
class EASE(LinearAutoencoder):
    """EASE (Steck, WWW 2019): :math:`B = I - P\\,\\mathrm{diag}(1/\\mathrm{diag}\\,P)`, zero diagonal.

    Parameters
    ----------
    l2 : float, default=500.0
    dtype, num_threads, neighbors : see :class:`LinearAutoencoder`

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

    name = "ease"
    summary = "EASE (Steck, WWW 2019): zero diagonal"
    hyperparameters = ("l2",)
    fixed = {"dropout": 0.0, "xi": 0.0}

    def __init__(self, l2: float = 500.0, *, dtype: Any = np.float32, num_threads: Optional[int] = None,
                 neighbors: Optional[int] = None):
        super().__init__(l2, dropout=0.0, xi=0.0, dtype=dtype, num_threads=num_threads,
                         neighbors=neighbors)


@register
class DLAE(LinearAutoencoder):
    """Dropout linear autoencoder (Steck, NeurIPS 2020): :math:`B = I - P\\,\\mathrm{diag}(\\gamma)`.

    Parameters
    ----------
    l2 : float, default=400.0
    dropout : float in [0, 1), default=0.3
    dtype, num_threads, neighbors : see :class:`LinearAutoencoder`
    """

    name = "dlae"
    summary = "dropout LAE (Steck, NeurIPS 2020): free diagonal"
    hyperparameters = ("l2", "dropout")
    fixed = {"xi": 1.0}

    def __init__(self, l2: float = 400.0, *, dropout: float = 0.3, dtype: Any = np.float32,
                 num_threads: Optional[int] = None, neighbors: Optional[int] = None):
        super().__init__(l2, dropout=dropout, xi=1.0, dtype=dtype, num_threads=num_threads,
                         neighbors=neighbors)


@register
class EDLAE(LinearAutoencoder):
    """Emphasized denoising LAE (Steck, NeurIPS 2020): EASE with γ_j in place of λ.

    Parameters
    ----------
    l2 : float, default=400.0
    dropout : float in [0, 1), default=0.3
    dtype, num_threads, neighbors : see :class:`LinearAutoencoder`
    """

    name = "edlae"
    summary = "emphasized denoising LAE (Steck, NeurIPS 2020): dropout, zero diagonal"
    hyperparameters = ("l2", "dropout")
    fixed = {"xi": 0.0}

    def __init__(self, l2: float = 400.0, *, dropout: float = 0.3, dtype: Any = np.float32,
                 num_threads: Optional[int] = None, neighbors: Optional[int] = None):
        super().__init__(l2, dropout=dropout, xi=0.0, dtype=dtype, num_threads=num_threads,
                         neighbors=neighbors)


@register
class RLAE(LinearAutoencoder):
    """Relaxed-diagonal LAE (Moon et al., SIGIR 2023): diag(B) <= ξ.

    Parameters
    ----------
    l2 : float, default=1000.0
    xi : float >= 0, default=0.6
    dtype, num_threads, neighbors : see :class:`LinearAutoencoder`
    """

    name = "rlae"
    summary = "relaxed-diagonal LAE (Moon et al., SIGIR 2023): diag(B) <= xi"
    hyperparameters = ("l2", "xi")
    fixed = {"dropout": 0.0}

    def __init__(self, l2: float = 1000.0, *, xi: float = 0.6, dtype: Any = np.float32,
                 num_threads: Optional[int] = None, neighbors: Optional[int] = None):
        super().__init__(l2, dropout=0.0, xi=xi, dtype=dtype, num_threads=num_threads,
                         neighbors=neighbors)


@register
class RDLAE(LinearAutoencoder):
    """Relaxed-diagonal denoising LAE (Moon et al., SIGIR 2023): dropout and diag(B) <= ξ.

    Parameters
    ----------
    l2 : float, default=1000.0
    dropout : float in [0, 1), default=0.2
    xi : float >= 0, default=0.6
    dtype, num_threads, neighbors : see :class:`LinearAutoencoder`
    """

    name = "rdlae"
    summary = "relaxed-diagonal denoising LAE (Moon et al., SIGIR 2023): dropout and diag(B) <= xi"
    hyperparameters = ("l2", "dropout", "xi")
    fixed = {}

    def __init__(self, l2: float = 1000.0, *, dropout: float = 0.2, xi: float = 0.6,
                 dtype: Any = np.float32, num_threads: Optional[int] = None,
                 neighbors: Optional[int] = None):
        super().__init__(l2, dropout=dropout, xi=xi, dtype=dtype, num_threads=num_threads,
                         neighbors=neighbors)


#: name -> class of the family's presets (derived from the catalogue; kept for lae-fast 0.1 code)
MODELS = {name: MODEL_REGISTRY[name] for name in model_names(base=LinearAutoencoder)
          if name != LinearAutoencoder.name}
