"""Past the dense wall: the neighbourhood route against the dense route and against SANSA.

    python bench/bench_neighbors.py accuracy            # MovieLens-1M: dense vs m in {128, 256, 512} vs SANSA
    python bench/bench_neighbors.py l3ae                # MovieLens-1M weak: dense L3AE vs m in {128, 256, 512}
    python bench/bench_neighbors.py speed               # synthetic ML-20M / amazon-book / 1M-item shapes
    python bench/bench_neighbors.py speed --shapes ml20m amazon --repeat 1
    python bench/bench_neighbors.py gather              # ML-20M shape: G_SS from a plain vs a relabelled G; PCG steps
    python bench/bench_neighbors.py capped              # MovieLens-1M: m=256 served with its rows capped

accuracy: MovieLens-1M, strong generalization (seed 0), hyper-parameters tuned on validation in
docs/RESULTS.md (EASE λ=800; RDLAE λ=200, p=0.5, ξ=0.3), test recall_capped@20/50 and ndcg@100 of the
dense model and of the same model fitted with ``neighbors=m``; SANSA (PyPI ``sansa``, EASE only, its λ
chosen on validation at each density) at about the same number of stored weights. Each ratio to the
dense model comes with its 95% interval over the test users (paired bootstrap, the same resampled
users for both models, --boot resamples): how far the test set can tell the two apart (l3ae too).

l3ae: MovieLens-1M, weak generalization 8:1:1 (seed 0), L3AE with the hyper-parameters chosen on
validation in docs/L3AE_RESULTS.md and the embeddings of bench/reproduce_l3ae.py (default encoder),
test recall@20 and ndcg@20 of the dense model and of ``neighbors=m``.

speed: every fit runs in a fresh subprocess (time and peak RSS of that process alone), the competitors
in turn on the same cached synthetic data (bench/_cache): the dense fit where its n×n fits, the
neighbourhood fit at m=256, and SANSA (ICF factorizer, the density of our m=256 weights).

gather: the column solves of the ML-20M shape (EASE, m=256, refined; the first --columns columns) with
G_SS gathered from the dense G as X numbers the items and from the route's G, which numbers them by
popularity (``lae_fast.neighbors.RelabelledGram``), and from the route's G with twice the route's PCG
steps in the first pass (what those steps cost); the three alternate in one process, --repeat times
each, and the first two give the same B to the last bit (checked here).

capped: MovieLens-1M as in accuracy, EASE and RDLAE at m=256 (--m) served through
``Recommender(model).prune_rows(r)`` for r in --caps (each row of B, what one history item adds to a
call, keeps its r largest |weights|): the weights kept, the weights one test user's call sums (median),
and the test metrics as % of the dense model. bench/bench_serving_sparse.py times the same caps on the
amazon-book shape.

SANSA is optional (never a dependency of lae-fast): without it the SANSA rows say "not installed".
Install it for this bench (builds scikit-sparse against SuiteSparse 5.12):
apt-get install -y libsuitesparse-dev libopenblas0-pthread, then in a venv with
SUITESPARSE_INCLUDE_DIR=/usr/include/suitesparse SUITESPARSE_LIBRARY_DIR=/usr/lib/x86_64-linux-gnu:
pip install scikit-sparse==0.4.16 sansa==1.1.0 (and lae-fast itself).
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).parent))
from _common import command_line, environment, powerlaw_interactions, write_section  # noqa: E402

CACHE = Path(__file__).parent / "_cache"
SHAPES = {  # name: (users, items, interactions, label)
    "ml20m": (136_677, 20_720, 10_000_000, "ML-20M-shaped: 136,677 x 20,720, 10M"),
    "amazon": (52_643, 91_599, 3_000_000, "amazon-book-shaped: 52,643 x 91,599, 3.0M"),
    "1m": (2_000_000, 1_000_000, 60_000_000, "1M items: 2M users x 1,000,000 items, 60M"),
}
L2 = 500.0
M = 256


# -- SANSA (optional peer) ----------------------------------------------------------------------------

def sansa_available() -> Optional[str]:
    try:
        import sansa
    except ImportError:
        return None
    return sansa.__version__


def fit_sansa(X: sp.csr_matrix, l2: float, density: float, factorizer: str = "icf") -> Any:
    """SANSA with the CHOLMOD factorizer (its accurate mode, for catalogues it can factor) or ICF (its scalable
    mode), and the UMR inverter, configured as its README does."""
    from sansa import (CHOLMODGramianFactorizerConfig, ICFGramianFactorizerConfig, SANSA, SANSAConfig,
                       UMRUnitLowerTriangleInverterConfig)

    factor = (CHOLMODGramianFactorizerConfig() if factorizer == "cholmod" else
              ICFGramianFactorizerConfig(factorization_shift_step=1e-3, factorization_shift_multiplier=2.0))
    config = SANSAConfig(l2=l2, weight_matrix_density=density, gramian_factorizer_config=factor,
                         lower_triangle_inverter_config=UMRUnitLowerTriangleInverterConfig(scans=1, finetune_steps=5))
    return SANSA(config).fit(sp.csr_matrix(X, dtype=np.float32))


def sansa_weights(model: Any) -> int:
    return int(sum(w.nnz for w in model.weights))


class SansaScorer:
    """``recommend`` over SANSA's two sparse factors, with the contract lae_fast.evaluate needs."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def recommend(self, user_items: Any, N: int, *, filter_already_liked_items: bool = True, **_: Any):
        X = sp.csr_matrix(user_items, dtype=np.float32)
        S = np.asarray(self.model.forward(X).todense(), dtype=np.float64)
        if filter_already_liked_items:
            S[X.nonzero()] = -np.inf
        ids = np.argsort(-S, axis=1, kind="stable")[:, :N]
        return ids.astype(np.int32), np.take_along_axis(S, ids, axis=1).astype(np.float32)


