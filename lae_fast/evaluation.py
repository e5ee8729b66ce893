"""Offline evaluation: seeded train/validation/test splits, ranking metrics, ``evaluate``.

Two protocols are supported (see ``docs/MODELS.md`` §3):

* **strong generalization** (:func:`strong_split`): whole users are held out; the
  model never sees them while fitting and is scored on how well it completes a
  held-out user's history from a fold-in part of it;
* **weak generalization** (:func:`weak_split`): every user's items are split
  train / validation / test; a user's test items are predicted from their train row.

Metrics are computed from the ranked item lists a model returns, over the full
item catalogue with each user's input items masked, and averaged over users
with at least one target item.
"""
from __future__ import annotations

import numbers
import re
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import scipy.sparse as sp

from ._validation import check_int, check_interactions, check_scalar
from .data.interactions import Interactions

__all__ = [
    "EvalSet", "Split", "strong_split", "weak_split", "recall_at_k", "recall_capped_at_k",
    "ndcg_at_k", "evaluate", "format_metrics", "head_items",
]

RandomState = Union[None, int, np.random.Generator]

#: metric name -> the formula printed under tables
METRIC_DEFINITIONS = {
    "recall": "hits / |T_u|",
    "recall_capped": "hits / min(k, |T_u|)",
    "ndcg": "binary gains, 1/log2(rank+1), IDCG over min(k, |T_u|) hits",
    "head/tail": "the same metric against T_u restricted to head (top 20% by training popularity) "
                 "or tail items; users with no target in the group skipped",
}


# -- containers -----------------------------------------------------------------------------

@dataclass
class EvalSet:
    """Users to score: what the model sees and what it should find.

    Attributes
    ----------
    inputs : Interactions, shape (n_users, n_items)
        One history row per evaluated user: the model ranks from it and every
        item in it is masked from that user's list. Its ``user_ids`` and
        ``item_ids`` are those of the split data.
    targets : Interactions, shape (n_users, n_items)
        The held-out items of each user, same ids; users with an empty row
        are skipped.
    users : ndarray of int64, shape (n_users,)
        Row index of each evaluated user in the matrix that was split.

    A sparse matrix given for ``inputs`` or ``targets`` is wrapped with ids
    ``0..n-1`` (``Interactions.wrap``).
    """

    inputs: Interactions
    targets: Interactions
    users: np.ndarray

    def __post_init__(self) -> None:
        if not isinstance(self.inputs, Interactions):
            self.inputs = Interactions.wrap(self.inputs, name="inputs")
        if not isinstance(self.targets, Interactions):
            self.targets = Interactions.wrap(self.targets, name="targets")

    @property
    def n_with_targets(self) -> int:
        """Users with at least one target: those :func:`evaluate` averages over."""
        return int(np.count_nonzero(np.diff(self.targets.matrix.indptr)))

    def __repr__(self) -> str:
        return (f"EvalSet(n_users={self.inputs.shape[0]}, n_items={self.inputs.shape[1]}, "
                f"n_with_targets={self.n_with_targets}, input_nnz={self.inputs.nnz}, target_nnz={self.targets.nnz})")


@dataclass
class Split:
    """A train matrix plus validation and test sets in the same item space.

    Attributes
    ----------
    train : Interactions, shape (n_train_users, n_items)
        What the model is fitted on, with the user and item ids of the split
        data (``model.fit(split.train)`` keeps the item ids; the CSR matrix
        is ``split.train.matrix``).
    val, test : EvalSet
        Validation (for tuning) and test sets.
    protocol : {'strong', 'weak'}
        How the split was made.
    """

    train: Interactions
    val: EvalSet
    test: EvalSet
    protocol: str

    def __post_init__(self) -> None:
        if not isinstance(self.train, Interactions):
            self.train = Interactions.wrap(self.train, name="train")

    def __repr__(self) -> str:
        return (f"Split(protocol={self.protocol!r}, train={self.train.shape[0]}x{self.train.shape[1]} "
                f"nnz={self.train.nnz}, val={self.val!r}, test={self.test!r})")


# -- helpers shared by both splits ------------------------------------------------------------

