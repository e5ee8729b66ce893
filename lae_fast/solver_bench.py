"""Benchmarks of the SPD-inverse routes and of a fit, as library functions.

``lae-fast bench solvers`` / ``lae-fast bench fit`` and ``bench/bench_solvers.py``
are thin wrappers over :func:`bench_solvers` and :func:`bench_fit`.

How things are measured
-----------------------
* **Input.** :func:`powerlaw_spd` builds ``G + λI`` from synthetic interactions
  with power-law item popularity, so the diagonal spans orders of magnitude as
  in a real Gram matrix.
* **Time.** Routes and the GEMM baselines run alternately (A, B, C, A, B, C,
  ...) in one process on copies of the same matrix, so machine noise hits them
  alike; the median is reported. The copy into the route's dtype is made
  outside the timer.
* **Flops.** Cholesky-based inverses (potrf + potri, the recursive route,
  ``scipy.linalg.inv(assume_a="pos")``) are credited n³ flops; the LU-based
  ``numpy.linalg.inv`` 2n³ (getrf + getri; numpy actually solves against the
  identity, 8n³/3, so its rate is if anything flattered).
* **Peak.** GEMM n×n×n (2n³ flops) through ``scipy.linalg.blas``, the same
  OpenBLAS as our LAPACK routes, in float32 (SGEMM) and float64 (DGEMM). A
  route's fraction of peak is its GFLOP/s over the GEMM rate of its own dtype;
  ``× bound`` is its time over n³ / SGEMM rate, the physical limit of the fit.
* **Memory.** tracemalloc cannot see BLAS. On Linux the kernel's peak-RSS mark
  (VmHWM) is reset through ``/proc/self/clear_refs`` right before each call and
  read right after it; the route's memory is that peak minus the RSS before the
  call, plus the input buffer it was handed (in place: 1.00× the matrix).
  Elsewhere memory is reported as unknown.
* **Error.** Every route's P is turned into EASE's B = I − P·diag(1/diag P) in
  float64 and compared with B from float64 ``numpy.linalg.inv``.
"""
from __future__ import annotations

import inspect
import os
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import scipy.sparse as sp

from ._threads import blas_threads, resolve_num_threads
from .data import load_interactions
from .data.formats import declared_n_items
from .gram import gram
from .linalg import choose_spd_method, spd_inverse_inplace
from .models.ease import EASE, LinearAutoencoder
from .models.registry import get_model_class, model_names

__all__ = ["ROUTES", "Route", "powerlaw_spd", "bench_solvers", "format_solver_table", "bench_fit",
           "format_fit_report"]


# -- memory -------------------------------------------------------------------------------------

def _proc_status_kib(key: str) -> Optional[int]:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


class PeakMeter:
    """Peak resident memory of a code section, BLAS allocations included (Linux).

    ``start()`` resets the kernel's high-water mark (``/proc/self/clear_refs``,
    Linux >= 4.0) and records the current RSS; ``extra_bytes()`` is the peak
    since then minus that RSS. ``available`` is False where this cannot work.
    """

    def __init__(self) -> None:
        self.available = False
        self._base = 0
        if _proc_status_kib("VmHWM") is not None:
            try:
                self._reset()
                self.available = True
            except OSError:
                pass

    @staticmethod
    def _reset() -> None:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")

    def start(self) -> None:
        if self.available:
            self._reset()
            self._base = _proc_status_kib("VmRSS") or 0

    def extra_bytes(self) -> Optional[int]:
        """Peak RSS since ``start()`` minus the RSS at ``start()``."""
        peak = self.peak_bytes()
        return None if peak is None else max(0, peak - self._base * 1024)

    def peak_bytes(self) -> Optional[int]:
        """Peak RSS since ``start()``."""
        if not self.available:
            return None
        peak = _proc_status_kib("VmHWM")
        return None if peak is None else peak * 1024


def peak_rss_bytes() -> int:
    """Peak RSS of this process so far (``ru_maxrss``)."""
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * scale


def current_rss_bytes() -> Optional[int]:
    kib = _proc_status_kib("VmRSS")
    return None if kib is None else kib * 1024


# -- the test matrix ----------------------------------------------------------------------------

