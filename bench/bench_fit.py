"""EASE fit end to end: lae_fast.EASE (float32) vs the reference numpy EASE, same data, one process.

The reference is what most public EASE code does: scipy Gram, ``np.linalg.inv``
in float64, divide by -diag(P), zero the diagonal. Both fits are checked to give
the same top-20 rankings on sampled users.

    python bench/bench_fit.py                      # ML-20M-shaped (136,677 x 20,720, ~10M)
    python bench/bench_fit.py --items 8000 --users 50000 --nnz 4000000
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import lae_fast
from lae_fast import resolve_num_threads
from lae_fast.solver_bench import PeakMeter, budget_formula, fit_budget_bytes
from _common import command_line, environment, peak_rss_mib, powerlaw_interactions, write_section


def reference_ease(X, l2):
    G = (X.T @ X).toarray().astype(np.float64)
    G[np.diag_indices_from(G)] += l2
    P = np.linalg.inv(G)
    B = P / (-np.diag(P))
    B[np.diag_indices_from(B)] = 0.0
    return B


def top20(X, B, rows):
    S = np.asarray(X[rows] @ B, dtype=np.float64)
    S[np.repeat(np.arange(len(rows)), np.diff(X[rows].indptr)), X[rows].indices] = -np.inf
    return np.argsort(-S, axis=1, kind="stable")[:, :20]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=136_677)
    parser.add_argument("--items", type=int, default=20_720)
    parser.add_argument("--nnz", type=int, default=10_000_000)
    parser.add_argument("--l2", type=float, default=500.0)
    args = parser.parse_args()
    X = powerlaw_interactions(args.users, args.items, args.nnz, seed=3)
    n = X.shape[1]

    meter = PeakMeter()  # peak RSS of the fit alone, BLAS included (X is already resident)
    meter.start()
    t0 = time.perf_counter()
    model = lae_fast.EASE(l2=args.l2).fit(X)
    t_lf = time.perf_counter() - t0
    fit_extra = meter.extra_bytes()
    steps = ", ".join(f"{k} {v:.1f} s" for k, v in model.fit_seconds_.items())

    t0 = time.perf_counter()
    B_ref = reference_ease(X, args.l2)
    t_ref = time.perf_counter() - t0

    rows = np.random.default_rng(0).choice(X.shape[0], size=1000, replace=False)
    a, b = top20(X, model.B, rows), top20(X, B_ref, rows)
    overlap = np.mean([len(set(x) & set(y)) / 20 for x, y in zip(a, b)])
    exact = np.mean(np.all(a == b, axis=1))
    err = float(np.max(np.abs(model.B - B_ref)))
    mib = 2**20
    dense_mib = n * n * 4 / mib
    x_bytes = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    x_mib = x_bytes / mib
    threads = resolve_num_threads(None)
    budget_mib = fit_budget_bytes(n, 4, x_bytes, threads) / mib
    if fit_extra is None:
        memory = "- peak memory of the fit: not measurable here (needs Linux /proc/self/clear_refs)\n"
    else:
        verdict = "within" if fit_extra / mib + x_mib <= budget_mib else "OVER"
        memory = (f"- peak memory of the lae_fast fit: {fit_extra / mib:.0f} MiB above the RSS before it, "
                  f"+ X {x_mib:.0f} MiB = {fit_extra / mib + x_mib:.0f} MiB: **{verdict}** the budget "
                  f"{budget_formula(4, threads)} = {budget_mib:.0f} MiB (one n×n float32 = {dense_mib:.0f} MiB)\n")
    body = (f"## EASE fit end to end: lae_fast (float32, Cholesky in place) vs reference numpy EASE\n\n"
            f"Command: `{command_line()}`\n\n{environment()}"
            f"- data: power-law synthetic, {X.shape[0]:,} users x {n:,} items, {X.nnz:,} interactions; l2={args.l2}\n"
            f"- reference: scipy `(X.T @ X).toarray()`, float64 `np.linalg.inv`, `P / -diag(P)`\n\n"
            "| fit | seconds | speed-up |\n|---|---|---|\n"
            f"| reference numpy EASE (float64) | {t_ref:.1f} | 1.0× |\n"
            f"| lae_fast.EASE (float32) | {t_lf:.1f} ({steps}) | **{t_ref / t_lf:.1f}×** |\n\n"
            f"- top-20 of 1,000 sampled users: {overlap:.4f} mean overlap, {exact:.3f} identical lists; "
            f"max |B - B_ref| = {err:.1e}\n"
            f"{memory}- peak RSS of the whole script (the reference's float64 inverse): {peak_rss_mib():.0f} MiB\n")
    write_section("bench_fit", body)
    print(body)


if __name__ == "__main__":
    main()
