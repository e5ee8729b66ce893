"""L3AE fit: lae_fast (one n×n buffer, low-rank text term) vs the literal two-inverse formulation.

Competitors, fed the same X (power-law synthetic) and the same random unit-norm embeddings:
  - reference: docs/MODELS.md §2 as the authors' formulation computes it, all float64 —
    G = (XᵀX).toarray(), P_F = inv(FᵀF + λ_F I), S = I − P_F·diag(1/diag P_F),
    P = inv(G + (λ_X+λ_E) I), P·S (an n×n×n product), then B;
  - lae_fast.L3AE (float32, and float64 for a tight agreement check): Gram kernel, one
    in-place Cholesky inverse, M = (FFᵀ + λ_F I_d)⁻¹ and two n×n×d products (docs/MODELS.md §2).

Both timings include the Gram matrix. Peak memory is traced (tracemalloc) in one extra,
untimed call of each.

    python bench/bench_l3ae.py                # n = 5,000 items, d = 384
    python bench/bench_l3ae.py --n 8000       # adds n = 8,000
    python bench/bench_l3ae.py --base-n 1500  # smoke test
"""
from __future__ import annotations

import argparse
import tracemalloc

import numpy as np

import lae_fast
from _common import alternate, command_line, environment, powerlaw_interactions, write_section

L2_X, L2_E, L2_F = 300.0, 100.0, 1.0


def reference_l3ae(X, E, l2_x, l2_e, l2_f):
    """Two dense float64 inverses and P @ S, as the published formulation does."""
    n = X.shape[1]
    G = (X.T @ X).toarray().astype(np.float64)
    F = E.T.astype(np.float64)
    P_F = np.linalg.inv(F.T @ F + l2_f * np.eye(n))
    S = np.eye(n) - P_F / np.diag(P_F)[None, :]
    del P_F
    P = np.linalg.inv(G + (l2_x + l2_e) * np.eye(n))
    del G
    PS = P @ S
    B = l2_e * PS - P * ((1.0 + l2_e * np.diag(PS)) / np.diag(P))[None, :]
    np.fill_diagonal(B, 0.0)
    return B


def traced_peak_mib(func) -> float:
    tracemalloc.start()
    try:
        func()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def max_rel_diff(a, ref) -> float:
    """max |a − ref| / max |ref| over all entries of B."""
    return float(np.abs(np.asarray(a, np.float64) - ref).max() / np.abs(ref).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, action="append", default=[], help="extra item counts (repeatable)")
    parser.add_argument("--base-n", type=int, default=5_000, help="the always-run item count")
    parser.add_argument("--d", type=int, default=384, help="embedding dimension")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-memory", action="store_true", help="skip the traced peak-memory runs")
    args = parser.parse_args()
    # warm-up outside the timings: lazy imports and the thread-pool controller (first use ~1-2 s)
    X0 = powerlaw_interactions(200, 50, 1000, seed=0)
    E0 = np.random.default_rng(0).normal(size=(50, 8))
    for dtype in (np.float32, np.float64):
        lae_fast.L3AE(1.0, 1.0, 1.0, dtype=dtype).fit(X0, E0)
    rows = []
    for n in [args.base_n] + args.n:
        m, nnz = 8 * n, 60 * n  # ~60 interactions per item, power-law popularity
        X = powerlaw_interactions(m, n, nnz, seed=1)
        E = np.random.default_rng(2).normal(size=(n, args.d))
        E /= np.linalg.norm(E, axis=1, keepdims=True)
        repeat = 1 if n > 6_000 else args.repeat
        res = alternate({
            "reference": lambda: reference_l3ae(X, E, L2_X, L2_E, L2_F),
            "f32": lambda: lae_fast.L3AE(L2_X, L2_E, L2_F).fit(X, E),
            "f64": lambda: lae_fast.L3AE(L2_X, L2_E, L2_F, dtype=np.float64).fit(X, E),
        }, repeat)
        (t_ref, B_ref), (t32, m32), (t64, m64) = res["reference"], res["f32"], res["f64"]
        d32, d64 = max_rel_diff(m32.B_, B_ref), max_rel_diff(m64.B_, B_ref)
        steps = ", ".join(f"{k} {v:.2f}" for k, v in m32.fit_seconds_.items())
        del res, m32, m64, B_ref
        if args.no_memory:
            mem = ["–"] * 3
        else:
            mem = [f"{traced_peak_mib(f):,.0f}" for f in (
                lambda: reference_l3ae(X, E, L2_X, L2_E, L2_F),
                lambda: lae_fast.L3AE(L2_X, L2_E, L2_F).fit(X, E),
                lambda: lae_fast.L3AE(L2_X, L2_E, L2_F, dtype=np.float64).fit(X, E))]
        rows.append(f"| {n:,} × d={args.d} ({X.nnz:,} nnz) | {t_ref:.2f} | {t32:.2f} | "
                    f"**{t_ref / t32:.1f}×** | {t64:.2f} | **{t_ref / t64:.1f}×** | "
                    f"{mem[0]} / {mem[1]} / {mem[2]} | {d32:.1e} / {d64:.1e} | {steps} |")
        print(rows[-1], flush=True)
    body = (f"## L3AE fit: `lae_fast.L3AE` vs the two-inverse reference formulation\n\n"
            f"Command: `{command_line()}`\n\n{environment()}"
            f"- median of {args.repeat} alternating runs (1 run for n > 6,000); X: power-law synthetic, "
            f"8n users, ~60n interactions; E: random unit-norm rows; λ_X={L2_X}, λ_E={L2_E}, λ_F={L2_F}\n"
            "- reference: float64 `np.linalg.inv` of FᵀF+λ_F I and of G+(λ_X+λ_E)I, then `P @ S` (n×n×n); "
            "lae_fast: one n×n buffer, Cholesky inverse + two n×n×d GEMMs; both include the Gram\n"
            "- peak memory: tracemalloc peak of one extra call each (numpy buffers), MiB; "
            "agreement: max|B − B_ref| / max|B_ref|\n\n"
            "| items × dim | reference s | lae_fast f32 s | speed-up | lae_fast f64 s | speed-up | "
            "peak MiB ref / f32 / f64 | max rel diff f32 / f64 | f32 steps (s) |\n"
            "|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows))
    write_section("bench_l3ae", body)
    print(body)


if __name__ == "__main__":
    main()
