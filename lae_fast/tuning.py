"""Grid search for the EASE family, chosen on validation only, reusing work between grid points.

Every model of the family is one closed form (``docs/MODELS.md`` §1):

.. math::

    \\gamma_j = \\lambda + \\frac{p}{1-p} G_{jj}, \\qquad
    P = (G + \\mathrm{diag}\\,\\gamma)^{-1}, \\qquad
    B = I - P\\,\\mathrm{diag}\\Big(\\max\\big(\\gamma_j, \\tfrac{1-\\xi}{P_{jj}}\\big)\\Big)

so a grid over (λ, p, ξ) needs the Gram matrix G once, one inverse per (λ, p)
pair, and for each ξ only a rescaling of the columns of P. :func:`tune` does
exactly that, and :func:`iter_solutions` exposes the same loop for other uses.

Memory: three dense n×n buffers (a copy of G, the inverse P, and the working
buffer the ξ-scaling writes into) instead of the single buffer of a plain fit;
two when the ξ grid has a single value (P is then scaled in place). For
MovieLens-1M (3.5k items, float32) that is 3 × 50 MB; for ML-20M (20.7k items)
3 × 1.7 GB.
"""
from __future__ import annotations

import csv
import io
import json
import math
import numbers
import os
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from ._threads import resolve_num_threads
from ._validation import check_dtype, check_interactions, check_scalar
from .evaluation import EvalSet, Split, evaluate, strong_split, weak_split
from ._memory import check_fits_in_memory
from .gram import gram_buffer
from .io import atomic_write
from .models._closed_form import check_family_params, invert_regularised, lae_family_inplace, ridge_diagonal
from . import neighbors as nbr
from .models.base import NEIGHBORS_OPTION, StepTimer
from .models.ease import RDLAE, LinearAutoencoder
from .models.registry import get_model_class, model_names
from .ranking import topk

__all__ = ["tune", "iter_solutions", "iter_neighbor_solutions", "TuneResult", "Solution", "family_member", "GRID_KEYS", "TUNABLE_MODELS"]

#: the hyper-parameters a grid may name: the family's own
GRID_KEYS = LinearAutoencoder.hyperparameters
#: models :func:`tune` accepts: the family's presets and ``"family"`` (all three free)
TUNABLE_MODELS = model_names(base=LinearAutoencoder)
_METRIC = re.compile(r"^(recall|recall_capped|ndcg|recall_head|recall_tail|ndcg_head|ndcg_tail)@(\d+)$")


def _canonical(dropout: float, xi: float) -> Dict[str, float]:
    """The family values a point pins: p = 0, ξ = 0 or ξ >= 1 (free diagonal) are named; others are free."""
    out: Dict[str, float] = {}
    if dropout == 0:
        out["dropout"] = 0.0
    if xi == 0:
        out["xi"] = 0.0
    elif xi >= 1:
        out["xi"] = 1.0
    return out


def family_member(dropout: float, xi: float) -> str:
    """The preset a (p, ξ) point is: the class whose ``fixed`` values the point pins, e.g. ``'ease'``.

    Examples
    --------
    >>> family_member(0.0, 0.0), family_member(0.3, 1.0), family_member(0.2, 0.6)
    ('ease', 'dlae', 'rdlae')
    """
    pinned = _canonical(dropout, xi)
    for name in TUNABLE_MODELS:
        cls = get_model_class(name)
        if cls is not LinearAutoencoder and dict(cls.fixed) == pinned:
            return name
    raise AssertionError(f"no preset of the family pins {pinned}")  # every combination has one


def _model_defaults(model: str) -> Dict[str, float]:
    """The grid values a model starts from: its defaults, with its pinned values."""
    preset = get_model_class(model)()  # presets store the family values they pin too
    return {k: float(getattr(preset, k)) for k in GRID_KEYS}


