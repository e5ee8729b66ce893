"""Single-user serving: Recommender.recommend_one latency and throughput vs the numpy way.

One query = one history of item indices -> top-N items (own items masked), N = 20,
scoring included. Competitors, on the same B and the same queries, timed in turn
query by query (lae_fast, numpy, float16, int8, lae_fast, numpy, ...):

  - lae_fast dense:  Recommender(B).recommend_one(hist, N)  (GIL released, one thread)
  - numpy gather:    s = B[hist].sum(0); s[hist] = -inf; argpartition; sort the N
  - lae_fast float16 / int8: Recommender(B).compress(dtype).recommend_one(hist, N):
                     2 or 1 byte per weight, decoded in the kernel (SIMD level printed)
  - numpy x @ B:     x dense 0/1 vector, s = x @ B (BLAS GEMV over all of B), same
                     selection; reads the whole B per query, so only --xb-calls calls
  - lae_fast pruned: Recommender(B).prune(m).recommend_one(hist, N) for a few m

Throughput: the same queries from 1 and 2 threads (ThreadPoolExecutor).

    python bench/bench_serving.py                 # 20,720 items, 10,000 calls each
    python bench/bench_serving.py --quick         # 5,000 items, 2,000 calls
"""
from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from lae_fast import Recommender, _serve
from lae_fast.serving import prune
from _common import command_line, environment, peak_rss_mib, publish

N = 20
CODECS = ("float16", "int8")
BUCKETS = [(10, 50), (51, 100), (101, 200), (201, 350), (351, 500)]


def numpy_gather(B, hist, k):
    s = B[hist].sum(axis=0)
    s[hist] = -np.inf
    part = np.argpartition(-s, k)[:k]
    order = part[np.lexsort((part, -s[part]))]
    return order, s[order]


def numpy_gemv(B, hist, k):
    x = np.zeros(B.shape[0], dtype=B.dtype)
    x[hist] = 1
    s = x @ B
    s[hist] = -np.inf
    part = np.argpartition(-s, k)[:k]
    order = part[np.lexsort((part, -s[part]))]
    return order, s[order]


def percentiles(times_s):
    t = np.asarray(times_s) * 1e6
    return float(np.percentile(t, 50)), float(np.percentile(t, 99))


