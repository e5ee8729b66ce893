"""Item texts: read them from JSONL/JSON/CSV, align them to a model's items, embed them with a cache.

The usual path from a catalogue file to the ``item_embeddings`` of L3AE::

    texts = load_item_texts("movies.csv", id_field="movieId",
                            template="{title}. Genres: {genres}")
    E, report = embed_items(model.item_ids_, texts, default_encoder())
    print(report)        # how many items had no text (they get zero rows)

Embeddings are cached on disk, keyed by the encoder's fingerprint and the
hash of the ordered texts, so refitting a model does not re-embed anything.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import re
import time
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..data.archive import NpzArchive, read_npy
from ..data.interactions import DataFormatError
from ..datasets import cache_dir as datasets_cache_dir
from ..ids import IdIndex
from ..io import atomic_write
from .template import Template

PathLike = Union[str, "os.PathLike[str]"]

# an integer id in text: at most 20 digits (64 bits); longer digit strings stay text (and int() would refuse
# the 4,300-digit ones with a ValueError)
_INT_RE = re.compile(r"[+-]?\d{1,20}")
_N_EXAMPLES = 5


class ItemTextError(ValueError):
    """An item-text file is malformed; the message names the file, the line and the fix."""


# -- reading ------------------------------------------------------------------------------------
def load_item_texts(path: PathLike, *, id_field: str = "item", text_field: str = "text",
                    template: Optional[str] = None, sep: Optional[str] = None) -> Dict[Any, str]:
    """Read ``item id -> text`` from a JSONL, JSON or CSV/TSV file.

    Parameters
    ----------
    path : str or path-like
        ``.jsonl``/``.ndjson`` (one JSON object per line), ``.json`` (a list
        of objects, or one object mapping id to text), ``.csv`` or ``.tsv``
        (a header row, then one row per item); any of them may end in
        ``.gz``. Other names are read as JSONL if the first character is
        ``{``, else as CSV.
    id_field : str, default='item'
        The field (column) holding the item id.
    text_field : str, default='text'
        The field holding the text; ignored when ``template`` is given.
    template : str, optional
        A template over the record's fields in :meth:`str.format` syntax, such as
        ``"{title} ({year}). Genres: {genres}"``, restricted to field names and
        indexes (``{genres[0]}``, ``{meta[lang]}``; see
        :class:`lae_fast.text.template.Template`). List values are joined with
        ``", "``; missing (null) values, indexes past the end of a list and keys
        an object lacks become empty strings.
    sep : str, optional
        CSV delimiter; by default ``"\\t"`` for ``.tsv`` and ``","`` otherwise.

    Returns
    -------
    dict
        Item id to text, in file order. JSON ids keep their JSON type; CSV
        ids are ints when every id in the file is an integer, else strings.
        Items whose text is empty or null are left out (they count as
        missing when aligned).

    Raises
    ------
    FileNotFoundError
        No such file.
    ItemTextError
        A field is missing (the message lists the fields there are), a line
        is not valid JSON, an id is not a number or string (or an integer
        beyond 64 bits), a template indexes a value that is not a list or
        object, or one id has two different texts.
    ValueError
        A template that is not plain field names and indexes.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "items.csv")
    >>> _ = open(path, "w").write("item,title,year\\n1,Heat,1995\\n2,Up,2009\\n")
    >>> load_item_texts(path, template="{title} ({year})")
    {1: 'Heat (1995)', 2: 'Up (2009)'}
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"item-text file {str(path)!r} does not exist")
    parsed = Template(template) if template is not None else None
    fields = parsed.fields if parsed is not None else None
    kind = _file_kind(path)
    records = _read_csv(path, sep) if kind == "csv" else _read_json(path, kind, id_field, text_field)

    texts: Dict[Any, str] = {}
    first_line: Dict[Any, int] = {}
    for lineno, record in records:
        if not isinstance(record, Mapping):
            raise ItemTextError(f"{path}: line {lineno}: expected a JSON object with fields "
                                f"{id_field!r} and {text_field!r}, got {type(record).__name__}")
        if id_field not in record:
            raise ItemTextError(f"{path}: line {lineno}: no field {id_field!r} for the item id (fields: "
                                f"{sorted(record)}); pass id_field= with the right name")
        item = _item_id(record[id_field], path, lineno, id_field)
        if fields is None:
            if text_field not in record:
                raise ItemTextError(f"{path}: line {lineno}: no field {text_field!r} for the text (fields: "
                                    f"{sorted(record)}); pass text_field= with the right name, or a template=")
            text = _as_text(record[text_field])
        else:
            absent = [f for f in fields if f not in record]
            if absent:
                raise ItemTextError(f"{path}: line {lineno}: the template needs field(s) {absent} that this "
                                    f"record lacks (fields: {sorted(record)})")
            text = parsed.render(record, _as_text,  # type: ignore[union-attr]
                                 lambda msg: ItemTextError(f"{path}: line {lineno}: {msg}"))
        text = text.strip()
        if not text:
            continue
        if item in texts and texts[item] != text:
            raise ItemTextError(f"{path}: item {item!r} has two different texts (lines {first_line[item]} and "
                                f"{lineno}); keep one row per item")
        texts[item] = text
        first_line.setdefault(item, lineno)
    if kind == "csv" and texts and all(_INT_RE.fullmatch(k) and str(int(k)) == k.lstrip("+")
                                       for k in texts):
        texts = {int(k): v for k, v in texts.items()}
    return texts


