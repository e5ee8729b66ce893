"""Model files: a versioned, checksummed, pickle-free container of named arrays.

Layout (all integers little-endian)::

    8 bytes   magic  b"LAEFAST\\0"
    4 bytes   format version (uint32)
    8 bytes   header length H (uint64)
    32 bytes  SHA-256 of the header bytes
    H bytes   JSON header: metadata plus, per array, dtype, shape, offset, nbytes, sha256
    ...       zero padding, then each array's raw C-ordered bytes at a 64-byte aligned offset

Writes go through :func:`atomic_write` (``lae_fast/_atomic.py``): a temporary file in the
target directory, flushed to disk and renamed over the target, so a reader never sees a
half-written model. Reads check the header against a strict schema before trusting any
number in it.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import struct
from typing import Any, BinaryIO, Dict, Tuple, Union

import numpy as np

from ._atomic import atomic_path, atomic_write, check_target  # noqa: F401 (their public home)

MAGIC = b"LAEFAST\0"
FORMAT_VERSION = 1
_ALIGN = 64
_PREFIX = struct.Struct("<8sIQ32s")
_MAX_HEADER = 64 * 1024 * 1024
_CHUNK = 16 * 1024 * 1024
# a header is written by _write: flat and small; anything beyond these bounds is crafted
_MAX_DEPTH = 16
_MAX_NDIM = 32
_DTYPE = re.compile(r"[<|][biuf][1-8]\Z|<U[1-9][0-9]{0,8}\Z")
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")
#: metadata fields lae-fast writes: the type a reader may then rely on, and whether null is allowed
_META_FIELDS = {"n_items": (int, False), "n_users": (int, True), "nnz": (int, True), "m": (int, True),
                "model": (str, False), "dtype": (str, False), "kind": (str, False), "by": (str, True),
                "lae_fast_version": (str, False), "params": (dict, True), "B_format": (str, False)}
_TYPE_LABELS = {int: "a non-negative integer", str: "a string", dict: "a mapping"}

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
    header = _parse_header(raw, name)
    _check_header(header, name, _PREFIX.size + header_len)
    return header, _PREFIX.size + header_len


def _refuse_constant(text: str) -> float:
    raise ValueError(f"{text} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of the range of a float")
    return value


def _parse_header(raw: bytes, name: str) -> Any:
    try:
        header = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant, parse_float=_finite_float)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: absurd nesting
        raise ModelFileError(f"{name}: header is corrupt (not valid JSON: {str(exc)[:200]})") from None
    if _depth(header) > _MAX_DEPTH:
        raise ModelFileError(f"{name}: header is corrupt (nested more than {_MAX_DEPTH} levels deep)")
    return header


def _depth(obj: Any) -> int:
    """Nesting depth of parsed JSON, without recursion."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > _MAX_DEPTH:
            break
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, level + 1) for child in children)
    return deepest