def powerlaw_spd(n: int, *, l2: float = 500.0, interactions_per_item: int = 300, alpha: float = 1.0,
                 seed: int = 0, num_threads: Optional[int] = None) -> np.ndarray:
    """``G + l2·I`` in float64 for synthetic interactions with power-law item popularity.

    ``5n`` users with log-normal activity draw items with probability
    ∝ 1/(rank + 10)^alpha (ranks in random order), about
    ``interactions_per_item · n`` interactions in all, binary. G's diagonal
    (item counts) then spans two to three orders of magnitude, like ML-20M's.

    Returns
    -------
    A : ndarray of shape (n, n), float64, C-ordered, symmetric positive definite
    """
    import scipy.sparse as sp


    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    n_users = 5 * n
    nnz = interactions_per_item * n
    weights = 1.0 / (np.arange(n) + 10.0) ** alpha
    weights /= weights.sum()
    item_of_rank = rng.permutation(n)
    activity = rng.lognormal(0.0, 1.0, size=n_users)
    lengths = np.clip(np.round(activity / activity.sum() * nnz), 1, max(1, n // 2)).astype(np.int64)
    items = item_of_rank[rng.choice(n, size=int(lengths.sum()), p=weights)]
    rows = np.repeat(np.arange(n_users), lengths)
    X = sp.csr_matrix((np.ones(items.size, dtype=np.float32), (rows, items)), shape=(n_users, n))
    X.sum_duplicates()
    A = gram(X, dtype=np.float64, num_threads=num_threads)
    A[np.diag_indices_from(A)] += l2
    return A


# -- routes -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Route:
    """One way of computing P = A⁻¹ (full and symmetric) from a copy of A.

    ``run`` takes a C-ordered copy of A in ``dtype`` that it may overwrite and
    returns P. ``flops`` is the nominal count in units of n³.
    """

    key: str
    label: str
    dtype: Any
    flops: float
    run: Callable[[np.ndarray, int], np.ndarray]
    ours: bool = False


def _numpy_inv(a: np.ndarray, nt: int) -> np.ndarray:
    return np.linalg.inv(a)


def _scipy_has_assume_a() -> bool:
    import scipy.linalg

    try:
        return "assume_a" in inspect.signature(scipy.linalg.inv).parameters
    except (TypeError, ValueError):
        return False


def _scipy_inv_pos(a: np.ndarray, nt: int) -> np.ndarray:
    import scipy.linalg

    if _scipy_has_assume_a():
        return scipy.linalg.inv(a, assume_a="pos", overwrite_a=True, check_finite=False)
    # older scipy: Cholesky + potri through scipy's own LAPACK wrappers
    potrf, potri = scipy.linalg.lapack.get_lapack_funcs(("potrf", "potri"), (a,))
    c, info = potrf(a, lower=False, overwrite_a=True, clean=False)
    if info == 0:
        c, info = potri(c, lower=False, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"scipy potrf/potri info={info}")
    return np.triu(c) + np.triu(c, 1).T


def _ours(method: str) -> Callable[[np.ndarray, int], np.ndarray]:
    def run(a: np.ndarray, nt: int) -> np.ndarray:
        return spd_inverse_inplace(a, num_threads=nt, method=method)
    return run


#: Every route, in the order they run within a round.
ROUTES: Dict[str, Route] = {r.key: r for r in [
    Route("numpy-f64", "numpy.linalg.inv (LU)", np.float64, 2.0, _numpy_inv),
    Route("scipy-pos-f64", "scipy.linalg.inv(assume_a='pos')", np.float64, 1.0, _scipy_inv_pos),
    Route("lapack-f64", "lae-fast potrf+potri", np.float64, 1.0, _ours("lapack"), ours=True),
    Route("blocked-f64", "lae-fast recursive BLAS-3", np.float64, 1.0, _ours("blocked"), ours=True),
    Route("lapack-f32", "lae-fast potrf+potri", np.float32, 1.0, _ours("lapack"), ours=True),
    Route("blocked-f32", "lae-fast recursive BLAS-3", np.float32, 1.0, _ours("blocked"), ours=True),
]}
REFERENCE = "numpy-f64"


def _gemm_runner(n: int, dtype: Any, seed: int) -> Callable[[], None]:
    """C ← A·B for n×n Fortran-ordered operands through scipy's BLAS (no copies)."""
    from scipy.linalg import blas

    rng = np.random.default_rng(seed)
    a = np.asfortranarray(rng.standard_normal((n, n)).astype(dtype))
    b = np.asfortranarray(rng.standard_normal((n, n)).astype(dtype))
    c = np.zeros((n, n), dtype=dtype, order="F")
    gemm = blas.sgemm if np.dtype(dtype) == np.float32 else blas.dgemm

    def run() -> None:
        gemm(1.0, a, b, beta=0.0, c=c, overwrite_c=1)
    return run


def _ease_b_rows(P: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Rows start:stop of B = I − P·diag(1/diag P) in float64."""
    d = np.diagonal(P).astype(np.float64)
    rows = P[start:stop].astype(np.float64) / -d[None, :]
    idx = np.arange(start, stop)
    rows[idx - start, idx] = 0.0
    return rows


def _compare(P: np.ndarray, P_ref: np.ndarray, chunk: int = 256) -> Dict[str, float]:
    """Max |B − B_ref| and max |P − P_ref| / max |P_ref|, a few rows at a time."""
    n = P.shape[0]
    b_err = p_err = p_max = 0.0
    finite = True
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        block = P[s:e].astype(np.float64)
        ref = P_ref[s:e]
        finite = finite and bool(np.isfinite(block).all())
        p_err = max(p_err, float(np.abs(block - ref).max()))
        p_max = max(p_max, float(np.abs(ref).max()))
        b_err = max(b_err, float(np.abs(_ease_b_rows(P, s, e) - _ease_b_rows(P_ref, s, e)).max()))
    if not finite:
        return {"b_max_err": float("nan"), "p_rel_err": float("nan")}
    return {"b_max_err": b_err, "p_rel_err": p_err / p_max if p_max else p_err}


def bench_solvers(sizes: Sequence[int], *, routes: Optional[Sequence[str]] = None, repeat: int = 3,
                  l2: float = 500.0, num_threads: Optional[int] = None, seed: int = 0, memory: bool = True,
                  progress: Optional[Callable[[str], None]] = None) -> List[Dict[str, Any]]:
    """Time and check every SPD-inverse route on one power-law Gram per size.

    Parameters
    ----------
    sizes : sequence of int
        Matrix orders n.
    routes : sequence of str, optional
        Keys of :data:`ROUTES` (default: all). The float64 ``numpy.linalg.inv``
        reference is computed in any case, untimed if not selected.
    repeat : int, default=3
        Rounds; in each, every route and both GEMMs run once, in turn.
    l2 : float, default=500.0
        Ridge λ added to the diagonal of G.
    num_threads : int, optional
        BLAS threads for every route and GEMM.
    seed : int, default=0
        Seed of the synthetic interactions and GEMM operands.
    memory : bool, default=True
        Measure each call's peak memory (Linux; see the module notes).
    progress : callable, optional
        Called with one line of text per finished size.

    Returns
    -------
    list of dict
        One per size: ``n``, ``matrix`` (diagonal range, 1-norm condition
        number), ``gemm`` (seconds and GFLOP/s per dtype), ``sgemm_bound_s``
        (n³ / SGEMM rate), ``auto`` (the route ``method="auto"`` takes per
        dtype) and ``routes``: per route its ``seconds`` (median), ``times``,
        ``gflops``, ``peak_fraction``, ``x_bound``, ``peak_mib``, ``peak_x``
        (peak over the route's n×n matrix), ``b_max_err``, ``p_rel_err`` and
        ``error`` (the message if the route raised).
    """

    keys = list(ROUTES) if routes is None else list(routes)
    unknown = [k for k in keys if k not in ROUTES]
    if unknown:
        raise ValueError(f"unknown route(s) {', '.join(unknown)}; choose from {', '.join(ROUTES)}")
    keys = [k for k in ROUTES if k in keys]  # fixed order: the reference first
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    sizes = [int(n) for n in sizes]
    if not sizes or min(sizes) < 1:
        raise ValueError(f"sizes must be positive integers, got {sizes}")
    nt = resolve_num_threads(num_threads)
    meter = PeakMeter() if memory else None
    out = []
    with blas_threads(nt):
        _warm_up(keys, nt)
        for n in sizes:
            out.append(_bench_one(n, keys, repeat, l2, nt, seed, meter))
            out[-1]["auto"] = {dt: choose_spd_method(n, dt) for dt in ("float32", "float64")}
            out[-1]["num_threads"] = nt
            if progress is not None:
                progress(_one_line(out[-1]))
    return out


def _warm_up(keys: Sequence[str], nt: int) -> None:
    """First calls start BLAS threads and allocate BLAS buffers: keep them out of the numbers."""
    A = powerlaw_spd(200, seed=1, interactions_per_item=20)
    for key in keys:
        r = ROUTES[key]
        r.run(np.array(A, dtype=r.dtype), nt)
    for dt in (np.float32, np.float64):
        _gemm_runner(200, dt, 0)()


def _bench_one(n: int, keys: Sequence[str], repeat: int, l2: float, nt: int, seed: int,
               meter: Optional[PeakMeter]) -> Dict[str, Any]:
    A = powerlaw_spd(n, l2=l2, seed=seed, num_threads=nt)
    diag = np.diagonal(A)
    # the float64 reference: the numpy route's first result when it runs (it runs first), else untimed
    P_ref = None if REFERENCE in keys else np.linalg.inv(A)
    gemms = {"float32": _gemm_runner(n, np.float32, seed), "float64": _gemm_runner(n, np.float64, seed)}
    times: Dict[str, List[float]] = {k: [] for k in list(keys) + ["sgemm", "dgemm"]}
    extra: Dict[str, int] = {}
    checks: Dict[str, Dict[str, float]] = {}
    errors: Dict[str, str] = {}
    for rnd in range(repeat):
        for key in keys:
            if key in errors:
                continue
            route = ROUTES[key]
            a = np.array(A, dtype=route.dtype, order="C")
            if meter is not None:
                meter.start()
            t0 = time.perf_counter()
            try:
                P = route.run(a, nt)
            except (np.linalg.LinAlgError, ValueError, MemoryError) as exc:
                errors[key] = f"{type(exc).__name__}: {exc}"
                continue
            times[key].append(time.perf_counter() - t0)
            if P_ref is None and key == REFERENCE:
                P_ref = P
            if meter is not None:
                got = meter.extra_bytes()
                if got is not None:
                    extra[key] = max(extra.get(key, 0), got)
            if rnd == repeat - 1:
                if P_ref is None:  # the reference failed: the matrix is singular to float64
                    P_ref = np.full_like(A, np.nan)
                checks[key] = _compare(P, P_ref)
            del P, a
        for name, dt in (("sgemm", "float32"), ("dgemm", "float64")):
            t0 = time.perf_counter()
            gemms[dt]()
            times[name].append(time.perf_counter() - t0)
    del gemms
    if P_ref is None:
        P_ref = np.full_like(A, np.nan)
    cond1 = float(np.abs(A).sum(axis=0).max() * np.abs(P_ref).sum(axis=0).max())
    gemm = {}
    for name, dt in (("sgemm", "float32"), ("dgemm", "float64")):
        s = statistics.median(times[name])
        gemm[dt] = {"seconds": s, "gflops": 2.0 * n ** 3 / s / 1e9, "times": times[name]}
    bound = n ** 3 / (gemm["float32"]["gflops"] * 1e9)
    rows = []
    for key in keys:
        route = ROUTES[key]
        dt = np.dtype(route.dtype).name
        matrix_bytes = n * n * np.dtype(route.dtype).itemsize
        row: Dict[str, Any] = {"key": key, "label": route.label, "dtype": dt, "ours": route.ours,
                               "flops": "2n^3" if route.flops == 2.0 else "n^3", "error": errors.get(key)}
        if times[key]:
            s = statistics.median(times[key])
            gf = route.flops * n ** 3 / s / 1e9
            row.update(seconds=s, times=times[key], gflops=gf, peak_fraction=gf / gemm[dt]["gflops"],
                       x_bound=s / bound)
        if key in extra:
            # the input buffer the route was handed counts: an in-place route needs exactly it
            row.update(peak_mib=(extra[key] + matrix_bytes) / 2 ** 20,
                       peak_x=(extra[key] + matrix_bytes) / matrix_bytes)
        row.update(checks.get(key, {}))
        rows.append(row)
    return {"n": n, "l2": l2, "repeat": repeat,
            "matrix": {"diag_min": float(diag.min()), "diag_median": float(np.median(diag)),
                       "diag_max": float(diag.max()), "cond1": cond1},
            "gemm": gemm, "sgemm_bound_s": bound, "routes": rows}


def _one_line(res: Dict[str, Any]) -> str:
    parts = [f"n={res['n']}: SGEMM {res['gemm']['float32']['gflops']:.0f} GFLOP/s, bound "
             f"{res['sgemm_bound_s']:.2f} s"]
    for r in res["routes"]:
        if r.get("seconds") is not None:
            parts.append(f"{r['key']} {r['seconds']:.2f} s ({r['x_bound']:.2f}x)")
        else:
            parts.append(f"{r['key']} failed")
    return "; ".join(parts)


def _secs(value: float) -> str:
    return f"{value:.3f}" if value >= 0.01 else f"{value:.2g}"


def _fmt(value: Optional[float], spec: str, missing: str = "n/a") -> str:
    return missing if value is None else format(value, spec)


def format_solver_table(results: Sequence[Dict[str, Any]]) -> str:
    """Markdown: one table per size, routes as rows."""
    blocks = []
    for res in results:
        m, g = res["matrix"], res["gemm"]
        head = (f"### n = {res['n']:,}\n\n"
                f"- matrix: G + {res['l2']:g}·I from power-law synthetic interactions; diagonal "
                f"{m['diag_min']:.0f} .. {m['diag_median']:.0f} (median) .. {m['diag_max']:.0f}; "
                f"1-norm condition number {m['cond1']:.1e}\n"
                f"- measured peak (scipy BLAS, n×n×n, 2n³ flops): SGEMM {g['float32']['gflops']:.1f} GFLOP/s "
                f"({_secs(g['float32']['seconds'])} s), DGEMM {g['float64']['gflops']:.1f} GFLOP/s "
                f"({_secs(g['float64']['seconds'])} s); bound n³ / SGEMM = **{_secs(res['sgemm_bound_s'])} s**\n"
                f"- `method=\"auto\"` takes: float32 → {res['auto']['float32']}, "
                f"float64 → {res['auto']['float64']}; {res['num_threads']} BLAS threads; median of "
                f"{res['repeat']} alternating rounds\n\n"
                "| route | dtype | flops | seconds | GFLOP/s | % of own GEMM peak | × n³/SGEMM | "
                "peak memory | max abs err of B | rel err of P |\n"
                "|---|---|---|---|---|---|---|---|---|---|\n")
        lines = []
        for r in res["routes"]:
            if r.get("error"):
                lines.append(f"| {r['label']} | {r['dtype']} | {r['flops']} | failed: {r['error']} "
                             "| | | | | | |")
                continue
            mem = ("n/a" if r.get("peak_mib") is None
                   else f"{r['peak_mib']:.0f} MiB ({r['peak_x']:.2f}× n²·{np.dtype(r['dtype']).itemsize} B)")
            label = f"**{r['label']}**" if r["ours"] else r["label"]
            err = "0 (reference)" if r["key"] == REFERENCE else _fmt(r.get("b_max_err"), ".1e")
            lines.append(f"| {label} | {r['dtype']} | {r['flops']} | {_secs(r['seconds'])} | {r['gflops']:.1f} | "
                         f"{100 * r['peak_fraction']:.0f} % | {r['x_bound']:.2f} | {mem} | {err} | "
                         f"{_fmt(r.get('p_rel_err'), '.1e')} |")
        blocks.append(head + "\n".join(lines))
    return "\n\n".join(blocks)


# -- fit ----------------------------------------------------------------------------------------

#: the memory budget of a fit: one n×n matrix plus a quarter, plus X, plus BLAS's own buffers
BUDGET_FACTOR = 1.25
#: OpenBLAS work buffers and thread start-up: bounded per BLAS thread, they do not grow with n (2-5 MiB
#: measured for the first fit of a process on the 2-CPU benchmark machine); negligible beside a large n²,
#: but more than a quarter of a small one (MovieLens-100K: n² × 4 B = 11 MiB)
BLAS_BYTES_PER_THREAD = 4 * 2 ** 20


def fit_budget_bytes(n_items: int, itemsize: int, x_bytes: int, blas_threads: int) -> float:
    """``BUDGET_FACTOR × n² × itemsize + x_bytes + BLAS_BYTES_PER_THREAD × blas_threads``."""
    return BUDGET_FACTOR * n_items * n_items * itemsize + x_bytes + BLAS_BYTES_PER_THREAD * blas_threads


def budget_formula(itemsize: int, blas_threads: int) -> str:
    """The budget as printed beside a verdict."""
    return (f"{BUDGET_FACTOR} × n² × {itemsize} B + X + {BLAS_BYTES_PER_THREAD // 2 ** 20} MiB × "
            f"{blas_threads} BLAS threads")


def _first_fit_of_process(model: str, kwargs: Dict[str, Any]) -> None:
    """Fit the model once on a 16×8 matrix, so the measured fit does not count what a process pays once
    (lazily loaded code, BLAS threads and their buffers: ~3 MiB, a quarter of MovieLens-100K's n²)."""
    rng = np.random.default_rng(0)
    tiny = sp.csr_matrix((rng.random((16, 8)) < 0.5).astype(np.float32) + np.eye(16, 8, dtype=np.float32))
    tiny.data[:] = 1.0
    get_model_class(model)(**{**kwargs, "neighbors": None}).fit(tiny)


def bench_fit(data: str, *, model: str = EASE.name, l2: Optional[float] = None, dtype: Any = "float32",
              num_threads: Optional[int] = None, output: Optional[str] = None,
              read_kwargs: Optional[Dict[str, Any]] = None, neighbors: Optional[int] = None) -> Dict[str, Any]:
    """Fit one EASE-family model on an interactions file, timing every step.

    Steps: load (read the file), gram, inverse, scaling (from the model's
    ``fit_seconds_``) and save (to ``output``, or to a temporary file that is
    then deleted).

    Parameters
    ----------
    data : str
        Interactions file (.npz, .csv, .tsv, ...), see
        :func:`lae_fast.load_interactions`.
    model : str, default='ease'
        A model of the EASE family (``lae_fast.models.model_names(base=LinearAutoencoder)``).
    l2 : float, optional
        Ridge λ (default: the model's).
    dtype : {'float32', 'float64'}, default='float32'
    num_threads : int, optional
    output : str, optional
        Where to save the model; by default a temporary file.
    read_kwargs : dict, optional
        Passed to :func:`lae_fast.load_interactions`.

    Returns
    -------
    dict
        ``seconds`` (load, gram, inverse, scaling, save, total), the data
        shape, ``inverse_method`` and ``inverse_gflops`` (n³ / inverse time),
        ``peak_rss_mib`` (whole process, ``ru_maxrss``), ``peak_above_start_mib``
        (per step: load, fit, save, the peak RSS during the step minus the RSS
        when it started; Linux), ``budget_mib`` (:func:`fit_budget_bytes` with
        the threads the fit used),
        ``fit_peak_mib`` (the fit step's peak above its start plus X, which was
        resident before it) and ``within_budget`` (``fit_peak_mib <= budget_mib``).
    """
    family = model_names(base=LinearAutoencoder)
    if model not in family:
        raise ValueError(f"model={model!r} is not one of {', '.join(family)}")
    meter = PeakMeter()
    peak_before = peak_rss_bytes()  # resetting the kernel's mark below resets ru_maxrss too
    extra: Dict[str, Optional[int]] = {}
    kwargs: Dict[str, Any] = {"dtype": dtype, "num_threads": num_threads, "neighbors": neighbors}
    if l2 is not None:
        kwargs["l2"] = l2
    est = get_model_class(model)(**kwargs)
    n_declared = declared_n_items(data)
    if n_declared is not None:
        est.check_fit_memory(n_declared)  # before reading what a tiny npz may declare
    meter.start()
    t0 = time.perf_counter()
    inter = load_interactions(data, **(read_kwargs or {}))
    t_load = time.perf_counter() - t0
    extra["load"] = meter.extra_bytes()
    _first_fit_of_process(model, kwargs)
    meter.start()  # X is resident already: the budget adds its bytes below
    t0 = time.perf_counter()
    est.fit(inter)
    t_fit = time.perf_counter() - t0
    extra["fit"] = meter.extra_bytes()
    meter.start()
    t0 = time.perf_counter()
    if output is None:
        with tempfile.TemporaryDirectory() as tmp:
            est.save(os.path.join(tmp, "model.lae"))
    else:
        est.save(output)
    t_save = time.perf_counter() - t0
    extra["save"] = meter.extra_bytes()
    X = inter.matrix
    n = X.shape[1]
    itemsize = est.B_.dtype.itemsize
    x_bytes = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    steps = dict(est.fit_seconds_)
    seconds = {"load": t_load, "gram": steps.get("gram"), "inverse": steps.get("inverse"),
               "scaling": steps.get("scaling"), "save": t_save}
    seconds["fit_other"] = max(0.0, t_fit - sum(v for k, v in steps.items()))
    seconds["total"] = t_load + t_fit + t_save
    inv = steps.get("inverse") or 0.0
    mib = 2 ** 20
    above = {k: (None if v is None else v / mib) for k, v in extra.items()}
    res = {"data": str(data), "model": est.name, "params": est.get_params(), "dtype": est.B_.dtype.name,
           "n_users": int(X.shape[0]), "n_items": int(n), "nnz": int(X.nnz),
           "num_threads": num_threads, "seconds": seconds,
           "inverse_method": choose_spd_method(n, est.B_.dtype),
           "inverse_gflops": (n ** 3 / inv / 1e9) if inv > 0 else None,
           "peak_rss_mib": max([peak_before, peak_rss_bytes()] + [v for v in [meter.peak_bytes()] if v]) / mib,
           "peak_above_start_mib": above,
           "matrix_mib": n * n * itemsize / mib, "x_mib": x_bytes / mib,
           "blas_threads": resolve_num_threads(num_threads),
           "budget_mib": fit_budget_bytes(n, itemsize, x_bytes, resolve_num_threads(num_threads)) / mib,
           "output": output}
    res["params"]["dtype"] = est.B_.dtype.name
    res["fit_peak_mib"] = None if above["fit"] is None else above["fit"] + res["x_mib"]
    res["within_budget"] = None if res["fit_peak_mib"] is None else bool(res["fit_peak_mib"] <= res["budget_mib"])
    return res


def format_fit_report(res: Dict[str, Any]) -> str:
    """Plain-text breakdown of :func:`bench_fit`'s result."""
    s = res["seconds"]
    lines = [f"{res['model']} ({res['dtype']}) on {res['data']}: {res['n_users']:,} users x "
             f"{res['n_items']:,} items, {res['nnz']:,} interactions"]
    for key in ("load", "gram", "inverse", "scaling", "save", "fit_other", "total"):
        if s.get(key) is not None:
            extra = ""
            if key == "inverse" and res.get("inverse_gflops"):
                extra = f"  ({res['inverse_method']}, {res['inverse_gflops']:.1f} GFLOP/s counting n³)"
            lines.append(f"  {key:>9}: {s[key]:8.3f} s{extra}")
    lines.append(f"  peak RSS: {res['peak_rss_mib']:.0f} MiB (whole process)")
    above = res.get("peak_above_start_mib") or {}
    if res.get("fit_peak_mib") is not None:
        verdict = "within" if res["within_budget"] else "OVER"
        lines.append("  peak above the RSS at the start of each step: " + ", ".join(
            f"{k} {v:.0f} MiB" for k, v in above.items() if v is not None))
        lines.append(f"  fit: {above['fit']:.0f} MiB + X {res['x_mib']:.0f} MiB = {res['fit_peak_mib']:.0f} MiB, "
                     f"{verdict} the budget {budget_formula(np.dtype(res['dtype']).itemsize, res['blas_threads'])}"
                     f" = {res['budget_mib']:.0f} MiB (n×n matrix {res['matrix_mib']:.0f} MiB)")
    return "\n".join(lines)