def _check_grid(model: str, grid: Optional[Mapping[str, Any]]) -> Dict[str, List[float]]:
    """One sorted-as-given, de-duplicated list of floats per hyper-parameter."""
    if model not in TUNABLE_MODELS:
        raise ValueError(f"model must be one of {', '.join(TUNABLE_MODELS)}, got {model!r}")
    grid = dict(grid or {})
    unknown = sorted(set(grid) - set(GRID_KEYS))
    if unknown:
        raise ValueError(f"grid has unknown hyper-parameter(s) {', '.join(map(repr, unknown))}; "
                         f"a grid may name {', '.join(GRID_KEYS)}")
    out: Dict[str, List[float]] = {}
    for key, default in _model_defaults(model).items():
        fixed = get_model_class(model).fixed
        if key in grid and key in fixed:
            takers = ", ".join(m for m in TUNABLE_MODELS if key not in get_model_class(m).fixed)
            raise ValueError(f"model {model!r} has no free {key} (it is fixed at {fixed[key]:g}); "
                             f"models with it: {takers}")
        values = grid.get(key, [default])
        if isinstance(values, (numbers.Real, str)):
            values = [values]
        values = list(values)
        if not values:
            raise ValueError(f"grid[{key!r}] is empty; give at least one value")
        bounds = {"l2": dict(low=0.0), "dropout": dict(low=0.0, high=1.0, high_inclusive=False),
                  "xi": dict(low=0.0)}[key]
        checked: List[float] = []
        for v in values:
            v = check_scalar(v, name=f"grid[{key!r}] value", **bounds)
            if v not in checked:
                checked.append(v)
        out[key] = checked
    return out


# -- the reuse loop --------------------------------------------------------------------------------

class Solution(NamedTuple):
    """One grid point of :func:`iter_solutions`.

    ``B`` is a view of a buffer that the next point overwrites: copy it to
    keep it. ``B`` is None and ``error`` says why when G + diag(γ) was not
    positive definite for this (λ, p).
    """

    l2: float
    dropout: float
    xi: float
    B: Optional[np.ndarray]
    inverse_reused: bool
    error: Optional[str] = None


def check_tuning_memory(n_items: int, dtype: Any, *, n_xi: int) -> int:
    """Refuse a search whose dense n×n buffers cannot fit; returns how many it holds (3, or 2 with one ξ).

    Raises
    ------
    MemoryError
        With the estimate and what is available (before anything is read or allocated).
    """
    n, dt = int(n_items), check_dtype(dtype)
    n_buffers = 3 if n_xi > 1 else 2
    check_fits_in_memory(n_buffers * n * n * dt.itemsize,
                         what=f"tuning ({n} items, {n_buffers} {n}x{n} {dt.name} matrices: the Gram, "
                              "its inverse and a working copy)")
    return n_buffers