def _item_id(item: Any, path: Path, lineno: int, id_field: str) -> Any:
    """A record's id as the ids rules allow it: a non-empty string, or an integer within 64 bits."""
    where = f"{path}: line {lineno}: the item id ({id_field!r})"
    if isinstance(item, str):
        if not item.strip():
            raise ItemTextError(f"{where} is empty")
        return item.strip()
    if isinstance(item, float) and item.is_integer() and abs(item) <= 2 ** 53:
        item = int(item)  # JSON writes some integers as 7.0
    if isinstance(item, int) and not isinstance(item, bool):
        if not -2 ** 63 <= item < 2 ** 64:
            raise ItemTextError(f"{where} is an integer of {len(str(abs(item)))} digits, beyond 64 bits; write "
                                "the ids as strings")
        return item
    shown = "null" if item is None else type(item).__name__
    raise ItemTextError(f"{where} is {'empty (null)' if item is None else 'a ' + shown}; an id is a number or a "
                        "string")


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(_as_text(v) for v in value if v is not None)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _file_kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    suffix = os.path.splitext(name)[1]
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".json":
        return "json"
    if suffix in (".csv", ".tsv", ".txt"):
        return "csv"
    with _open_text(path) as fh:
        head = fh.read(4096).lstrip()
    return "jsonl" if head.startswith("{") else "csv"


def _open_text(path: Path) -> io.TextIOBase:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")  # type: ignore[return-value]
    return open(path, "r", encoding="utf-8-sig", newline="")


def _read_json(path: Path, kind: str, id_field: str, text_field: str) -> Iterator[Tuple[int, Any]]:
    lineno = 0
    with _open_text(path) as fh:
        try:
            if kind == "json":
                data = json.load(fh)
                if isinstance(data, Mapping):  # {"id": "text", ...}
                    yield from ((1, {id_field: k, text_field: v}) for k, v in data.items())
                elif isinstance(data, list):
                    yield from ((i + 1, rec) for i, rec in enumerate(data))
                else:
                    raise ItemTextError(f"{path}: expected a JSON list of objects or an object mapping item "
                                        f"id to text, got {type(data).__name__}")
                return
            for lineno, line in enumerate(fh, 1):
                if line.strip():
                    yield lineno, json.loads(line)
        except ItemTextError:
            raise
        except UnicodeDecodeError as exc:
            raise ItemTextError(f"{path}: is not UTF-8 text ({exc.reason}); convert it to UTF-8") from None
        except (ValueError, RecursionError) as exc:  # ValueError: also 5,000-digit integers
            where = f"line {lineno}" if kind == "jsonl" else f"line {getattr(exc, 'lineno', '?')}"
            reason = getattr(exc, "msg", None) or str(exc)[:120]
            raise ItemTextError(f"{path}: {where}: not valid JSON ({reason}); a .jsonl file needs one "
                                "JSON object per line") from None


