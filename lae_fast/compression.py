"""Compressed copies of a dense B for serving: float16 or int8 codes with one scale per row.

A query sums the history's rows of B, so on a dense B its time is the bytes of those
rows (``docs/SERVING.md``): 4 per weight in float32. :func:`compress` stores row ``i``
as codes ``q_i`` and a scale ``s_i`` with ``B[i, j] ≈ s_i * q_ij`` off the diagonal,
and the diagonal itself apart in float32, so a query reads 2 (float16) or 1 (int8)
byte per weight; the serving kernel decodes the codes in registers.

- **float16**: ``s_i`` is a power of two chosen so that the row's largest
  off-diagonal magnitude lands in [2^14, 2^15]: no overflow, and scaling by a power
  of two adds no rounding of its own, so each weight is B rounded to 11 significant
  bits (relative error <= 2^-11 for all but the row's tiny entries).
- **int8**: ``s_i = max_j |B_ij| / 127`` (off the diagonal) and ``q_ij =
  round(B_ij / s_i)``: absolute error <= ``s_i / 2`` per weight.

Why the diagonal is apart: in the free-diagonal models (LAE, DLAE, RLAE...) ``B_ii``
is often ten times the row's other entries, and a row scale set by it would leave
the off-diagonal weights, which are what ranks items, a few int8 steps each
(DLAE on MovieLens-1M: top-20 overlap with float32 0.956 with the diagonal in the
scale, 0.994 without). The accuracy of both codecs against float32 is measured by
``bench/compression_accuracy.py`` (table in ``docs/SERVING.md``).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ._memory import check_fits_in_memory, empty_checked
from ._validation import check_int, check_square

__all__ = ["CODECS", "CompressedB", "compress", "decompress"]

#: code types of a compressed B, by name
CODECS = {"float16": np.dtype(np.float16), "int8": np.dtype(np.int8)}
#: float16 codes of a row's largest weight fall in [2^14, 2^15] (the largest finite half is 65504)
_F16_TOP_EXPONENT = 15
_INT8_MAX = 127
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_FLOAT32_MIN_EXPONENT = -126


class CompressedB(NamedTuple):
    """A dense B as ``codes`` (zero diagonal) times ``row_scale`` per row, plus ``diagonal``."""

    codes: np.ndarray      #: (n, n) float16 or int8, C-ordered
    row_scale: np.ndarray  #: (n,) float32
    diagonal: np.ndarray   #: (n,) float32, B's own diagonal

    @property
    def codec(self) -> str:
        """``'float16'`` or ``'int8'``."""
        return self.codes.dtype.name

    @property
    def nbytes(self) -> int:
        """Bytes a server maps: codes, scales and diagonal."""
        return int(self.codes.nbytes + self.row_scale.nbytes + self.diagonal.nbytes)


def check_codec(codec: Any) -> str:
    """The codec name, or a ValueError listing the choices."""
    if codec not in CODECS:
        raise ValueError(f"dtype must be one of {', '.join(map(repr, CODECS))}, got {codec!r}")
    return str(codec)


def compress(B: Any, dtype: str = "float16", *, block_rows: int = 256) -> CompressedB:
    """Compress a dense B row by row into float16 or int8 codes with one scale per row.

    Parameters
    ----------
    B : ndarray of shape (n, n)
        Finite float weights (a memory-mapped model's ``B_`` is read in place).
    dtype : {'float16', 'int8'}, default='float16'
        Code type: 2 or 1 byte per weight (see the module notes for the error of each).
    block_rows : int, default=256
        Rows converted at a time (bounds the float64 temporaries to ``16 * block_rows * n`` bytes).

    Returns
    -------
    CompressedB
        ``codes`` (diagonal zero), ``row_scale`` and ``diagonal``; :func:`decompress`
        gives back the float32 matrix the serving kernel effectively sums.

    Raises
    ------
    ValueError
        B not square, empty, or with NaN or infinite values (the first bad row is
        named); an unknown ``dtype``.
    TypeError
        B does not hold real numbers.
    MemoryError
        The codes cannot fit in available memory.

    Examples
    --------
    >>> import numpy as np
    >>> B = np.array([[0.5, 0.25, -0.125], [0.0, 0.0, 0.0], [1.0, -2.0, 3.0]], dtype=np.float32)
    >>> c = compress(B, "int8")
    >>> c.codes.tolist(), c.diagonal.tolist()
    ([[0, 127, -64], [0, 0, 0], [64, -127, 0]], [0.5, 0.0, 3.0])
    >>> float(np.abs(decompress(c) - B).max()) <= float(c.row_scale.max()) / 2
    True
    """
    codec = check_codec(dtype)
    block_rows = check_int(block_rows, name="block_rows", low=1)
    B = np.asarray(B)
    check_square(B, name="B")
    n = B.shape[0]
    code_type = CODECS[codec]
    check_fits_in_memory(n * n * code_type.itemsize + 16 * min(block_rows, n) * n,
                         what=f"compressing a {n}x{n} B to {codec}")
    codes = empty_checked((n, n), code_type, what=f"the {codec} codes of a {n}x{n} B")
    row_scale = np.empty(n, dtype=np.float32)
    diagonal = np.empty(n, dtype=np.float32)
    for r0 in range(0, n, block_rows):
        r1 = min(n, r0 + block_rows)
        rows = np.arange(r0, r1)
        block = B[r0:r1].astype(np.float64)
        bad = ~np.isfinite(block).all(axis=1)
        if bad.any():
            raise ValueError(f"B has NaN or infinite values (row {r0 + int(np.flatnonzero(bad)[0])}); "
                             "compress a finite matrix")
        diagonal[r0:r1] = block[rows - r0, rows]
        block[rows - r0, rows] = 0.0
        top = np.abs(block).max(axis=1)
        if top.max() > _FLOAT32_MAX:
            raise ValueError(f"B has weights beyond the float32 range (up to {top.max():.3g}); "
                             "compress a matrix with float32 values")
        if codec == "float16":
            # a power of two: exact to apply, and the row's top lands in [2^14, 2^15]
            exponent = np.ceil(np.log2(np.where(top > 0, top, 1.0))) - _F16_TOP_EXPONENT
            exponent = np.maximum(exponent, _FLOAT32_MIN_EXPONENT)  # a float32 scale, not 0
            scale = np.ldexp(1.0, exponent.astype(np.int64)).astype(np.float32)
            codes[r0:r1] = block / scale[:, None]
        else:
            scale = np.where(top > 0, top / _INT8_MAX, 1.0).astype(np.float32)
            np.maximum(scale, np.finfo(np.float32).tiny, out=scale)  # never 0 in float32
            q = np.rint(block / scale[:, None].astype(np.float64))
            np.clip(q, -_INT8_MAX, _INT8_MAX, out=q)
            codes[r0:r1] = q
        row_scale[r0:r1] = scale
    return CompressedB(codes, row_scale, diagonal)


def decompress(c: CompressedB) -> np.ndarray:
    """The float32 matrix a compressed B stands for: ``row_scale[i] * codes[i, j]``, diagonal restored.

    For accuracy checks and tests: a query on the compressed B sums rows of this
    matrix (in float32, in the kernel's order).
    """
    out = c.codes.astype(np.float32) * c.row_scale[:, None]
    np.fill_diagonal(out, c.diagonal)
    return out
