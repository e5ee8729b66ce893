"""Accuracy of a compressed B against float32: MovieLens-1M, weak generalization (all 6,040 users).

For each model, rank every test user's training items with the float32 B, the float16 and int8
copies (Recommender.compress) through Recommender.recommend_batch, and score Recall@20 / NDCG@20
(lae_fast.evaluation); the top-20 overlap is the share of each user's float32 top-20 that the
copy returns too. Two codecs that lae_fast does not ship are scored the same way from a float32
matrix holding exactly their decoded weights, to show why: bfloat16 (as many bytes as float16,
fewer bits of precision) and int8 with the diagonal inside the row scale. Writes the table between
the markers of docs/SERVING.md.

    python bench/compression_accuracy.py
"""
from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import numpy as np

from lae_fast import DLAE, EASE, Recommender, _serve
from lae_fast.compression import compress, decompress
from lae_fast.datasets import load_movielens_1m
from lae_fast.evaluation import evaluate, weak_split
from _common import command_line, environment

DOC = Path(__file__).resolve().parent.parent / "docs" / "SERVING.md"
START, END = "<!-- compression_accuracy:start -->", "<!-- compression_accuracy:end -->"
K = 20


class Served:
    """What lae_fast.evaluation.evaluate needs: recommend(user_items, N, ...) -> (ids, scores)."""

    def __init__(self, rec: Recommender):
        self.rec = rec

    def recommend(self, user_items, N=10, *, filter_already_liked_items=True, **_):
        return self.rec.recommend_batch(user_items, N, filter_already_liked_items=filter_already_liked_items)


def bfloat16(B: np.ndarray) -> np.ndarray:
    """B rounded to bfloat16 (nearest, ties to even), as float32."""
    u = np.ascontiguousarray(B, dtype=np.float32).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    return r.astype(np.uint32).view(np.float32)


def int8_diagonal_in_scale(B: np.ndarray) -> np.ndarray:
    """int8 with one scale per row taken over the whole row, diagonal included, decoded."""
    top = np.abs(B).max(axis=1, keepdims=True).astype(np.float64)
    scale = np.where(top > 0, top / 127, 1.0)
    return (np.rint(B / scale) * scale).astype(np.float32)


def label_of(model) -> str:
    params = ", ".join(f"{k}={v:g}" for k, v in model.get_params().items() if k in model.hyperparameters)
    return f"{type(model).__name__} ({params})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    inter, _ = load_movielens_1m()
    split = weak_split(inter, random_state=args.seed)
    inputs = split.test.inputs
    # the hyper-parameters tuned on validation in docs/RESULTS.md (ml-1m/weak): one zero-diagonal
    # model and one with a free diagonal
    models = [EASE(l2=800.0), DLAE(l2=400.0, dropout=0.5)]
    rows, notes = [], []
    for model in models:
        t0 = time.perf_counter()
        model.fit(split.train)
        dense = Recommender(model)
        n = dense.n_items
        served = {"float32": dense, "float16": dense.compress("float16"), "int8": dense.compress("int8"),
                  "bfloat16 (not shipped)": Recommender.from_matrix(bfloat16(model.B_)),
                  "int8, diagonal in the row scale (not shipped)":
                      Recommender.from_matrix(int8_diagonal_in_scale(model.B_))}
        ref_ids, _ = dense.recommend_batch(inputs, K)
        base = evaluate(Served(dense), split, ks=(K,))
        for label, rec in served.items():
            m = base if label == "float32" else evaluate(Served(rec), split, ks=(K,))
            ids, _ = rec.recommend_batch(inputs, K)
            overlap = np.mean([len(set(a) & set(b)) / K for a, b in zip(ids.tolist(), ref_ids.tolist())])
            nbytes = {"float32": n * n * 4, "float16": served["float16"].nbytes, "int8": served["int8"].nbytes,
                      "bfloat16 (not shipped)": n * n * 2 + 8 * n,
                      "int8, diagonal in the row scale (not shipped)": n * n + 4 * n}[label]
            vs = "—" if label == "float32" else (f"{m[f'recall@{K}'] / base[f'recall@{K}'] - 1:+.2%} / "
                                                 f"{m[f'ndcg@{K}'] / base[f'ndcg@{K}'] - 1:+.2%}")
            rows.append(f"| {label_of(model)} | {label} | {nbytes / 2 ** 20:.1f} | {m[f'recall@{K}']:.4f} | "
                        f"{m[f'ndcg@{K}']:.4f} | {vs} | {overlap:.4f} |")
        # the decoded weights of the shipped codecs, against B: what the kernel sums
        errs = []
        for codec in ("float16", "int8"):
            D = decompress(compress(model.B_, codec))
            errs.append(f"{codec} {np.abs(D - model.B_).max():.1e}")
        notes.append(f"- {label_of(model)}: largest weight error of the decoded copies {', '.join(errs)} "
                     f"(largest weight {np.abs(model.B_).max():.3f})\n")
        print(f"{model!r}: done in {time.perf_counter() - t0:.0f} s ({notes[-1].strip()})", flush=True)
    body = (
        f"Command: `{command_line()}`\n\n{environment()}"
        f"- MovieLens-1M (ratings >= 4: {inter.n_users:,} users, {inter.n_items:,} items, {inter.nnz:,} positives); "
        f"weak generalization (per-user 8:1:1, seed {args.seed}), test: {split.test.inputs.shape[0]:,} users ranked "
        f"from their training items; decode loops: {_serve.simd_level()}; generated {time.strftime('%Y-%m-%d')}\n"
        f"- *vs float32*: relative change of Recall@{K} / NDCG@{K}; *top-{K} overlap*: share of each user's float32 "
        f"top-{K} that the copy returns too; *MiB*: what a worker maps for B\n" + "".join(notes) + "\n"
        f"| model | B served | MiB | Recall@{K} | NDCG@{K} | vs float32 (R@{K} / N@{K}) | top-{K} overlap |\n"
        "|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
    text = DOC.read_text()
    block = f"{START}\n{body}{END}"
    if START in text:
        text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    DOC.write_text(text)
    print(body)


if __name__ == "__main__":
    main()
