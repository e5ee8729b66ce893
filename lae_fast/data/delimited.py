"""Long-format text interactions (CSV, TSV, RecBole ``.inter``, MovieLens ``.dat``): one row per interaction.

The layout (separator, header, columns) is read from the first lines; the rows are read by Arrow in
blocks (:mod:`~lae_fast.data.delimited_arrow`); a file Arrow cannot vouch for is read line by line
(:mod:`~lae_fast.data.delimited_lines`), which returns what the file means or names its first bad line.
:func:`read_csv` reads a file; :func:`read_delimited` any :class:`~lae_fast.data.sources.TextSource`
(a zip member, latin-1 text), which is how :mod:`lae_fast.datasets` reads the GroupLens files.
"""
from __future__ import annotations

from typing import Optional

from .._validation import check_scalar
from .delimited_arrow import NeedsLineReader, read_arrow
from .delimited_layout import Column, read_layout
from .delimited_lines import read_lines
from .interactions import DataFormatError, Interactions, PathLike, check_file
from .sources import TextSource

__all__ = ["read_csv", "read_delimited", "CSV_EXTENSIONS", "Column"]

#: extensions read by :func:`read_csv` (lower case)
CSV_EXTENSIONS = (".csv", ".tsv", ".txt", ".dat", ".inter")


def read_csv(path: PathLike, *, user_col: Column = None, item_col: Column = None, rating_col: Column = None,
             timestamp_col: Column = None, sep: Optional[str] = None, header: bool = True,
             min_rating: Optional[float] = None, binarize: bool = True,
             num_threads: Optional[int] = None) -> Interactions:
    """Read long-format interactions: one ``user,item[,rating][,timestamp]`` row each.

    Parameters
    ----------
    path : str or path-like
        UTF-8 text. Blank lines are skipped; whitespace around fields is
        stripped; fields may be quoted (except with whitespace separators).
    user_col, item_col, rating_col, timestamp_col : str or int, optional
        Column names (with ``header``) or 0-based positions. RecBole type
        suffixes in the header (``user_id:token``) are ignored. When None, the
        user and item columns are found by name (``user``, ``user_id``,
        ``userId``, ``uid`` / ``item``, ``item_id``, ``itemId``, ``movieId``,
        ``iid``, any case) and the rating by ``rating``, ``score``, ... ;
        without a header they are columns 0, 1 and 2. The timestamp column
        (numbers such as Unix seconds, or ISO-8601 dates and times, which
        become seconds since the epoch: :mod:`lae_fast.data.timestamps`) is
        kept as ``Interactions.timestamps``.
    sep : str, optional
        Column separator. None: tab for ``.tsv`` / ``.inter``, otherwise
        detected among ``'::'``, tab, ``','``, ``';'`` and whitespace.
        ``' '`` or ``r'\\s+'`` means any run of spaces/tabs; ``'\\\\t'`` is a tab.
    header : bool, default=True
        Whether the first non-blank line names the columns.
    min_rating : float, optional
        Keep only rows with ``rating >= min_rating`` (needs a rating column).
    binarize : bool, default=True
        Every kept row is a positive (1.0), whatever its rating; a repeated
        (user, item) pair is one positive. With ``binarize=False`` the values
        are the ratings (1.0 where there is no rating column), repeated pairs
        are **summed**, and rows rated 0 store nothing.
    num_threads : int, optional
        Threads for Arrow's parser (default: ``LAE_FAST_NUM_THREADS``, else the CPUs available).

    Returns
    -------
    Interactions
        Users and items are numbered in sorted order of their ids. Ids are
        int64 when every id is an integer (and reading them as integers
        merges no two distinct ids, as ``"7"`` and ``"007"`` would), else str.

    Raises
    ------
    DataFormatError
        Empty file, no data rows, a missing or repeated column, a short row,
        an empty id, a rating that is not a finite number, a timestamp that is
        neither a finite number nor an ISO-8601 date/time, or no
        rows left after ``min_rating``; messages name the file and the line.

    Notes
    -----
    The rows are parsed by Apache Arrow, block by block on its thread pool,
    with the same meaning as Python's :mod:`csv` module (``skipinitialspace``,
    doubled quotes, quoted line breaks). A file Arrow cannot vouch for (see
    :mod:`lae_fast.data.delimited_arrow`) is read again line by line, which
    gives the same result, or the error that names its first bad line.
    """
    name = check_file(path)
    return read_delimited(TextSource.file(name), user_col=user_col, item_col=item_col, rating_col=rating_col,
                          timestamp_col=timestamp_col, sep=sep, header=header, min_rating=min_rating,
                          binarize=binarize, num_threads=num_threads)


def read_delimited(source: TextSource, *, user_col: Column = None, item_col: Column = None,
                   rating_col: Column = None, timestamp_col: Column = None, sep: Optional[str] = None,
                   header: bool = True, min_rating: Optional[float] = None, binarize: bool = True,
                   num_threads: Optional[int] = None, integer_ids: bool = False) -> Interactions:
    """:func:`read_csv` on any text source (a file, a zip member, latin-1 text); the options are read_csv's.

    ``integer_ids``: every id, of every row (kept by ``min_rating`` or not), must be an integer, written
    ``[+-]digits``; the ids come back as integers. Messages name ``source.name`` and the line.

    Raises
    ------
    DataFormatError
        As :func:`read_csv`; :class:`~lae_fast.data.interactions.NoRowsError` for a source without rows,
        :class:`~lae_fast.data.interactions.NoRowsLeftError` when ``min_rating`` keeps none.
    """
    name = source.name
    if min_rating is not None:
        min_rating = check_scalar(min_rating, name="min_rating")
    options = dict(min_rating=min_rating, binarize=binarize)
    try:
        with source.open_text() as fh:
            layout = read_layout(name, fh, sep=sep, header=header, user_col=user_col, item_col=item_col,
                                 rating_col=rating_col, timestamp_col=timestamp_col, **options)
        try:
            inter = read_arrow(source, layout, num_threads=num_threads, integer_ids=integer_ids, **options)
        except NeedsLineReader:
            with source.open_text() as fh:
                inter = read_lines(fh, layout, integer_ids=integer_ids, **options)
    except UnicodeDecodeError:
        raise DataFormatError(f"{name}: is not UTF-8 text; convert it to UTF-8 (e.g. with iconv) "
                              "or save the interactions as .npz") from None
    if integer_ids:
        for what, ids in (("user", inter.user_ids), ("item", inter.item_ids)):
            if ids.dtype.kind not in "iu":
                raise DataFormatError(f"{name}: the {what} ids are integers, but some are written two ways "
                                      "(e.g. 7 and 007), which would merge them; write each id one way")
    return inter
