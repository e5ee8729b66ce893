"""Model files: a versioned, checksummed, pickle-free container of named arrays.

Layout (all integers little-endian)::

    8 bytes   magic  b"LAEFAST\\0"
    4 bytes   format version (uint32)
    8 bytes   header length H (uint64)
    32 bytes  SHA-256 of the header bytes
    H bytes   JSON header: metadata plus, per array, dtype, shape, offset, nbytes, sha256
    ...       zero padding, then each array's raw C-ordered bytes at a 64-byte aligned offset

Writes go to a temporary file in the target directory, are flushed to disk and
then renamed over the target, so a reader never sees a half-written model.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import struct
import tempfile
from typing import Any, BinaryIO, Dict, Iterator, Tuple, Union

import numpy as np

MAGIC = b"LAEFAST\0"
FORMAT_VERSION = 1
_ALIGN = 64
_PREFIX = struct.Struct("<8sIQ32s")
_MAX_HEADER = 64 * 1024 * 1024
_CHUNK = 16 * 1024 * 1024

PathOrFile = Union[str, os.PathLike, BinaryIO]


class ModelFileError(ValueError):
    """A model file is corrupt, truncated, of another format or of an unsupported version."""


def _aligned(offset: int) -> int:
    return (offset + _ALIGN - 1) // _ALIGN * _ALIGN


def _check_array(name: str, arr: np.ndarray) -> np.ndarray:
    arr = np.ascontiguousarray(arr)
    if arr.dtype.hasobject or arr.dtype.kind not in "biufU":
        raise TypeError(f"array {name!r} has dtype {arr.dtype}; only numbers and fixed-width strings are stored")
    return arr.astype(arr.dtype.newbyteorder("<"), copy=False)


def _sha256(buf) -> str:
    h = hashlib.sha256()
    mv = memoryview(buf).cast("B")
    for start in range(0, len(mv), _CHUNK):
        h.update(mv[start:start + _CHUNK])
    return h.hexdigest()


def sha256_file(path: Union[str, os.PathLike]) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks (for pinned downloads and caches)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write(fh: BinaryIO, arrays: Dict[str, np.ndarray], meta: Dict[str, Any]) -> None:
    arrays = {k: _check_array(k, v) for k, v in arrays.items()}
    entries = {}
    for name, arr in arrays.items():
        entries[name] = {"dtype": arr.dtype.str, "shape": list(arr.shape), "nbytes": int(arr.nbytes),
                         "sha256": _sha256(arr.reshape(-1).view(np.uint8)) if arr.nbytes else _sha256(b"")}
    # Offsets depend on the header length, which depends on the offsets' digits:
    # reserve a fixed width for each so one pass is enough.
    for e in entries.values():
        e["offset"] = 10 ** 15
    header_len = len(json.dumps({"meta": meta, "arrays": entries}).encode())
    offset = _aligned(_PREFIX.size + header_len)
    for name in arrays:
        entries[name]["offset"] = offset
        offset = _aligned(offset + entries[name]["nbytes"])
    header = json.dumps({"meta": meta, "arrays": entries}).encode()
    header += b" " * (header_len - len(header))
    fh.write(_PREFIX.pack(MAGIC, FORMAT_VERSION, len(header), hashlib.sha256(header).digest()))
    fh.write(header)
    pos = _PREFIX.size + len(header)
    for name, arr in arrays.items():
        start = entries[name]["offset"]
        fh.write(b"\0" * (start - pos))
        flat = arr.reshape(-1).view(np.uint8)
        for s in range(0, flat.size, _CHUNK):
            fh.write(memoryview(flat[s:s + _CHUNK]))
        pos = start + arr.nbytes


@contextlib.contextmanager
def atomic_write(path: Union[str, os.PathLike]) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path``; on success flush, fsync and rename it over ``path``.

    On any error (or interrupt) the temporary file is removed and ``path`` is untouched,
    so a reader never sees a half-written file.
    """
    target = os.fspath(path)
    fd, tmp = tempfile.mkstemp(prefix=".lae-fast-", suffix=".tmp", dir=os.path.dirname(os.path.abspath(target)))
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates 0600; give the file the permissions a plain open() would
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def save_arrays(target: PathOrFile, arrays: Dict[str, np.ndarray], meta: Dict[str, Any]) -> None:
    """Write ``arrays`` and JSON-serialisable ``meta`` atomically to a path, or to an open binary file."""
    if hasattr(target, "write"):
        _write(target, arrays, meta)
        return
    with atomic_write(target) as fh:
        _write(fh, arrays, meta)


