"""User-item interactions: the :class:`Interactions` container and its file readers.

Three kinds of files are read (:mod:`lae_fast.data.formats` maps extensions to readers):

* ``.npz`` archives (:func:`read_npz`): files written by
  :func:`scipy.sparse.save_npz` (any format it writes) and plain
  :func:`numpy.savez` files holding a CSR matrix as ``indptr``, ``indices``,
  ``data`` and ``shape``, optionally with ``user_ids`` and ``item_ids``
  (the layout :func:`save_npz` writes). Pickles are never loaded.
* long-format text (:func:`read_csv`): one ``user,item[,rating][,timestamp]``
  row per interaction; CSV, TSV, RecBole ``.inter`` and MovieLens ``.dat``.
* Parquet (:func:`read_parquet`): ``user, item[, rating][, timestamp]`` rows,
  with the same options as text.

Text and Parquet are read by Apache Arrow, block by block; text may also come
from a zip member or a latin-1 file (:mod:`lae_fast.data.sources`). In memory,
:meth:`Interactions.from_frame` reads pandas, polars, pyarrow and dask
tables, and :meth:`Interactions.from_pairs` two id arrays. Every reader keeps
timestamps alike: numbers as they are, dates and ISO-8601 times as seconds
since the epoch (:mod:`lae_fast.data.timestamps`).

:func:`load_interactions` picks the reader from the file extension. Every
problem with a file raises :class:`DataFormatError`, whose message names the
file, says what is wrong and how to fix it.
"""
from ..ids import align_items
from .delimited import CSV_EXTENSIONS, read_csv
from .formats import FORMATS, file_format, load_interactions
from .frames import is_frame
from .interactions import DataFormatError, Interactions
from .npz import NPZ_EXTENSIONS, read_npz, save_npz
from .pairs import interactions_from_pairs
from .parquet import PARQUET_EXTENSIONS, read_parquet

__all__ = [
    "DataFormatError", "Interactions", "read_npz", "read_csv", "read_parquet", "load_interactions", "save_npz",
    "align_items", "file_format", "interactions_from_pairs", "FORMATS", "CSV_EXTENSIONS", "NPZ_EXTENSIONS",
    "PARQUET_EXTENSIONS", "is_frame",
]
