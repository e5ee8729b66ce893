"""Importing lae_fast: a source tree without compiled kernels gives a clear error, not a circular import."""
import os
import shutil
import subprocess
import sys

import lae_fast
from lae_fast._compiled import missing_kernels

# setuptools' editable install maps every lae_fast.* module to the checkout through a meta-path finder;
# dropping it makes the subprocess behave like a regular (non-editable) install.
_AS_INSTALLED = ("import sys; sys.meta_path[:] = [f for f in sys.meta_path "
                 "if '__editable__' not in getattr(f, '__module__', '')]; import lae_fast")


def test_the_package_under_test_has_every_kernel():
    assert missing_kernels("lae_fast", os.path.dirname(lae_fast.__file__)) == []


def test_import_from_a_source_tree_without_kernels_says_what_to_do(tmp_path):
    src = os.path.dirname(lae_fast.__file__)
    shutil.copytree(src, tmp_path / "lae_fast",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "*.c", "__pycache__"))
    proc = subprocess.run([sys.executable, "-c", _AS_INSTALLED], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: lae_fast was imported from ") and str(tmp_path) in last
    assert "circular import" not in last
    assert "_gram" in last and "Run Python from another directory" in last and "pip install -e ." in last