def _read_csv(path: Path, sep: Optional[str]) -> Iterator[Tuple[int, Dict[str, str]]]:
    if sep is None:
        base = path.name.lower()[:-3] if path.name.lower().endswith(".gz") else path.name.lower()
        sep = "\t" if base.endswith(".tsv") else ","
    with _open_text(path) as fh:
        reader = csv.reader(fh, delimiter=sep)
        try:
            header = next(reader, None)
            if header is None:
                return
            header = [h.strip() for h in header]
            for row in reader:
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) != len(header):
                    raise ItemTextError(f"{path}: line {reader.line_num}: {len(row)} fields but the header has "
                                        f"{len(header)} ({header}); quote fields that contain {sep!r}")
                yield reader.line_num, dict(zip(header, row))
        except UnicodeDecodeError as exc:
            raise ItemTextError(f"{path}: is not UTF-8 text ({exc.reason}); convert it to UTF-8") from None
        except csv.Error as exc:
            raise ItemTextError(f"{path}: line {reader.line_num}: {exc}") from None


# -- alignment ----------------------------------------------------------------------------------
def _key(item: Any) -> Any:
    """A matching key: integer-valued ids (1, np.int64(1), "1", 1.0) meet as the same int."""
    if isinstance(item, (bool, np.bool_)):
        return str(item)
    if isinstance(item, (int, np.integer)):
        return int(item)
    if isinstance(item, (float, np.floating)) and float(item).is_integer():
        return int(item)
    if isinstance(item, bytes):
        item = item.decode("utf-8", "replace")
    text = str(item).strip()
    if _INT_RE.fullmatch(text) and str(int(text)) == text.lstrip("+"):
        return int(text)
    return text


def _scalar(item: Any) -> Any:
    return item.item() if isinstance(item, np.generic) else item


def align_texts(item_ids: Sequence[Any], texts: Mapping[Any, str]) -> Tuple[List[Optional[str]], List[Any]]:
    """Put texts in the order of a model's item ids.

    Parameters
    ----------
    item_ids : sequence of int or str
        The model's item ids (``model.item_ids_``), in column order.
    texts : mapping
        Item id to text, e.g. from :func:`load_item_texts`. Integer ids
        match whether written as ints or as strings (``7`` and ``"7"``);
        ``"007"`` stays a different id.

    Returns
    -------
    aligned : list of str or None
        ``aligned[j]`` is the text of ``item_ids[j]``, or None.
    missing : list
        The item ids without a text, in column order.

    Raises
    ------
    ValueError
        Two keys of ``texts`` name the same item with different texts.

    Examples
    --------
    >>> align_texts([3, 1, 2], {"1": "one", 2: "two"})
    ([None, 'one', 'two'], [3])
    """
    lookup: Dict[Any, str] = {}
    origin: Dict[Any, Any] = {}
    for k, v in texts.items():
        key = _key(k)
        if key in lookup and lookup[key] != v:
            raise ValueError(f"texts has two entries for item {key!r} ({origin[key]!r} and {k!r}) with "
                             "different texts; keep one")
        lookup[key] = v
        origin[key] = k
    aligned: List[Optional[str]] = []
    missing: List[Any] = []
    for item in np.asarray(item_ids).tolist() if isinstance(item_ids, np.ndarray) else item_ids:
        text = lookup.get(_key(item))
        if text is not None and not (isinstance(text, str) and text.strip()):
            text = None
        aligned.append(text)
        if text is None:
            missing.append(_scalar(item))
    return aligned, missing


# -- embedding with a cache ---------------------------------------------------------------------
@dataclass(frozen=True)
class EmbeddingReport:
    """What :func:`embed_items` did: coverage, dimension, cache use and time."""

    n_items: int
    n_embedded: int
    n_missing: int
    missing_examples: Tuple[Any, ...]
    dim: int
    cache_hit: bool
    cache_path: Optional[Path]
    seconds: float

    def __str__(self) -> str:
        text = f"embedded {self.n_embedded:,} of {self.n_items:,} items ({self.dim}-d) in {self.seconds:.1f} s"
        text += " (from the cache)" if self.cache_hit else ""
        if self.n_missing:
            examples = ", ".join(repr(x) for x in self.missing_examples)
            more = ", ..." if self.n_missing > len(self.missing_examples) else ""
            text += f"; {self.n_missing:,} items have no text and get zero rows (e.g. {examples}{more})"
        return text


