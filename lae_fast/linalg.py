"""SPD inverse in place (LAPACK potrf + potri) and the memory preflight before n×n buffers."""
from __future__ import annotations

import os
from typing import Optional

import numpy as np

from . import _lapack
from ._threads import blas_threads, resolve_num_threads

#: Share of the available memory a single request may take before we refuse it.
MEMORY_HEADROOM = 0.9


def available_memory() -> Optional[int]:
    """Bytes this process can still allocate: MemAvailable, capped by a cgroup limit."""
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


def _format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


def check_fits_in_memory(nbytes: int, *, what: str) -> None:
    """Refuse an allocation that cannot fit, before trying it.

    Set ``LAE_FAST_SKIP_MEMORY_CHECK=1`` to allocate anyway (e.g. with swap).

    Raises
    ------
    MemoryError
        With the estimate and what is available.
    """
    if os.environ.get("LAE_FAST_SKIP_MEMORY_CHECK") == "1":
        return
    avail = available_memory()
    if avail is not None and nbytes > MEMORY_HEADROOM * avail:
        raise MemoryError(
            f"{what} needs {_format_bytes(nbytes)} but only {_format_bytes(avail)} is available; "
            "use dtype=float32, fewer items (drop rare ones), or a bigger machine "
            "(LAE_FAST_SKIP_MEMORY_CHECK=1 skips this check)"
        )


def mirror_upper(a: np.ndarray, *, num_threads: int = 1) -> np.ndarray:
    """Copy the upper triangle (row-major, j >= i) of square ``a`` into its lower one, in place."""
    _lapack.mirror_upper(a, int(num_threads))
    return a


def spd_inverse_inplace(a: np.ndarray, *, num_threads: Optional[int] = None,
                        mirror: bool = True) -> np.ndarray:
    """Invert a symmetric positive definite matrix in its own buffer.

    Only the upper triangle (row-major, ``a[i, j]`` with j >= i) is read; with
    ``mirror`` the full symmetric inverse is written back, otherwise only its
    upper triangle.  Cholesky route: potrf (n³/3 flops) then potri (2n³/3).

    Parameters
    ----------
    a : ndarray of shape (n, n), float32 or float64, C-contiguous
    num_threads : int, optional
        BLAS threads for the factorisation.

    Returns
    -------
    a : ndarray
        The same buffer, now holding the inverse.

    Raises
    ------
    numpy.linalg.LinAlgError
        If ``a`` is not positive definite, or so ill-conditioned that its inverse
        would be noise in this precision (LAPACK pocon estimate below machine
        epsilon); its contents are then undefined.
    """
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"expected a square matrix, got shape {a.shape}")
    if a.dtype not in (np.float32, np.float64) or not a.flags.c_contiguous or not a.flags.writeable:
        raise ValueError("expected a writeable C-contiguous float32 or float64 matrix")
    nt = resolve_num_threads(num_threads)
    with blas_threads(nt):
        info, rcond = _lapack.potrf_potri_upper(a)
    if info > 0:
        raise np.linalg.LinAlgError(
            f"the matrix is not positive definite (leading minor of order {info} failed in "
            f"Cholesky, {a.dtype.name})"
        )
    if info < 0:  # a bug on our side, not the user's data
        raise RuntimeError(f"internal error: LAPACK potrf/potri rejected argument {-info}")
    if not rcond >= np.finfo(a.dtype).eps:
        # Cholesky went through, but the inverse would be noise in this precision
        raise np.linalg.LinAlgError(
            f"the matrix is singular to {a.dtype.name} precision (estimated reciprocal condition "
            f"number {rcond:.1e} < {np.finfo(a.dtype).eps:.1e})"
        )
    if mirror:
        mirror_upper(a, num_threads=nt)
    return a