def iter_solutions(X: Any, l2: Sequence[float], dropout: Sequence[float], xi: Sequence[float], *,
                   dtype: Any = np.float32, num_threads: Optional[int] = None,
                   timings: Optional[Dict[str, float]] = None) -> Iterator[Solution]:
    """Yield B for every (λ, p, ξ) of a grid: one Gram, one inverse per (λ, p).

    Parameters
    ----------
    X : sparse matrix (n_users, n_items) or Interactions
        Training interactions.
    l2, dropout, xi : sequence of float
        Grid values, visited in the order λ (outer), p, ξ (inner).
    dtype : {np.float32, np.float64}, default=np.float32
    num_threads : int, optional
    timings : dict, optional
        Filled with ``gram``, ``inverse``, ``scaling`` seconds and
        ``n_inverses`` as the loop runs.

    Yields
    ------
    Solution
        ``B`` is **bit-for-bit** the ``B_`` of
        ``LinearAutoencoder(l2, dropout=p, xi=xi, dtype=dtype).fit(X)`` with
        the same thread count, but lives in a buffer the next point reuses.

    Notes
    -----
    The Gram's upper triangle is kept in one buffer; for each (λ, p) it is
    copied into a second one and inverted in place (exactly what ``fit`` does
    with its single buffer); for each ξ the inverse is copied into a third
    buffer and its columns rescaled. Memory: 3 n² × itemsize (2 n² with a
    single ξ).
    """
    Xc = check_interactions(X)
    dt = check_dtype(dtype)
    nt = resolve_num_threads(num_threads)
    n = Xc.shape[1]
    n_buffers = check_tuning_memory(n, dt, n_xi=len(xi))
    t = timings if timings is not None else {}
    t.update(gram=0.0, inverse=0.0, scaling=0.0, n_inverses=0)
    t0 = time.perf_counter()
    G = gram_buffer(Xc, dt, nt, what="tuning")  # upper triangle only, as fit() leaves it
    counts = G.diagonal().astype(np.float64)
    t["gram"] = time.perf_counter() - t0
    P = np.empty_like(G)
    W = np.empty_like(G) if n_buffers == 3 else P
    for lam in l2:
        for p in dropout:
            gamma = ridge_diagonal(float(lam), float(p), counts)  # exactly as fit() does
            t0 = time.perf_counter()
            np.copyto(P, G)
            try:
                invert_regularised(P, gamma, num_threads=nt, hint=f"raise l2 (now {lam:g}) or use dtype=float64")
            except np.linalg.LinAlgError as exc:
                t["inverse"] += time.perf_counter() - t0
                for x in xi:
                    yield Solution(float(lam), float(p), float(x), None, False, str(exc))
                continue
            t["inverse"] += time.perf_counter() - t0
            t["n_inverses"] += 1
            for j, x in enumerate(xi):
                t0 = time.perf_counter()
                if W is not P:
                    np.copyto(W, P)
                lae_family_inplace(W, gamma, float(x))
                t["scaling"] += time.perf_counter() - t0
                yield Solution(float(lam), float(p), float(x), W, j > 0)


def iter_neighbor_solutions(X: Any, l2: Sequence[float], dropout: Sequence[float], xi: Sequence[float], *,
                            neighbors: int, dtype: Any = np.float32, num_threads: Optional[int] = None,
                            timings: Optional[Dict[str, float]] = None) -> Iterator[Solution]:
    """Yield the neighbourhood-route B (sparse CSR) for every (λ, p, ξ) of a grid, as :func:`iter_solutions` does.

    What the column solves read G_SS from (the dense G while it fits, else the co-occurrence
    lists) and the candidate neighbours of every item are built once for the whole grid
    (docs/MODELS.md §4); each point then solves its columns on its own refined supports.
    ``B`` is bit-for-bit the ``B_`` of ``LinearAutoencoder(l2, dropout=p, xi=ξ, neighbors=m).fit(X)``.
    """
    Xc = check_interactions(X)
    model = LinearAutoencoder(dtype=dtype, num_threads=num_threads, neighbors=neighbors)
    params = model.validated_params()
    timer = StepTimer()
    source, m, k = model._neighbor_source(Xc, None, params[NEIGHBORS_OPTION], params, timer)
    t = timings if timings is not None else {}
    t.update(gram=timer.seconds.get("gram", 0.0), candidates=timer.seconds.get("candidates", 0.0), solve=0.0,
             n_inverses=0)
    for lam in l2:
        for p in dropout:
            for x in xi:
                params.update(check_family_params(lam, p, x))
                t0 = time.perf_counter()
                try:
                    solution = model._solve_columns(source, m, k, params, timer, None)
                except np.linalg.LinAlgError as exc:
                    yield Solution(float(lam), float(p), float(x), None, False, str(exc))
                    continue
                finally:
                    t["solve"] += time.perf_counter() - t0
                yield Solution(float(lam), float(p), float(x), nbr.ranking_csr(solution.B), False)


# -- results ---------------------------------------------------------------------------------------

