"""What the hardened file paths cost: loading a model (checksum, finite check of B) and an atomic write.

Loading ``lae_fast.load_model(path)`` with ``verify=True`` reads B twice: once for the
SHA-256 of every array, once to check that every weight is finite. Both passes run on
the page cache here (the file was just written), so they measure CPU cost, not the disk.
Rows, timed in turn (A, B, A, B, ...):

  - load, verify=False:   header and shapes only; B memory-mapped, not read
  - load_arrays verify:   the SHA-256 pass alone
  - check_finite(B):      the finite pass alone (chunks of 16 MiB, no n x n temporary)
  - load, verify=True:    both, as every default load does

Atomic writes: the fixed cost of one ``io.atomic_write`` of a 1 KiB file (temporary
file, flock, fsync of file and folder, rename, scan of the folder for stale temporary
files) in an empty folder and in a folder of 10,000 files (recommend-all's parts).

    python bench/bench_load.py                # n = 6000 (144 MB float32 B)
    python bench/bench_load.py --n 2000 --repeat 3
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

import lae_fast
from lae_fast import io as model_io
from _common import alternate, command_line, environment, write_section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=6000, help="items: B is n x n float32")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--files", type=int, default=10_000, help="files in the crowded folder")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    model = lae_fast.EASE(1.0)
    model._set_fitted({"B_": rng.standard_normal((args.n, args.n), dtype=np.float32)},
                      np.arange(args.n, dtype=np.int64), n_users=None, nnz=None, seconds={})
    with tempfile.TemporaryDirectory(dir=os.getcwd()) as tmp:
        path = os.path.join(tmp, "m.lae")
        t0 = time.perf_counter()
        model.save(path)
        save_s = time.perf_counter() - t0
        size = os.path.getsize(path)
        B = lae_fast.load_model(path, verify=False).B_
        res = alternate({
            "load, verify=False": lambda: lae_fast.load_model(path, verify=False),
            "load_arrays, verify=True (SHA-256 pass)": lambda: model_io.load_arrays(path, verify=True),
            "check_finite(B) (finite pass)": lambda: model_io.check_finite(B, source=path, key="B"),
            "load, verify=True (both)": lambda: lae_fast.load_model(path, verify=True),
        }, args.repeat)

        empty = os.path.join(tmp, "empty")
        crowded = os.path.join(tmp, "crowded")
        os.makedirs(empty)
        os.makedirs(crowded)
        for k in range(args.files):
            open(os.path.join(crowded, f"part-{k:05d}.parquet"), "wb").close()

        def write(folder):
            with model_io.atomic_write(os.path.join(folder, "out.bin")) as fh:
                fh.write(b"x" * 1024)

        writes = alternate({"atomic_write, empty folder": lambda: write(empty),
                            f"atomic_write, folder of {args.files:,} files": lambda: write(crowded)},
                           max(args.repeat, 20))

    gb = size / 1e9
    lines = [
        "## Loading and writing files: the cost of the checks",
        "",
        f"Command: `{command_line()}`",
        "",
        environment().rstrip(),
        f"- model file: EASE, {args.n:,} x {args.n:,} float32 B ({size / 2 ** 20:,.0f} MiB), saved in "
        f"{save_s:.2f} s (atomic: temporary file, fsync, rename); page cache warm; median of {args.repeat}, "
        "timed in turn",
        "",
        "| load step | seconds | GB/s of B |",
        "|---|---|---|",
    ]
    for name, (sec, _) in res.items():
        rate = "—" if name.startswith("load, verify=False") else f"{gb / sec:.2f}"
        lines.append(f"| {name} | {sec:.3f} | {rate} |")
    lines += ["", "| one atomic write of 1 KiB | milliseconds |", "|---|---|"]
    for name, (sec, _) in writes.items():
        lines.append(f"| {name} | {sec * 1e3:.2f} |")
    body = "\n".join(lines) + "\n"
    print(body)
    write_section("bench_load", body)


if __name__ == "__main__":
    main()
