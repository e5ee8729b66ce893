"""The estimator contract every lae-fast model follows, and the base class that implements it.

What a model class provides
---------------------------
1. **Catalogue entries** (class attributes, read by :mod:`lae_fast.models.registry`):

   ``name``             the ``--model`` value on the command line and the name in model files;
   ``summary``          one line for ``--help`` and the docs;
   ``hyperparameters``  the hyper-parameters ``__init__`` takes, in order (each with a line in
                        ``param_help``); the CLI makes one ``--flag`` per name (``_`` -> ``-``);
   ``fixed``            for presets of a family: the family values this class pins
                        (EASE pins ``dropout=0, xi=0``); the tuner searches the others;
   ``takes_embeddings`` whether ``fit`` needs ``item_embeddings`` (one row per item).

   Decorate the class with :func:`~lae_fast.models.registry.register`, which checks the
   declaration against ``__init__``. Files in ``lae_fast/models/`` are imported by the
   package, so a new model file needs no other edit to reach the CLI, tuner and tests.

2. **``__init__``** storing its arguments verbatim (keyword-only after the first), no logic;
   the common options ``dtype`` and ``num_threads`` included (see ``options``).

3. **``_validate_params()``** returning the checked hyper-parameters as a dict by name
   (``check_scalar`` / ``check_int`` from :mod:`lae_fast._validation`); the base adds the
   options (``dtype`` as a numpy dtype, ``num_threads`` resolved) and calls it once per fit.

4. **The solve**, one of:

   * ``_solve_gram(A, params, timer, item_embeddings) -> dict`` for models whose closed form
     starts from G = XᵀX: ``A`` is a C-ordered n×n buffer of ``params["dtype"]`` holding (at
     least) the upper triangle of G, to be overwritten (it usually becomes B). The base then
     provides ``fit`` (Gram built in that one buffer after a memory check) and ``fit_gram``
     (G computed elsewhere, e.g. summed over user shards on Dask);
   * ``_fit(X, params, timer, item_embeddings) -> dict`` for anything else (X is canonical CSR).

   Either returns the learned attributes, at least ``{"B_": B}`` (plus e.g. ``item_counts_``).
   ``timer("step")`` is a context manager that records a step's wall time.

What the base gives every model
-------------------------------
``fit`` (validation once, X and embeddings checked, returns ``self``), ``fit_gram``,
the learned attributes ``B_``, ``item_ids_``, ``n_users_``, ``nnz_`` and ``fit_seconds_``
(set by the base alone: no other module assigns a model's attributes), ``B``,
``n_items``, ``get_params``/``set_params``/``repr``, ``recommend`` and ``similar_items``
(exactly min(N, n_items) columns, own items masked, ties to the lower index), ``save``/``load``
(pickle-free, checksummed, memory-mapped), and the ``NotFittedError`` before ``fit``.
``tests/test_contract.py`` checks all of it for every registered model.
"""
from __future__ import annotations

import contextlib
import sys
import time
import warnings
from typing import Any, Callable, ClassVar, Dict, Iterator, Mapping, Optional, Tuple

import numpy as np
import scipy.sparse as sp

from .. import io as model_io
from .. import neighbors as nbr
from .._memory import available_memory, check_fits_in_memory, empty_checked, format_bytes, MEMORY_HEADROOM
from .._threads import resolve_num_threads
from .._version import __version__
from .._validation import NotFittedError, as_index_array, check_dtype, check_embeddings, check_int, check_interactions
from ..data import Interactions, is_frame
from ..gram import gram_buffer
from ..ids import as_ids, ids_of
from ..linalg import mirror_upper
from ..popularity import fill_cold_rows
from ..ranking import one_hot_rows, topk
from .registry import MODEL_REGISTRY, class_for_file, register  # noqa: F401 (MODEL_REGISTRY: the old home)

__all__ = ["ItemItemModel", "StepTimer", "RouteWarning", "MODEL_REGISTRY", "register", "DEFAULT_NEIGHBORS"]

#: options every model takes besides its hyper-parameters
COMMON_OPTIONS: Tuple[str, ...] = ("dtype", "num_threads")
#: the option of models that also solve column by column on neighbourhoods (docs/MODELS.md §4)
NEIGHBORS_OPTION = "neighbors"
#: neighbours per column when the neighbourhood route is taken because the dense n×n does not fit
DEFAULT_NEIGHBORS = 256


class RouteWarning(UserWarning):
    """The fit took another solver route than the default (e.g. neighbourhoods because n×n does not fit)."""


class StepTimer:
    """Wall time per named step of a fit: ``with timer("gram"): ...``; ``timer.seconds`` is the dict."""

    def __init__(self) -> None:
        self.seconds: Dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, step: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[step] = self.seconds.get(step, 0.0) + time.perf_counter() - t0


