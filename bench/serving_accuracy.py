"""Accuracy cost of serving from a pruned B: MovieLens-100K, EASE, strong generalization.

For each split seed: fit EASE on the training users, then rank the test users'
fold-in histories with the dense B and with B pruned to m entries per column
(by |value| and by value), through lae_fast.Recommender.recommend_batch, and
score Recall@20 / NDCG@20 (lae_fast.evaluation). Writes the table between the
markers of docs/SERVING.md.

    python bench/serving_accuracy.py             # 10 seeds, m in 10..1000
"""
from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import numpy as np

from lae_fast import EASE, Recommender
from lae_fast.datasets import load_movielens_100k
from lae_fast.evaluation import evaluate, strong_split
from _common import command_line, environment

DOC = Path(__file__).resolve().parent.parent / "docs" / "SERVING.md"
START, END = "<!-- serving_accuracy:start -->", "<!-- serving_accuracy:end -->"


class Served:
    """What lae_fast.evaluation.evaluate needs: recommend(user_items, N, ...) -> (ids, scores)."""

    def __init__(self, rec: Recommender):
        self.rec = rec

    def recommend(self, user_items, N=10, *, filter_already_liked_items=True, **_):
        return self.rec.recommend_batch(user_items, N, filter_already_liked_items=filter_already_liked_items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--l2", type=float, default=50.0)
    parser.add_argument("--heldout", type=int, default=100, help="users per validation/test set")
    parser.add_argument("--m", default="10,20,50,100,200,500,1000")
    args = parser.parse_args()
    ms = [int(v) for v in args.m.split(",")]
    inter, _ = load_movielens_100k()
    n = inter.n_items
    keys = ["recall@20", "ndcg@20", "recall@50"]
    results = {("dense", None): []}
    overlap = {}
    for seed in range(args.seeds):
        split = strong_split(inter, n_heldout=args.heldout, random_state=seed)
        model = EASE(l2=args.l2).fit(split.train)
        dense = Recommender(model)
        inputs = split.test.inputs
        ref_ids, _ = dense.recommend_batch(inputs, 20)
        results[("dense", None)].append(evaluate(Served(dense), split, ks=(20, 50)))
        for by in ("abs", "value"):
            for m in ms:
                rec = dense.prune(m, by=by)
                results.setdefault((by, m), []).append(evaluate(Served(rec), split, ks=(20, 50)))
                ids, _ = rec.recommend_batch(inputs, 20)
                same = np.mean([len(set(a) & set(b)) / 20 for a, b in zip(ids.tolist(), ref_ids.tolist())])
                overlap.setdefault((by, m), []).append(same)
                if seed == 0:
                    overlap.setdefault(("mib", by, m), rec.nbytes / 2 ** 20)
        print(f"seed {seed} done", flush=True)
    mean = {k: {key: float(np.mean([r[key] for r in v])) for key in keys} for k, v in results.items()}
    sem = {k: {key: float(np.std([r[key] for r in v], ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0
               for key in keys} for k, v in results.items()}
    base = mean[("dense", None)]
    dense_mib = n * n * 4 / 2 ** 20
    rows = [f"| dense B | {n:,} (100%) | {dense_mib:.1f} | {base['recall@20']:.4f} ± {sem[('dense', None)]['recall@20']:.4f} "
            f"| {base['ndcg@20']:.4f} ± {sem[('dense', None)]['ndcg@20']:.4f} | {base['recall@50']:.4f} | — | 1.000 |"]
    for by in ("abs", "value"):
        for m in ms:
            r = mean[(by, m)]
            keep = min(m, n)
            # paired over seeds: the same split is scored dense and pruned
            rel = [(p["recall@20"] / d["recall@20"] - 1, p["ndcg@20"] / d["ndcg@20"] - 1)
                   for p, d in zip(results[(by, m)], results[("dense", None)])]
            rel_mean = np.mean(rel, axis=0)
            rel_sem = np.std(rel, axis=0, ddof=1) / np.sqrt(len(rel)) if len(rel) > 1 else np.zeros(2)
            label = "\\|value\\|" if by == "abs" else "value"  # escaped: a table cell
            rows.append(
                f"| top-m by {label}, m={m} | {keep:,} ({keep / n:.1%}) | "
                f"{overlap[('mib', by, m)]:.1f} | {r['recall@20']:.4f} | {r['ndcg@20']:.4f} | {r['recall@50']:.4f} | "
                f"{rel_mean[0]:+.1%} ± {rel_sem[0]:.1%} / {rel_mean[1]:+.1%} ± {rel_sem[1]:.1%} | "
                f"{np.mean(overlap[(by, m)]):.3f} |")
    body = (
        f"Command: `{command_line()}`\n\n{environment()}"
        f"- MovieLens-100K (ratings >= 4: {inter.n_users} users, {n:,} items, {inter.nnz:,} positives); "
        f"EASE l2={args.l2:g}; strong generalization, {args.heldout} test users per split (fold-in 80% / "
        f"targets 20%); mean over {args.seeds} split seeds (± standard error for the dense row); "
        f"generated {time.strftime('%Y-%m-%d')}\n"
        "- *vs dense*: relative change of Recall@20 / NDCG@20, paired by split (± standard error over "
        "seeds); *top-20 overlap*: share of each test user's "
        "dense top-20 that the pruned B also returns; *MiB*: what a worker reads (dense n² float32, or the "
        "CSR arrays)\n\n"
        "| B served | entries kept per column | MiB | Recall@20 | NDCG@20 | Recall@50 | vs dense (R@20 / N@20) "
        "| top-20 overlap |\n|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
    text = DOC.read_text()
    block = f"{START}\n{body}{END}"
    text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    DOC.write_text(text)
    print(body)


if __name__ == "__main__":
    main()
