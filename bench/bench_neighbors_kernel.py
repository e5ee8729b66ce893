"""Neighbourhood kernels (lae_fast.neighbors) on synthetic power-law data: time and peak memory.

    python bench/bench_neighbors_kernel.py                 # ML-20M- and amazon-book-shaped
    python bench/bench_neighbors_kernel.py --quick         # ML-1M-shaped only
    python bench/bench_neighbors_kernel.py --data ml20m --dtype float64

Steps per data set: candidate lists from X (width W = --lists, default 8m: the
lists are also where G_SS is looked up, and narrower lists miss too many pairs),
the per-column solves on the top-m candidates, the same with refinement (solve on
the top-K = 1.5m, keep the m largest |b_ij|, solve again), and top-20 ranking of a
batch of users against the refined B. Where a dense float32 G fits in a third of
the memory, the refined solve also runs with G_SS read from the dense G (exact),
and the relative difference of the two B and the mean overlap of the top-20 lists
they give the ranked users are printed. "peak RSS" is the process's
high-water mark after the step (cumulative: later steps can only raise it).
Prints a table; writes nothing.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg  # noqa: F401  (sp.linalg.norm)

import lae_fast
from lae_fast import neighbors as nb
from lae_fast._threads import resolve_num_threads
from lae_fast.linalg import available_memory
from _common import command_line, environment, peak_rss_mib, powerlaw_interactions

DATA = {  # name: (label, users, items, interactions)
    "ml1m": ("ML-1M-shaped", 6_040, 3_706, 1_000_000),
    "ml20m": ("ML-20M-shaped", 136_677, 20_720, 10_000_000),
    "amazon-book": ("amazon-book-shaped", 52_643, 91_599, 3_000_000),
}


def timed(func):
    """Wall seconds and the result; the CPU seconds of all threads go to ``timed.cpu``
    (on a shared machine the wall time also counts other jobs' turns on the cores)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = func()
    timed.cpu = time.process_time() - c0
    return time.perf_counter() - t0, out


def rel_diff(A, B) -> float:
    """||A − B||_F / ||B||_F of two sparse matrices."""
    return float(sp.linalg.norm(A - B) / sp.linalg.norm(B))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--data", nargs="*", choices=sorted(DATA))
    parser.add_argument("--m", type=int, default=256)
    parser.add_argument("--lists", type=int, default=None, help="candidate list width W (default 8m)")
    parser.add_argument("--l2", type=float, default=500.0)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--users", type=int, default=20_000, help="users ranked in the ranking step")
    parser.add_argument("--skip", nargs="*", default=[], choices=["plain", "refined", "dense", "rank"])
    parser.add_argument("--num-threads", type=int, default=None)
    args = parser.parse_args()
    names = args.data or (["ml1m"] if args.quick else ["ml20m", "amazon-book"])
    m, K, nt = args.m, nb.refine_width(args.m), resolve_num_threads(args.num_threads)
    W = args.lists or 8 * m
    print(environment())
    print(f"m = {m}, K = {K}, lists W = {W}, l2 = {args.l2}, {args.dtype}, {nt} threads\n", flush=True)
    rows = []
    for name in names:
        label, n_users, n_items, nnz = DATA[name]
        X = powerlaw_interactions(n_users, n_items, nnz, seed=1)
        lengths = np.diff(X.indptr).astype(np.float64)
        head = f"{label} ({n_users:,} x {n_items:,}, {X.nnz:,})"
        print(f"{head}: sum_u |x_u|^2 = {(lengths ** 2).sum():.3g}, data RSS {peak_rss_mib():.0f} MiB", flush=True)

        def step(what, seconds, extra=""):
            rows.append(f"| {head} | {what} | {seconds:.1f} | {timed.cpu:.1f} | {peak_rss_mib():.0f} | {extra} |")
            print(rows[-1], flush=True)

        t, cands = timed(lambda: nb.cooccurrence_candidates(X, W, num_threads=nt))
        step(f"candidates top-{W}", t, f"{(cands.indices >= 0).mean():.0%} of list slots filled")
        if "plain" not in args.skip:
            t, plain = timed(lambda: nb.solve_columns(cands, l2=args.l2, m=m, dtype=args.dtype, num_threads=nt))
            step(f"solves m={m}", t, f"nnz(B) {plain.B.nnz:,}, retried {plain.n_retried}")
            del plain
        refined = None
        if "refined" not in args.skip:
            t, refined = timed(lambda: nb.solve_columns(cands, l2=args.l2, m=m, refine=True, k=K,
                                                        dtype=args.dtype, num_threads=nt))
            step(f"solves m={m} refined (K={K})", t, f"retried {refined.n_retried}")
        del cands
        avail = available_memory() or 0
        if "dense" not in args.skip and refined is not None and 3 * n_items ** 2 * 4 < avail:
            t, G = timed(lambda: lae_fast.gram(X, num_threads=nt))
            step("dense float32 G (for comparison)", t)
            t, exact = timed(lambda: nb.solve_columns(G, l2=args.l2, m=m, refine=True, k=K, dtype=args.dtype,
                                                      num_threads=nt))
            cpu = timed.cpu
            diff = rel_diff(refined.B, exact.B)
            users = X[:min(args.users, n_users)]
            a, b = (nb.topk_sparse(users, B, 20, num_threads=nt)[0] for B in (refined.B, exact.B))
            overlap = np.mean([np.intersect1d(x[x >= 0], y[y >= 0]).size / 20 for x, y in zip(a, b)])
            timed.cpu = cpu
            step(f"solves m={m} refined, G_SS from dense G", t,
                 f"retried {exact.n_retried}; ‖B_lists − B_dense‖/‖B_dense‖ = {diff:.2g}, "
                 f"top-20 overlap {overlap:.3f}")
            del G, exact
        if "rank" not in args.skip and refined is not None:
            B = nb.ranking_csr(refined.B)
            users = X[:min(args.users, n_users)]
            t, _ = timed(lambda: nb.topk_sparse(users, B, 20, num_threads=nt))
            step(f"topk_sparse N=20, {users.shape[0]:,} users", t, f"{users.shape[0] / t:,.0f} users/s")
            del B
        del refined, X
    print(f"\nCommand: `{command_line()}`\n")
    print("| data | step | wall s | CPU s (all threads) | peak RSS MiB (cumulative) | notes |\n"
          "|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
