"""One thread knob for the whole package, and BLAS kept from multiplying with OpenMP.

``resolve_num_threads`` decides how many threads a kernel gets; ``sequential_blas``
wraps code that runs OpenMP regions (BLAS must stay single-threaded there) and
``blas_threads`` gives the LAPACK Cholesky its share; ``arrow_threads`` sizes Arrow's
CPU pool (file readers) by the same knob.  Limits are never set at
import time: the controller is built lazily on first use so it sees every BLAS
library loaded by then.
"""
from __future__ import annotations

import contextlib
import os
from typing import Iterator, Optional

ENV_VAR = "LAE_FAST_NUM_THREADS"
#: most threads a kernel starts unless the machine has more CPUs (see ``max_num_threads``)
MAX_THREADS = 1024
_controller = None


def available_cpus() -> int:
    """CPUs this process may run on: affinity mask and cgroup CPU quota, not the host count."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS / Windows
        count = os.cpu_count() or 1
    try:
        with open("/sys/fs/cgroup/cpu.max") as fh:  # cgroup v2: "quota period" or "max period"
            quota, period = fh.read().split()[:2]
        if quota != "max":
            count = min(count, max(1, int(int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, count)


def _parse_env(name: str) -> Optional[int]:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    # OpenMP allows a list, one count per nesting level ("4,1"): our kernels are the outer level
    text = value.split(",")[0] if name == "OMP_NUM_THREADS" else value
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not an integer; set it to a thread count such as 2") from None


def max_num_threads() -> int:
    """The largest thread count a kernel accepts: :data:`MAX_THREADS`, or the CPUs if there are more."""
    return max(MAX_THREADS, available_cpus())


def resolve_num_threads(num_threads: Optional[int] = None) -> int:
    """Number of threads a kernel should use.

    Order of precedence: the ``num_threads`` argument, then ``LAE_FAST_NUM_THREADS``,
    then ``OMP_NUM_THREADS``, then the CPUs this process may use. A negative value
    counts back from the available CPUs (-1 = all of them, -2 = all but one). More
    threads than CPUs are honoured, up to :func:`max_num_threads` (1024, or the CPUs
    if there are more): beyond that a request is a typo, and the OpenMP runtime
    would abort (or crash) creating the threads.

    Raises
    ------
    ValueError
        If the request is 0, above the maximum, or (in the environment) not an integer.
    TypeError
        If the argument is not an integer.
    """
    if type(num_threads) is int and 0 < num_threads <= MAX_THREADS:
        return num_threads  # always allowed: no need to count the CPUs (a system call and a file read)
    source = "num_threads"
    if num_threads is None:
        for var in (ENV_VAR, "OMP_NUM_THREADS"):
            num_threads = _parse_env(var)
            if num_threads is not None:
                source = var
                break
    cpus = available_cpus()
    if num_threads is None:
        return cpus
    if isinstance(num_threads, bool) or not isinstance(num_threads, (int,)) and not hasattr(num_threads, "__index__"):
        raise TypeError(f"{source} must be an integer, got {num_threads!r}")
    num_threads = int(num_threads)
    if num_threads == 0:
        raise ValueError(f"{source}=0 is not a thread count; use a positive number, or -1 for all CPUs")
    if num_threads < 0:
        return max(1, cpus + 1 + num_threads)
    limit = max_num_threads()
    if num_threads > limit:
        raise ValueError(f"{source}={num_threads} is more threads than lae-fast starts (at most {limit}; this "
                         f"process may use {cpus} CPUs); use a count up to {cpus}, or -1 for all CPUs")
    return num_threads


def _get_controller():
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller


@contextlib.contextmanager
def sequential_blas() -> Iterator[None]:
    """BLAS on one thread while our OpenMP kernels run (no nested oversubscription)."""
    with _get_controller().limit(limits="sequential_blas_under_openmp", user_api="blas"):
        yield


@contextlib.contextmanager
def blas_threads(n: int) -> Iterator[None]:
    """Give BLAS/LAPACK exactly ``n`` threads for the duration of the block."""
    with _get_controller().limit(limits=int(n), user_api="blas"):
        yield


@contextlib.contextmanager
def arrow_threads(num_threads: Optional[int] = None) -> Iterator[int]:
    """Arrow's CPU pool sized by the one knob (:func:`resolve_num_threads`) for the block, then restored."""
    import pyarrow as pa

    n = resolve_num_threads(num_threads)
    old = pa.cpu_count()
    pa.set_cpu_count(n)
    try:
        yield n
    finally:
        pa.set_cpu_count(old)
