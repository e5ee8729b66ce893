"""``show_versions()``: what a bug report needs (versions, OpenMP, BLAS thread pools)."""
from __future__ import annotations

import platform
import sys

import numpy
import scipy
import threadpoolctl

from . import _gram
from ._threads import available_cpus, resolve_num_threads
from ._version import __version__


def versions(num_threads=None) -> dict:
    """What :func:`show_versions` prints, as a dict; ``num_threads`` as the kernels would resolve it."""
    return {
        "lae_fast": __version__, "python": sys.version.split()[0], "platform": platform.platform(),
        "numpy": numpy.__version__, "scipy": scipy.__version__, "threadpoolctl": threadpoolctl.__version__,
        "built_with_openmp": _gram.built_with_openmp(), "cpus_available": available_cpus(),
        "num_threads": resolve_num_threads(num_threads),
        "threadpools": threadpoolctl.threadpool_info(),
    }


def show_versions(num_threads=None) -> None:
    """Print versions, whether the kernels were built with OpenMP, and the BLAS pools."""
    info = versions(num_threads)
    pools = info.pop("threadpools")
    for key, value in info.items():
        print(f"{key:>18}: {value}")
    for pool in pools:
        print(f"{'threadpool':>18}: {pool.get('internal_api')} {pool.get('version')} "
              f"threads={pool.get('num_threads')} ({pool.get('filepath')})")