def throughput(func, queries, threads):
    """Queries per second with `threads` callers sharing the queries."""
    chunks = [queries[t::threads] for t in range(threads)]

    def run(chunk):
        for h in chunk:
            func(h)

    with ThreadPoolExecutor(threads) as pool:
        t0 = time.perf_counter()
        list(pool.map(run, chunks))
        return len(queries) / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=20_720)
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--xb-calls", type=int, default=50, help="calls of the x @ B path (reads all of B)")
    parser.add_argument("--prune", default="100,500,2000", help="m values for pruned B")
    parser.add_argument("--threads", default="1,2", help="calling threads for the throughput table")
    parser.add_argument("--output", default=None, help="write the section here instead of bench/RESULTS.md")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.items, args.calls, args.xb_calls = 5_000, 2_000, 20
    n = args.items
    load_before = os.getloadavg()[0]
    rng = np.random.default_rng(0)
    print(f"building a random {n}x{n} float32 B ...", flush=True)
    B = rng.standard_normal((n, n), dtype=np.float32)
    lengths = rng.integers(10, 501, size=args.calls)
    queries = [np.sort(rng.choice(n, size=int(L), replace=False)).astype(np.int64) for L in lengths]
    rec = Recommender.from_matrix(B)
    compressed = {}
    for codec in CODECS:
        t0 = time.perf_counter()
        compressed[codec] = (rec.compress(codec), time.perf_counter() - t0)
        print(f"compressed to {codec} in {compressed[codec][1]:.1f} s", flush=True)
    for h in queries[:50]:  # warm-up (page faults, allocator)
        rec.recommend_one(h, N)
        numpy_gather(B, h, N)
        for crec, _ in compressed.values():
            crec.recommend_one(h, N)

    # -- latency: dense, numpy gather, float16, int8, interleaved query by query ------------------
    t_lae = np.empty(args.calls)
    t_np = np.empty(args.calls)
    t_c = {codec: np.empty(args.calls) for codec in CODECS}
    agree = 0
    agree_c = dict.fromkeys(CODECS, 0)
    for i, h in enumerate(queries):
        t0 = time.perf_counter()
        ids, _ = rec.recommend_one(h, N)
        t1 = time.perf_counter()
        ref, _ = numpy_gather(B, h, N)
        t2 = time.perf_counter()
        t_lae[i], t_np[i] = t1 - t0, t2 - t1
        agree += len(set(ids.tolist()) & set(ref.tolist()))
        for codec, (crec, _) in compressed.items():
            t0 = time.perf_counter()
            cids, _ = crec.recommend_one(h, N)
            t_c[codec][i] = time.perf_counter() - t0
            agree_c[codec] += len(set(cids.tolist()) & set(ids.tolist()))
    overlap = agree / (N * args.calls)
    overlap_c = {codec: v / (N * args.calls) for codec, v in agree_c.items()}
    print(f"dense: p50 {percentiles(t_lae)[0]:.0f} us, numpy p50 {percentiles(t_np)[0]:.0f} us, "
          + ", ".join(f"{c} p50 {percentiles(t)[0]:.0f} us" for c, t in t_c.items()), flush=True)
    xb = []
    for h in queries[:args.xb_calls]:
        t0 = time.perf_counter()
        numpy_gemv(B, h, N)
        xb.append(time.perf_counter() - t0)

    # -- pruned B ------------------------------------------------------------------------------
    pruned = {}
    for m in [int(v) for v in args.prune.split(",") if v]:
        t0 = time.perf_counter()
        P = prune(B, m)
        t_prune = time.perf_counter() - t0
        prec = Recommender.from_matrix(P)
        for h in queries[:50]:
            prec.recommend_one(h, N)
        ts = np.empty(args.calls)
        for i, h in enumerate(queries):
            t0 = time.perf_counter()
            prec.recommend_one(h, N)
            ts[i] = time.perf_counter() - t0
        pruned[m] = (prec, ts, t_prune, prec.nbytes)
        print(f"pruned m={m}: p50 {percentiles(ts)[0]:.0f} us (prune took {t_prune:.1f} s)", flush=True)

    # -- throughput, 1 and 2 calling threads ------------------------------------------------------
    sub = queries[:min(len(queries), 2000)]
    threads = [int(t) for t in args.threads.split(",")]
    thr = {}
    competitors = [("lae_fast dense", lambda h: rec.recommend_one(h, N)), ("numpy gather", lambda h: numpy_gather(B, h, N))]
    competitors += [(f"lae_fast {codec}", (lambda r: lambda h: r.recommend_one(h, N))(v[0]))
                    for codec, v in compressed.items()]
    competitors += [(f"lae_fast pruned m={m}", (lambda r: lambda h: r.recommend_one(h, N))(v[0]))
                    for m, v in pruned.items()]
    for name, func in competitors:
        thr[name] = [throughput(func, sub, t) for t in threads]
        print(f"{name}: " + " / ".join(f"{v:,.0f}" for v in thr[name]) + " q/s", flush=True)

    # -- report ----------------------------------------------------------------------------------
    row_bytes = n * 4
    bw = float(np.median(lengths * row_bytes / t_lae))  # bytes of B rows per second, dense path
    rows = []
    for lo, hi in BUCKETS + [(10, 500)]:
        sel = (lengths >= lo) & (lengths <= hi)
        if not sel.any():
            continue
        everything = (lo, hi) == (10, 500)
        a50, a99 = percentiles(t_lae[sel])
        b50, b99 = percentiles(t_np[sel])
        c = {codec: percentiles(t[sel]) for codec, t in t_c.items()}
        mean_len = lengths[sel].mean()
        bold = (lambda v: f"**{v}**") if everything else (lambda v: v)
        cells = [bold(f"{lo}–{hi}" if not everything else "all (10–500)"), f"{sel.sum():,}",
                 f"{mean_len * row_bytes / 1e6:.1f}", f"{bold(f'{a50:,.0f}')} / {a99:,.0f}"]
        cells += [f"{bold(f'{c[codec][0]:,.0f}')} / {c[codec][1]:,.0f}" for codec in CODECS]
        cells += [f"{b50:,.0f} / {b99:,.0f}", f"{b50 / a50:.1f}×"]
        cells += [f"**{b50 / c[codec][0]:.1f}×**" for codec in CODECS]
        cells.append(f"{mean_len * row_bytes / (a50 * 1e-6) / 1e9:.1f}")
        for m, (_, ts, _, _) in pruned.items():
            p50, p99 = percentiles(ts[sel])
            cells.append(f"{bold(f'{p50:,.0f}')} / {p99:,.0f}")
        rows.append("| " + " | ".join(cells) + " |")
    pruned_heads = "".join(f" pruned m={m} p50 / p99 µs |" for m in pruned)
    header = ("| history length | calls | dense B read per query (MB) | lae_fast dense p50 / p99 µs | "
              + "".join(f"lae_fast {codec} p50 / p99 µs | " for codec in CODECS)
              + "numpy gather p50 / p99 µs | dense vs numpy (p50) | "
              + "".join(f"{codec} vs numpy (p50) | " for codec in CODECS)
              + "effective GB/s (dense) |" + pruned_heads + "\n"
              "|" + "---|" * (7 + 2 * len(CODECS) + len(pruned)))
    c50 = {codec: percentiles(t)[0] for codec, t in t_c.items()}
    xb50, xb99 = percentiles(xb)
    scaling = [v[-1] / v[0] for v in thr.values()]
    scaling_note = ("" if len(threads) < 2 else
                    f"{threads[-1]} calling threads served {min(scaling):.2f}–{max(scaling):.2f}× the queries/s of "
                    "one thread; scaling needs a free core per calling thread, so it depends on the machine's "
                    f"load (1-minute load average {os.getloadavg()[0]:.1f} at the end).")
    trows = "\n".join(f"| {name} | " + " | ".join(f"{x:,.0f}" for x in v) + " | "
                      + " / ".join(f"{x / v[0]:.2f}×" for x in v[1:]) + " |" for name, v in thr.items())
    sizes = ", ".join(f"m={m}: {v[3] / 2**20:,.0f} MiB, pruned in {v[2]:.1f} s" for m, v in pruned.items())
    body = (
        f"## Serving: one user per call, top-{N}, own items masked, scoring included\n\n"
        f"Command: `{command_line()}`\n\n{environment()}"
        f"- machine load average (1 min) {load_before:.1f} at the start and {os.getloadavg()[0]:.1f} at the "
        f"end, on {os.cpu_count()} CPUs shared with other jobs: the p99 column is mostly scheduling noise\n"
        f"- B: random float32 {n:,}×{n:,} ({B.nbytes / 2**30:.2f} GiB, C-ordered); {args.calls:,} histories, "
        f"lengths uniform in 10–500, items uniform at random (every row is a cold read from DRAM: the worst "
        f"case; popular rows would be cache hits in real traffic)\n"
        f"- competitors timed in turn query by query; p50 / p99 of the per-call wall time in µs, Python "
        f"call included; top-{N} overlap lae_fast vs numpy: {overlap:.4f} (summation order differs)\n"
        f"- compressed copies (`Recommender.compress`, decode loops: {_serve.simd_level()}): "
        + ", ".join(f"{codec} {compressed[codec][0].nbytes / 2**30:.2f} GiB, made in {compressed[codec][1]:.1f} s, "
                    f"top-{N} overlap with the dense answer {overlap_c[codec]:.4f}" for codec in CODECS)
        + f" (on a random B; accuracy on a real model: docs/SERVING.md); goals for all (10–500): p50 <= 400 µs "
        f"and >= 10x numpy: " + ", ".join(f"{codec} {c50[codec]:,.0f} µs, {b50 / c50[codec]:.1f}x" for codec in CODECS)
        + "\n"
        f"- numpy `x @ B` (dense 0/1 x, GEMV over all of B): p50 {xb50:,.0f} µs / p99 {xb99:,.0f} µs over "
        f"{len(xb)} calls, reading {B.nbytes / 2**30:.2f} GiB each time\n"
        f"- pruned B ({sizes}): scores from the m largest-|value| entries per column (not the dense "
        f"answer; accuracy cost in docs/SERVING.md); peak RSS {peak_rss_mib():,.0f} MiB\n\n"
        + header + "\n" + "\n".join(rows) + "\n\n"
        f"Throughput, {len(sub):,} of the same queries shared by {' / '.join(map(str, threads))} calling threads (queries/s):\n\n"
        "| path | " + " | ".join(f"{t} thread{'s' if t > 1 else ''}" for t in threads) + " | scaling |\n|"
        + "---|" * (len(threads) + 2) + "\n" + trows + "\n\n"
        "Reading the numbers: the dense path sums L rows of B, L × "
        f"{row_bytes / 1e3:.0f} kB, so it is bound by memory bandwidth: the *effective GB/s* column "
        "(bytes of B rows read / p50) is what one core streams from DRAM here. At that rate "
        f"({bw / 1e9:.1f} GB/s) a 200 µs p50 allows at most ~{int(200e-6 * bw / row_bytes)} history rows, "
        f"while the 10–500 workload averages {lengths.mean():.0f} rows ({lengths.mean() * row_bytes / 1e6:.0f} MB) "
        "per query: the p50 < 200 µs goal is out of reach for a dense 20k-item float32 B whatever the kernel. "
        "The compressed copies read 2 (float16) or 1 (int8) byte per weight instead of 4, decoded in "
        "registers: the time follows the bytes, less a little for the decoding. The "
        "speed-up over numpy grows with L because numpy's gather first copies the L rows into a fresh "
        "temporary (page faults and a second pass over the same bytes); for short histories both are "
        "dominated by fixed costs. Pruning to m entries per column cuts the bytes read per history row "
        "from 4n to ~8m (index + value): that is where a sub-200 µs p50 comes from, at the accuracy cost "
        f"measured in docs/SERVING.md. {scaling_note}\n"
    )
    publish("bench_serving", body, args.output)


if __name__ == "__main__":
    main()
