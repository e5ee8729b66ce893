"""Serving a sparse (neighbourhood) model: one user per call on an amazon-book-shaped catalogue.

The model: EASE (λ=500) fitted with ``neighbors=256`` on the amazon-book-shaped synthetic data of
bench/bench_neighbors.py (52,643 users × 91,599 items, 3.0M interactions; cached with the fitted model in
bench/_cache), a CSR B of ~257 entries per column that no dense library could hold (91,599² float32 = 31 GiB).

One query = a history of item indices -> top-20 items, own items masked, scoring included. Two query sets:
the histories of real users of the data (10-500 items; popular items, as in real traffic) and histories
drawn uniformly at random (every row a cold read: the worst case). Competitors, on the same B and the same
queries, timed in turn query by query (in every order in rotation, so no one finds the rows cached more often):

  - lae_fast, 1 thread:  Recommender.load(model).recommend_one(hist, 20, num_threads=1)  (compiled, GIL released)
  - lae_fast:            the same with the default threads (every CPU: a history that sums >= 32,768
                         weights splits its columns between them)
  - scipy gather:        s = B[hist].sum(0) on the CSR B (rows summed by scipy), own items to -inf, argpartition

    python bench/bench_serving_sparse.py
    python bench/bench_serving_sparse.py --calls 500   # quicker

A second table serves the same B with its rows capped at --caps entries (Recommender.prune_rows): a
popular item's row is long, and the cap bounds what one history item costs. A third times the B as fitted
on the data's users right after another call, after a pause and after other memory traffic: what the p50
depends on besides the kernel.
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).parent))
from _common import command_line, environment, publish  # noqa: E402
from bench_neighbors import CACHE, SHAPES, shape_data  # noqa: E402

import lae_fast  # noqa: E402

N = 20
M = 256
BUCKETS = [(10, 50), (51, 100), (101, 200), (201, 350), (351, 500)]


def fitted_model(data: Path) -> Path:
    """The neighbourhood EASE of the cached data, fitted once and cached as a model file."""
    path = CACHE / f"{data.stem}_ease{M}.lae"
    if not path.exists():
        t0 = time.perf_counter()
        X = sp.load_npz(data).tocsr()
        lae_fast.EASE(l2=500.0, neighbors=M).fit(X).save(str(path))
        print(f"fitted and saved {path} in {time.perf_counter() - t0:.0f} s", flush=True)
    return path


def scipy_gather(B: sp.csr_matrix, hist: np.ndarray, k: int) -> np.ndarray:
    s = np.asarray(B[hist].sum(axis=0)).ravel()
    s[hist] = -np.inf
    top = np.argpartition(-s, k)[:k]
    return top[np.argsort(-s[top], kind="stable")]


def histories(X: sp.csr_matrix, calls: int, rng: np.random.Generator):
    lengths = np.diff(X.indptr)
    users = np.flatnonzero((lengths >= 10) & (lengths <= 500))
    chosen = rng.choice(users, size=min(calls, users.size), replace=False)
    real = [X.indices[X.indptr[u]:X.indptr[u + 1]].astype(np.int64) for u in chosen]
    n = X.shape[1]
    uniform = [rng.choice(n, size=int(L), replace=False).astype(np.int64)
               for L in rng.integers(10, 501, size=calls)]
    return {"users of the data": real, "uniform at random": uniform}


def time_calls(calls, hists):
    """Per-call µs of every call (rows) on every history (columns) and the answers (calls x histories).

    The calls take turns in every order in rotation: two calls that read the same B find each other's
    rows in cache, so each must come first as often as the other."""
    for h in hists[:20]:  # warm every path
        for call in calls:
            call(h)
    times = np.zeros((len(calls), len(hists)))
    answers = [[None] * len(hists) for _ in calls]
    orders = list(itertools.permutations(range(len(calls))))
    for q, h in enumerate(hists):
        for c in orders[q % len(orders)]:
            t0 = time.perf_counter()
            answers[c][q] = calls[c](h)
            times[c, q] = time.perf_counter() - t0
    return times * 1e6, answers


def overlap(a, b) -> float:
    """Mean share of the top-N lists a and b have in common."""
    return float(np.mean([len(np.intersect1d(x, y)) / N for x, y in zip(a, b)]))


def capped_rows(rec, label: str, hists, caps) -> list:
    """Table rows: the B as fitted and with its rows capped (Recommender.prune_rows), timed in rotation."""
    recs = [rec] + [rec.prune_rows(c) for c in caps]
    times, answers = time_calls([lambda h, r=r: r.recommend_one(h, N)[0] for r in recs], hists)
    full = rec.n_weights
    rows = []
    for cap, r, t, ans in zip([None] + list(caps), recs, times, answers):
        lengths = r.row_lengths
        work = np.array([lengths[h].sum() for h in hists])
        rows.append(f"| {label} | {'-' if cap is None else f'{cap:,}'} | {100 * int(lengths.sum()) / full:.1f}% | "
                    f"{int(lengths.max()):,} | {np.percentile(work, 50):,.0f} | {np.percentile(t, 50):,.0f} / "
                    f"{np.percentile(t, 99):,.0f} | {overlap(ans, answers[0]):.4f} |")
    return rows


PAUSE_S = 0.002
STREAM_BYTES = 64 << 20


def cache_state_rows(rec, hists, counts) -> list:
    """Table rows: the same calls right after another call, after a pause, and after other memory traffic.

    What runs just before a call decides what of B is still in the caches (the rows of popular items
    recur from call to call) and whether the second thread is awake: a busy service sees the first,
    a quiet one the second, a process that does other work between calls the third."""
    junk = np.ones(STREAM_BYTES // 4, dtype=np.float32)
    before = {"right after another call": lambda: None,
              f"after a {PAUSE_S * 1e3:.0f} ms pause": lambda: time.sleep(PAUSE_S),
              f"after streaming {STREAM_BYTES >> 20} MiB of other data": lambda: np.add(junk, 1, out=junk)}
    times = {(name, nt): [] for name in before for nt in counts}
    keys = list(times)
    for rep in range(2):  # each condition a run of calls over every history, in turn, the order reversed once
        for name, nt in keys if rep == 0 else keys[::-1]:
            for h in hists:
                before[name]()
                t0 = time.perf_counter()
                rec.recommend_one(h, N, num_threads=nt)
                times[name, nt].append(time.perf_counter() - t0)
    return [f"| {name} | " + " | ".join(f"{np.percentile(times[name, nt], 50) * 1e6:,.0f} / "
                                          f"{np.percentile(times[name, nt], 99) * 1e6:,.0f}" for nt in counts) + " |"
            for name in before]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--caps", type=int, nargs="*", default=[2048, 1024, 512],
                        help="most entries per row of the capped copies of B (Recommender.prune_rows)")
    parser.add_argument("--output", default=None, help="write the section here instead of bench/RESULTS.md")
    args = parser.parse_args()
    data = shape_data("amazon")
    model_path = fitted_model(data)
    X = sp.load_npz(data).tocsr()
    rec = lae_fast.Recommender.load(str(model_path))
    B = lae_fast.load_model(str(model_path), mmap=False).B_.tocsr()
    rng = np.random.default_rng(0)
    lines, capped_lines, state_lines = [], [], []
    row_len = np.diff(B.indptr)
    threads = lae_fast.resolve_num_threads()
    counts = sorted({1, threads})  # thread counts of the cache-state table
    for label, hists in histories(X, args.calls, rng).items():
        (one, ours, theirs), answers = time_calls(
            [lambda h: rec.recommend_one(h, N, num_threads=1)[0], lambda h: rec.recommend_one(h, N)[0],
             lambda h: scipy_gather(B, h, N)], hists)
        assert all(np.array_equal(a, b) for a, b in zip(*answers[:2])), "threads changed the answer"
        lens = np.array([h.size for h in hists])
        work = np.array([row_len[h].sum() for h in hists])  # weights of B summed by the call
        for lo, hi in BUCKETS + [(10, 500)]:
            sel = (lens >= lo) & (lens <= hi)
            if not sel.any():
                continue
            name = f"**all ({lo}–{hi})**" if (lo, hi) == (10, 500) else f"{lo}–{hi}"
            p50 = [np.percentile(t[sel], 50) for t in (one, ours, theirs)]
            p99 = [np.percentile(t[sel], 99) for t in (one, ours, theirs)]
            cells = " | ".join(f"{a:,.0f} / {b:,.0f}" for a, b in zip(p50, p99))
            lines.append(f"| {label} | {name} | {int(sel.sum()):,} | {np.percentile(work[sel], 50):,.0f} | "
                         f"{cells} | {p50[2] / p50[1]:.1f}× |")
        lines.append(f"| {label} | top-{N} overlap lae_fast vs scipy | | | | {overlap(answers[1], answers[2]):.4f} "
                     "| | |")
        capped_lines += capped_rows(rec, label, hists, args.caps)
        if label == "users of the data":  # the traffic whose rows recur from call to call
            state_lines = cache_state_rows(rec, hists, counts)
    per_col = B.nnz / B.shape[0]
    body = (f"## Serving a sparse neighbourhood model: one user per call, {SHAPES['amazon'][3]}\n\n"
            f"Command: `{command_line()}`\n\n{environment()}"
            f"- model: EASE λ=500, neighbors={M}, fitted on the synthetic data of bench/bench_neighbors.py; "
            f"B {B.shape[0]:,}×{B.shape[1]:,} CSR, {B.nnz:,} weights ({per_col:.0f} per row), "
            f"{(B.data.nbytes + B.indices.nbytes + B.indptr.nbytes) / 2 ** 20:,.0f} MiB\n"
            f"- lae_fast with 1 thread and with the default {threads} (every CPU; only a history that sums at "
            "least 32,768 weights splits its columns between them, with the same answer, "
            "checked call by call)\n"
            f"- top-{N}, own items masked, scoring included; p50 / p99 of the per-call wall time in µs (Python "
            "call included), the three timed in turn query by query, in every order in rotation; \"weights "
            "summed\": the p50 of the number of entries of B in the history's rows, the work of one call (a "
            "popular item's row is long)\n\n"
            f"| histories | length | calls | weights summed p50 | lae_fast 1 thread p50 / p99 µs "
            f"| lae_fast {threads} threads p50 / p99 µs | scipy gather p50 / p99 µs "
            f"| lae_fast ({threads} threads) vs scipy, p50 |\n"
            "|---|---|---|---|---|---|---|---|\n" + "\n".join(lines) + "\n\n"
            f"The same B with its rows capped (`Recommender.prune_rows(r)`: each row, what one history item adds "
            f"to a call, keeps its r largest |weights|), {threads} threads, the B as fitted and its capped copies "
            "timed in turn query by query (in every order in rotation); overlap: the share of the top-20 of the B "
            "as fitted that the capped copy returns too (their accuracy on MovieLens-1M: section "
            "bench_neighbors_capped)\n\n"
            "| histories | rows capped at | weights kept | longest row | weights summed p50 | p50 / p99 µs "
            "| top-20 overlap with the B as fitted |\n"
            "|---|---|---|---|---|---|---|\n" + "\n".join(capped_lines) + "\n\n"
            "What the p50 depends on: the B as fitted, the data's users, each call timed right after another "
            f"call, after a {PAUSE_S * 1e3:.0f} ms pause (the second thread and the cores idle), and after "
            f"streaming {STREAM_BYTES >> 20} MiB of other data (the rows of B that recur from call to call "
            "pushed out of the caches); each condition a run of calls over every history, the runs in turn, "
            "twice (the second time in reverse order)\n\n"
            "| just before the call | " + " | ".join(f"{nt} thread{'s' if nt > 1 else ''} p50 / p99 µs"
                                                      for nt in counts) + " |\n"
            "|---|" + "---|" * len(counts) + "\n" + "\n".join(state_lines) + "\n")
    publish("bench_serving_sparse", body, args.output)


if __name__ == "__main__":
    main()