def progress_callback(progress: Any) -> Optional[Callable[[int, int], None]]:
    """None for no reporting, the callable itself, or (True) a line on stderr about every 10 % of the work."""
    if progress is None or progress is False:
        return None
    if callable(progress):
        return progress
    if progress is not True:
        raise TypeError(f"progress must be a bool or a callable (done, total), got {progress!r}")
    t0 = time.perf_counter()
    last = [-1]

    def report(done: int, total: int) -> None:
        step = 10 * done // max(total, 1)
        if step != last[0] or done == total:
            last[0] = step
            print(f"  {done:,}/{total:,} columns ({100 * done / max(total, 1):.0f} %), "
                  f"{time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    return report


class ItemItemModel:
    """Base class: a fitted item-item matrix ``B_`` scored as ``x_u · B_`` (see the module docstring)."""

    # -- catalogue entries (see lae_fast.models.registry) ----------------------------------------
    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    hyperparameters: ClassVar[Tuple[str, ...]] = ()
    options: ClassVar[Tuple[str, ...]] = COMMON_OPTIONS
    param_help: ClassVar[Mapping[str, str]] = {}
    fixed: ClassVar[Mapping[str, float]] = {}
    takes_embeddings: ClassVar[bool] = False
    #: progress callback of the fit under way (set by fit / fit_gram; None reports nothing)
    _progress: Optional[Callable[[int, int], None]] = None

    def __init__(self, *, dtype: Any = np.float32, num_threads: Optional[int] = None) -> None:
        # the base class itself only holds a given B (from_weights); models define their own __init__
        self.dtype = dtype
        self.num_threads = num_threads

    @classmethod
    def from_weights(cls, B: Any, *, item_ids: Any = None, item_counts: Any = None,
                     num_threads: Optional[int] = None) -> "ItemItemModel":
        """A fitted model holding a given B (dense, or scipy sparse), e.g. read from a serving file.

        It ranks, evaluates and serves like any fitted model; it has no hyper-parameters and no
        catalogue name, so it cannot be refitted or saved as a model (serve it with
        :class:`lae_fast.Recommender`, whose ``save`` writes such a B).

        Parameters
        ----------
        B : ndarray or scipy sparse matrix, shape (n_items, n_items)
            Finite float weights; scores are ``x_u · B``.
        item_ids : array-like of shape (n_items,), optional
        item_counts : array-like of shape (n_items,), optional
            Training popularity (the cold-user fallback of ``recommend``).
        """
        if cls is not ItemItemModel:
            raise TypeError(f"from_weights builds a bare ItemItemModel; {cls.__name__} is fitted with fit()")
        if sp.issparse(B):
            B = nbr.ranking_csr(B)
        else:
            B = np.asarray(B)
            if B.dtype not in (np.float32, np.float64):
                raise TypeError(f"B must hold float32 or float64 weights, got dtype {B.dtype}")
        if B.ndim != 2 or B.shape[0] != B.shape[1] or B.shape[0] == 0:
            raise ValueError(f"B must be a non-empty square (n_items, n_items) matrix, got shape {B.shape}")
        model = cls(dtype=B.dtype, num_threads=num_threads)
        n = B.shape[0]
        learned: Dict[str, Any] = {"B_": B, "solver_": "given"}
        if item_counts is not None:
            learned["item_counts_"] = np.asarray(item_counts, dtype=np.float64).reshape(n)
        model._set_fitted(learned, as_ids(item_ids, n, name="item_ids"), n_users=None, nnz=None, seconds={})
        return model

    # -- parameters -------------------------------------------------------------------------------
    def get_params(self) -> Dict[str, Any]:
        """Hyper-parameters and options as given to ``__init__``."""
        return {name: getattr(self, name) for name in self.hyperparameters + self.options}

    def set_params(self, **params: Any) -> "ItemItemModel":
        """Set hyper-parameters or options by name (validated at the next ``fit``); returns self."""
        known = self.hyperparameters + self.options
        for key, value in params.items():
            if key not in known:
                raise ValueError(f"{type(self).__name__} has no parameter {key!r}; it takes {', '.join(known)}")
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items() if k != "dtype")
        return f"{type(self).__name__}({args})"

    def _validate_params(self) -> Dict[str, Any]:
        """The checked hyper-parameters by name (subclasses override)."""
        return {}

    def validated_params(self) -> Dict[str, Any]:
        """Every hyper-parameter checked, plus ``dtype`` (numpy dtype) and ``num_threads`` (resolved).

        Raises
        ------
        ValueError, TypeError
            A value out of range or of the wrong type (the message names it).
        """
        params = self._validate_params()
        params["dtype"] = check_dtype(self.dtype)
        params["num_threads"] = resolve_num_threads(self.num_threads)
        if NEIGHBORS_OPTION in self.options:
            m = getattr(self, NEIGHBORS_OPTION)
            params[NEIGHBORS_OPTION] = None if m is None else check_int(m, name=NEIGHBORS_OPTION, low=1)
        return params

    @classmethod
    def solves_from_gram(cls) -> bool:
        """True for models whose closed form starts from G = XᵀX (they support ``fit_gram``)."""
        return getattr(cls, "_solve_gram", None) is not None

    # -- fitting ----------------------------------------------------------------------------------
    def fit(self, X: Any, item_embeddings: Any = None, *, progress: Any = None) -> "ItemItemModel":
        """Fit B in closed form.

        Parameters
        ----------
        X : sparse matrix (n_users, n_items), :class:`lae_fast.data.Interactions` or DataFrame
            Interactions; every stored positive value counts as 1. The item ids of an
            ``Interactions`` become ``item_ids_``. A pandas, polars, pyarrow or dask table of
            ``user, item`` rows is read by :meth:`~lae_fast.data.Interactions.from_frame` (columns found
            by their usual names; call it yourself to name them or to threshold ratings).
        item_embeddings : array-like of shape (n_items, d), optional
            Required by the text models (``takes_embeddings``), refused by the others.
        progress : bool or callable, optional
            Long fits (the neighbourhood route) report ``(columns done, columns)`` to a
            callable, or as lines on stderr with True.

        Returns
        -------
        self

        Raises
        ------
        ValueError, TypeError
            Bad hyper-parameters, interactions or embeddings.
        numpy.linalg.LinAlgError
            The regularised system is not positive definite (the message says what to raise).
        MemoryError
            The n×n matrix cannot fit in available memory (checked before allocating).
        """
        params = self.validated_params()
        if is_frame(X):  # rows of a DataFrame: the one conversion, with the readers' rules
            X = Interactions.from_frame(X, num_threads=params["num_threads"])
        declared = getattr(X, "shape", None)
        if isinstance(declared, tuple) and len(declared) == 2 and isinstance(declared[1], (int, np.integer)):
            self.check_fit_memory(int(declared[1]))  # before X is checked or its ids are sorted
        Xc = check_interactions(X)
        n = Xc.shape[1]
        item_ids = ids_of(X, n)
        E = self._embeddings_arg(item_embeddings, n)
        timer = StepTimer()
        self._progress = progress_callback(progress)
        learned = self._fit(Xc, params, timer, E)
        self._set_fitted(learned, item_ids, n_users=Xc.shape[0], nnz=Xc.nnz, seconds=timer.seconds)
        return self

    def check_fit_memory(self, n_items: int) -> None:
        """Refuse now a fit on ``n_items`` items that cannot fit in memory, on the route it would take.

        The dense route holds an n_items² matrix; the neighbourhood route (models with the
        ``neighbors`` option, taken when asked for or when the dense one does not fit) what
        :func:`lae_fast.neighbors.route_bytes` says.

        :meth:`fit` calls it before it touches X; a caller that knows the item count before
        reading the data (the CLI, from an npz file's declared shape) calls it first.

        Raises
        ------
        MemoryError
            With the estimate and what is available.
        """
        n, params = int(n_items), self.validated_params()
        m = self._route(n, params, warn=False)
        if m is not None:
            self._check_neighborhood_memory(n, m, params)
            return
        dtype = params["dtype"]
        check_fits_in_memory(n * n * dtype.itemsize, what=f"fitting {type(self).__name__} ({n} items, one "
                                                          f"{n}x{n} {dtype.name} matrix)")

    def _fit(self, X: sp.csr_matrix, params: Dict[str, Any], timer: StepTimer,
             item_embeddings: Optional[np.ndarray]) -> Dict[str, Any]:
        """Default for Gram models: the dense route (G, then the closed form, in one checked n×n
        buffer), or the neighbourhood route when asked for or when the n×n does not fit."""
        if not self.solves_from_gram():
            raise NotImplementedError(f"{type(self).__name__} must implement _fit or _solve_gram")
        m = self._route(X.shape[1], params)
        if m is not None:
            return self._fit_neighborhoods(X, None, m, params, timer, item_embeddings)
        with timer("gram"):
            A = gram_buffer(X, params["dtype"], params["num_threads"], what=f"fitting {type(self).__name__}")
        return {**self._solve_gram(A, params, timer, item_embeddings), "solver_": "dense"}

    def _route(self, n: int, params: Dict[str, Any], *, warn: bool = True) -> Optional[int]:
        """Neighbours per column of the neighbourhood route, or None for the dense route.

        ``neighbors=m`` asks for the route; ``neighbors=None`` takes the dense route when its
        n×n buffer fits the memory budget and the route with ``DEFAULT_NEIGHBORS`` otherwise
        (a warning says so, and ``solver_`` records it).
        """
        if NEIGHBORS_OPTION not in self.options:
            return None
        m = params[NEIGHBORS_OPTION]
        if m is not None:
            return m
        need = n * n * params["dtype"].itemsize
        avail = available_memory()
        if avail is None or need <= MEMORY_HEADROOM * avail:
            return None
        if warn:
            warnings.warn(f"{type(self).__name__}: the dense {n}x{n} {params['dtype'].name} matrix needs "
                          f"{format_bytes(need)} but {format_bytes(avail)} is available; fitting on neighbourhoods of "
                          f"{DEFAULT_NEIGHBORS} items per column instead (pass neighbors=m to choose m)",
                          RouteWarning, stacklevel=4)
        return DEFAULT_NEIGHBORS

    def _fit_neighborhoods(self, X: Optional[sp.csr_matrix], G: Optional[np.ndarray], m: int,
                           params: Dict[str, Any], timer: StepTimer,
                           item_embeddings: Optional[np.ndarray]) -> Dict[str, Any]:
        """Every column solved on its m strongest neighbours (docs/MODELS.md §4); B is sparse (CSR).

        Candidates (1.5m per item, by cosine) come from X without any n×n, or from G when a dense
        Gram is given (fit_gram); the refined support keeps the m largest |b_ij| √G_ii of a first solve.
        """
        source, m, k = self._neighbor_source(X, G, m, params, timer)
        solution = self._solve_columns(source, m, k, params, timer, item_embeddings)
        # from a dense G the candidates are chosen inside the solve: book that time where it belongs
        inner = solution.seconds.get("candidates", 0.0)
        timer.seconds["candidates"] = timer.seconds.get("candidates", 0.0) + inner
        timer.seconds["solve"] = max(timer.seconds.get("solve", 0.0) - inner, 0.0)
        counts = nbr.item_counts_of(source)
        del source  # the candidate lists (n × width) are done with before B is turned into CSR
        return self._neighbor_learned(solution, counts, m, timer)

    @staticmethod
    def _neighbor_learned(solution: "nbr.ColumnSolution", counts: np.ndarray, m: int,
                          timer: StepTimer) -> Dict[str, Any]:
        """What a neighbourhood fit learns, from its column solution (B turned into ranking CSR)."""
        with timer("assemble"):
            B = nbr.ranking_csr(solution.B)
        return {"B_": B, "item_counts_": counts, "solver_": "neighbors", "neighbors_": m,
                "n_retried_columns_": solution.n_retried}

    def neighbor_plan(self, n_items: int, *, warn: bool = False) -> Optional[Tuple[int, int, int]]:
        """``(m, k, width)`` of a neighbourhood fit of ``n_items`` items, or None for the dense route.

        m neighbours per column, refined from the top k >= m candidates, looked up in
        candidate lists of ``width`` items per item (what :meth:`fit_candidates` needs).
        The route is the one :meth:`fit` would take (``neighbors``, or the automatic switch, which
        ``warn=True`` announces with a :class:`RouteWarning` as :meth:`fit` does).
        """
        params = self.validated_params()
        m = self._route(int(n_items), params, warn=warn)
        return None if m is None else self._plan(int(n_items), m)

    def _plan(self, n: int, m: int) -> Tuple[int, int, int]:
        """``(m, k, width)`` for n items: m capped at k = 1.5m candidates (at most n - 1), and lists
        ``LOOKUP_FACTOR`` times wider than the widest first support (text neighbours included)."""
        k = _candidates_per_item(n, m)
        width = min(nbr.LOOKUP_FACTOR * (k + self._text_support(m)), max(n - 1, 1))
        return min(m, k), k, width

    @classmethod
    def _text_support(cls, m: int) -> int:
        """Items a model adds to each support besides the co-occurrence candidates (L3AE: text neighbours)."""
        return 0

    def dense_gram_fits(self, n_items: int) -> bool:
        """Whether a dense n×n Gram of this model's dtype fits the memory budget (the neighbourhood
        route then reads G_SS exactly from it rather than from candidate lists)."""
        need = int(n_items) ** 2 * self.validated_params()["dtype"].itemsize
        return need <= MEMORY_HEADROOM * (available_memory() or 0)

    def fit_candidates(self, lists: "nbr.CandidateLists", *, item_ids: Any = None, item_embeddings: Any = None,
                       n_users: Optional[int] = None, nnz: Optional[int] = None,
                       seconds: Optional[Mapping[str, float]] = None, map_blocks: Any = None,
                       progress: Any = None) -> "ItemItemModel":
        """Fit the neighbourhood route from co-occurrence candidate lists built elsewhere.

        What :meth:`fit` does on the route when the dense G does not fit, from lists
        computed by :func:`lae_fast.neighbors.cooccurrence_candidates` or summed over user
        shards (:func:`lae_fast.distributed.fit_distributed`). Same lists, same B, bit for bit.

        Parameters
        ----------
        lists : lae_fast.neighbors.CandidateLists
            At least ``neighbor_plan(n)[2]`` candidates per item.
        item_ids, item_embeddings, n_users, nnz
            As in :meth:`fit_gram`.
        seconds : mapping, optional
            Time already spent (e.g. ``{"candidates": ...}``), kept in ``fit_seconds_``.
        map_blocks : callable, optional
            ``map_blocks(solve_column_block, args, ranges, progress)`` returns
            ``[solve_column_block(*args, first, stop) for first, stop in ranges]`` in any way
            (e.g. as dask tasks, ``args`` shipped once), calling ``progress(done, total)`` (columns)
            when it is not None; default: every column here, at once.
        progress : callable or bool, optional
            As in :meth:`fit`.

        Returns
        -------
        self
        """
        if not isinstance(lists, nbr.CandidateLists):
            raise TypeError(f"lists must be lae_fast.neighbors.CandidateLists, got {type(lists).__name__}")
        if NEIGHBORS_OPTION not in self.options:
            raise TypeError(f"{type(self).__name__} has no neighbourhood route")
        n = lists.n_items
        params = self.validated_params()
        if params[NEIGHBORS_OPTION] is None:
            params[NEIGHBORS_OPTION] = DEFAULT_NEIGHBORS
        m_asked = params[NEIGHBORS_OPTION]
        m, k, width = self._plan(n, m_asked)
        if lists.k < width:
            raise ValueError(f"the lists hold {lists.k} candidates per item; neighbors={m_asked} on {n} items needs "
                             f"{width} ({nbr.LOOKUP_FACTOR}x the widest first support)")
        ids = as_ids(item_ids, n, name="item_ids")
        E = self._embeddings_arg(item_embeddings, n)
        timer = StepTimer()
        timer.seconds.update(seconds or {})
        report = progress_callback(progress)
        # the model travels to where the blocks run: the mapper reports progress, not the model
        self._progress = report if map_blocks is None else None
        with timer("solve"):
            if map_blocks is None:
                solution = self._solve_columns(lists, m, k, params, StepTimer(), E)
            else:
                ranges = [(a, min(n, a + nbr.BLOCK_SIZE)) for a in range(0, n, nbr.BLOCK_SIZE)]
                # the look-up's form of the lists is made here once, and shipped with them
                lists.lookup_lists(params["num_threads"], nbr.b_bytes(n, m + 1, params["dtype"]))
                blocks = map_blocks(solve_column_block, (self, lists, m, k, params, E), ranges, report)
                solution = nbr.join_column_blocks(blocks, n)
        learned = self._neighbor_learned(solution, lists.item_counts, m, timer)
        self._set_fitted(learned, ids, n_users=n_users, nnz=nnz, seconds=timer.seconds)
        return self

    def _neighbor_source(self, X: Optional[sp.csr_matrix], G: Optional[np.ndarray], m: int,
                         params: Dict[str, Any], timer: StepTimer) -> Tuple[Any, int, int]:
        """``(source, m, k)``: what the column solves read G_SS from, built once (a fit, or a whole tuning
        grid), the neighbours per column and the candidates per item they are refined from."""
        n = X.shape[1] if X is not None else G.shape[0]
        m, k, width = self._plan(n, m)  # width: lists wide enough for the G_SS look-ups
        nt = params["num_threads"]
        self._check_neighborhood_memory(n, m, params)
        if G is None and self.dense_gram_fits(n):
            with timer("gram"):  # exact G_SS from the dense G while it fits, items by popularity
                order = nbr.popularity_order(np.bincount(X.indices, minlength=n))
                G = nbr.RelabelledGram(mirror_upper(gram_buffer(nbr.relabel_columns(X, order), params["dtype"], nt,
                                                                what="the Gram of the neighbourhood route"),
                                                    num_threads=nt), order)
        with timer("candidates"):
            source = nbr.cooccurrence_candidates(X, width, num_threads=nt) if G is None else G
        return source, m, k

    def _check_neighborhood_memory(self, n: int, m: int, params: Dict[str, Any]) -> None:
        """The memory preflight of a neighbourhood fit of n items (lists, then B three times over)."""
        width = self._plan(n, m)[2]
        check_fits_in_memory(nbr.route_bytes(n, m, width, params["dtype"]),
                             what=f"the neighbourhood route ({n} items, {m} neighbours per column)",
                             fix=f"its candidate lists alone take {format_bytes(n * width * 8)} ({width} items "
                                 f"each, {nbr.LOOKUP_FACTOR}x the first support); pass a smaller neighbors=m")

    def _solve_columns(self, source: Any, m: int, k: int, params: Dict[str, Any], timer: StepTimer,
                       item_embeddings: Optional[np.ndarray],
                       columns: Optional[Tuple[int, int]] = None) -> "nbr.ColumnSolution":
        """The per-column form of this model (models with the ``neighbors`` option implement it): m
        neighbours per column, refined from k >= m candidates when k > m; only ``columns=(first, stop)``
        if given."""
        raise NotImplementedError(f"{type(self).__name__} has no neighbourhood route")

    def fit_gram(self, G: Any, *, item_ids: Any = None, item_embeddings: Any = None, n_users: Optional[int] = None,
                 nnz: Optional[int] = None, gram_seconds: float = 0.0, copy: bool = True,
                 progress: Any = None) -> "ItemItemModel":
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
        item_embeddings : array-like of shape (n_items, d), optional
            For the text models, as in :meth:`fit`.
        n_users, nnz : int, optional
            Users and interactions behind G (recorded as ``n_users_`` and ``nnz_``).
        gram_seconds : float, default=0.0
            Wall time of computing G elsewhere (recorded in ``fit_seconds_["gram"]``).
        copy : bool, default=True
            With False, a C-contiguous writeable G of the model's dtype is overwritten
            and becomes ``B_`` (no second n×n buffer).

        Returns
        -------
        self
        """
        if not self.solves_from_gram():
            raise TypeError(f"{type(self).__name__} is not fitted from a Gram matrix; call fit(X)")
        params = self.validated_params()
        dtype = params["dtype"]
        G = np.asarray(G)
        if G.ndim != 2 or G.shape[0] != G.shape[1] or G.shape[0] == 0:
            raise ValueError(f"G must be a non-empty square n_items x n_items matrix, got shape {G.shape}")
        if G.dtype.kind not in "biuf":
            raise TypeError(f"G must hold numbers, got dtype {G.dtype}")
        n = G.shape[0]
        ids = as_ids(item_ids, n, name="item_ids")  # checked before the O(n³) work
        E = self._embeddings_arg(item_embeddings, n)
        if copy or G.dtype != dtype or not G.flags.c_contiguous or not G.flags.writeable:
            A = empty_checked((n, n), dtype, what=f"fitting {type(self).__name__} ({n} items, one {n}x{n} "
                                                  f"{dtype.name} matrix)")
            np.copyto(A, G, casting="unsafe")
        else:
            A = G
        timer = StepTimer()
        timer.seconds["gram"] = float(gram_seconds)
        self._progress = progress_callback(progress)
        m = params.get(NEIGHBORS_OPTION)
        if m is not None:
            mirror_upper(A, num_threads=params["num_threads"])  # the column solves read G[a, b] for any a, b
            learned = self._fit_neighborhoods(None, A, m, params, timer, E)
        else:
            learned = {**self._solve_gram(A, params, timer, E), "solver_": "dense"}
        self._set_fitted(learned, ids, n_users=n_users, nnz=nnz, seconds=timer.seconds)
        return self

    def _embeddings_arg(self, item_embeddings: Any, n_items: int) -> Optional[np.ndarray]:
        if self.takes_embeddings:
            return check_embeddings(item_embeddings, n_items)
        if item_embeddings is not None:
            raise TypeError(f"{type(self).__name__} does not use item embeddings; text models take them "
                            f"({', '.join(_text_model_names())})")
        return None

    def _set_fitted(self, learned: Mapping[str, Any], item_ids: np.ndarray, *, n_users: Optional[int],
                    nnz: Optional[int], seconds: Dict[str, float]) -> None:
        """The one place where a fit's results become the model's attributes."""
        if "B_" not in learned:
            raise RuntimeError(f"internal error: {type(self).__name__} returned no B_")
        for key, value in learned.items():
            setattr(self, key, value)
        self.item_ids_ = item_ids
        self.n_users_ = None if n_users is None else int(n_users)
        self.nnz_ = None if nnz is None else int(nnz)
        self.fit_seconds_ = dict(seconds)

    # -- fitted state -----------------------------------------------------------------------------
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
        """Number of items (rows and columns of B)."""
        self._check_fitted()
        return self.B_.shape[0]

    def _threads(self, num_threads: Optional[int]) -> Optional[int]:
        return num_threads if num_threads is not None else getattr(self, "num_threads", None)

    # -- ranking ----------------------------------------------------------------------------------
    def recommend(self, user_items: Any, N: int = 10, *, filter_already_liked_items: bool = True,
                  filter_items: Any = None, items: Any = None, num_threads: Optional[int] = None,
                  return_cold: bool = False) -> tuple:
        """Top-``N`` items for each user history.

        Parameters
        ----------
        user_items : sparse matrix (n_users, n_items) or 1-D array (n_items,)
            One history row per user, in the model's item index space. A 1-D
            dense vector is one user and gives 1-D results.
        N : int, default=10
            Length of each list; at most ``n_items`` (a larger N is capped).
        filter_already_liked_items : bool, default=True
            Never return a user's own items.
        filter_items : array-like of int, optional
            Item indices never returned.
        items : array-like of int, optional
            Rank only among these item indices.
        num_threads : int, optional
            Defaults to the model's ``num_threads``.
        return_cold : bool, default=False
            Also return which users had an empty history: they get the most
            popular training items (``item_counts_``), scored by their count,
            or nothing (-1 / -inf) for a model without counts
            (see :mod:`lae_fast.popularity`).

        Returns
        -------
        ids : ndarray of int32, shape (n_users, min(N, n_items))
            Item indices (``model.item_ids_[ids]`` gives the original ids), best first,
            ties broken by lower index. Padded with -1 when a user has fewer candidates
            than columns; a filtered item is never returned.
        scores : ndarray of float32, shape (n_users, min(N, n_items))
            ``x_u · B`` for those items, -inf on padding.
        cold : ndarray of bool, shape (n_users,)
            Only with ``return_cold=True`` (a bool for a 1-D history).
        """
        self._check_fitted()
        single = not sp.issparse(user_items) and np.ndim(user_items) == 1
        if single:
            user_items = sp.csr_matrix(np.asarray(user_items).reshape(1, -1))
        X = check_interactions(user_items, name="user_items", n_items=self.B_.shape[0])
        ids, scores = topk(X, self.B_, N, filter_already_liked_items=filter_already_liked_items,
                           filter_items=filter_items, items=items, num_threads=self._threads(num_threads))
        cold = fill_cold_rows(X, ids, scores, getattr(self, "item_counts_", None),
                              filter_items=filter_items, items=items)
        out = (ids[0], scores[0], bool(cold[0])) if single else (ids, scores, cold)
        return out if return_cold else out[:2]

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

    # -- model files ------------------------------------------------------------------------------
    #: learned arrays besides B and the item ids that a file keeps (e.g. ``item_counts_``)
    saved_attributes: ClassVar[Tuple[str, ...]] = ()

    def save(self, path: model_io.PathOrFile) -> None:
        """Write the fitted model atomically to ``path`` (or an open binary file).

        The file holds B, the item id map, the model name, hyper-parameters and dtype;
        no pickle. See :mod:`lae_fast.io` for the layout.
        """
        self._check_fitted()
        if not self.name:
            raise TypeError("this model holds a given B (from_weights or a serving file) and has no catalogue "
                            "name to save under; save it with lae_fast.Recommender(model).save(path)")
        # numpy scalars (np.int64(500) from a grid) are not JSON serialisable: store Python numbers
        params = {k: (np.dtype(v).name if k == "dtype" else v.item() if isinstance(v, np.generic) else v)
                  for k, v in self.get_params().items()}
        meta = {"model": self.name, "params": params, "dtype": self.B_.dtype.name,
                "n_items": int(self.B_.shape[0]), "n_users": getattr(self, "n_users_", None),
                "nnz": getattr(self, "nnz_", None), "lae_fast_version": __version__,
                "B_format": "csr" if sp.issparse(self.B_) else "dense"}
        arrays = {**weights_to_arrays(self.B_), "item_ids": self.item_ids_}
        arrays.update({k: getattr(self, k) for k in self.saved_attributes if getattr(self, k, None) is not None})
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
            Check the SHA-256 of every array and that B is finite (both read the whole
            file; skip them for very large trusted files).

        Raises
        ------
        lae_fast.io.ModelFileError
            Corrupt, truncated, foreign or mismatched file, or NaN/infinite weights.
        """
        arrays, meta = model_io.load_arrays(path, mmap=mmap, verify=verify)
        return cls.from_arrays(arrays, meta, model_io.source_name(path), check_values=verify)

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any],
                    source: str = "<arrays>", *, check_values: bool = True) -> "ItemItemModel":
        """Build a fitted model from what :func:`lae_fast.io.load_arrays` read (checks everything).

        ``check_values=False`` skips the one check that reads all of B: that its
        weights are finite (``load(verify=False)`` on large trusted files).

        Raises
        ------
        lae_fast.io.ModelFileError
            Unknown model, missing or inconsistent arrays, invalid hyper-parameters,
            NaN or infinite weights.
        """
        target = class_for_file(meta, source)
        if cls is not ItemItemModel and not issubclass(target, cls):
            raise model_io.ModelFileError(f"{source}: holds a {target.__name__}, not a {cls.__name__}")
        B, ids = weights_from_arrays(arrays, meta, source, check_values=check_values)
        params = dict(meta.get("params") or {})
        try:
            if "dtype" in params:
                params["dtype"] = check_dtype(params["dtype"])
            model = target(**params)
            model._validate_params()  # __init__ only stores: validate as fit would
        except (TypeError, ValueError) as exc:
            raise model_io.ModelFileError(f"{source}: stored hyper-parameters are invalid ({exc})") from None
        learned = {"B_": B, "solver_": "neighbors" if sp.issparse(B) else "dense"}
        learned.update({k: arrays[k] for k in target.saved_attributes if k in arrays})
        n_users, nnz = meta.get("n_users"), meta.get("nnz")
        model._set_fitted(learned, ids, n_users=n_users if isinstance(n_users, int) else None,
                          nnz=nnz if isinstance(nnz, int) else None, seconds={})
        return model


