"""What the neighbourhood approximations cost in accuracy, on MovieLens-1M (strong generalization).

    python bench/neighbors_accuracy.py                  # EASE λ=800 and RDLAE, m = 256
    python bench/neighbors_accuracy.py --m 128 --output /tmp/acc.md

For the tuned hyper-parameters of docs/RESULTS.md (EASE λ=800; RDLAE λ=200, p=0.5, ξ=0.3):
test recall@20 / recall@50 / ndcg@100 of the dense model and of
``lae_fast.neighbors.solve_columns`` with supports of

* the top-m co-occurrence candidates (plain), G_SS from the dense G;
* refined from the top-K (K = 1.5m, the default of :func:`lae_fast.neighbors.refine_width`, and
  K = 2m), G_SS from the dense G; the first pass ranked by ``REFINE_ITERATIONS`` PCG steps (the
  default), by twice as many, and by the exact solve (``refine_iterations=0``), with the share of
  each final support that the exact first pass also keeps;
* the dense model's own choice, a ceiling for any rule: column j keeps the m largest |b_ij| √G_ii
  of the dense B (the refinement's key), solved again on them;
* refined from the top 1.5m with G_SS looked up in candidate lists W = 1.5, 2, 3 and 4 times the
  first support wide (pairs in neither list taken as 0; the route builds them 3x, LOOKUP_FACTOR).

Each as % of the dense model. Writes section ``neighbors_accuracy`` of bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import scipy.sparse as sp

import lae_fast
from lae_fast import neighbors as nb
from lae_fast.datasets import load_movielens_1m
from lae_fast.evaluation import ndcg_at_k, recall_at_k, strong_split
from _common import command_line, environment, publish

MODELS = {"EASE": dict(l2=800.0), "RDLAE": dict(l2=200.0, dropout=0.5, xi=0.3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--m", type=int, default=256)
    parser.add_argument("--output", help="write the table here instead of bench/RESULTS.md")
    args = parser.parse_args()
    X, _ = load_movielens_1m()
    split = strong_split(X, random_state=0)
    train, inputs, targets = split.train.matrix, split.test.inputs.matrix, split.test.targets.matrix
    ok = np.diff(targets.indptr) > 0
    m = args.m
    k15, k2 = nb.refine_width(m), 2 * m
    G = lae_fast.gram(train)

    def metrics(ids):
        return (recall_at_k(ids, targets, 20)[ok].mean(), recall_at_k(ids, targets, 50)[ok].mean(),
                ndcg_at_k(ids, targets, 100)[ok].mean())

    rows = []
    iters = nb.REFINE_ITERATIONS
    for name, hyper in MODELS.items():
        t0 = time.perf_counter()
        dense = lae_fast.LinearAutoencoder(**hyper).fit(train)
        ref = metrics(lae_fast.topk(inputs, dense.B, 100)[0])
        rows.append(f"| {name} | dense | {G.size:,} | " + " | ".join(f"{v:.4f}" for v in ref)
                    + f" | 100 / 100 / 100 | - | - | {time.perf_counter() - t0:.1f} |")
        print(rows[-1], flush=True)
        variants = [(f"top-{m}, dense G", G, dict(m=m)),
                    (f"refined from top-{k15}, dense G", G, dict(m=m, refine=True, k=k15)),
                    (f"refined from top-{k15}, {2 * iters} PCG steps, dense G", G,
                     dict(m=m, refine=True, k=k15, refine_iterations=2 * iters)),
                    (f"refined from top-{k15}, exact first pass, dense G", G,
                     dict(m=m, refine=True, k=k15, refine_iterations=0)),
                    ("the dense B's largest abs(b_ij) √G_ii, solved again (ceiling)", G,  # no '|': a table row
                     dict(supports=dense_choice(dense.B, G, m))),
                    (f"refined from top-{k2}, dense G", G, dict(m=m, refine=True, k=k2))]
        variants += [(f"refined from top-{k15}, lists {w}x ({int(w * (k15 + 1))})", int(w * (k15 + 1)),
                      dict(m=m, refine=True, k=k15)) for w in (1.5, 2, 3, 4)]
        solved = []
        for label, source, kw in variants:
            t0 = time.perf_counter()
            if isinstance(source, int):
                source = nb.cooccurrence_candidates(train, min(source, G.shape[0] - 1))
            with warnings.catch_warnings():  # the narrow-list warning is what this table measures
                warnings.simplefilter("ignore", RuntimeWarning)
                res = nb.solve_columns(source, **kw, **hyper)
            solved.append((label, kw, res, time.perf_counter() - t0))
        # the reference of the support share: the variant whose first pass is solved exactly
        exact = next(res.B for _, kw, res, _ in solved if kw.get("refine_iterations") == 0)
        for label, kw, res, seconds in solved:
            got = metrics(nb.topk_sparse(inputs, res.B, 100)[0])
            share = " / ".join(f"{100 * g / r:.1f}" for g, r in zip(got, ref))
            agree = f"{100 * shared_support(res.B, exact):.1f}%" if kw.get("refine") else "-"
            rows.append(f"| {name} | {label} | {res.B.nnz:,} | " + " | ".join(f"{v:.4f}" for v in got)
                        + f" | {share} | {agree} | {res.n_retried} | {seconds:.1f} |")
            print(rows[-1], flush=True)
    body = "\n".join([
        "## Neighbourhood route: what the support choice and the list width cost (MovieLens-1M strong)",
        "", f"Command: `{command_line()}`", "", environment(), "",
        f"- train {train.shape[0]:,} x {train.shape[1]:,}, {int(ok.sum()):,} test users (seed 0); m = {m}; "
        "EASE λ=800, RDLAE λ=200 p=0.5 ξ=0.3 (tuned on validation, docs/RESULTS.md)",
        "- lists: G_SS looked up in candidate lists W times the first support wide (pairs in neither list "
        "taken as 0); the route builds them 3x (LOOKUP_FACTOR) and refines from 1.5m (refine_width), "
        f"ranking the first pass by {iters} PCG steps unless it says otherwise",
        "- shared with the exact first pass: the share of the stored weights whose (item, column) the "
        "refinement with an exact first pass (same K) keeps too",
        "", "| model | support | stored weights | recall@20 | recall@50 | ndcg@100 | % of dense | shared with the "
        "exact first pass | retried columns | s |", "|---|---|---|---|---|---|---|---|---|---|", *rows])
    publish("neighbors_accuracy", body, args.output)


def dense_choice(B: np.ndarray, G: np.ndarray, m: int) -> sp.csc_matrix:
    """Column j: the m items i != j with the largest |b_ij| √G_ii of a dense B (the refinement's key)."""
    key = np.abs(B.astype(np.float64)) * np.sqrt(np.diag(G).astype(np.float64))[:, None]
    np.fill_diagonal(key, -1.0)
    top = np.argpartition(-key, m - 1, axis=0)[:m]  # rows of each column's m largest keys
    n = B.shape[0]
    return sp.csc_matrix((np.ones(top.size), (top.T.ravel(), np.repeat(np.arange(n), m))), shape=(n, n))


def shared_support(B: sp.spmatrix, ref: sp.spmatrix) -> float:
    """Share of B's stored (item, column) pairs that ``ref`` stores too."""
    a, b = sp.csc_matrix(B, copy=True), sp.csc_matrix(ref, copy=True)
    a.data[:], b.data[:] = 1.0, 1.0  # explicit zeros count as stored
    return float(a.multiply(b).sum() / a.nnz)


if __name__ == "__main__":
    main()
