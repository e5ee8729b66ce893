"""What the neighbourhood approximations cost in accuracy, on MovieLens-1M (strong generalization).

    python bench/neighbors_accuracy.py                  # EASE λ=800, m = 256
    python bench/neighbors_accuracy.py --m 128 --dropout 0.25 --xi 0.3

Test recall@20 / ndcg@100 of the dense model against ``lae_fast.neighbors.solve_columns``
with supports of the top-m co-occurrence candidates (plain) or refined from the top-2m,
G_SS read from the dense G (exact) or looked up in candidate lists of width W
(pairs in neither list taken as 0). Prints a table; writes nothing.
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import lae_fast
from lae_fast import neighbors as nb
from lae_fast.datasets import load_movielens_1m
from lae_fast.evaluation import ndcg_at_k, recall_at_k, strong_split
from _common import command_line, environment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--m", type=int, default=256)
    parser.add_argument("--l2", type=float, default=800.0)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--xi", type=float, default=0.0)
    parser.add_argument("--widths", type=int, nargs="*", default=[2, 4, 8], help="list widths W, in units of m")
    args = parser.parse_args()
    X, _ = load_movielens_1m()
    split = strong_split(X, random_state=0)
    train, test = split.train, split.test
    ok = np.diff(test.targets.indptr) > 0
    m, hyper = args.m, dict(l2=args.l2, dropout=args.dropout, xi=args.xi)

    def metrics(ids):
        return recall_at_k(ids, test.targets, 20)[ok].mean(), ndcg_at_k(ids, test.targets, 100)[ok].mean()

    print(environment())
    print(f"MovieLens-1M strong split: train {train.shape}, {int(ok.sum())} test users; {hyper}, m = {m}\n",
          flush=True)
    rows = []

    def row(label, ids, seconds, retried="-"):
        r20, n100 = metrics(ids)
        rows.append(f"| {label} | {r20:.4f} | {n100:.4f} | {retried} | {seconds:.1f} |")
        print(rows[-1], flush=True)

    t0 = time.perf_counter()
    dense = lae_fast.LinearAutoencoder(args.l2, dropout=args.dropout, xi=args.xi).fit(train)
    row("dense model", lae_fast.topk(test.inputs, dense.B, 100)[0], time.perf_counter() - t0)
    G = lae_fast.gram(train)
    n = G.shape[0]
    for refine in (False, True):
        what = f"refined from top-{2 * m}" if refine else f"top-{m}"
        sources = [("dense G", G)] + [(f"lists W={w * m}", w * m) for w in args.widths if w * m < n]
        for label, source in sources:
            t0 = time.perf_counter()
            if not isinstance(source, np.ndarray):
                source = nb.cooccurrence_candidates(train, source)
            with warnings.catch_warnings():  # the narrow-list warning is what this table measures
                warnings.simplefilter("ignore", RuntimeWarning)
                res = nb.solve_columns(source, m=m, refine=refine, k=2 * m, **hyper)
            seconds = time.perf_counter() - t0
            row(f"{what}, G_SS from {label}", nb.topk_sparse(test.inputs, res.B, 100)[0], seconds, res.n_retried)
    print(f"\nCommand: `{command_line()}`\n")
    print("| model | recall@20 | ndcg@100 | retried columns | seconds |\n|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