def _text_model_names() -> Tuple[str, ...]:
    return tuple(name for name, cls in MODEL_REGISTRY.items() if cls.takes_embeddings)


def weights_to_arrays(B: Any) -> Dict[str, np.ndarray]:
    """The arrays a model file stores for B: ``B`` (dense) or ``B_indptr/B_indices/B_data`` (CSR rows)."""
    if not sp.issparse(B):
        return {"B": B}
    C = sp.csr_matrix(B)
    return {"B_indptr": C.indptr.astype(np.int64, copy=False), "B_indices": C.indices.astype(np.int32, copy=False),
            "B_data": C.data}


def solve_column_block(model: ItemItemModel, source: Any, m: int, k: int, params: Dict[str, Any],
                       item_embeddings: Optional[np.ndarray], first: int, stop: int) -> "nbr.ColumnBlock":
    """Columns ``first .. stop - 1`` of ``model``'s neighbourhood solve (a task of
    :meth:`ItemItemModel.fit_candidates`'s ``map_blocks``); no progress report."""
    solution = model._solve_columns(source, m, k, params, StepTimer(), item_embeddings, columns=(first, stop))
    return solution.block(first, stop)


def _candidates_per_item(n: int, m: int) -> int:
    """Candidates of a neighbourhood fit: the refining width (1.5m) per item, at most the other n - 1."""
    return min(nbr.refine_width(m), max(n - 1, 1))