# -- accuracy on MovieLens-1M ---------------------------------------------------------------------------

def scored_on_test(model: Any, split: Any, ks: Sequence[int]) -> Tuple[Dict[str, float], Dict[str, np.ndarray]]:
    """The test metrics' means and their per-user arrays (users with a target), from one ranking."""
    from lae_fast.evaluation import evaluate

    users = evaluate(model, split, ks=ks, on="test", per_user=True)
    return {k: float(np.mean(v)) for k, v in users.items() if "@" in k}, users


def percent_of(res: Dict[str, float], ref: Dict[str, float], keys: Sequence[str]) -> str:
    """Each metric of ``keys`` as % of the reference's, e.g. ``99.2% / 98.8%``."""
    return " / ".join(f"{100 * res[k] / ref[k]:.1f}%" for k in keys)


def table_rows(rows: List[List[str]]) -> str:
    """Markdown table rows, one per list of cells."""
    return "\n".join("| " + " | ".join(r) + " |" for r in rows) + "\n"


def ratio_interval(ours: np.ndarray, dense: np.ndarray, boot: int, seed: int = 0) -> str:
    """95% interval of mean(ours) / mean(dense) over users resampled with replacement (paired)."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, ours.size, size=(boot, ours.size))
    ratios = ours[picks].mean(axis=1) / dense[picks].mean(axis=1)
    lo, hi = np.percentile(100 * ratios, [2.5, 97.5])
    return f"{lo:.1f}–{hi:.1f}%"


def accuracy(args: argparse.Namespace) -> None:
    import lae_fast
    from lae_fast.datasets import load_movielens_1m
    from lae_fast.evaluation import evaluate, strong_split

    inter, _ = load_movielens_1m()
    split = strong_split(inter, random_state=0)
    n = split.train.shape[1]
    ks = (20, 50, 100)
    keys = ("recall_capped@20", "recall_capped@50", "ndcg@100")
    rows: List[List[str]] = []
    models = {"EASE": dict(cls=lae_fast.EASE, l2=800.0), "RDLAE": dict(cls=lae_fast.RDLAE, l2=200.0, dropout=0.5, xi=0.3)}
    dense_metrics: Dict[str, Dict[str, float]] = {}
    dense_users: Dict[str, Dict[str, np.ndarray]] = {}

    def intervals(users: Dict[str, np.ndarray], label: str) -> str:
        return " / ".join(ratio_interval(users[k], dense_users[label][k], args.boot)
                          for k in ("recall_capped@20", "ndcg@100"))

    for label, spec in models.items():
        kw = {k: v for k, v in spec.items() if k != "cls"}
        for m in [None] + list(args.m):
            t0 = time.perf_counter()
            model = spec["cls"](**kw, neighbors=m).fit(split.train)
            secs = time.perf_counter() - t0
            res, users = scored_on_test(model, split, ks)
            weights = model.B_.nnz if sp.issparse(model.B_) else n * n
            if m is None:
                dense_metrics[label], dense_users[label] = res, users
            ratio = percent_of(res, dense_metrics[label], keys)
            rows.append([label, "dense" if m is None else f"m={m}", f"{weights:,}",
                         *[f"{res[k]:.4f}" for k in keys], ratio, "-" if m is None else intervals(users, label),
                         f"{secs:.2f}"])
            print(rows[-1], flush=True)
    version = sansa_available()
    if version is None:
        rows.append(["SANSA", "not installed: skipped", "", "", "", "", "", "", ""])
    else:
        for m in args.m:
            density = (m + 1) / (2 * n)  # two factors: about our n·(m+1) weights in all
            best = None
            for l2 in args.sansa_l2:
                model = fit_sansa(split.train.matrix, l2, density, args.sansa_factorizer)
                val = evaluate(SansaScorer(model), split, ks=(100,), on="val")["ndcg@100"]
                if best is None or val > best[0]:
                    best = (val, l2, model)
            _, l2, model = best
            res, users = scored_on_test(SansaScorer(model), split, ks)
            ratio = percent_of(res, dense_metrics["EASE"], keys)
            rows.append([f"SANSA {version} ({args.sansa_factorizer}, λ={l2:g} on val)", f"density {density:.4f}",
                         f"{sansa_weights(model):,}", *[f"{res[k]:.4f}" for k in keys], ratio,
                         intervals(users, "EASE"), ""])
            print(rows[-1], flush=True)
    header = ("| model | route | stored weights | recall_capped@20 | recall_capped@50 | ndcg@100 | of dense "
              "(rc@20 / rc@50 / ndcg@100) | 95% interval of dense (rc@20 / ndcg@100) | fit s |\n"
              "|---|---|---|---|---|---|---|---|---|\n")
    body = (f"## Neighbourhood route: accuracy on MovieLens-1M (strong generalization)\n\nCommand: `{command_line()}`\n\n"
            f"{environment()}- {split.train.shape[0]:,} training users x {n:,} items; test users of the seed-0 split; "
            "hyper-parameters from docs/RESULTS.md (chosen on validation); SANSA's λ chosen on validation "
            f"among {args.sansa_l2}; SANSA rows compare with dense EASE; 95% interval: paired bootstrap over "
            f"the {len(dense_users['EASE']['ndcg@100']):,} test users with a target ({args.boot:,} resamples)\n\n"
            + header + table_rows(rows))
    write_section("bench_neighbors_accuracy", body)


def capped(args: argparse.Namespace) -> None:
    import lae_fast
    from lae_fast.datasets import load_movielens_1m
    from lae_fast.evaluation import evaluate, strong_split
    from serving_accuracy import Served

    inter, _ = load_movielens_1m()
    split = strong_split(inter, random_state=0)
    ks = (20, 50, 100)
    keys = ("recall_capped@20", "recall_capped@50", "ndcg@100")
    inputs = split.test.inputs.matrix
    rows: List[List[str]] = []
    models = {"EASE": (lae_fast.EASE, dict(l2=800.0)), "RDLAE": (lae_fast.RDLAE, dict(l2=200.0, dropout=0.5, xi=0.3))}
    for label, (cls, kw) in models.items():
        dense = evaluate(cls(**kw).fit(split.train), split, ks=ks, on="test")
        for m in args.m:
            route = lae_fast.Recommender(cls(**kw, neighbors=m).fit(split.train))
            full = route.n_weights
            for cap in [None] + list(args.caps):
                rec = route if cap is None else route.prune_rows(cap)
                lengths = rec.row_lengths
                work = np.asarray(inputs @ lengths).ravel()  # weights one call sums: its rows' lengths
                res = evaluate(Served(rec), split, ks=ks, on="test")
                ratio = percent_of(res, dense, keys)
                rows.append([label, f"m={m}", "-" if cap is None else f"{cap:,}", f"{rec.n_weights:,}",
                             f"{100 * rec.n_weights / full:.1f}%", f"{int(lengths.max()):,}",
                             f"{np.median(work[work > 0]):,.0f}", *[f"{res[k]:.4f}" for k in keys], ratio])
                print(rows[-1], flush=True)
    header = ("| model | route | rows capped at | weights | of the route's | longest row | weights summed per "
              "call (median) | recall_capped@20 | recall_capped@50 | ndcg@100 | of dense (rc@20 / rc@50 / ndcg@100) |"
              "\n|---|---|---|---|---|---|---|---|---|---|---|\n")
    body = (f"## Neighbourhood route served with capped rows: accuracy on MovieLens-1M (strong generalization)\n\n"
            f"Command: `{command_line()}`\n\n{environment()}"
            f"- {split.train.shape[0]:,} training users x {split.train.shape[1]:,} items; test users of the seed-0 "
            "split; hyper-parameters of bench_neighbors_accuracy; scores through Recommender.recommend_batch on "
            "B with every row cut to its r largest |weights| (`Recommender.prune_rows(r)`); \"weights summed\": "
            "the lengths of a test user's history rows, added up\n\n"
            + header + table_rows(rows))
    write_section("bench_neighbors_capped", body)


# -- speed and memory on synthetic shapes -----------------------------------------------------------------

def l3ae_accuracy(args: argparse.Namespace) -> None:
    """L3AE dense vs neighbourhood on MovieLens-1M weak generalization (the setting of docs/L3AE_RESULTS.md)."""
    import lae_fast
    from lae_fast.datasets import load_movielens_1m
    from lae_fast.evaluation import weak_split
    from lae_fast.text import default_encoder, embed_items

    inter, texts = load_movielens_1m(min_rating=None)  # every rating a positive, as docs/L3AE_RESULTS.md
    split = weak_split(inter, ratios=(0.8, 0.1, 0.1), random_state=0)
    encoder = default_encoder()
    E, _ = embed_items(inter.item_ids, texts, encoder)  # cached on disk after the first run
    params = dict(l2_x=0.0, l2_e=800.0, l2_f=5.0)  # chosen on validation in docs/L3AE_RESULTS.md
    keys = ("recall@20", "ndcg@20")
    rows: List[List[str]] = []
    dense: Dict[str, float] = {}
    dense_users: Dict[str, np.ndarray] = {}
    for m in [None] + list(args.m):
        t0 = time.perf_counter()
        model = lae_fast.L3AE(**params, neighbors=m).fit(split.train, E)
        secs = time.perf_counter() - t0
        res, users = scored_on_test(model, split, (20,))
        dense, dense_users = dense or res, dense_users or users
        weights = model.B_.nnz if sp.issparse(model.B_) else inter.n_items ** 2
        interval = "-" if m is None else " / ".join(ratio_interval(users[k], dense_users[k], args.boot) for k in keys)
        rows.append(["dense" if m is None else f"m={m}", f"{weights:,}", *[f"{res[k]:.4f}" for k in keys],
                     percent_of(res, dense, keys), interval, f"{secs:.2f}"])
        print(rows[-1], flush=True)
    body = (f"## Neighbourhood route: L3AE accuracy on MovieLens-1M (weak generalization)\n\n"
            f"Command: `{command_line()}`\n\n{environment()}"
            f"- {inter.n_users:,} users x {inter.n_items:,} items, {inter.nnz:,} positives (every rating), per-user "
            "random 8:1:1 split (seed 0), test set; "
            f"L3AE {params} (chosen on validation, docs/L3AE_RESULTS.md); embeddings of `Title (year). Genres: ...` "
            f"by {encoder!r}; the neighbourhood route adds each item's m/8 (at least 8) strongest text "
            f"neighbours to its support; 95% interval: paired bootstrap over the {dense_users['ndcg@20'].size:,} test "
            f"users with a target ({args.boot:,} resamples)\n\n"
            "| route | stored weights | recall@20 | ndcg@20 | of dense (recall@20 / ndcg@20) | 95% interval of dense "
            "(recall@20 / ndcg@20) | fit s |\n|---|---|---|---|---|---|---|\n"
            + table_rows(rows))
    write_section("bench_neighbors_l3ae", body)


def shape_data(name: str) -> Path:
    """The cached npz of a synthetic shape (made once)."""
    users, items, nnz, _ = SHAPES[name]
    path = CACHE / f"neighbors_{name}.npz"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        X = powerlaw_interactions(users, items, nnz, seed=0)
        sp.save_npz(path, X, compressed=False)
    return path


def child(args: argparse.Namespace) -> None:
    """One fit in this (fresh) process; prints a JSON line with its time and the process's peak RSS."""
    X = sp.load_npz(args.data).tocsr()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    if args.solver == "sansa":
        model = fit_sansa(X, args.sansa_l2[0], (args.m[0] + 1) / (2 * X.shape[1]), args.sansa_factorizer)
        weights = sansa_weights(model)
    else:
        import lae_fast

        model = lae_fast.EASE(l2=L2, neighbors=None if args.solver == "dense" else args.m[0]).fit(X)
        weights = model.B_.nnz if sp.issparse(model.B_) else X.shape[1] ** 2
    secs = time.perf_counter() - t0
    print(json.dumps({"seconds": secs, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "rss_before_fit_mib": base, "weights": weights,
                      "steps": getattr(model, "fit_seconds_", None)}))


