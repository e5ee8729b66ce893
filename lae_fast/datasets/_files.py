"""What the dataset readers share: a folder or zip archive of files, table parsing, id checks."""
from __future__ import annotations

import io
import os
import warnings
import zipfile
import zlib
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .._validation import check_scalar
from ..data import DataFormatError
from ..data.interactions import PathLike


#: the 19 genres of MovieLens-100K's u.item flags, in order (used when u.genre is absent)
ML100K_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
                 "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
                 "Thriller", "War", "Western")
_NO_GENRES = "(no genres listed)"
_CHUNK_ROWS = 1 << 20  # rows parsed per np.loadtxt call: bounds the float64 scratch to 24 MiB


#: a standard file name -> the file that comes with it (how a lone file is recognised)
_SIBLINGS = {"u.data": "u.item", "u.item": "u.data", "ratings.dat": "movies.dat", "movies.dat": "ratings.dat",
             "ratings.csv": "movies.csv", "movies.csv": "ratings.csv", "train.txt": "test.txt",
             "test.txt": "train.txt"}


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


def _movie_text(title: str, genres: Sequence[str]) -> str:
    """``"Title (year). Genres: A, B"`` as the pinned RecBole files give it (title carries the year)."""
    title = title.strip()
    genres = [g.strip() for g in genres if g.strip() and g.strip() != _NO_GENRES]
    return f"{title}. Genres: {', '.join(genres)}" if genres else f"{title}."


def _check_min_rating(min_rating: Optional[float]) -> Optional[float]:
    if min_rating is None:
        return None
    return check_scalar(min_rating, name="min_rating")


def _parse_int(label: str, lineno: int, text: str, what: str, line: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise DataFormatError(f"{label}: line {lineno}: {what} {text.strip()!r} is not an integer: "
                              f"{line[:80]!r}; fix or remove that line") from None


# -- MovieLens-100K ------------------------------------------------------------------------------

_ML100K_FIX = "the GroupLens ml-100k.zip holds u.data, u.item and u.genre in its ml-100k/ folder"