def weights_from_arrays(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any],
                        source: str, *, check_values: bool = True) -> Tuple[Any, np.ndarray]:
    """B (dense, or CSR on the file's memory-mapped arrays) and the item ids, after checking every shape.

    ``check_values`` also checks that every weight is finite (a pass over all of B).

    Raises
    ------
    lae_fast.io.ModelFileError
        A missing array, shapes or dtypes that disagree with the header, a CSR structure that is
        not one (indptr not monotonic, an index out of range), or NaN/infinite weights.
    """
    ids = arrays.get("item_ids")
    n = meta.get("n_items")
    if ids is None or not isinstance(n, int) or isinstance(n, bool) or n < 1 or ids.shape != (n,):
        raise model_io.ModelFileError(f"{source}: shapes disagree or arrays are missing (item_ids "
                                      f"{getattr(ids, 'shape', None)}, n_items {n!r})")
    dtype = meta.get("dtype")
    if meta.get("B_format", "dense") == "csr":
        indptr, indices, data = (arrays.get(k) for k in ("B_indptr", "B_indices", "B_data"))
        if (indptr is None or indices is None or data is None or indptr.dtype != np.int64
                or indices.dtype != np.int32 or data.dtype.name != dtype or data.dtype not in (np.float32, np.float64)
                or indptr.shape != (n + 1,) or indices.ndim != 1 or indices.shape != data.shape):
            raise model_io.ModelFileError(f"{source}: the sparse B arrays are missing or have wrong dtypes or shapes")
        nnz = indices.shape[0]
        if (indptr[0] != 0 or indptr[-1] != nnz or (np.diff(indptr) < 0).any()
                or (nnz and (indices.min() < 0 or indices.max() >= n))):
            raise model_io.ModelFileError(f"{source}: the sparse B is inconsistent (indptr or indices)")
        if check_values:
            model_io.check_finite(data, source=source, key="B_data")
        return sp.csr_matrix((data, indices, indptr), shape=(n, n)), ids
    B = arrays.get("B")
    if B is None or B.ndim != 2 or B.shape != (n, n):
        raise model_io.ModelFileError(f"{source}: shapes disagree or B is missing (B {getattr(B, 'shape', None)}, "
                                      f"n_items {n})")
    if B.dtype.name != dtype or B.dtype not in (np.float32, np.float64):
        raise model_io.ModelFileError(f"{source}: B has dtype {B.dtype}, header says {dtype}")
    if check_values:
        model_io.check_finite(B, source=source, key="B")
    return B, ids
