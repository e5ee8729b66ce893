"""``.npz`` / ``.npy`` files read with care: declared sizes first, data only when needed and affordable.

A few hundred bytes can declare an array of billions of elements, and a deflated member
can inflate a thousand-fold. :class:`NpzArchive` reads each member's ``.npy`` header
alone, checks the size it declares against the bytes the archive says the member holds,
lets the reader check declared sizes against each other and against the memory budget,
and only then inflates the members the reader needs (never pickles). :func:`read_npy`
does the same for a bare ``.npy`` file.
"""
from __future__ import annotations

import math
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import Dict, Iterable, List, Tuple

import numpy as np
from numpy.lib import format as npy_format

from .._memory import check_fits_in_memory
from .interactions import DataFormatError

__all__ = ["Declared", "NpzArchive", "read_npy"]

# the exceptions a damaged archive or member raises while being read (RuntimeError: a flipped "encrypted" flag)
_DAMAGE = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, struct.error, EOFError, OSError, ValueError,
           OverflowError, NotImplementedError, RuntimeError, SyntaxError)


@dataclass(frozen=True)
class Declared:
    """What a ``.npy`` header says about its array, before any of the data is read."""

    shape: Tuple[int, ...]
    dtype: np.dtype
    nbytes: int

    @property
    def length(self) -> int:
        """Size of the first axis (1 for a scalar)."""
        return self.shape[0] if self.shape else 1


def _read_header(fp, where: str, fix: str) -> Tuple[Declared, int]:
    """The declared array of an open ``.npy`` stream, and the size of its header in bytes."""
    try:
        version = npy_format.read_magic(fp)
        reader = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
        shape, _, dtype = reader(fp)
    except _DAMAGE as exc:
        raise DataFormatError(f"{where}: is not a readable .npy array ({str(exc)[:200]}); {fix}") from None
    if dtype.hasobject:
        raise DataFormatError(f"{where}: holds Python objects, and lae-fast never loads pickles; store numbers or "
                              f"strings; {fix}")
    nbytes = math.prod(int(s) for s in shape) * dtype.itemsize  # Python ints: a crafted shape cannot overflow
    return Declared(tuple(int(s) for s in shape), dtype, nbytes), fp.tell()


class NpzArchive:
    """An ``.npz`` file opened for careful reading (use as a context manager).

    Parameters
    ----------
    path : str
        The archive.
    fix : str
        The advice appended to every error (how to write a good file).

    Raises
    ------
    DataFormatError
        Not a zip archive, or an unreadable one.
    """

    def __init__(self, path: str, *, fix: str) -> None:
        self.name = path
        self.fix = fix
        try:
            self._zip = zipfile.ZipFile(path)
        except _DAMAGE as exc:
            raise DataFormatError(f"{path}: is not an npz (zip) archive, or is corrupt or truncated "
                                  f"({str(exc)[:200]}); {fix}") from None
        self._members = {info.filename[:-4]: info for info in self._zip.infolist()
                         if info.filename.endswith(".npy")}
        self._declared: Dict[str, Declared] = {}

    def __enter__(self) -> "NpzArchive":
        return self

    def __exit__(self, *exc) -> None:
        self._zip.close()

    @property
    def files(self) -> List[str]:
        """The array names it holds."""
        return list(self._members)

    def __contains__(self, key: str) -> bool:
        return key in self._members

    def declared(self, key: str) -> Declared:
        """The shape, dtype and size ``key`` declares; inflates only its header.

        Raises
        ------
        DataFormatError
            An unreadable header, an object array, or a declared size beyond what the
            member holds (a truncated or forged member).
        """
        if key not in self._declared:
            info = self._members[key]
            where = f"{self.name}: array {key!r}"
            try:
                with self._zip.open(info) as fp:
                    decl, header = _read_header(fp, where, self.fix)
            except DataFormatError:
                raise
            except _DAMAGE as exc:
                raise DataFormatError(f"{self.name}: is corrupt or truncated (array {key!r}): {str(exc)[:200]}; "
                                      f"{self.fix}") from None
            if header + decl.nbytes > info.file_size:
                raise DataFormatError(f"{where} declares shape {decl.shape} ({decl.nbytes:,} bytes) but the "
                                      f"archive holds {max(0, info.file_size - header):,} bytes of it; the file is "
                                      f"corrupt or truncated; {self.fix}")
            self._declared[key] = decl
        return self._declared[key]

    def check_budget(self, keys: Iterable[str], *, extra: int = 0, what: str) -> None:
        """MemoryError before reading ``keys`` if they (plus ``extra`` bytes) cannot fit in memory."""
        check_fits_in_memory(sum(self.declared(k).nbytes for k in keys) + int(extra), what=what)

    def read(self, key: str) -> np.ndarray:
        """The array ``key``, after :meth:`declared` (call :meth:`check_budget` first for big ones)."""
        self.declared(key)
        try:
            with self._zip.open(self._members[key]) as fp:
                return npy_format.read_array(fp, allow_pickle=False)
        except _DAMAGE as exc:
            raise DataFormatError(f"{self.name}: is corrupt or truncated (array {key!r}): {str(exc)[:200]}; "
                                  f"{self.fix}") from None


def read_npy(path: str, *, fix: str) -> np.ndarray:
    """A bare ``.npy`` array, after checking its declared size against the file and the memory budget.

    Raises
    ------
    DataFormatError
        Unreadable, an object array, or a declared size beyond the file's.
    MemoryError
        The declared array cannot fit in available memory.
    """
    with open(path, "rb") as fp:
        decl, header = _read_header(fp, path, fix)
        if header + decl.nbytes > os.fstat(fp.fileno()).st_size:
            raise DataFormatError(f"{path}: declares shape {decl.shape} ({decl.nbytes:,} bytes) but the file is "
                                  f"smaller; it is corrupt or truncated; {fix}")
        check_fits_in_memory(decl.nbytes, what=f"{path}: a {decl.dtype} array of shape {decl.shape}")
        fp.seek(0)
        try:
            return npy_format.read_array(fp, allow_pickle=False)
        except _DAMAGE as exc:
            raise DataFormatError(f"{path}: is corrupt or truncated ({str(exc)[:200]}); {fix}") from None
