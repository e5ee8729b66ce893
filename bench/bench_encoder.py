"""Text-encoder throughput: items/s embedding movie-like item texts on the CPU (no torch).

Competitors, on the same texts, same batch size and threads, run alternately:
  - the default all-MiniLM-L6-v2 (int8 weights stored, dequantised to float at run time,
    float matrix products) from the pinned packages of the ``text`` extra;
  - the same model after ``lae_fast.text.quantize_encoder`` (folded constants, then
    onnxruntime per-channel dynamic int8 quantisation: int8 matrix products).
Agreement is the cosine of each item's two embeddings.

    python bench/bench_encoder.py             # 500 texts, batch 64
    python bench/bench_encoder.py --n 2000 --repeat 5
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import alternate, command_line, environment, write_section

WORDS = ("love war space robot family crime night city heart story secret journey dark light king queen ocean "
         "island detective murder wedding summer winter school teacher soldier ghost dragon train river "
         "mountain music dancer boxer spy heist revenge friendship betrayal empire rebellion time machine").split()
GENRES = ("Action Adventure Animation Children's Comedy Crime Documentary Drama Fantasy Film-Noir Horror Musical "
          "Mystery Romance Sci-Fi Thriller War Western").split()


def movie_texts(n: int, seed: int = 0) -> list:
    """Catalogue-like texts: 'Title (year). Genres: ... . <plot of 8-40 words>.'"""
    rng = np.random.default_rng(seed)
    texts = []
    for _ in range(n):
        title = " ".join(rng.choice(WORDS, rng.integers(1, 5))).title()
        genres = ", ".join(rng.choice(GENRES, rng.integers(1, 4), replace=False))
        plot = " ".join(rng.choice(WORDS, rng.integers(8, 41)))
        texts.append(f"{title} ({rng.integers(1920, 2024)}). Genres: {genres}. A {plot}.")
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=500, help="number of texts")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--num-threads", type=int, default=None)
    args = parser.parse_args()

    from lae_fast.text import TextEncoder, default_encoder, default_model_paths, quantize_encoder

    texts = movie_texts(args.n)
    load_before = os.getloadavg()[0]
    kw = dict(batch_size=args.batch_size, num_threads=args.num_threads)
    t0 = time.perf_counter()
    base = default_encoder(**kw)
    load_s = time.perf_counter() - t0
    lengths = np.array([len(e.ids) for e in base._tokenizer.encode_batch(texts)])
    encoders = {"MiniLM int8 (default)": base}

    tmp = tempfile.TemporaryDirectory()
    note = ""
    try:
        t0 = time.perf_counter()
        qpath = quantize_encoder(base.model_path, Path(tmp.name) / "model.onnx")
        quant_s = time.perf_counter() - t0
        encoders["+ quantize_encoder (per-channel int8)"] = TextEncoder(qpath, default_model_paths()[1], **kw)
        note = f"; quantize_encoder took {quant_s:.1f} s"
    except ImportError as exc:  # onnx not installed: benchmark the default model only
        note = f"; quantized model skipped ({exc})"

    for enc in encoders.values():  # warm-up: first runs allocate arenas
        enc.encode(texts[:args.batch_size])
    res = alternate({name: (lambda e=enc: e.encode(texts)) for name, enc in encoders.items()}, args.repeat)
    ref = res["MiniLM int8 (default)"][1]
    rows = []
    for name, (sec, E) in res.items():
        c = (E * ref).sum(axis=1)
        rows.append(f"| {name} | {args.n / sec:,.1f} | {sec:.2f} | "
                    f"{res['MiniLM int8 (default)'][0] / sec:.2f}× | {c.mean():.4f} / {c.min():.4f} |")
        print(rows[-1], flush=True)
    tmp.cleanup()
    load_after = os.getloadavg()[0]

    body = (f"## Text encoder: items/s embedding {args.n} movie-like texts\n\n"
            f"Command: `{command_line()}`\n\n{environment()}"
            f"- {args.n} synthetic texts ('Title (year). Genres: ... . A <8-40 word plot>.'), "
            f"{lengths.mean():.0f} tokens on average ({lengths.min()}-{lengths.max()}); batch {args.batch_size}, "
            f"batches sorted by length; onnxruntime intra-op threads {base.num_threads}; median of "
            f"{args.repeat} alternating runs after one warm-up batch; model load {load_s:.2f} s{note}\n"
            f"- 1-minute load average {load_before:.2f} before, {load_after:.2f} after (other work on the "
            "machine slows both encoders alike; compare the ratio)\n\n"
            "| encoder | items/s | seconds | speed-up | cosine to default (mean / min) |\n|---|---|---|---|---|\n"
            + "\n".join(rows))
    write_section("bench_encoder", body)
    print(body)


if __name__ == "__main__":
    main()