@dataclass
class TuneResult:
    """What :func:`tune` found.

    Attributes
    ----------
    rows : list of dict
        One per grid point, in visiting order: ``model``, ``l2``, ``dropout``,
        ``xi``, every metric on the selection set (``on``), ``eval_seconds``
        (ranking + scoring) and ``inverse_reused`` (False where this point
        paid for an inverse); ``error`` is set (metric NaN) where the
        inverse failed.
    best : dict
        The winning row: the largest ``metric`` on ``on``, first in grid order
        on ties.
    best_params : dict
        Its hyper-parameters, as the model class takes them.
    best_model : LinearAutoencoder or None
        The winner refitted on ``split.train`` (a preset class such as
        :class:`lae_fast.RDLAE`); None with ``refit=False``.
    test : dict or None
        ``evaluate(best_model, split, on='test', ...)``; None with
        ``refit=False`` or ``on='test'``.
    on_edge : list of str
        Hyper-parameters whose winning value is the smallest or largest of a
        grid with several values: widen the grid in that direction.
    """

    model: str
    metric: str
    on: str
    protocol: str
    grid: Dict[str, List[float]]
    rows: List[Dict[str, Any]]
    best: Dict[str, Any]
    best_params: Dict[str, float]
    best_model: Any = None
    test: Optional[Dict[str, Any]] = None
    timings: Dict[str, float] = field(default_factory=dict)
    on_edge: List[str] = field(default_factory=list)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v:g}" for k, v in self.best_params.items())
        return (f"TuneResult(model={self.model!r}, {len(self.rows)} points, best={self.best['model']}({params}), "
                f"{self.metric}[{self.on}]={self.best[self.metric]:.4f})")

    def best_for(self, model: str) -> Dict[str, Any]:
        """The best row among the points that are ``model`` (see :func:`family_member`).

        With a ``family`` search this gives every member's own tuned
        configuration from one grid; the ranking is on the same metric and set.
        """
        rows = [r for r in self.rows if r["model"] == model and not math.isnan(r[self.metric])]
        if not rows:
            found = sorted({r["model"] for r in self.rows})
            raise ValueError(f"no grid point is a {model!r} model (grid points are: {', '.join(found)}); "
                             "add the values it needs to the grid")
        return _argmax(rows, self.metric)

    def to_dict(self) -> Dict[str, Any]:
        """Everything as plain JSON-able Python (NaN as None; the fitted model left out)."""
        return _jsonable({"model": self.model, "metric": self.metric, "selected_on": self.on, "protocol": self.protocol,
                "grid": self.grid, "best": self.best, "best_params": self.best_params, "test": self.test,
                "on_edge": self.on_edge, "timings": self.timings, "rows": self.rows})

    def write(self, path: Union[str, "os.PathLike[str]"]) -> None:
        """Write the table: ``.csv`` (one row per grid point, ``selected`` marks the winner) or ``.json``.

        Raises
        ------
        ValueError
            Any other extension.
        """
        name = os.fspath(path)
        ext = os.path.splitext(name)[1].lower()
        if ext == ".json":
            text = json.dumps(self.to_dict(), indent=2)
        elif ext == ".csv":
            text = self.to_csv()
        else:
            raise ValueError(f"{name}: results are written as .csv or .json, not {ext or '(no extension)'}; "
                             "rename the output")
        with atomic_write(name) as fh:
            fh.write(text.encode("utf-8"))

    def to_csv(self) -> str:
        """The rows as CSV text with a ``selected`` column (1 for the winner)."""
        columns: List[str] = ["selected"]
        for row in self.rows:
            columns += [k for k in row if k not in columns]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({**{k: _csv_value(v) for k, v in row.items()}, "selected": int(row is self.best)})
        return buf.getvalue()

    def summary(self, *, max_rows: int = 30) -> str:
        """A text table of the grid (best first) and the winner's test metrics."""
        show = sorted(self.rows, key=lambda r: -_sortable(r[self.metric]))[:max_rows]
        extra = [k for k in ("recall@20", "recall_tail@20") if k != self.metric and any(k in r for r in show)]
        header = ["model", "l2", "dropout", "xi", f"{self.metric} ({self.on})"] + [f"{k} ({self.on})" for k in extra]
        body = [[r["model"], f"{r['l2']:g}", f"{r['dropout']:g}", f"{r['xi']:g}", f"{r[self.metric]:.4f}"]
                + [f"{r.get(k, float('nan')):.4f}" for k in extra] for r in show]
        widths = [max(len(row[i]) for row in [header] + body) for i in range(len(header))]
        lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in [header] + body]
        if len(self.rows) > len(show):
            lines.append(f"... {len(self.rows) - len(show)} more grid points")
        params = ", ".join(f"{k}={v:g}" for k, v in self.best_params.items())
        lines.append(f"winner (on {self.on}): {self.best['model']}({params}), {self.metric} = "
                     f"{self.best[self.metric]:.4f}")
        if self.on_edge:
            lines.append(f"note: the winner sits on the edge of the grid for {', '.join(self.on_edge)}; "
                         "widen the grid in that direction")
        t = self.timings
        if t:
            lines.append(f"{len(self.rows)} grid points, {t.get('n_inverses', 0)} inverses "
                         f"({t.get('inverse', 0):.1f} s), Gram {t.get('gram', 0):.2f} s, scaling "
                         f"{t.get('scaling', 0):.1f} s, ranking+scoring {t.get('evaluate', 0):.1f} s")
        return "\n".join(lines)


