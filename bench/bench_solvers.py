"""SPD inverse: every route against the GEMM peak measured in the same run.

Routes: numpy.linalg.inv (float64, LU), scipy.linalg.inv(assume_a="pos")
(float64), LAPACK potrf+potri and lae-fast's recursive BLAS-3 route (float32 and
float64), on one power-law Gram + λI per size; alternating rounds in one process.
The logic lives in ``lae_fast.solver_bench`` (also ``lae-fast bench solvers``).

    python bench/bench_solvers.py                 # n = 4000 and 8000
    python bench/bench_solvers.py --n 2000 --repeat 5
    python bench/bench_solvers.py --busy --n 2000 4000   # beside a competing job: our routes only
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

from _common import command_line, environment, write_section

from lae_fast.solver_bench import bench_solvers, format_solver_table

#: the other job of a shared machine: one thread of float64 GEMMs, forever
COMPETITOR = ("import os; os.environ['OPENBLAS_NUM_THREADS'] = '1'\n"
              "import numpy as np\n"
              "a = np.random.default_rng(0).standard_normal((1500, 1500))\n"
              "while True:\n    a @ a\n")
OUR_ROUTES = ["lapack-f64", "blocked-f64", "lapack-f32", "blocked-f32"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, nargs="+", default=[4000, 8000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--l2", type=float, default=500.0)
    parser.add_argument("--route", action="append", default=None, help="only these routes (repeatable)")
    parser.add_argument("--busy", action="store_true",
                        help="run beside one competing single-threaded GEMM loop (a shared machine); "
                             "lae-fast's routes only; own RESULTS.md section")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = parser.parse_args()
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    competitor = subprocess.Popen([sys.executable, "-c", COMPETITOR]) if args.busy else None
    try:
        results = bench_solvers(args.n, routes=args.route or (OUR_ROUTES if args.busy else None),
                                repeat=args.repeat, l2=args.l2, progress=print)
    finally:
        if competitor is not None:
            competitor.kill()
            competitor.wait()
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = []
    for res in results:
        by_key = {r["key"]: r for r in res["routes"] if r.get("seconds") is not None}
        bound = f"n³ / SGEMM = {res['sgemm_bound_s']:.2f} s at {res['gemm']['float32']['gflops']:.0f} GFLOP/s"
        for dt in ("float32", "float64"):
            auto = by_key.get(f"{res['auto'][dt]}-{dt.replace('float', 'f')}")
            if auto is not None:
                lines.append(f"- n = {res['n']:,}, {dt}: lae-fast default (`method=\"auto\"` → {res['auto'][dt]}) "
                             f"{auto['seconds']:.2f} s = **{auto['x_bound']:.2f}×** {bound}")
        ours = [r for r in by_key.values() if r["ours"]]
        if ours:
            best = min(ours, key=lambda r: r["seconds"])
            lines.append(f"- n = {res['n']:,}: fastest lae-fast route in this run: {best['label']} ({best['dtype']}) "
                         f"{best['seconds']:.2f} s = {best['x_bound']:.2f}×")
    title = ("## SPD inverse on a busy machine: lae-fast's routes beside one competing single-threaded "
             "GEMM loop\n\n" if args.busy else "## SPD inverse: routes vs the measured GEMM peak\n\n")
    body = (title +
            f"Command: `{command_line()}`\n\n{environment()}"
            f"- 1-minute load average {load_before:.1f} before, {load_after:.1f} after (shared machine: "
            "compare routes within a table, not across runs)\n"
            "- flops credited: n³ for Cholesky-based inverses, 2n³ for LU (numpy really does 8n³/3: "
            "getrf + a solve against I); peak = GEMM n×n×n through scipy's BLAS (the OpenBLAS our "
            "LAPACK routes use), float32 routes against SGEMM, float64 against DGEMM\n"
            "- peak memory: the kernel's peak-RSS mark (VmHWM) reset via /proc/self/clear_refs before each "
            "call, minus the RSS before it, plus the input buffer (so in place = 1.00×); BLAS included\n"
            "- error: B = I − P·diag(1/diag P) in float64 against B from float64 `numpy.linalg.inv`\n\n"
            + "\n".join(lines) + "\n\n" + format_solver_table(results))
    if not args.no_write:
        write_section("bench_solvers_busy" if args.busy else "bench_solvers", body)
    print(body)


if __name__ == "__main__":
    main()