def embed_items(item_ids: Sequence[Any], texts: Union[Mapping[Any, str], Sequence[Optional[str]]], encoder: Any,
                *, cache_dir: Union[PathLike, None, bool] = None,
                progress: bool = False) -> Tuple[np.ndarray, EmbeddingReport]:
    """Embed the texts of a model's items: one row per item id, zeros where an item has no text.

    Parameters
    ----------
    item_ids : sequence of int or str
        The model's item ids, in column order.
    texts : mapping or sequence
        Item id to text (see :func:`align_texts`), or a list already aligned
        to ``item_ids`` with None for items without text.
    encoder : TextEncoder or compatible
        Anything with ``encode(texts, *, progress=False) -> (n, d) array``
        and a ``sha256`` attribute (a ``fingerprint`` attribute, when
        present, is used instead for the cache key).
    cache_dir : str, path-like or False, optional
        Where embeddings are cached: one ``.npy`` file per (encoder
        fingerprint, SHA-256 of the ordered texts). Default
        ``lae_fast.datasets.cache_dir() / "embeddings"``; False disables it.
    progress : bool, default=False
        Passed to ``encoder.encode``.

    Returns
    -------
    E : ndarray of float32, shape (n_items, d)
        Row j embeds the text of ``item_ids[j]``; zero for items without text.
    report : EmbeddingReport
        Counts (``n_missing``, ``missing_examples``), dimension, whether the
        cache was used, and time taken; ``str(report)`` is one summary line.

    Raises
    ------
    ValueError
        No item id has a text (usually ids that do not match, or the wrong
        ``id_field``), or the encoder returned a wrong shape or NaNs.
    """
    t0 = time.perf_counter()
    ids = np.asarray(item_ids).tolist() if isinstance(item_ids, np.ndarray) else list(item_ids)
    if isinstance(texts, Mapping):
        aligned, missing = align_texts(ids, texts)
    else:
        aligned = [t if isinstance(t, str) and t.strip() else None for t in texts]
        if len(aligned) != len(ids):
            raise ValueError(f"texts is a list of {len(aligned)} entries but there are {len(ids)} item ids; pass "
                             "a dict item id -> text, or a list aligned to the item ids")
        missing = [_scalar(i) for i, t in zip(ids, aligned) if t is None]
    present = [j for j, t in enumerate(aligned) if t is not None]
    if not present:
        file_ids = list(texts)[:_N_EXAMPLES] if isinstance(texts, Mapping) else []
        raise ValueError(f"none of the {len(ids):,} item ids has a text (model ids e.g. {ids[:_N_EXAMPLES]}; "
                         f"text ids e.g. {file_ids}); check that the id field of the text file holds the "
                         "same ids as the interactions")
    present_texts = [aligned[j] for j in present]

    path = _cache_path(cache_dir, encoder, present_texts)
    vectors = _read_cache(path, len(present)) if path is not None else None
    hit = vectors is not None
    if vectors is None:
        vectors = np.asarray(encoder.encode(present_texts, progress=progress))
        if vectors.ndim != 2 or vectors.shape[0] != len(present):
            raise ValueError(f"the encoder returned an array of shape {vectors.shape} for {len(present)} texts; "
                             "expected (n_texts, d)")
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if not np.isfinite(vectors).all():
            raise ValueError("the encoder returned NaN or infinite values; check the model file")
        if path is not None:
            _write_cache(path, vectors)

    E = np.zeros((len(ids), vectors.shape[1]), dtype=np.float32)
    E[present] = vectors
    report = EmbeddingReport(n_items=len(ids), n_embedded=len(present), n_missing=len(missing),
                             missing_examples=tuple(missing[:_N_EXAMPLES]), dim=int(vectors.shape[1]),
                             cache_hit=hit, cache_path=path, seconds=time.perf_counter() - t0)
    return E, report


def texts_sha256(texts: Sequence[str]) -> str:
    """SHA-256 of an ordered list of texts (length-prefixed, so boundaries count)."""
    h = hashlib.sha256()
    for t in texts:
        data = t.encode("utf-8")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def _cache_path(cache_dir: Union[PathLike, None, bool], encoder: Any, texts: Sequence[str]) -> Optional[Path]:
    if cache_dir is False:
        return None
    if cache_dir is None or cache_dir is True:
        folder = Path(datasets_cache_dir()) / "embeddings"
    else:
        folder = Path(cache_dir)
    key = getattr(encoder, "fingerprint", None) or getattr(encoder, "sha256", None)
    if not key:
        raise TypeError(f"the encoder {type(encoder).__name__} has no sha256 (or fingerprint) attribute to key the "
                        "cache on; add one, or pass cache_dir=False")
    return folder / f"{str(key)[:32]}-{texts_sha256(texts)[:32]}.npy"