def run_child(data: Path, solver: str, m: int, sansa_l2: float, timeout: float) -> Dict[str, Any]:
    cmd = [sys.executable, __file__, "_child", "--data", str(data), "--solver", solver, "--m", str(m),
           "--sansa-l2", str(sansa_l2), "--sansa-factorizer", "icf"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout:.0f} s"}
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": last[:160]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def speed(args: argparse.Namespace) -> None:
    from lae_fast._memory import available_memory, format_bytes

    version = sansa_available()
    rows = []
    for name in args.shapes:
        data = shape_data(name)
        users, items, nnz, label = SHAPES[name]
        solvers = ["neighbors"]
        dense_bytes = items * items * 4
        avail = available_memory() or 0
        dense_fits = dense_bytes <= 0.9 * avail
        if dense_fits:
            solvers.insert(0, "dense")
        if version is not None and name in args.sansa_shapes:
            solvers.append("sansa")
        results: Dict[str, List[Dict[str, Any]]] = {s: [] for s in solvers}
        for _ in range(args.repeat):
            for solver in solvers:
                res = run_child(data, solver, args.m[0] if args.m else M, args.sansa_l2[0], args.timeout)
                results[solver].append(res)
                print(name, solver, res, flush=True)
        def best(solver: str) -> Dict[str, Any]:
            ok = [r for r in results[solver] if "error" not in r]
            return min(ok, key=lambda r: r["seconds"]) if ok else results[solver][0]
        ref = best("neighbors")
        for solver in ["dense", "neighbors", "sansa"]:
            if solver not in results:
                why = (f"n×n float32 needs {format_bytes(dense_bytes)}, {format_bytes(avail)} available"
                       if solver == "dense" else "not installed" if version is None else "not run on this shape")
                rows.append([label, solver, "-", "-", "-", why])
                continue
            r = best(solver)
            if "error" in r:
                rows.append([label, solver, "-", "-", "-", r["error"]])
                continue
            speedup = r["seconds"] / ref["seconds"] if "seconds" in ref else float("nan")
            steps = ", ".join(f"{k} {v:.1f} s" for k, v in (r.get("steps") or {}).items())
            rows.append([label, solver if solver != "sansa" else f"SANSA {version}", f"{r['seconds']:.1f}",
                         f"{r['peak_rss_mib']:,.0f}", f"{r['weights']:,}",
                         (f"neighbors {speedup:.1f}× faster" if solver != "neighbors" else "") + (f"; {steps}" if steps else "")])
    header = "| data | solver | fit s | peak RSS MiB | stored weights | notes |\n|---|---|---|---|---|---|\n"
    body = (f"## Neighbourhood route: fit time and peak memory beside the dense route and SANSA\n\n"
            f"Command: `{command_line()}`\n\n{environment()}"
            f"- EASE λ={L2:g}; neighbourhood m={args.m[0] if args.m else M} (refined), float32; SANSA: ICF "
            f"factorizer (CHOLMOD refuses catalogues this size), λ={args.sansa_l2[0]:g}, UMR inverter, density "
            "(m+1)/(2n) (about the same stored weights)\n"
            f"- each fit in a fresh subprocess (peak RSS of that process, X included), competitors in turn, "
            f"best of {args.repeat}; synthetic power-law data (bench/_common.py), cached in bench/_cache\n\n"
            + header + table_rows(rows))
    write_section("bench_neighbors_speed_" + "_".join(args.shapes), body)  # one section per set of shapes


