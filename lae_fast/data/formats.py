"""The one table from file type to reader, used by ``load_interactions``, the CLI and the shard readers."""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from .delimited import CSV_EXTENSIONS, read_csv
from .interactions import DataFormatError, Interactions, PathLike, check_file
from .npz import NPZ_EXTENSIONS, read_npz, read_npz_shape
from .parquet import PARQUET_EXTENSIONS, read_parquet

__all__ = ["FORMATS", "TABLE_OPTIONS", "file_format", "load_interactions", "declared_n_items", "refused_options",
           "check_options"]

#: the options every table format (text or Parquet) takes alike
TABLE_OPTIONS = ("user_col", "item_col", "rating_col", "timestamp_col", "min_rating", "binarize", "num_threads")

#: format name -> (extensions, reader, the reader's options besides the path)
FORMATS: Dict[str, Tuple[Tuple[str, ...], Callable[..., Interactions], Tuple[str, ...]]] = {
    "npz": (NPZ_EXTENSIONS, read_npz, ("binarize",)),
    "delimited": (CSV_EXTENSIONS, read_csv, TABLE_OPTIONS + ("sep", "header")),
    "parquet": (PARQUET_EXTENSIONS, read_parquet, TABLE_OPTIONS),
}


def file_format(path: PathLike) -> str:
    """``'npz'``, ``'delimited'`` or ``'parquet'`` from the file extension.

    Raises
    ------
    DataFormatError
        An extension no reader takes (the message lists those that are read).
    """
    name = os.fspath(path)
    ext = os.path.splitext(name)[1].lower()
    for fmt, (extensions, _, _) in FORMATS.items():
        if ext in extensions:
            return fmt
    known = ", ".join(e for extensions, _, _ in FORMATS.values() for e in extensions)
    raise DataFormatError(
        f"{name}: unsupported extension {ext or '(none)'!r}; interactions files must end in {known}; "
        "rename the file, or call read_csv / read_npz / read_parquet directly"
    )


def declared_n_items(path: PathLike) -> Optional[int]:
    """The item count a file declares before it is read (an npz 'shape' entry), else None.

    For memory preflights: a few hundred bytes of npz can declare a billion items, and a
    caller that will need an n x n matrix should refuse before reading them. Text and
    parquet files declare nothing (their size bounds what they can hold).
    """
    name = os.fspath(path)
    if not os.path.isfile(name) or os.path.splitext(name)[1].lower() not in NPZ_EXTENSIONS:
        return None
    return read_npz_shape(name)[1]


def refused_options(fmt: str, options: Mapping[str, Any]) -> List[str]:
    """The options given (not None) that the reader of ``fmt`` does not take, sorted."""
    takes = FORMATS[fmt][2]
    return sorted(k for k, v in options.items() if v is not None and k not in takes)


def check_options(name: str, fmt: str, options: Mapping[str, Any]) -> None:
    """Refuse options (not None) that the reader of ``fmt`` does not take; ``name`` is the file or shards.

    Raises
    ------
    TypeError
        Naming the options, the format, the formats that take them and the fix.
    """
    refused = refused_options(fmt, options)
    if refused:
        others = sorted({f for f, (_, _, t) in FORMATS.items() if any(k in t for k in refused)} - {fmt})
        raise TypeError(f"{', '.join(refused)} do not apply to {name} (a {fmt} file); "
                        f"they apply to {' or '.join(others) or 'no'} files; drop them")


def load_interactions(path: PathLike, **kwargs: Any) -> Interactions:
    """Read an interactions file, choosing the reader by extension (see :data:`FORMATS`).

    Text and Parquet files take the same options (columns by name or position, ``rating_col``,
    ``min_rating``, ``timestamp_col``, ``binarize``, ``num_threads``); text files also ``sep`` and ``header``.

    Parameters
    ----------
    path : str or path-like
        ``.npz`` goes to :func:`~lae_fast.data.read_npz`; ``.csv``, ``.tsv``,
        ``.txt``, ``.dat`` and ``.inter`` to :func:`~lae_fast.data.read_csv`;
        ``.parquet`` and ``.pq`` to :func:`~lae_fast.data.read_parquet`.
    **kwargs
        Passed to the reader; options (not None) that the reader does not take are refused.

    Returns
    -------
    Interactions

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    DataFormatError
        Unsupported extension, or a malformed file.
    TypeError
        An option that this file type does not take.
    """
    name = check_file(path)
    fmt = file_format(name)
    check_options(name, fmt, kwargs)
    return FORMATS[fmt][1](name, **{k: v for k, v in kwargs.items() if v is not None})
