"""Reading a ratings file into a CSR: lae-fast (Arrow, block-wise) vs pandas, raw pyarrow and the line reader.

Generates an ML-20M-shaped ``ratings.csv`` (userId,movieId,rating,timestamp; users in order, each user's
movies in time order, not sorted) and the same rows as Parquet under bench/_cache (git-ignored), once.
Every contender runs in a fresh subprocess (clean peak memory), in turns, ``--repeat`` rounds:

* ``lae-fast``: ``load_interactions(path, min_rating=4)`` (ratings >= 4 as positives, CSR + id maps);
* ``pandas``: ``read_csv`` / ``read_parquet`` of the three columns, the filter, ``pd.factorize(sort=True)``
  for both ids and ``scipy.sparse.csr_matrix`` with duplicates summed: the same matrix by hand;
* ``pyarrow raw``: ``pyarrow.csv.read_csv`` / ``pyarrow.parquet.read_table`` of the file, nothing else;
* ``line reader``: the Python line-by-line reader (the algorithm ``read_csv`` used before Arrow, kept to
  diagnose malformed files); only with ``--line-reader`` (about 1.5 µs a row).

Peak memory is the subprocess's RSS high-water mark minus its RSS before reading.

    python bench/bench_read.py --rows 10000000 --repeat 3 --line-reader
    python bench/bench_read.py --rows 60000000 --users 2000000 --items 1000000 --repeat 1
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import command_line, environment, write_section  # noqa: E402

CACHE = Path(__file__).parent / "_cache"
RATING_TEXT = np.array(["0.5", "1.0", "1.5", "2.0", "2.5", "3.0", "3.5", "4.0", "4.5", "5.0"])
RATING_P = [.01, .03, .02, .07, .05, .2, .12, .27, .08, .15]  # roughly ML-20M's distribution


def generate(rows: int, n_users: int, n_items: int, seed: int = 0) -> Path:
    """ratings_<rows>.csv and .parquet: power-law movies in a sparse id space, log-normal user lengths."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    stem = CACHE / f"ratings_{rows}_{n_users}_{n_items}"
    csv_path, pq_path = stem.with_suffix(".csv"), stem.with_suffix(".parquet")
    if csv_path.exists() and pq_path.exists():
        return stem
    CACHE.mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    lengths = rng.lognormal(0.0, 1.2, n_users)
    lengths = np.maximum(1, np.round(lengths / lengths.sum() * rows)).astype(np.int64)
    lengths[np.argmax(lengths)] += rows - lengths.sum()
    movie_ids = np.sort(rng.choice(np.arange(1, 5 * n_items), n_items, replace=False))  # sparse, like ML's
    popularity = 1.0 / (np.arange(n_items) + 10.0)
    popularity /= popularity.sum()
    by_rank = movie_ids[rng.permutation(n_items)]
    schema = pa.schema([("userId", pa.int64()), ("movieId", pa.int64()), ("rating", pa.string()),
                        ("timestamp", pa.int64())])
    tmp_csv, tmp_pq = csv_path.with_suffix(".csv.tmp"), pq_path.with_suffix(".parquet.tmp")
    with open(tmp_csv, "wb") as raw, \
            pq.ParquetWriter(str(tmp_pq), pa.schema([("userId", pa.int64()), ("movieId", pa.int64()),
                                                     ("rating", pa.float64()), ("timestamp", pa.int64())])) as pw:
        raw.write(b"userId,movieId,rating,timestamp\n")  # plain, as GroupLens writes it
        cw = pcsv.CSVWriter(raw, schema, write_options=pcsv.WriteOptions(include_header=False,
                                                                          quoting_style="none"))
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        step = max(1, n_users // 50)
        for lo in range(0, n_users, step):
            hi = min(lo + step, n_users)
            n = int(bounds[hi] - bounds[lo])
            users = np.repeat(np.arange(lo + 1, hi + 1), lengths[lo:hi])
            items = by_rank[rng.choice(n_items, size=n, p=popularity)]
            ratings = RATING_TEXT[rng.choice(10, size=n, p=RATING_P)]
            stamps = rng.integers(789652004, 1427784002, n)
            cw.write_table(pa.table({"userId": users, "movieId": items, "rating": pa.array(ratings),
                                     "timestamp": stamps}, schema=schema))
            pw.write_table(pa.table({"userId": users, "movieId": items, "rating": ratings.astype(np.float64),
                                     "timestamp": stamps}))
        cw.close()
    tmp_csv.rename(csv_path)
    tmp_pq.rename(pq_path)
    return stem


# -- contenders (each runs in its own subprocess) -------------------------------------------------

def _pandas_csr(df):
    import pandas as pd
    import scipy.sparse as sp

    df = df[df["rating"] >= 4]
    rows, users = pd.factorize(df["userId"], sort=True)
    cols, items = pd.factorize(df["movieId"], sort=True)
    X = sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, cols)), shape=(users.size, items.size))
    X.sum_duplicates()
    X.data[:] = 1
    return X, np.asarray(users), np.asarray(items)