def _sortable(v: float) -> float:
    return -math.inf if v is None or math.isnan(v) else v


def _argmax(rows: Sequence[Dict[str, Any]], metric: str) -> Dict[str, Any]:
    best = None
    for row in rows:
        value = row[metric]
        if not math.isnan(value) and (best is None or value > best[metric]):
            best = row
    if best is None:
        raise ValueError(f"every grid point failed or scored NaN on {metric}; see the rows' 'error' entries")
    return best


def _csv_value(v: Any) -> Any:
    if isinstance(v, float):
        return repr(v)
    return v


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


# -- progress --------------------------------------------------------------------------------------

class _Progress:
    """A one-line bar on a terminal, one line per step otherwise (logs stay readable)."""

    def __init__(self, total: int, stream: Any = None) -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.t0 = time.perf_counter()

    def __call__(self, done: int, text: str) -> None:
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / done * (self.total - done) if done else 0.0
        if self.tty:
            width = 24
            filled = int(width * done / max(self.total, 1))
            self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} {text} "
                              f"({elapsed:.0f} s, ~{eta:.0f} s left)\x1b[K")
            if done == self.total:
                self.stream.write("\n")
        else:
            self.stream.write(f"[{done}/{self.total}] {text} ({elapsed:.1f} s)\n")
        self.stream.flush()


# -- tune --------------------------------------------------------------------------------------------

class _MatrixScorer:
    """What :func:`~lae_fast.evaluation.evaluate` needs of a model, over a B the grid loop swaps in place."""

    B: Optional[np.ndarray] = None

    def recommend(self, user_items: Any, N: int, **kwargs: Any) -> Tuple[np.ndarray, np.ndarray]:
        return topk(user_items, self.B, N, binarize=True, **kwargs)


def _as_split(data: Any, protocol: str, n_heldout: Union[int, float], random_state: Any) -> Split:
    """The Split to tune on (its parts carry the item ids of ``data``)."""
    if isinstance(data, Split):
        return data
    if getattr(data, "split", None) is not None and hasattr(data, "interactions"):  # a Dataset with a fixed split
        return data.split
    if hasattr(data, "interactions"):  # a Dataset
        data = data.interactions
    if protocol == "strong":
        return strong_split(data, n_heldout=n_heldout, random_state=random_state)
    if protocol == "weak":
        return weak_split(data, random_state=random_state)
    raise ValueError(f"protocol must be 'strong' or 'weak', got {protocol!r}")


def _preset(model: str, row: Mapping[str, Any], dtype: Any, num_threads: Optional[int],
            neighbors: Optional[int]) -> LinearAutoencoder:
    """The named model class of a grid point, with the hyper-parameters it takes (and the same route)."""
    name = row["model"] if model == LinearAutoencoder.name else model
    cls = get_model_class(name)
    return cls(**{k: row[k] for k in cls.hyperparameters}, dtype=dtype, num_threads=num_threads, neighbors=neighbors)