def _is_int(value: Any, low: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _check_header(header: Any, name: str, data_start: int) -> None:
    """Every field the reader will trust has the type and range the writer gives it."""
    def corrupt(what: str) -> ModelFileError:
        return ModelFileError(f"{name}: header is corrupt ({what}); the file was not written by lae-fast, "
                              "or was damaged after writing (checksums can be recomputed, the schema cannot)")

    if not isinstance(header, dict) or not isinstance(header.get("meta"), dict):
        raise corrupt("meta is not a mapping")
    arrays = header.get("arrays")
    if not isinstance(arrays, dict) or not arrays:
        raise corrupt("'arrays' must map at least one array name to its entry")
    for key, e in arrays.items():
        if not isinstance(e, dict):
            raise corrupt(f"the entry of array {key!r} is not a mapping")
        dtype, shape = e.get("dtype"), e.get("shape")
        if not isinstance(dtype, str) or not _DTYPE.match(dtype):
            raise corrupt(f"array {key!r} has dtype {dtype!r}; lae-fast stores little-endian numbers and "
                          "fixed-width strings only")
        if (not isinstance(shape, list) or len(shape) > _MAX_NDIM or not all(_is_int(s) for s in shape)):
            raise corrupt(f"array {key!r} has shape {str(shape)[:80]}; a shape is a list of at most "
                          f"{_MAX_NDIM} non-negative integers")
        if not _is_int(e.get("offset"), low=data_start) or not _is_int(e.get("nbytes")):
            raise corrupt(f"array {key!r} has offset {e.get('offset')!r} and nbytes {e.get('nbytes')!r}; both are "
                          "non-negative integers and the data starts after the header")
        if not isinstance(e.get("sha256"), str) or not _SHA256.match(e["sha256"]):
            raise corrupt(f"array {key!r} has no SHA-256 digest")
        if math.prod(shape) * np.dtype(dtype).itemsize != e["nbytes"]:  # Python ints: no overflow
            raise corrupt(f"array {key!r}: shape {shape} and dtype {dtype} do not make {e['nbytes']} bytes")
    meta = header["meta"]
    for field, (kind, nullable) in _META_FIELDS.items():
        if field not in meta or (meta[field] is None and nullable):
            continue
        value = meta[field]
        if not (_is_int(value) if kind is int else isinstance(value, kind)):
            raise corrupt(f"meta field {field!r} is {repr(value)[:40]}, not {_TYPE_LABELS[kind]}")


def _array_from(buf, e: dict, key: str, name: str, verify: bool) -> np.ndarray:
    """One array of a file whose header passed :func:`_check_header`."""
    dtype, shape, start, nbytes = np.dtype(e["dtype"]), tuple(e["shape"]), e["offset"], e["nbytes"]
    if start + nbytes > len(buf):
        raise ModelFileError(
            f"{name}: file is truncated (array {key!r} needs bytes up to {start + nbytes}, "
            f"file has {len(buf)})"
        )
    view = buf[start:start + nbytes]
    if verify and _sha256(view) != e["sha256"]:
        raise ModelFileError(f"{name}: checksum mismatch in array {key!r}; the file is corrupt")
    return np.frombuffer(view, dtype=dtype).reshape(shape)


def check_finite(arr: np.ndarray, *, source: str, key: str) -> None:
    """Refuse a float array from a file that holds NaN or infinite values (other dtypes pass).

    Read in chunks, so a memory-mapped n×n B needs no n×n temporary. Used on every
    array of weights a model or serving file brings (checksums prove integrity, not sense).

    Raises
    ------
    ModelFileError
        Naming the file, the array and the first bad position.
    """
    if arr.dtype.kind != "f" or arr.size == 0:
        return
    flat = arr.reshape(-1)
    step = max(1, _CHUNK // arr.dtype.itemsize)
    for start in range(0, flat.size, step):
        ok = np.isfinite(flat[start:start + step])
        if not ok.all():
            at = start + int(np.argmin(ok))
            raise ModelFileError(f"{source}: array {key!r} holds NaN or infinite values (the first at flat "
                                 f"position {at}), so its rankings would be meaningless; refit the model and save "
                                 "it again")


def source_name(source: PathOrFile) -> str:
    """How messages name a model file: its path as given, or a file object's name."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return str(getattr(source, "name", "<file object>"))


def load_arrays(source: PathOrFile, *, mmap: bool = True, verify: bool = True) -> Tuple[Dict[str, np.ndarray], dict]:
    """Read a file written by :func:`save_arrays`; returns ``(arrays, meta)``.

    With ``mmap`` (paths only) the arrays are read-only views of a memory map, so
    processes share one copy.  ``verify`` checks every array's SHA-256.

    Raises
    ------
    ModelFileError
        The file is truncated, corrupt, foreign, pickled or of an unknown version.
    """
    name = source_name(source)
    if hasattr(source, "read"):
        data = source.read()
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"{name}: open the model file in binary mode ('rb')")
        fh = io.BytesIO(data)
        header, _ = _read_header(fh, name)
        buf = memoryview(data)
    else:
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