def _rng(random_state: RandomState) -> np.random.Generator:
    """numpy convention: None (fresh entropy), an int seed, or a Generator used as is."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or (isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool)):
        return np.random.default_rng(random_state)
    raise TypeError(f"random_state must be None, an int or a numpy Generator, got {random_state!r}")


def _row_of_entries(X: sp.csr_matrix) -> np.ndarray:
    """Row index of every stored entry of ``X`` (int64, in storage order)."""
    return np.repeat(np.arange(X.shape[0], dtype=np.int64), np.diff(X.indptr))


def _entries_rank(X: sp.csr_matrix, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random order of each row's entries: rank 0..L_u-1 of every entry in its row."""
    rows = _row_of_entries(X)
    order = np.lexsort((rng.random(X.nnz), rows))  # rows ascending, random within a row
    rank = np.empty(X.nnz, dtype=np.int64)
    rank[order] = np.arange(X.nnz, dtype=np.int64) - X.indptr[rows[order]]
    return rank


def _keep_entries(X: sp.csr_matrix, keep: np.ndarray) -> sp.csr_matrix:
    """The entries of ``X`` where ``keep`` is True, same shape (rows stay in place)."""
    counts = np.bincount(_row_of_entries(X)[keep], minlength=X.shape[0])
    indptr = np.zeros(X.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return sp.csr_matrix((X.data[keep], X.indices[keep], indptr), shape=X.shape)


# -- strong generalization -------------------------------------------------------------------

def _n_heldout_users(n_heldout: Union[int, float], n_users: int) -> int:
    if isinstance(n_heldout, numbers.Integral) and not isinstance(n_heldout, bool):
        count = int(n_heldout)
        if count < 1:
            raise ValueError(f"n_heldout must be >= 1 users (or a fraction in (0, 0.5)), got {n_heldout}")
    else:
        frac = check_scalar(n_heldout, name="n_heldout", low=0.0, high=0.5,
                            low_inclusive=False, high_inclusive=False)
        count = max(1, int(frac * n_users))
    if 2 * count >= n_users:
        raise ValueError(
            f"X has {n_users} users but n_heldout={n_heldout!r} holds out {count} for validation "
            f"and {count} for test ({2 * count} in all), leaving {n_users - 2 * count} to train on; "
            "pass a smaller n_heldout"
        )
    return count


def _foldin_eval_set(X: Interactions, users: np.ndarray, target_fraction: float, min_items: int,
                     rng: np.random.Generator) -> EvalSet:
    """Held-out users' rows cut into fold-in inputs and a random ``target_fraction`` of targets."""
    held = X.select_users(users)
    rows = held.matrix
    lengths = np.diff(rows.indptr)
    n_targets = np.where(lengths >= min_items,
                         np.maximum(1, (target_fraction * lengths).astype(np.int64)), 0)
    is_target = _entries_rank(rows, rng) < np.repeat(n_targets, lengths)
    return EvalSet(inputs=held.with_matrix(_keep_entries(rows, ~is_target)),
                   targets=held.with_matrix(_keep_entries(rows, is_target)), users=users.astype(np.int64))


def strong_split(X: Any, *, n_heldout: Union[int, float] = 0.1, target_fraction: float = 0.2,
                 min_items: int = 5, random_state: RandomState = None) -> Split:
    """Hold out whole users for validation and test (strong generalization).

    A random set of users forms the validation set, a disjoint random set of the
    same size the test set; the model is trained on the remaining users only.
    Each held-out user's items are split at random into fold-in inputs and targets.

    Parameters
    ----------
    X : sparse matrix (n_users, n_items) or Interactions
        Implicit feedback; every stored positive counts as 1. An object with a
        ``.matrix`` attribute (the ``Interactions`` container) is accepted.
    n_heldout : int or float, default=0.1
        Users per held-out set: a count (int >= 1) or a fraction of all users
        (float in (0, 0.5), rounded down, at least 1).
    target_fraction : float, default=0.2
        Fraction of a held-out user's items that become targets.
    min_items : int, default=5
        Held-out users with fewer items (:math:`L_u` < ``min_items``) keep all of
        them as inputs and get no targets, so they do not count in the means.
    random_state : None, int or numpy.random.Generator, default=None
        Seed; the same seed gives the same split.

    Returns
    -------
    Split
        ``train`` holds the training users' rows (``n_items`` columns, in the
        original user order); ``val`` / ``test`` rows are the held-out users in
        ascending order of their original index (``users``); ``protocol='strong'``.
        Every part is an ``Interactions`` with the user and item ids of ``X``
        (``0..n-1`` for a bare matrix).

    Raises
    ------
    ValueError
        Too few users for two held-out sets plus at least one training user.

    Notes
    -----
    A held-out user with :math:`L_u \\ge` ``min_items`` items gets

    .. math:: |T_u| = \\max(1, \\lfloor f \\, L_u \\rfloor)

    random target items (:math:`f` = ``target_fraction``) and :math:`L_u - |T_u|`
    fold-in items. This is the protocol of Liang et al. and Steck's EASE [1]_
    (ML-20M: 10k validation and 10k test users, 80/20 fold-in/targets).

    References
    ----------
    .. [1] H. Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> X = sp.random(100, 30, density=0.3, format="csr", random_state=0)
    >>> split = strong_split(X, n_heldout=10, random_state=0)
    >>> split.train.shape, split.test.inputs.shape
    ((80, 30), (10, 30))

    The parts keep the ids of an ``Interactions``, so a model fitted on
    ``split.train`` names items as the data does:

    >>> from lae_fast.data import Interactions
    >>> data = Interactions.from_matrix(X, item_ids=[f"i{j}" for j in range(30)])
    >>> strong_split(data, n_heldout=10, random_state=0).train.item_ids[:3]
    array(['i0', 'i1', 'i2'], dtype='<U3')
    """
    X = Interactions.wrap(X, name="X")
    n_users = X.shape[0]
    count = _n_heldout_users(n_heldout, n_users)
    target_fraction = check_scalar(target_fraction, name="target_fraction", low=0.0, high=1.0,
                                   low_inclusive=False, high_inclusive=False)
    min_items = check_int(min_items, name="min_items (so every evaluated user keeps a fold-in item)", low=2)
    rng = _rng(random_state)
    perm = rng.permutation(n_users)
    val_users = np.sort(perm[:count])
    test_users = np.sort(perm[count:2 * count])
    train_users = np.sort(perm[2 * count:])
    val = _foldin_eval_set(X, val_users, target_fraction, int(min_items), rng)
    test = _foldin_eval_set(X, test_users, target_fraction, int(min_items), rng)
    return Split(train=X.select_users(train_users), val=val, test=test, protocol="strong")


# -- weak generalization ---------------------------------------------------------------------

def _check_ratios(ratios: Sequence[float]) -> Tuple[float, float, float]:
    try:
        values = tuple(float(r) for r in ratios)
    except (TypeError, ValueError):
        raise TypeError(f"ratios must be three numbers (train, val, test), got {ratios!r}") from None
    if len(values) != 3 or not all(np.isfinite(values)):
        raise ValueError(f"ratios must be three finite numbers (train, val, test), got {ratios!r}")
    if values[0] <= 0 or min(values) < 0:
        raise ValueError(f"ratios need train > 0 and val, test >= 0, got {ratios!r}")
    if abs(sum(values) - 1.0) > 1e-6:
        raise ValueError(f"ratios must sum to 1, got {ratios!r} (sum {sum(values):.6g})")
    return values  # type: ignore[return-value]


def _round_half_up(x: np.ndarray) -> np.ndarray:
    return np.floor(x + 0.5).astype(np.int64)


def weak_split(X: Any, *, ratios: Sequence[float] = (0.8, 0.1, 0.1),
               random_state: RandomState = None) -> Split:
    """Split every user's items into train, validation and test (weak generalization).

    Parameters
    ----------
    X : sparse matrix (n_users, n_items) or Interactions
        Implicit feedback; every stored positive counts as 1.
    ratios : sequence of 3 floats, default=(0.8, 0.1, 0.1)
        Train / validation / test shares of each user's items; train > 0,
        val and test >= 0, summing to 1.
    random_state : None, int or numpy.random.Generator, default=None
        Seed; the same seed gives the same split.

    Returns
    -------
    Split
        ``train`` has all users' train parts (``n_users x n_items``); ``val`` and
        ``test`` both use the train rows as ``inputs`` (so only train items are
        masked) with the validation / test parts as ``targets``;
        ``users = arange(n_users)``; ``protocol='weak'``. Every part is an
        ``Interactions`` with the user and item ids of ``X``.

    Notes
    -----
    Per-user rounding rule, for a user with :math:`L_u` items and ratios
    :math:`(r_{tr}, r_{va}, r_{te})`:

    .. math::

        n_{te} = \\min(\\lfloor L_u r_{te} + 1/2 \\rfloor,\\; L_u - 1), \\quad
        n_{va} = \\min(\\lfloor L_u r_{va} + 1/2 \\rfloor,\\; L_u - 1 - n_{te}), \\quad
        n_{tr} = L_u - n_{va} - n_{te}

    i.e. validation and test counts are :math:`L_u r` rounded half up, and a user
    with items always keeps at least one train item (test is served first when
    both cannot fit). With 8:1:1, users with fewer than 5 items have no
    validation or test items; 5 to 14 items give one of each.
    The items of each part are drawn uniformly at random (L3AE [1]_, LightGCN).

    References
    ----------
    .. [1] L3AE, CIKM 2025.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> X = sp.random(100, 30, density=0.3, format="csr", random_state=0)
    >>> split = weak_split(X, random_state=0)
    >>> split.train.shape == split.test.targets.shape == (100, 30)
    True
    """
    data = Interactions.wrap(X, name="X")
    X = data.matrix
    _, r_val, r_test = _check_ratios(ratios)
    lengths = np.diff(X.indptr).astype(np.int64)
    room = np.maximum(lengths - 1, 0)
    n_test = np.minimum(_round_half_up(lengths * r_test), room)
    n_val = np.minimum(_round_half_up(lengths * r_val), room - n_test)
    rng = _rng(random_state)
    rank = _entries_rank(X, rng)
    in_test = rank < np.repeat(n_test, lengths)
    in_val = ~in_test & (rank < np.repeat(n_test + n_val, lengths))
    train = data.with_matrix(_keep_entries(X, ~(in_test | in_val)))
    users = np.arange(X.shape[0], dtype=np.int64)
    return Split(train=train,
                 val=EvalSet(inputs=train, targets=data.with_matrix(_keep_entries(X, in_val)), users=users),
                 test=EvalSet(inputs=train, targets=data.with_matrix(_keep_entries(X, in_test)), users=users.copy()),
                 protocol="weak")


# -- metrics -----------------------------------------------------------------------------------

def _hits(ranked: Any, targets: Any, k: int) -> Tuple[np.ndarray, np.ndarray]:
    """Hit matrix (u, k) of the top-k ids against the target rows, and |T_u|.

    Vectorised: each target entry and each ranked id becomes the int64 key
    ``row * n_items + item``; target keys are sorted (canonical CSR), so a
    ``searchsorted`` finds every hit at once. Padding (-1) is never a hit.
    """
    ranked = np.asarray(ranked)
    if ranked.ndim != 2 or not np.issubdtype(ranked.dtype, np.integer):
        raise ValueError(f"ranked must be a 2-D integer array (users x K), got shape {ranked.shape} "
                         f"and dtype {ranked.dtype}")
    targets = check_interactions(targets, name="targets")
    n_users, n_items = targets.shape
    if ranked.shape[0] != n_users:
        raise ValueError(f"ranked has {ranked.shape[0]} rows but targets has {n_users}; "
                         "pass one ranked list per target row")
    k = check_int(k, name="k", low=1)
    if k > ranked.shape[1]:
        raise ValueError(f"k={k} exceeds the {ranked.shape[1]} ranked items per user; "
                         f"rank at least {k} items (N >= k)")
    top = ranked[:, :k].astype(np.int64)
    if top.size and (top.max() >= n_items or top.min() < -1):
        raise ValueError(f"ranked holds ids outside [0, {n_items}) other than the padding -1")
    target_keys = _row_of_entries(targets) * n_items + targets.indices
    keys = np.arange(n_users, dtype=np.int64)[:, None] * n_items + top
    pos = np.minimum(np.searchsorted(target_keys, keys), max(target_keys.size - 1, 0))
    hits = (top >= 0) & (target_keys[pos] == keys) if target_keys.size else np.zeros(top.shape, dtype=bool)
    return hits, np.diff(targets.indptr).astype(np.int64)


def _per_user(numerator: np.ndarray, denominator: np.ndarray, n_targets: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN for users without targets."""
    out = np.full(n_targets.shape, np.nan, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=n_targets > 0)
    return out


def _discounts(k: int) -> np.ndarray:
    """Position discounts 1/log2(r+1) for ranks r = 1..k."""
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def _recall(hits: np.ndarray, n_targets: np.ndarray) -> np.ndarray:
    return _per_user(hits.sum(axis=1), n_targets, n_targets)


def _recall_capped(hits: np.ndarray, n_targets: np.ndarray) -> np.ndarray:
    return _per_user(hits.sum(axis=1), np.minimum(n_targets, hits.shape[1]), n_targets)


def _ndcg(hits: np.ndarray, n_targets: np.ndarray) -> np.ndarray:
    k = hits.shape[1]
    disc = _discounts(k)
    ideal = np.concatenate([[0.0], np.cumsum(disc)])[np.minimum(n_targets, k)]
    return _per_user(hits @ disc, ideal, n_targets)


def recall_at_k(ranked: Any, targets: Any, k: int) -> np.ndarray:
    """Recall@k per user: the share of a user's targets found in their top k.

    Parameters
    ----------
    ranked : array-like of int, shape (n_users, K)
        Item ids per user, best first; -1 is padding (never a hit). K >= k.
    targets : sparse matrix, shape (n_users, n_items)
        Held-out items per user (any stored positive counts as 1).
    k : int
        Cut-off.

    Returns
    -------
    ndarray of float64, shape (n_users,)
        NaN for users without targets.

    Notes
    -----
    .. math:: \\mathrm{recall@}k(u) = \\frac{|\\mathrm{top}_k(u) \\cap T_u|}{|T_u|}

    The convention of the LightGCN and L3AE papers (weak generalization).
    Compare :func:`recall_capped_at_k`.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> T = sp.csr_matrix(([1, 1], [1, 5], [0, 2]), shape=(1, 6))
    >>> recall_at_k([[3, 1, -1]], T, 2)
    array([0.5])
    """
    return _recall(*_hits(ranked, targets, k))


def recall_capped_at_k(ranked: Any, targets: Any, k: int) -> np.ndarray:
    """Capped recall@k per user: hits over the most a top-k list can hold.

    Parameters
    ----------
    ranked, targets, k
        As in :func:`recall_at_k`.

    Returns
    -------
    ndarray of float64, shape (n_users,)
        NaN for users without targets.

    Notes
    -----
    .. math:: \\mathrm{recall\\_capped@}k(u) = \\frac{|\\mathrm{top}_k(u) \\cap T_u|}{\\min(k, |T_u|)}

    The convention of Liang et al., Steck (EASE) and RDLAE (strong
    generalization); it equals :func:`recall_at_k` whenever :math:`|T_u| \\le k`.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> T = sp.csr_matrix(([1, 1, 1], [0, 1, 2], [0, 3]), shape=(1, 4))
    >>> recall_capped_at_k([[0, 3]], T, 2)
    array([0.5])
    """
    return _recall_capped(*_hits(ranked, targets, k))


def ndcg_at_k(ranked: Any, targets: Any, k: int) -> np.ndarray:
    """NDCG@k per user with binary gains.

    Parameters
    ----------
    ranked, targets, k
        As in :func:`recall_at_k`.

    Returns
    -------
    ndarray of float64, shape (n_users,)
        NaN for users without targets.

    Notes
    -----
    .. math::

        \\mathrm{DCG@}k(u) = \\sum_{r=1}^{k} \\frac{[\\,i_r \\in T_u\\,]}{\\log_2(r+1)}, \\qquad
        \\mathrm{IDCG@}k(u) = \\sum_{r=1}^{\\min(k, |T_u|)} \\frac{1}{\\log_2(r+1)}

    and :math:`\\mathrm{NDCG@}k = \\mathrm{DCG@}k / \\mathrm{IDCG@}k`, where
    :math:`i_r` is the item at (1-based) rank :math:`r`.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> T = sp.csr_matrix(([1], [2], [0, 1]), shape=(1, 4))
    >>> ndcg_at_k([[2, 0]], T, 2)
    array([1.])
    """
    return _ndcg(*_hits(ranked, targets, k))


_METRICS = (("recall", _recall), ("recall_capped", _recall_capped), ("ndcg", _ndcg))


# -- head and tail items --------------------------------------------------------------------------

def head_items(popularity: Any, *, share: float = 0.2) -> np.ndarray:
    """Boolean mask of the head items: the ``share`` most popular in training.

    Parameters
    ----------
    popularity : sparse matrix (n_users, n_items) or 1-D array (n_items,)
        The training interactions (each stored positive counts once), or a
        count per item.
    share : float in (0, 1), default=0.2
        Fraction of the catalogue that is head.

    Returns
    -------
    ndarray of bool, shape (n_items,)
        True for the :math:`\\lceil s \\, n \\rceil` items with the largest counts
        (:math:`s` = ``share``); ties are broken by the lower item index, so
        the head always holds exactly that many items. The rest is the tail.

    Examples
    --------
    >>> head_items([5, 0, 9, 1, 3], share=0.4)
    array([ True, False,  True, False, False])
    """
    share = check_scalar(share, name="share", low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    if sp.issparse(popularity) or getattr(popularity, "matrix", None) is not None:
        X = check_interactions(popularity, name="popularity")
        counts = np.bincount(X.indices, minlength=X.shape[1]).astype(np.float64)
    else:
        counts = np.asarray(popularity, dtype=np.float64)
        if counts.ndim != 1 or counts.size == 0:
            raise ValueError(f"popularity must be a training matrix or a 1-D array of item counts, "
                             f"got shape {counts.shape}")
        if not np.all(np.isfinite(counts)):
            raise ValueError("popularity holds NaN or infinite counts; pass finite item counts")
    n_head = int(np.ceil(share * counts.size - 1e-9))
    order = np.argsort(-counts, kind="stable")
    mask = np.zeros(counts.size, dtype=bool)
    mask[order[:n_head]] = True
    return mask


def _restrict_columns(targets: sp.csr_matrix, keep: np.ndarray) -> sp.csr_matrix:
    """``targets`` with every entry outside the ``keep`` columns dropped (same shape)."""
    return _keep_entries(targets, keep[targets.indices])


# -- evaluate ----------------------------------------------------------------------------------

def _check_ks(ks: Iterable[int]) -> Tuple[int, ...]:
    ks = tuple(ks)
    if not ks:
        raise ValueError("ks must be a non-empty list of integers >= 1, got ()")
    return tuple(sorted({check_int(k, name="every K in ks", low=1) for k in ks}))


def _eval_set(split_or_evalset: Union[Split, EvalSet], on: str) -> EvalSet:
    if isinstance(split_or_evalset, EvalSet):
        return split_or_evalset
    if isinstance(split_or_evalset, Split):
        if on not in ("val", "test"):
            raise ValueError(f"on must be 'val' or 'test', got {on!r}")
        return getattr(split_or_evalset, on)
    raise TypeError(f"evaluate() needs a Split or an EvalSet, got {type(split_or_evalset).__name__}")


def evaluate(model: Any, split_or_evalset: Union[Split, EvalSet], *, ks: Iterable[int] = (10, 20, 50, 100),
             on: str = "test", batch_size: int = 10000, num_threads: Optional[int] = None,
             head_tail: bool = False, head_share: float = 0.2, item_popularity: Any = None,
             per_user: bool = False) -> Dict[str, Any]:
    """Rank the full catalogue for every evaluated user and average the metrics.

    Parameters
    ----------
    model : fitted model
        Anything with ``recommend(user_items, N, *, filter_already_liked_items)``
        returning ``(ids, scores)`` with ids of shape (n_users, N), best first,
        -1 padding (every lae_fast model).
    split_or_evalset : Split or EvalSet
        Users to score; a Split is read at ``split.val`` or ``split.test``.
    ks : iterable of int, default=(10, 20, 50, 100)
        Cut-offs; the model ranks ``max(ks)`` items per user.
    on : {'test', 'val'}, default='test'
        Which set of a Split to score (ignored for an EvalSet).
    batch_size : int, default=10000
        Users ranked per ``recommend`` call (bounds memory).
    num_threads : int, optional
        Passed to ``recommend`` when given; otherwise the model's default.
    head_tail : bool, default=False
        Also report the long-tail metrics ``'recall_head@k'``,
        ``'recall_tail@k'``, ``'ndcg_head@k'`` and ``'ndcg_tail@k'`` (see Notes).
    head_share : float in (0, 1), default=0.2
        Share of the catalogue that is head (:func:`head_items`).
    item_popularity : sparse matrix or 1-D array, optional
        Training interactions or per-item counts that rank items by
        popularity. Default: the ``train`` matrix of a Split; required with
        ``head_tail=True`` when an EvalSet is passed.
    per_user : bool, default=False
        Return every metric per user instead of its mean: a float64 array over the
        users with at least one target, in the order of their rows in the evaluated
        set, which ``'users'`` holds (int64). Two models scored on the same set give
        paired arrays, e.g. for a bootstrap interval of their ratio. A long-tail
        metric is NaN for a user without a target in its group.

    Returns
    -------
    dict
        ``'recall@k'``, ``'recall_capped@k'`` and ``'ndcg@k'`` (float, or arrays with
        ``per_user``) for every k, and ``'n_users'`` (int): the number of users with
        at least one target, over whom the metrics are averaged. Users with no target
        are skipped. With ``head_tail``, also the four long-tail metrics for every k and
        ``'n_users_head'`` / ``'n_users_tail'``: the users each is averaged over.

    Raises
    ------
    ValueError
        No evaluated user has a target, or bad ``ks`` / ``on`` / ``batch_size``,
        or ``head_tail`` without a way to know item popularity.

    Notes
    -----
    Inputs are masked (``filter_already_liked_items=True``), so a user's fold-in
    or train items can never be hits. Per-user definitions are those of
    :func:`recall_at_k`, :func:`recall_capped_at_k` and :func:`ndcg_at_k`.

    **Long-tail metrics** (as in the RDLAE paper [1]_). The head :math:`H` is
    the :math:`\\lceil 0.2\\,n \\rceil` items with the most training
    interactions (:func:`head_items`), the tail :math:`T` is every other item.
    For a group :math:`S \\in \\{H, T\\}` the metric is computed against the
    user's targets in that group, on the *same* full ranking (the list is not
    re-ranked within the group):

    .. math::

        \\mathrm{recall}_S\\mathrm{@}k(u) = \\frac{|\\mathrm{top}_k(u) \\cap T_u \\cap S|}
                                               {|T_u \\cap S|}, \\qquad
        \\mathrm{ndcg}_S\\mathrm{@}k(u) = \\frac{\\sum_{r \\le k} [i_r \\in T_u \\cap S] / \\log_2(r+1)}
                                             {\\sum_{r=1}^{\\min(k, |T_u \\cap S|)} 1 / \\log_2(r+1)}

    averaged over the users with :math:`T_u \\cap S \\neq \\emptyset` only (a
    user whose targets are all tail items does not count in the head mean).
    Hits on items of the other group are ignored: a tail hit neither helps nor
    hurts head recall, but it does occupy a slot of the top k.

    References
    ----------
    .. [1] J. Moon, H. Kim, J. Lee, "It's Enough: Relaxing Diagonal Constraints
       in Linear Autoencoders for Recommendation", SIGIR 2023.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from lae_fast import EASE
    >>> X = sp.random(200, 40, density=0.2, format="csr", random_state=0)
    >>> split = strong_split(X, n_heldout=20, random_state=0)
    >>> m = evaluate(EASE(l2=10.0).fit(split.train), split, ks=(5, 10))
    >>> sorted(m)[:3]
    ['n_users', 'ndcg@10', 'ndcg@5']
    """
    ks = _check_ks(ks)
    evalset = _eval_set(split_or_evalset, on)
    batch_size = check_int(batch_size, name="batch_size", low=1)
    inputs = check_interactions(evalset.inputs, name="inputs")
    targets = check_interactions(evalset.targets, name="targets")
    if inputs.shape != targets.shape:
        raise ValueError(f"inputs {inputs.shape} and targets {targets.shape} must have the same shape")
    rows = np.flatnonzero(np.diff(targets.indptr) > 0)
    if rows.size == 0:
        raise ValueError(f"none of the {targets.shape[0]} evaluated users has a target item; "
                         "nothing to score (check the split's min_items or ratios)")
    groups = _head_tail_targets(split_or_evalset, targets, head_share, item_popularity) if head_tail else {}
    max_k = ks[-1]
    extra = {} if num_threads is None else {"num_threads": num_threads}
    sums = {f"{name}@{k}": 0.0 for k in ks for name, _ in _METRICS}
    for group in groups:
        sums.update({f"{name}_{group}@{k}": 0.0 for k in ks for name, _ in _GROUP_METRICS})
    parts: Dict[str, List[np.ndarray]] = {key: [] for key in sums}  # filled with per_user only
    for start in range(0, rows.size, int(batch_size)):
        batch = rows[start:start + int(batch_size)]
        ids, _ = model.recommend(inputs[batch], N=max_k, filter_already_liked_items=True, **extra)
        ids = np.asarray(ids)
        if ids.ndim != 2 or ids.shape[0] != batch.size:
            raise ValueError(f"model.recommend returned ids of shape {ids.shape} for {batch.size} users")
        if ids.shape[1] < max_k:  # fewer columns than asked: pad as misses
            ids = np.pad(ids, ((0, 0), (0, max_k - ids.shape[1])), constant_values=-1)
        hits, n_targets = _hits(ids, targets[batch], max_k)
        values = {f"{name}@{k}": metric(hits[:, :k], n_targets) for k in ks for name, metric in _METRICS}
        for group, (group_targets, _) in groups.items():
            g_hits, g_targets = _hits(ids, group_targets[batch], max_k)
            values.update({f"{name}_{group}@{k}": metric(g_hits[:, :k], g_targets)
                           for k in ks for name, metric in _GROUP_METRICS})
        for key, v in values.items():
            sums[key] += float(np.nansum(v))
            if per_user:
                parts[key].append(v)

    def mean(key: str) -> float:
        group = key.split("@")[0].rpartition("_")[2]
        n_over = groups[group][1] if group in groups else rows.size
        return sums[key] / n_over if n_over else float("nan")

    if per_user:
        result: Dict[str, Any] = {key: np.concatenate(v).astype(np.float64, copy=False) for key, v in parts.items()}
        result["users"] = rows.astype(np.int64)
    else:
        result = {key: mean(key) for key in sums}
    result["n_users"] = int(rows.size)
    for group, (_, n_group) in groups.items():
        result[f"n_users_{group}"] = int(n_group)
    return result


_GROUP_METRICS = (("recall", _recall), ("ndcg", _ndcg))


def _head_tail_targets(split_or_evalset: Union[Split, EvalSet], targets: sp.csr_matrix, share: float,
                       popularity: Any) -> Dict[str, Tuple[sp.csr_matrix, int]]:
    """Targets restricted to head and to tail items, with the number of users having any."""
    if popularity is None:
        if not isinstance(split_or_evalset, Split):
            raise ValueError("head_tail=True needs item popularity: pass a Split (its train matrix is used) "
                             "or item_popularity= (the training matrix or per-item counts)")
        popularity = split_or_evalset.train
    head = head_items(popularity, share=share)
    if head.size != targets.shape[1]:
        raise ValueError(f"item_popularity covers {head.size} items but the targets have "
                         f"{targets.shape[1]}; pass one count per item")
    out = {}
    for group, keep in (("head", head), ("tail", ~head)):
        restricted = _restrict_columns(targets, keep)
        out[group] = (restricted, int(np.count_nonzero(np.diff(restricted.indptr))))
    return out


# -- reporting ---------------------------------------------------------------------------------

_KEY = re.compile(r"^(recall|recall_capped|ndcg|recall_head|recall_tail|ndcg_head|ndcg_tail)@(\d+)$")
_GROUP_COLUMNS = ("recall_head", "recall_tail", "ndcg_head", "ndcg_tail")


def format_metrics(metrics: Dict[str, Any]) -> str:
    """An aligned text table of ``evaluate`` results: one row per k.

    Parameters
    ----------
    metrics : dict
        As returned by :func:`evaluate` (extra keys are ignored).

    Returns
    -------
    str
        Columns ``recall@k``, ``recall_capped@k``, ``ndcg@k`` (a missing value
        prints ``-``), then the long-tail columns ``recall_head@k`` ...
        ``ndcg_tail@k`` when ``metrics`` has any, followed by the definition
        of each recall variant.

    Examples
    --------
    >>> print(format_metrics({"recall@10": 0.25, "recall_capped@10": 0.5,
    ...                       "ndcg@10": 0.375, "n_users": 4}))
        k  recall@k  recall_capped@k  ndcg@k
       10    0.2500           0.5000  0.3750
    recall = hits / |T_u|; recall_capped = hits / min(k, |T_u|); mean over 4 users with >= 1 target
    """
    values: Dict[int, Dict[str, float]] = {}
    for key, value in metrics.items():
        match = _KEY.match(str(key))
        if match:
            values.setdefault(int(match.group(2)), {})[match.group(1)] = float(value)
    names = [name for name, _ in _METRICS]
    if any(name in row for row in values.values() for name in _GROUP_COLUMNS):
        names += list(_GROUP_COLUMNS)
    header = ["k"] + [f"{name}@k" for name in names]
    body = [[str(k)] + [f"{values[k][n]:.4f}" if n in values[k] else "-" for n in names]
            for k in sorted(values)]
    widths = [max(len(row[i]) for row in [header] + body) for i in range(len(header))]
    widths[0] = max(widths[0], 5)
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in [header] + body]
    footer = (f"recall = {METRIC_DEFINITIONS['recall']}; "
              f"recall_capped = {METRIC_DEFINITIONS['recall_capped']}")
    if "n_users" in metrics:
        footer += f"; mean over {metrics['n_users']} users with >= 1 target"
    if len(names) > len(_METRICS):
        footer += (f"\nhead/tail: {METRIC_DEFINITIONS['head/tail']}"
                   + (f" ({metrics['n_users_head']} / {metrics['n_users_tail']} users)"
                      if "n_users_head" in metrics and "n_users_tail" in metrics else ""))
    return "\n".join(lines + [footer])