def tune(data: Any, model: str = RDLAE.name, grid: Optional[Mapping[str, Any]] = None, *,
         protocol: str = "strong", ks: Sequence[int] = (20, 100), metric: str = "ndcg@20", on: str = "val",
         head_tail: bool = True, n_heldout: Union[int, float] = 0.1, random_state: Any = 0,
         dtype: Any = np.float32, num_threads: Optional[int] = None, refit: bool = True,
         progress: Union[bool, Callable[[int, str], None]] = False, batch_size: int = 10000,
         neighbors: Optional[int] = None) -> TuneResult:
    """Grid-search an EASE-family model on validation data and test the winner.

    Parameters
    ----------
    data : Split, Dataset, Interactions or sparse matrix
        A Split is used as is; a :class:`lae_fast.datasets.Dataset` with a
        fixed split (LightGCN files) uses it; anything else is split with
        ``protocol`` (seeded by ``random_state``).
    model : {'rdlae', 'rlae', 'edlae', 'dlae', 'ease', 'lae', 'family'}, default='rdlae'
        Which model; its fixed hyper-parameters cannot be in ``grid`` (EASE
        has no ``xi``). ``'family'`` leaves all three free and labels every
        point with the model it is (:func:`family_member`), so one search
        tunes the six models at once (:meth:`TuneResult.best_for`).
    grid : dict, optional
        ``{"l2": [...], "dropout": [...], "xi": [...]}``; a missing key uses
        the model's default value.
    protocol : {'strong', 'weak'}, default='strong'
        How to split ``data`` when it is not split already.
    ks : sequence of int, default=(20, 100)
        Cut-offs reported for every point (the metric's k is added).
    metric : str, default='ndcg@20'
        What decides: ``recall@k``, ``recall_capped@k``, ``ndcg@k`` or a
        long-tail variant (``recall_tail@k``, ...).
    on : {'val', 'test'}, default='val'
        The set that decides. Keep ``'val'``: ``'test'`` exists only to show
        what selecting on the test set would (wrongly) pick.
    head_tail : bool, default=True
        Also compute the head/tail metrics (see :func:`lae_fast.evaluation.evaluate`).
    n_heldout : int or float, default=0.1
        Strong generalization: users per held-out set.
    random_state : None, int or Generator, default=0
        Seed of the split.
    dtype : {np.float32, np.float64}, default=np.float32
    num_threads : int, optional
    refit : bool, default=True
        Refit the winner on ``split.train`` as its named model class and
        evaluate it on the test set.
    progress : bool or callable, default=False
        True draws a progress bar on stderr; a callable gets
        ``(points_done, text)`` after every point.
    batch_size : int, default=10000
        Users ranked per batch.
    neighbors : int, optional
        Tune the neighbourhood route with ``neighbors`` per column (docs/MODELS.md §4) instead of
        the dense one: the candidate lists are built once for the grid (see
        :func:`iter_neighbor_solutions`) and no n×n is held where it does not fit. The winner is
        refitted on the same route.

    Returns
    -------
    TuneResult

    Raises
    ------
    ValueError
        Unknown model, metric or grid key; a value out of range; a selection
        set without targets (e.g. LightGCN files loaded without
        ``val_fraction``); every grid point failing.

    Notes
    -----
    Work is shared as :func:`iter_solutions` describes: one Gram, one
    Cholesky inverse per (λ, p), and for each ξ a column rescaling of a copy
    of P, so a ξ grid costs no extra inverse. Each point's B is bit-for-bit
    the one a fresh ``fit`` gives. Memory: three n×n buffers (two with one ξ).

    Only the ``on`` set decides; the test set is touched once, by the
    refitted winner. Because the refit repeats the same computation, its
    validation score equals the winning row's.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> X = sp.random(300, 30, density=0.2, format="csr", random_state=0)
    >>> res = tune(X, "rdlae", {"l2": [5, 50], "dropout": [0.1], "xi": [0, 0.5]}, n_heldout=30)
    >>> len(res.rows), res.best_model is not None, sorted(res.best_params)
    (4, True, ['dropout', 'l2', 'xi'])
    """
    values = _check_grid(model, grid)
    match = _METRIC.match(str(metric))
    if not match:
        raise ValueError(f"metric must look like 'ndcg@20', 'recall@20', 'recall_capped@20' or a long-tail "
                         f"variant ('recall_tail@20', 'ndcg_head@20', ...), got {metric!r}")
    head_tail = head_tail or "_head" in metric or "_tail" in metric
    ks = tuple(sorted({int(k) for k in ks} | {int(match.group(2))}))
    if on not in ("val", "test"):
        raise ValueError(f"on must be 'val' or 'test', got {on!r}")
    split = _as_split(data, protocol, n_heldout, random_state)
    chosen: EvalSet = getattr(split, on)
    if check_interactions(chosen.targets, name="targets").nnz == 0:
        raise ValueError(f"the split's {on} set has no target items, so nothing can be chosen on it; LightGCN "
                         "train.txt/test.txt carry no validation set: load them with val_fraction=0.1")
    dt = check_dtype(dtype)
    nt = resolve_num_threads(num_threads)
    train = check_interactions(split.train, name="split.train")
    popularity = np.bincount(train.indices, minlength=train.shape[1])
    total = math.prod(len(v) for v in values.values())
    report = _Progress(total) if progress is True else (progress or None)
    timings: Dict[str, float] = {}
    rows: List[Dict[str, Any]] = []
    t_eval = 0.0
    scorer = _MatrixScorer()
    if neighbors is None:
        solutions = iter_solutions(train, values["l2"], values["dropout"], values["xi"], dtype=dt, num_threads=nt,
                                   timings=timings)
    else:
        solutions = iter_neighbor_solutions(train, values["l2"], values["dropout"], values["xi"], neighbors=neighbors,
                                            dtype=dt, num_threads=nt, timings=timings)
    try:
        for sol in solutions:
            t0 = time.perf_counter()
            name = family_member(sol.dropout, sol.xi) if model == LinearAutoencoder.name else model
            row: Dict[str, Any] = {"model": name, "l2": sol.l2, "dropout": sol.dropout, "xi": sol.xi}
            if sol.B is None:
                row.update({metric: float("nan"), "error": sol.error})
            else:
                scorer.B = sol.B
                row.update(evaluate(scorer, split, ks=ks, on=on, head_tail=head_tail, item_popularity=popularity,
                                    num_threads=nt, batch_size=batch_size))
            row["eval_seconds"] = time.perf_counter() - t0
            row["inverse_reused"] = sol.inverse_reused
            t_eval += row["eval_seconds"]
            rows.append(row)
            if report:
                report(len(rows), f"{name} l2={sol.l2:g} p={sol.dropout:g} xi={sol.xi:g}: "
                                  f"{metric}={row[metric]:.4f}")
    finally:
        solutions.close()  # frees the three n×n buffers before the refit
        scorer.B = None
    timings["evaluate"] = t_eval  # ranking + scoring of every point
    best = _argmax(rows, metric)
    free = [k for k in GRID_KEYS if k not in get_model_class(model).fixed]
    on_edge = [k for k in free if len(values[k]) > 1 and best[k] in (min(values[k]), max(values[k]))]
    result = TuneResult(model=model, metric=metric, on=on, protocol=split.protocol, grid=values, rows=rows,
                        best=best, best_params={}, timings=timings, on_edge=on_edge)
    final = _preset(model, best, dt, nt, neighbors)
    result.best_params = {k: float(v) for k, v in final.get_params().items() if k in GRID_KEYS}
    if refit:
        final.fit(split.train)  # keeps the item ids of the data
        result.best_model = final
        if on != "test":
            result.test = evaluate(final, split, ks=ks, on="test", head_tail=head_tail, item_popularity=popularity,
                                   num_threads=nt, batch_size=batch_size)
    return result
