"""Memory preflight: know the footprint of a request before allocating it.

Every large allocation in lae-fast (the n×n buffer of a dense fit, top-N lists,
pruned or sparse weights, file readers) asks :func:`check_fits_in_memory` first,
so a request that cannot fit is refused with the estimate and a fix instead of
being killed by the kernel's OOM killer halfway through. :func:`empty_checked`
and :func:`zeros_checked` are the "check, then allocate" pair for dense buffers.
"""
from __future__ import annotations

import os
from typing import Any, Optional, Tuple, Union

import numpy as np

__all__ = ["MEMORY_HEADROOM", "available_memory", "format_bytes", "check_fits_in_memory", "empty_checked",
           "zeros_checked"]

#: Share of the available memory a single request may take before we refuse it.
MEMORY_HEADROOM = 0.9

#: Environment variable that turns the check off (e.g. on a machine with swap).
SKIP_ENV = "LAE_FAST_SKIP_MEMORY_CHECK"


def available_memory() -> Optional[int]:
    """Bytes this process can still allocate: MemAvailable, capped by a cgroup v2 limit (None if unknown)."""
    avail = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    try:
        with open("/sys/fs/cgroup/memory.max") as fh:
            limit = fh.read().strip()
        if limit != "max":
            with open("/sys/fs/cgroup/memory.current") as fh:
                used = int(fh.read().strip())
            room = int(limit) - used
            avail = room if avail is None else min(avail, room)
    except (OSError, ValueError):
        pass
    return avail


def format_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


#: what to try when a dense n×n does not fit (the default advice of :func:`check_fits_in_memory`)
DENSE_FIX = "use dtype=float32, fewer items (drop rare ones), the neighbourhood solver (neighbors=256)"


def check_fits_in_memory(nbytes: int, *, what: str, fix: str = DENSE_FIX) -> None:
    """Refuse an allocation that cannot fit, before trying it.

    At most ``MEMORY_HEADROOM`` (90 %) of the available memory may be used. Set
    ``LAE_FAST_SKIP_MEMORY_CHECK=1`` to allocate anyway (e.g. with swap).

    Raises
    ------
    MemoryError
        With the estimate, what is available, and ``fix`` (what to try instead).
    """
    if os.environ.get(SKIP_ENV) == "1":
        return
    avail = available_memory()
    if avail is not None and nbytes > MEMORY_HEADROOM * avail:
        raise MemoryError(
            f"{what} needs {format_bytes(nbytes)} but only {format_bytes(avail)} is available (at most "
            f"{MEMORY_HEADROOM:.0%} of it is used); {fix}, or a bigger machine ({SKIP_ENV}=1 skips this check)"
        )


def _nbytes(shape: Union[int, Tuple[int, ...]], dtype: Any) -> int:
    return int(np.prod(shape, dtype=np.float64)) * np.dtype(dtype).itemsize


def empty_checked(shape: Union[int, Tuple[int, ...]], dtype: Any, *, what: str) -> np.ndarray:
    """``np.empty(shape, dtype)`` after :func:`check_fits_in_memory` (C order)."""
    check_fits_in_memory(_nbytes(shape, dtype), what=what)
    return np.empty(shape, dtype=dtype)


def zeros_checked(shape: Union[int, Tuple[int, ...]], dtype: Any, *, what: str) -> np.ndarray:
    """``np.zeros(shape, dtype)`` after :func:`check_fits_in_memory` (C order)."""
    check_fits_in_memory(_nbytes(shape, dtype), what=what)
    return np.zeros(shape, dtype=dtype)
