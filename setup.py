"""Extension list for lae-fast: Cython kernels built with OpenMP where the compiler has it."""
import os
import sys
import tempfile
import textwrap
import warnings

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# Checks come back on for debugging (LAE_FAST_DEBUG_CYTHON=1 pip install -e .).
_DEBUG = os.environ.get("LAE_FAST_DEBUG_CYTHON", "0") == "1"
DIRECTIVES = {
    "language_level": 3,
    "boundscheck": _DEBUG,
    "wraparound": _DEBUG,
    "initializedcheck": _DEBUG,
    "nonecheck": _DEBUG,
    "cdivision": True,
}
KERNELS = ["_gram", "_rank", "_lapack", "_spdinv", "_serve", "_neighbors"]


def _openmp_flags(compiler_type: str):
    if os.environ.get("LAE_FAST_NO_OPENMP") == "1":
        return [], []
    if compiler_type == "msvc":
        return ["/openmp"], []
    if sys.platform == "darwin":
        return ["-Xpreprocessor", "-fopenmp"], ["-lomp"]
    return ["-fopenmp"], ["-fopenmp"]


def _compiler_has_openmp(compiler, cflags, ldflags) -> bool:
    """Compile and link a tiny OpenMP program: the flag alone proves nothing."""
    code = textwrap.dedent(
        """
        #include <omp.h>
        int main(void) { int n = 0;
        #pragma omp parallel reduction(+:n)
          n += 1;
          return omp_get_max_threads() > 0 ? 0 : 1; }
        """
    )
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as fh:
            fh.write(code)
        try:
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=cflags)
            compiler.link_executable(objs, os.path.join(tmp, "probe"), extra_postargs=ldflags)
        except Exception:  # noqa: BLE001 - any failure means "no OpenMP"
            return False
    return True


class BuildExtWithOpenMP(build_ext):
    def build_extensions(self):
        cflags, ldflags = _openmp_flags(self.compiler.compiler_type)
        if cflags and not _compiler_has_openmp(self.compiler, cflags, ldflags):
            warnings.warn(
                "\n*** lae-fast: this compiler cannot build OpenMP code; the kernels will run on ONE "
                "thread. Install an OpenMP runtime (libgomp / libomp) and rebuild. ***\n"
            )
            cflags, ldflags = [], []
        opt = [] if self.compiler.compiler_type == "msvc" else ["-O3"]
        for ext in self.extensions:
            ext.extra_compile_args = opt + cflags + ext.extra_compile_args
            ext.extra_link_args = ldflags + ext.extra_link_args
        super().build_extensions()


extensions = [
    Extension(
        f"lae_fast.{name}",
        [f"lae_fast/{name}.pyx"],
        include_dirs=[np.get_include(), "csrc"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
    )
    for name in KERNELS
]

setup(
    ext_modules=cythonize(extensions, compiler_directives=DIRECTIVES),
    cmdclass={"build_ext": BuildExtWithOpenMP},
)