def _read_cache(path: Path, n_rows: int) -> Optional[np.ndarray]:
    if not path.is_file():
        return None
    try:
        arr = read_npy(str(path), fix="it is re-created on the next run")
    except (OSError, ValueError, MemoryError) as exc:
        warnings.warn(f"ignoring the unreadable embedding cache file {path} ({exc}); embedding again",
                      RuntimeWarning, stacklevel=3)
        return None
    if arr.ndim != 2 or arr.shape[0] != n_rows or arr.dtype != np.float32 or not np.isfinite(arr).all():
        warnings.warn(f"ignoring the embedding cache file {path}: shape {arr.shape}, dtype {arr.dtype} does not "
                      f"fit {n_rows} texts; embedding again", RuntimeWarning, stacklevel=3)
        return None
    return arr


def _write_cache(path: Path, vectors: np.ndarray) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as fh:  # a concurrent reader never sees half a file
            np.save(fh, vectors, allow_pickle=False)
    except OSError as exc:
        warnings.warn(f"could not write the embedding cache {path} ({exc}); the next run will embed again",
                      RuntimeWarning, stacklevel=3)


# -- embedding files --------------------------------------------------------------------------
def save_embeddings(path: PathLike, item_ids: Sequence[Any], vectors: np.ndarray) -> None:
    """Write ``item_ids`` and their embedding rows to an ``.npz`` file, atomically (no pickle)."""
    ids = np.asarray(item_ids)
    if ids.dtype == object:
        ids = ids.astype(str)
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != ids.shape[0]:
        raise ValueError(f"{len(ids)} item ids but embeddings of shape {vectors.shape}")
    with atomic_write(path) as fh:
        np.savez(fh, item_ids=ids, embeddings=vectors)


def load_embeddings(path: PathLike) -> Tuple[Optional[np.ndarray], np.ndarray]:
    """Read ``(item_ids, embeddings)`` from a file of :func:`save_embeddings`, or a bare ``.npy``.

    A ``.npy`` file carries no ids: ``item_ids`` is then None and the rows must
    already follow the model's item order.

    Raises
    ------
    ItemTextError
        Unreadable file, missing arrays, or not a 2-D float matrix.
    """
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise FileNotFoundError(f"{name}: no such embeddings file")
    fix = "write it with `lae-fast embed ITEMS -o FILE.npz`"
    try:  # declared sizes are checked before anything is inflated or allocated
        if zipfile.is_zipfile(name):
            with NpzArchive(name, fix=fix) as npz:
                missing = {"item_ids", "embeddings"} - set(npz.files)
                if missing:
                    raise ItemTextError(f"{name}: missing arrays {sorted(missing)} (found {npz.files}); {fix}")
                npz.check_budget(["item_ids", "embeddings"], what=f"{name}: the embeddings and their ids")
                ids, vectors = npz.read("item_ids"), npz.read("embeddings")
        else:
            ids, vectors = None, read_npy(name, fix=fix)
    except DataFormatError as exc:
        raise ItemTextError(f"not a readable embeddings file: {exc}") from None
    if vectors.ndim != 2 or not np.issubdtype(vectors.dtype, np.floating):
        raise ItemTextError(f"{name}: embeddings must be a 2-D float matrix, got {vectors.dtype} {vectors.shape}")
    if ids is not None and ids.shape != (vectors.shape[0],):
        raise ItemTextError(f"{name}: {ids.shape[0]} item ids for {vectors.shape[0]} embedding rows")
    return ids, vectors


def align_rows(item_ids: Sequence[Any], source_ids: Sequence[Any],
               vectors: np.ndarray) -> Tuple[np.ndarray, List[Any]]:
    """Reorder embedding rows (one per ``source_ids`` entry) into the order of ``item_ids``.

    Ids match as in :func:`align_texts`. Items absent from ``source_ids`` get a
    zero row and are listed in ``missing``.
    """
    source = np.array([str(_key(item)) for item in np.asarray(source_ids).tolist()], dtype=str)
    keys, counts = np.unique(source, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"embeddings list item {keys[counts > 1][0]!r} twice; keep one row per item")
    wanted = np.asarray(item_ids).tolist()
    rows = IdIndex(source).positions(np.array([str(_key(item)) for item in wanted], dtype=str))
    out = np.zeros((len(wanted), vectors.shape[1]), dtype=np.float32)
    found = rows >= 0
    out[found] = vectors[rows[found]]
    return out, [item for item, ok in zip(wanted, found) if not ok]
