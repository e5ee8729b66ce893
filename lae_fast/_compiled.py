"""A clear error, instead of a circular-import message, when the compiled kernels are not there.

Python puts the current directory first on ``sys.path``: run from the repository root, ``import lae_fast``
finds the source tree ``lae_fast/`` before the installed package. Unless the tree was built in place (an
editable install), its kernels do not exist there and the first ``from . import _gram`` fails with
"cannot import name '_gram' from partially initialized module ... (most likely due to a circular import)",
which points nowhere near the cause. numpy and scipy check this on import too.
"""
from __future__ import annotations

import importlib.util
import os
from typing import List

__all__ = ["missing_kernels", "require_kernels"]


def missing_kernels(package: str, package_dir: str) -> List[str]:
    """The kernels (``*.pyx`` next to the package's modules) that no import finder can find compiled."""
    sources = sorted(name[:-4] for name in os.listdir(package_dir) if name.endswith(".pyx"))
    return [name for name in sources if importlib.util.find_spec(f"{package}.{name}") is None]


def require_kernels(package: str, package_dir: str) -> None:
    """Raise ImportError saying what to do when a kernel of ``package`` was never compiled."""
    missing = missing_kernels(package, package_dir)
    if missing:
        raise ImportError(
            f"{package} was imported from {package_dir}, where its compiled kernels ({', '.join(missing)}) were "
            "not built: most likely the source tree, which hides the installed package when Python runs from "
            "the repository root. Run Python from another directory to use the installed lae-fast, or build "
            "the kernels in place with an editable install: pip install -e . (needs a C compiler)"
        )