def run_one(contender: str, path: str) -> dict:
    """Time one read of ``path`` by ``contender``; returns seconds, CPU seconds and what was built."""
    import resource

    def rss_mib() -> float:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS")) / 1024

    import pandas as pd
    import pyarrow as pa  # noqa: F401
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    import lae_fast
    from lae_fast.data.delimited_layout import read_layout
    from lae_fast.data.delimited_lines import read_lines

    base = rss_mib()
    t0, c0 = time.perf_counter(), time.process_time()
    out = {}
    if contender == "lae-fast":
        inter = lae_fast.load_interactions(path, min_rating=4)
        X, users, items = inter.matrix, inter.user_ids, inter.item_ids
    elif contender == "pandas":
        cols = ["userId", "movieId", "rating"]
        df = pd.read_parquet(path, columns=cols) if path.endswith(".parquet") else pd.read_csv(path, usecols=cols)
        X, users, items = _pandas_csr(df)
    elif contender == "pyarrow raw":
        table = pq.read_table(path) if path.endswith(".parquet") else pcsv.read_csv(path)
        out["rows"] = table.num_rows
        X = users = items = None
    elif contender == "line reader":
        with open(path, encoding="utf-8-sig", newline="") as fh:
            layout = read_layout(path, fh, sep=None, header=True, user_col=None, item_col=None, rating_col=None,
                                 timestamp_col=None, min_rating=4.0, binarize=True)
        with open(path, encoding="utf-8-sig", newline="") as fh:
            inter = read_lines(fh, layout, min_rating=4.0, binarize=True)
        X, users, items = inter.matrix, inter.user_ids, inter.item_ids
    else:
        raise ValueError(contender)
    out.update(seconds=time.perf_counter() - t0, cpu=time.process_time() - c0,
               peak_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base)
    if X is not None:
        out.update(nnz=int(X.nnz), shape=list(X.shape),
                   csr_mib=(X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / 2 ** 20,
                   digest=[int(np.asarray(users, dtype=np.int64).sum()), int(np.asarray(items, dtype=np.int64).sum()),
                           int(X.indices.astype(np.int64).sum()), int(X.indptr.astype(np.int64).sum())])
    return out


def measure(contender: str, path: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", contender, str(path)]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).parent.parent)
    if res.returncode != 0:
        raise RuntimeError(f"{contender} on {path} failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--users", type=int, default=138_493)
    ap.add_argument("--items", type=int, default=26_744)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--line-reader", action="store_true", help="Also time the line-by-line reader (slow).")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_one(*args.child)))
        return
    t0 = time.perf_counter()
    stem = generate(args.rows, args.users, args.items)
    print(f"data: {stem} ({time.perf_counter() - t0:.0f} s to make or find)", flush=True)
    sections = []
    for ext in (".csv", ".parquet"):
        path = stem.with_suffix(ext)
        contenders = ["lae-fast", "pandas", "pyarrow raw"]
        if args.line_reader and ext == ".csv":
            contenders.append("line reader")
        runs = {c: [] for c in contenders}
        for r in range(args.repeat):
            for c in contenders:
                if c == "line reader" and r > 0:
                    continue  # one round is enough to show the order of magnitude
                runs[c].append(measure(c, path))
                print(f"  {ext} {c}: {runs[c][-1]['seconds']:.2f} s, peak +{runs[c][-1]['peak_mib']:.0f} MiB",
                      flush=True)
        sections.append((ext, path, runs))
    lines = [f"## Reading ratings into a CSR: {args.rows:,} rows, ratings >= 4 kept\n",
             f"Command: `{command_line()}`\n", environment(),
             f"- data: synthetic ML-20M-shaped file from `bench/bench_read.py` ({args.users:,} users, "
             f"{args.items:,} movies with sparse ids, power-law popularity; users in order, each user's movies "
             "in time order); CSV "
             f"{stem.with_suffix('.csv').stat().st_size / 2 ** 20:.0f} MiB, Parquet "
             f"{stem.with_suffix('.parquet').stat().st_size / 2 ** 20:.0f} MiB",
             f"- median of {args.repeat} rounds, contenders in turn, each in a fresh process; CPU = user+system "
             "seconds of the process; peak = RSS high-water mark minus RSS before reading",
             "- lae-fast: `load_interactions(path, min_rating=4)`; pandas: read the 3 columns + filter + "
             "`pd.factorize(sort=True)` + `scipy.sparse.csr_matrix`; pyarrow raw: `pyarrow.csv.read_csv` / "
             "`pyarrow.parquet.read_table`, nothing else\n"]
    for ext, path, runs in sections:
        ref = statistics.median(r["seconds"] for r in runs["pandas"])
        built = [r for c in runs for r in runs[c][:1] if "digest" in r]
        same = all(r["digest"] == built[0]["digest"] and r["nnz"] == built[0]["nnz"] for r in built)
        csr = built[0]["csr_mib"]
        lines.append(f"**{ext[1:].upper()}** (final CSR {built[0]['shape'][0]:,} × {built[0]['shape'][1]:,}, "
                     f"{built[0]['nnz']:,} nnz, {csr:.0f} MiB; every contender built the same matrix: {same})\n")
        lines.append("| reader | median s | CPU s | peak MiB | peak / CSR | time / pandas |")
        lines.append("|---|---|---|---|---|---|")
        for c, rs in runs.items():
            sec = statistics.median(r["seconds"] for r in rs)
            cpu = statistics.median(r["cpu"] for r in rs)
            peak = max(r["peak_mib"] for r in rs)
            bold = "**" if c == "lae-fast" else ""
            lines.append(f"| {bold}{c}{bold} | {sec:.2f} | {cpu:.2f} | {peak:.0f} | {peak / csr:.1f}× | "
                         f"{sec / ref:.2f}× |")
        lines.append("")
    body = "\n".join(lines)
    print(body)
    write_section(f"bench_read_{args.rows}", body)


if __name__ == "__main__":
    main()