def gather(args: argparse.Namespace) -> None:
    from lae_fast import neighbors as nb
    from lae_fast.gram import gram_buffer
    from lae_fast.linalg import mirror_upper

    X = sp.load_npz(shape_data("ml20m")).tocsr()
    X.data[:] = 1
    n = X.shape[1]

    def dense(D):
        return mirror_upper(gram_buffer(D, np.dtype(np.float32), 2, what="G"), num_threads=2)

    order = nb.popularity_order(np.bincount(X.indices, minlength=n))
    by_popularity = nb.RelabelledGram(dense(nb.relabel_columns(X, order)), order)
    steps = nb.REFINE_ITERATIONS
    runs = {"as numbered in X": (dense(X), steps), "by popularity (the route's)": (by_popularity, steps),
            f"by popularity, {2 * steps} PCG steps": (by_popularity, 2 * steps)}
    times: Dict[str, List[float]] = {name: [] for name in runs}
    first: Dict[str, Any] = {}
    for _ in range(args.repeat):
        for name, (source, iterations) in runs.items():
            t0 = time.perf_counter()
            B = nb.solve_columns(source, l2=L2, m=M, refine=True, refine_iterations=iterations,
                                 columns=(0, args.columns)).B
            times[name].append(time.perf_counter() - t0)
            first.setdefault(name, B)
            print(name, f"{times[name][-1]:.2f} s", flush=True)
    a, b = first["as numbered in X"], first["by popularity (the route's)"]
    same = a.nnz == b.nnz and np.array_equal(a.indices, b.indices) and np.array_equal(a.data, b.data)
    base = times["as numbered in X"]
    rows = [[name, " / ".join(f"{t:.2f}" for t in ts), f"{np.median(ts):.2f}", f"{np.median(base) / np.median(ts):.2f}×"]
            for name, ts in times.items()]
    body = (f"## Neighbourhood route: gathering G_SS from a dense G, items as numbered vs by popularity\n\n"
            f"Command: `{command_line()}`\n\n{environment()}"
            f"- ML-20M-shaped synthetic data ({X.shape[0]:,} x {n:,}); EASE λ={L2:g}, m={M} refined, float32; columns "
            f"0-{args.columns - 1}; the runs alternate in one process (seconds include the candidate choice "
            f"from G, the same for all); the first pass ranked by {steps} PCG steps (the route's) unless the row says "
            f"otherwise; the first two give the same B to the last bit: {same}\n\n"
            "| G | seconds per run | median | speed-up |\n|---|---|---|---|\n"
            + table_rows(rows))
    write_section("bench_neighbors_gather", body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["accuracy", "l3ae", "speed", "gather", "capped", "_child"])
    parser.add_argument("--m", type=int, nargs="*", default=None)
    parser.add_argument("--sansa-l2", type=float, nargs="*", default=None)
    parser.add_argument("--shapes", nargs="*", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--sansa-shapes", nargs="*", default=["ml20m", "amazon"], choices=list(SHAPES))
    parser.add_argument("--sansa-factorizer", choices=["cholmod", "icf"], default=None,
                        help="SANSA's factorizer (default: cholmod for accuracy, icf for speed, as the issue measured)")
    parser.add_argument("--repeat", type=int, default=None, help="runs per competitor (speed: 1, gather: 3)")
    parser.add_argument("--columns", type=int, default=6000, help="gather: columns solved per run")
    parser.add_argument("--caps", type=int, nargs="*", default=[1024, 768, 512],
                        help="capped: most entries kept per row of B")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per fit before it is stopped")
    parser.add_argument("--boot", type=int, default=2000, help="accuracy: bootstrap resamples of the test users")
    parser.add_argument("--data", default=None)
    parser.add_argument("--solver", default=None)
    args = parser.parse_args()
    if args.part == "accuracy":
        args.m = args.m or [128, 256, 512]
        args.sansa_l2 = args.sansa_l2 or [100.0, 500.0, 1000.0, 2000.0]
        args.sansa_factorizer = args.sansa_factorizer or "cholmod"
        accuracy(args)
    elif args.part == "l3ae":
        args.m = args.m or [128, 256, 512]
        l3ae_accuracy(args)
    elif args.part == "capped":
        args.m = args.m or [M]
        capped(args)
    elif args.part == "gather":
        args.repeat = args.repeat or 3
        gather(args)
    elif args.part == "speed":
        args.repeat = args.repeat or 1
        args.m = args.m or [M]
        args.sansa_l2 = args.sansa_l2 or [10.0]
        speed(args)
    else:
        args.sansa_l2 = args.sansa_l2 or [10.0]
        args.sansa_factorizer = args.sansa_factorizer or "icf"
        child(args)


if __name__ == "__main__":
    main()
