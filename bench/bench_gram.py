"""Gram G = XᵀX: lae_fast.gram vs scipy ``(X.T @ X).toarray()``, same input, one process.

    python bench/bench_gram.py            # small case + ML-20M-shaped (136k x 20k, ~10M)
    python bench/bench_gram.py --quick    # small cases only
"""
from __future__ import annotations

import argparse

import numpy as np

import lae_fast
from _common import alternate, command_line, environment, peak_rss_mib, powerlaw_interactions, write_section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cases = [("small (10k x 2k, 200k)", 10_000, 2_000, 200_000)]
    cases.append(("ML-1M-shaped (6k x 3.7k, 1M)", 6_040, 3_706, 1_000_000))
    if not args.quick:
        cases.append(("ML-20M-shaped (136,677 x 20,720, ~10M)", 136_677, 20_720, 10_000_000))
    rows = []
    for label, m, n, nnz in cases:
        X = powerlaw_interactions(m, n, nnz, seed=1)
        repeat = 1 if n > 10_000 else args.repeat
        res = alternate({
            "scipy": lambda: (X.T @ X).toarray(),
            "lae_fast": lambda: lae_fast.gram(X, dtype=np.float32),
        }, repeat)
        (t_sp, G_sp), (t_lf, G_lf) = res["scipy"], res["lae_fast"]
        equal = bool(np.array_equal(G_sp.astype(np.float32), G_lf))
        rows.append(f"| {label} | {X.nnz:,} | {t_sp:.3f} | {t_lf:.3f} | **{t_sp / t_lf:.1f}×** | {equal} |")
        print(rows[-1], flush=True)
        del G_sp, G_lf, res
    body = (f"## Gram: `lae_fast.gram` vs scipy `(X.T @ X).toarray()`\n\n"
            f"Command: `{command_line()}`\n\n{environment()}- median of {args.repeat} alternating runs "
            f"(1 run for the 20k-item case); power-law item popularity; float32 output; "
            f"peak RSS of the whole script {peak_rss_mib():.0f} MiB\n\n"
            "| data | nnz | scipy s | lae_fast s | speed-up | identical |\n|---|---|---|---|---|---|\n"
            + "\n".join(rows))
    write_section("bench_gram", body)
    print(body)


if __name__ == "__main__":
    main()