def _read_header(fh: BinaryIO, name: str) -> Tuple[dict, int]:
    prefix = fh.read(_PREFIX.size)
    if len(prefix) < _PREFIX.size:
        raise ModelFileError(f"{name}: file is too short to be a lae-fast model (truncated or empty)")
    magic, version, header_len, header_digest = _PREFIX.unpack(prefix)
    if magic != MAGIC:
        hint = " (it looks like a pickle; lae-fast never loads pickles)" if prefix[:1] == b"\x80" else ""
        raise ModelFileError(f"{name}: not a lae-fast model file{hint}")
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"{name}: model file format version {version} is not supported by this lae-fast "
            f"(reads version {FORMAT_VERSION}); upgrade lae-fast or re-save the model"
        )
    if header_len > _MAX_HEADER:
        raise ModelFileError(f"{name}: header length {header_len} is implausible; the file is corrupt")
    raw = fh.read(header_len)
    if len(raw) < header_len:
        raise ModelFileError(f"{name}: header is truncated")
    if hashlib.sha256(raw).digest() != header_digest:
        raise ModelFileError(f"{name}: header checksum mismatch; the file is corrupt")
    try:
        header = json.loads(raw.decode())
        arrays = header["arrays"]
        meta = header["meta"]
        for e in arrays.values():
            np.dtype(e["dtype"])
            int(e["offset"]), int(e["nbytes"]), [int(s) for s in e["shape"]], str(e["sha256"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{name}: header is corrupt ({exc})") from None
    if not isinstance(meta, dict):
        raise ModelFileError(f"{name}: header is corrupt (meta is not a mapping)")
    return header, _PREFIX.size + header_len


def _array_from(buf, e: dict, key: str, name: str, verify: bool) -> np.ndarray:
    dtype = np.dtype(e["dtype"])
    if dtype.hasobject or dtype.kind not in "biufU":
        raise ModelFileError(f"{name}: array {key!r} has forbidden dtype {dtype}")
    shape = tuple(int(s) for s in e["shape"])
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    start = int(e["offset"])
    if nbytes != int(e["nbytes"]) or start < 0:
        raise ModelFileError(f"{name}: array {key!r} has inconsistent size in the header")
    if start + nbytes > len(buf):
        raise ModelFileError(
            f"{name}: file is truncated (array {key!r} needs bytes up to {start + nbytes}, "
            f"file has {len(buf)})"
        )
    view = buf[start:start + nbytes]
    if verify and _sha256(view) != e["sha256"]:
        raise ModelFileError(f"{name}: checksum mismatch in array {key!r}; the file is corrupt")
    return np.frombuffer(view, dtype=dtype).reshape(shape)


def load_arrays(source: PathOrFile, *, mmap: bool = True, verify: bool = True) -> Tuple[Dict[str, np.ndarray], dict]:
    """Read a file written by :func:`save_arrays`; returns ``(arrays, meta)``.

    With ``mmap`` (paths only) the arrays are read-only views of a memory map, so
    processes share one copy.  ``verify`` checks every array's SHA-256.

    Raises
    ------
    ModelFileError
        The file is truncated, corrupt, foreign, pickled or of an unknown version.
    """
    if hasattr(source, "read"):
        name = getattr(source, "name", "<file object>")
        data = source.read()
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"{name}: open the model file in binary mode ('rb')")
        fh = io.BytesIO(data)
        header, _ = _read_header(fh, name)
        buf = memoryview(data)
    else:
        name = os.fspath(source)
        if not os.path.isfile(name):
            raise FileNotFoundError(f"{name}: no such model file")
        # header and arrays from one open file: a model replaced (renamed over) meanwhile
        # cannot pair one file's header with another's bytes
        with open(name, "rb") as fh:
            header, _ = _read_header(fh, name)
            fh.seek(0)
            if mmap and os.fstat(fh.fileno()).st_size > 0:
                buf = memoryview(np.memmap(fh, dtype=np.uint8, mode="r"))
            else:
                buf = memoryview(fh.read())
    arrays = {k: _array_from(buf, e, k, name, verify) for k, e in header["arrays"].items()}
    return arrays, header["meta"]
