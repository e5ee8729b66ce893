"""Recommend top-100 for many users (own items masked), scoring included on every side.

Competitors, fed the same B (random, n×n float32) and the same histories:
  - lae_fast.topk: fused sparse scoring + masking + heap selection (one kernel);
  - implicit.cpu.topk (its usual way: dense query rows x item factors, here the
    factors are Bᵀ so that query · factorsᵀ = X·B; the user's items filtered);
  - numpy/scipy: S = X @ B per batch, mask with -inf, argpartition, argsort.

    python bench/bench_rank.py            # ML-1M-shaped and ML-20M-shaped catalogues
    python bench/bench_rank.py --quick    # ML-1M-shaped only
"""
from __future__ import annotations

import argparse

import numpy as np

import lae_fast
from _common import alternate, command_line, environment, powerlaw_interactions, write_section

K = 100
BATCH = 1000


def numpy_topk(X, B, k):
    ids = np.empty((X.shape[0], k), dtype=np.int64)
    for s in range(0, X.shape[0], BATCH):
        Xb = X[s:s + BATCH]
        S = np.asarray(Xb @ B)
        rows = np.repeat(np.arange(Xb.shape[0]), np.diff(Xb.indptr))
        S[rows, Xb.indices] = -np.inf
        part = np.argpartition(-S, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(S, part, axis=1), axis=1, kind="stable")
        ids[s:s + BATCH] = np.take_along_axis(part, order, axis=1)
    return ids


def implicit_topk(X, B_T, k):
    from implicit.cpu.topk import topk

    ids = np.empty((X.shape[0], k), dtype=np.int64)
    for s in range(0, X.shape[0], BATCH):
        Xb = X[s:s + BATCH]
        ids[s:s + BATCH], _ = topk(B_T, Xb.toarray(), k, filter_query_items=Xb, num_threads=0)
    return ids


def overlap(a, b) -> float:
    """Mean share of each user's top-k that two rankings have in common."""
    return float(np.mean([len(set(x) & set(y)) / len(x) for x, y in zip(a, b)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--users", type=int, default=4000, help="users ranked per case")
    args = parser.parse_args()
    cases = [("ML-1M-shaped (3,706 items)", 6_040, 3_706, 1_000_000)]
    if not args.quick:
        cases.append(("ML-20M-shaped (20,720 items)", 136_677, 20_720, 10_000_000))
    rng = np.random.default_rng(0)
    rows = []
    for label, m, n, nnz in cases:
        X = powerlaw_interactions(m, n, nnz, seed=2)
        X = X[rng.choice(m, size=min(args.users, m), replace=False)]
        B = rng.standard_normal((n, n), dtype=np.float32)
        B_T = np.ascontiguousarray(B.T)
        res = alternate({
            "lae_fast": lambda: lae_fast.topk(X, B, K)[0],
            "implicit": lambda: implicit_topk(X, B_T, K),
            "numpy": lambda: numpy_topk(X, B, K),
        }, args.repeat)
        t = {k: v[0] for k, v in res.items()}
        agree_i = overlap(res["lae_fast"][1], res["implicit"][1])
        agree_n = overlap(res["lae_fast"][1], res["numpy"][1])
        u = X.shape[0]
        rows.append(f"| {label} | {u:,} | {X.nnz / u:.0f} | {u / t['lae_fast']:,.0f} | {u / t['implicit']:,.0f} | "
                    f"{u / t['numpy']:,.0f} | **{t['implicit'] / t['lae_fast']:.1f}×** | "
                    f"**{t['numpy'] / t['lae_fast']:.1f}×** | {agree_i:.4f} / {agree_n:.4f} |")
        print(rows[-1], flush=True)
    body = (f"## Ranking: top-{K} for many users, own items masked, scoring included\n\n"
            f"Command: `{command_line()}`\n\n{environment()}- median of {args.repeat} alternating runs; "
            f"B random float32 n×n; histories from power-law synthetic data; implicit and numpy in batches "
            f"of {BATCH} users; throughput in users/s\n\n"
            "| catalogue | users | mean history | lae_fast u/s | implicit u/s | numpy u/s | vs implicit | "
            "vs numpy | top-k overlap (implicit / numpy) |\n|---|---|---|---|---|---|---|---|---|\n"
            + "\n".join(rows))
    write_section("bench_rank", body)
    print(body)


if __name__ == "__main__":
    main()
