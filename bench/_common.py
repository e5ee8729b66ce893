"""Shared pieces of the benchmark scripts: environment header, synthetic data, timing, RESULTS.md."""
from __future__ import annotations

import os
import platform
import re
import resource
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, List, Tuple

import numpy as np
import scipy.sparse as sp

RESULTS = Path(__file__).with_name("RESULTS.md")


def environment() -> str:
    """Versions, CPUs, BLAS pools and commit: the lines every result table starts with."""
    import threadpoolctl

    import lae_fast
    from lae_fast._versions import versions

    info = versions()
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        commit = "unknown"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    pools = "; ".join(f"{p['internal_api']} {p.get('version')} ({p['num_threads']} threads)"
                      for p in threadpoolctl.threadpool_info())
    return (f"- commit `{commit}`, lae-fast {lae_fast.__version__}, Python {info['python']}, "
            f"numpy {info['numpy']}, scipy {info['scipy']}\n"
            f"- CPU: {cpu}, {info['cpus_available']} CPUs available, OpenMP build: {info['built_with_openmp']}\n"
            f"- thread pools: {pools}\n")


def powerlaw_interactions(n_users: int, n_items: int, nnz: int, *, alpha: float = 1.0,
                          seed: int = 0) -> sp.csr_matrix:
    """Binary users×items CSR with power-law item popularity and skewed user activity.

    Item i (in a random order) is drawn with probability ∝ 1/(rank + 10)^alpha;
    user lengths are log-normal with the requested mean. Duplicates collapse, so
    the result has slightly fewer than ``nnz`` entries.
    """
    X = _sample(n_users, n_items, nnz, alpha, seed)
    # duplicates collapse on popular items: correct the draw once to land near nnz
    return _sample(n_users, n_items, int(nnz * nnz / max(X.nnz, 1)), alpha, seed) if X.nnz < 0.97 * nnz else X


def _sample(n_users: int, n_items: int, nnz: int, alpha: float, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    weights = 1.0 / (np.arange(n_items) + 10.0) ** alpha
    weights /= weights.sum()
    item_of_rank = rng.permutation(n_items)
    lengths = rng.lognormal(mean=0.0, sigma=1.0, size=n_users)
    lengths = np.maximum(1, np.round(lengths / lengths.sum() * nnz)).astype(np.int64)
    lengths = np.minimum(lengths, n_items // 2)
    total = int(lengths.sum())
    items = item_of_rank[rng.choice(n_items, size=total, p=weights)]
    rows = np.repeat(np.arange(n_users), lengths)
    X = sp.csr_matrix((np.ones(total, dtype=np.float32), (rows, items)), shape=(n_users, n_items))
    X.sum_duplicates()
    X.data[:] = 1.0
    return X


def timeit(func: Callable[[], object], repeat: int) -> Tuple[float, object]:
    """Median wall time of ``repeat`` calls, and the last result."""
    times: List[float] = []
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def alternate(funcs: dict, repeat: int, *, verbose: bool = False) -> dict:
    """Run competitors in turn (A, B, A, B, ...) so machine noise hits them alike.

    Returns ``{name: (median seconds, last result)}``; ``verbose`` prints every time.
    """
    times = {name: [] for name in funcs}
    results = {}
    for _ in range(repeat):
        for name, func in funcs.items():
            t0 = time.perf_counter()
            results[name] = func()
            times[name].append(time.perf_counter() - t0)
            if verbose:
                print(f"  {name}: {times[name][-1]:.2f} s", flush=True)
    return {name: (statistics.median(t), results[name]) for name, t in times.items()}


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


#: the repository root: recorded commands are relative to it, whatever the working directory
ROOT = Path(__file__).resolve().parent.parent


def command_line() -> str:
    """This run's command as typed from the repository root (``python bench/<script>.py ...``)."""
    script = os.path.relpath(os.path.abspath(sys.argv[0]), ROOT)
    return "python " + " ".join([script] + [shlex.quote(a) for a in sys.argv[1:]])


def write_section(name: str, body: str) -> None:
    """Replace (or append) this script's section of bench/RESULTS.md."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = RESULTS.read_text() if RESULTS.exists() else (
        "# Benchmark results\n\nEach section is written by the script it names, with the exact command; "
        "competitors run side by side in one process on identical inputs. Ratios matter, not absolute "
        "seconds: the machines are shared and noisy.\n")
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text)


def publish(name: str, body: str, output: str = None) -> None:
    """Print a script's section and write it to ``output``, or else into bench/RESULTS.md."""
    if output:
        with open(output, "w") as fh:
            fh.write(body)
    else:
        write_section(name, body)
    print(body)
