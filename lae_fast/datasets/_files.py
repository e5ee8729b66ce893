"""What the dataset readers share: a folder or zip archive of files, table parsing, id checks."""
from __future__ import annotations

import io
import math
import os
import re
import zipfile
import zlib
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .._validation import check_scalar
from ..data import DataFormatError, Interactions
from ..data.delimited import read_delimited
from ..data.delimited_layout import is_blank, iter_rows
from ..data.interactions import NoRowsError, NoRowsLeftError, PathLike
from ..data.sources import TextSource


#: the 19 genres of MovieLens-100K's u.item flags, in order (used when u.genre is absent)
ML100K_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
                 "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
                 "Thriller", "War", "Western")
_NO_GENRES = "(no genres listed)"
_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)  # an id as the text reader's integer_ids takes it


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
            return io.TextIOWrapper(self._member(member), encoding=encoding, newline=None)
        return open(member, encoding=encoding, newline=None)

    def source(self, member: str, encoding: str) -> TextSource:
        """A member as a :class:`~lae_fast.data.sources.TextSource` (a zip member is read as a stream).

        ``encoding``: ``"utf-8"`` (a byte-order mark is skipped) or ``"latin-1"``.
        """
        if self.zip is not None:
            return TextSource(self.label(member), lambda: self._member(member), encoding=encoding)
        return TextSource.file(member, encoding=encoding)

    def _member(self, member: str):
        """A binary stream on a zip member, from its start."""
        try:
            return self.zip.open(member)
        except (zipfile.BadZipFile, OSError, RuntimeError) as exc:
            raise DataFormatError(f"{self.label(member)}: cannot be read from the archive ({exc}); "
                                  "download the archive again") from None


def _sep_name(sep: str) -> str:
    return {"\t": "tab", ",": "','", "::": "'::'", "|": "'|'"}.get(sep, repr(sep))


def _guess_sep(line: str, expected: str) -> str:
    """A hint naming the separator a line seems to use instead of the expected one."""
    for cand in ("::", "\t", ",", ";", "|"):
        if cand != expected and cand in line:
            return f"; the line looks {_sep_name(cand)}-separated: is this the right file?"
    return ""


def _scan_table(source: TextSource, *, sep: str, skip_header: bool, layout: Sequence[str],
                int_cols: Sequence[int], float_cols: Sequence[int]) -> None:
    """Find the first malformed line in Python and raise DataFormatError naming it, in the dataset's terms.

    Fields are split as the line reader of :mod:`lae_fast.data` splits them
    (:func:`~lae_fast.data.delimited_layout.iter_rows`); returns when every line is well formed.
    """
    label = source.name
    need = max(list(int_cols) + list(float_cols)) + 1
    header_left = skip_header
    try:
        with source.open_text() as fh:
            for lineno, fields in iter_rows(label, fh, sep):
                if is_blank(fields):
                    continue
                if header_left:
                    header_left = False
                    continue
                text = sep.join(fields)
                shown = text if len(text) <= 80 else text[:77] + "..."
                if len(fields) < need:
                    raise DataFormatError(
                        f"{label}: line {lineno} has {len(fields)} {_sep_name(sep)}-separated field"
                        f"{'s' if len(fields) != 1 else ''}, expected {len(layout)} ({sep.join(layout)}): "
                        f"{shown!r}{_guess_sep(text, sep)}; fix or remove that line")
                for col in list(int_cols) + list(float_cols):
                    value = fields[col].strip()
                    if col in int_cols:
                        ok = _INTEGER.fullmatch(value) is not None
                    else:
                        try:
                            ok = math.isfinite(float(value))
                        except ValueError:
                            ok = False
                    if not ok:
                        kind = "an integer id" if col in int_cols else "a finite number"
                        raise DataFormatError(f"{label}: line {lineno}: {layout[col]} {value!r} is not {kind}: "
                                              f"{shown!r}; fix or remove that line")
    except UnicodeDecodeError:
        return  # the reader's message says so


def _read_table(files: _Files, member: str, *, sep: str, encoding: str, skip_header: bool,
                layout: Sequence[str], cols: Tuple[int, int, int], min_rating: Optional[float]) -> Interactions:
    """The interactions (integer ids) of the rows with rating >= min_rating of a numeric table.

    Read by the text reader of :mod:`lae_fast.data` (Arrow's blocks; the line reader where Arrow cannot
    vouch for the text), from the file or the zip member as a stream, latin-1 transcoded to UTF-8 as it is
    read. Every row's ids must be integers and its rating a finite number, kept or not; on a malformed
    file the line scan names the first bad line in the dataset's terms (the reader's message otherwise).
    """
    label = files.label(member)
    source = files.source(member, encoding)
    try:
        return read_delimited(source, sep=sep, header=skip_header, user_col=cols[0], item_col=cols[1],
                              rating_col=cols[2], min_rating=min_rating, integer_ids=True)
    except NoRowsLeftError as exc:
        raise DataFormatError(f"{label}: none of its {exc.n_below} ratings is >= min_rating={min_rating:g}; "
                              "lower min_rating (or pass min_rating=None to keep every rating)") from None
    except NoRowsError:
        raise DataFormatError(f"{label}: has no rating lines; expected lines like {sep.join(layout)}") from None
    except DataFormatError:
        _scan_table(source, sep=sep, skip_header=skip_header, layout=layout, int_cols=cols[:2],
                    float_cols=cols[2:])
        raise


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
