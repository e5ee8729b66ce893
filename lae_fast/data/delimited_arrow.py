"""Delimited text through Apache Arrow's block-wise CSV reader: the fast path of :func:`read_csv`.

Arrow parses blocks of the file on its thread pool; each block is filtered (``min_rating``) and its ids
coded (:class:`~lae_fast.data.columns.IdColumn`) before the next is read, so memory follows the rows kept,
not the file. Whatever this path cannot vouch for raises :class:`NeedsLineReader`, and the caller reads
the file line by line instead (:mod:`lae_fast.data.delimited_lines`), which gives the exact answer or
names the bad line. The cases sent there: text that is not UTF-8 or holds NUL, an odd number of quote characters
(an unterminated quote), a row Arrow refuses (ragged, whitespace-only, bad quoting), a rating or
timestamp Arrow cannot parse (Arrow parses a subset of what Python's ``float`` does, to the same value;
timestamps also as ISO-8601, see :mod:`~lae_fast.data.timestamps`) or that is not finite, a block of
timestamps mixing numbers and dates, a negative rating kept with ``binarize=False``, and ids that are empty, start with
spaces and a quote (Python's ``skipinitialspace`` opens a quoted field there, Arrow does not), or are
longer than Python's csv field limit. Files holding quotes are parsed with quoted line breaks allowed,
as Python's csv module does; when a field did span lines (fewer rows than non-empty lines), the file is
parsed again as the line reader parses it, to refuse a quote never closed (Arrow reads the rest of the
file into that field).
"""
from __future__ import annotations

import codecs
import csv
import queue
import re
import threading
from typing import Any, BinaryIO, Iterator, List, Optional, Tuple, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from .._threads import arrow_threads
from .columns import PY_WHITESPACE, IdColumn, assemble
from .delimited_layout import WHITESPACE, Layout, all_ratings_zero, iter_rows, no_rows_left
from .interactions import Interactions
from .sources import TextSource, TransformedStream
from .timestamps import arrow_text_seconds

__all__ = ["NeedsLineReader", "read_arrow"]

#: bytes per block Arrow parses at once (a block is also the unit of filtering and id coding)
BLOCK_SIZE = 8 << 20
_SCAN_CHUNK = 16 << 20
_UNIT_SEP = "\x1f"  # what '::' and runs of blanks are rewritten to (both readers split on it, see iter_rows)
# the blanks str.split() splits on that are one byte; other Unicode blanks send the file to the line reader
_BLANK_RUN = re.compile(rb"[ \t\x0b\x0c\x1c-\x1f]+")


class NeedsLineReader(Exception):
    """The fast path cannot vouch for this file: read it line by line."""


def read_arrow(source: Union[str, TextSource], layout: Layout, *, min_rating: Optional[float], binarize: bool,
               num_threads: Optional[int], integer_ids: bool = False) -> Interactions:
    """Read ``source`` (a path or a :class:`~lae_fast.data.sources.TextSource`) laid out as ``layout`` says.

    See the module notes. ``integer_ids``: every id, kept or not, must be an integer (``[+-]digits``);
    any other hands the file over.

    Raises
    ------
    NeedsLineReader
        Anything this path does not take; nothing is returned half-read.
    DataFormatError
        No rows left after ``min_rating``, or every rating 0 with ``binarize=False``.
    """
    name = layout.name
    if isinstance(source, str):
        source = TextSource.file(source)
    if layout.first_row_lines != 1:
        raise NeedsLineReader("the first row spans lines")
    ascii_only, quotes = _scan(source.open_bytes())
    if quotes % 2:
        raise NeedsLineReader("odd number of quote characters")
    quoting = layout.sep != WHITESPACE
    if layout.sep == WHITESPACE and not ascii_only:
        raise NeedsLineReader("blank-separated text beyond ASCII")
    delimiter = layout.sep if len(layout.sep) == 1 else _UNIT_SEP
    names = [f"c{i}" for i in range(layout.ncols)]
    wanted = {"user": layout.user, "item": layout.item, "rating": layout.rating, "timestamp": layout.timestamp}
    columns = {role: names[pos] for role, pos in wanted.items() if pos is not None}
    types = {columns["user"]: pa.string(), columns["item"]: pa.string()}
    if "rating" in columns:
        types[columns["rating"]] = pa.float64()
    if "timestamp" in columns:  # numbers or ISO-8601 text, told apart block by block (data/timestamps.py)
        types[columns["timestamp"]] = pa.string()
    read_options = pcsv.ReadOptions(column_names=names, skip_rows=layout.header_lines, block_size=BLOCK_SIZE)
    parse_options = pcsv.ParseOptions(delimiter=delimiter, quote_char='"' if quoting else False,
                                      double_quote=True, escape_char=False, newlines_in_values=quotes > 0,
                                      ignore_empty_lines=True)
    convert_options = pcsv.ConvertOptions(include_columns=list(columns.values()), column_types=types,
                                          null_values=[], strings_can_be_null=False,
                                          quoted_strings_can_be_null=False, check_utf8=False)
    screens = [s for s, used in ((_screen, quoting), (_integers_only, integer_ids)) if used]
    screen = None if not screens else screens[0] if len(screens) == 1 else _both(*screens)
    users = IdColumn(f"{name}: user ids", text=True, screen=screen)
    items = IdColumn(f"{name}: item ids", text=True, screen=screen)
    values: Optional[List[np.ndarray]] = [] if layout.rating is not None and not binarize else None
    stamps: Optional[List[np.ndarray]] = [] if layout.timestamp is not None else None
    n_rows = n_below = 0
    stream = source.arrow_input() if len(layout.sep) == 1 else _Rewritten(source.open_bytes(), layout.sep)
    try:
        with arrow_threads(num_threads):
            reader = pcsv.open_csv(stream, read_options=read_options, parse_options=parse_options,
                                   convert_options=convert_options)
            for batch in _read_ahead(reader):
                n_rows += batch.num_rows
                keep = None
                if stamps is not None:
                    seconds = arrow_text_seconds(batch.column(columns["timestamp"]))
                    if seconds is None:
                        raise NeedsLineReader("a timestamp Arrow cannot read, or a block of mixed forms")
                    stamps.append(seconds)
                if layout.rating is not None:
                    rating = _finite(batch.column(columns["rating"]))
                    if min_rating is not None:
                        keep = rating >= min_rating
                        n_below += int(keep.size - np.count_nonzero(keep))
                        rating = rating[keep]
                        if stamps is not None:
                            stamps[-1] = stamps[-1][keep]
                    if values is not None:
                        if (rating < 0).any():
                            raise NeedsLineReader("negative rating kept")
                        values.append(rating)
                users.add(batch.column(columns["user"]), keep)
                items.add(batch.column(columns["item"]), keep)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise NeedsLineReader(str(exc)) from None
    finally:
        if not isinstance(stream, str):
            stream.close()
    if n_rows == 0:
        raise NeedsLineReader("no data rows")
    if quoting and quotes and n_rows != _row_lines(source) - int(layout.header):
        _refuse_open_quote(source, layout)  # a field spans lines: fine if its quote closes
    if users.size == 0:
        raise no_rows_left(name, min_rating, n_below)
    inter = assemble(name, users, items, values=values, timestamps=stamps, binarize=binarize)
    if inter.nnz == 0:
        raise all_ratings_zero(name)
    return inter


def _read_ahead(reader: Iterator[pa.RecordBatch], depth: int = 2) -> Iterator[pa.RecordBatch]:
    """The reader's batches, parsed by a thread ``depth`` batches ahead while this one codes the last.

    Arrow releases the GIL while it parses and so do the numpy / Arrow calls that code a batch, so the
    two overlap. The thread stops when the consumer does, on an error too.
    """
    batches: "queue.Queue[Any]" = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item: Any) -> bool:
        """Wait for room unless the consumer has stopped; False when it has."""
        while not stop.is_set():
            try:
                batches.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in reader:
                if not put(batch):
                    return
            put(done)
        except BaseException as exc:  # handed to the consumer, which raises it
            put(exc)

    thread = threading.Thread(target=produce, name="lae-fast-csv-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = batches.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def _finite(column: pa.ChunkedArray) -> np.ndarray:
    arr = column.to_numpy()
    if not np.isfinite(arr).all():
        raise NeedsLineReader("a rating is not finite")
    return arr


def _screen(dictionary: pa.Array) -> None:
    """Refuse distinct ids the two readers could read differently (see the module notes)."""
    if len(dictionary) == 0:
        return
    stripped = pc.utf8_trim(dictionary, characters=PY_WHITESPACE)
    if pc.min(pc.utf8_length(stripped)).as_py() == 0:
        raise NeedsLineReader("an empty id")
    if pc.any(pc.match_substring_regex(dictionary, '^ +"')).as_py():  # csv's skipinitialspace starts a quote there
        raise NeedsLineReader("a quote after leading spaces")
    if pc.max(pc.utf8_length(dictionary)).as_py() > csv.field_size_limit():
        raise NeedsLineReader("an id longer than the csv field limit")


def _integers_only(dictionary: pa.Array) -> None:
    """Refuse ids that are not integers written as ``[+-]digits`` (whitespace around them aside)."""
    if len(dictionary) == 0:
        return
    stripped = pc.utf8_trim(dictionary, characters=PY_WHITESPACE)
    if not pc.all(pc.match_substring_regex(stripped, "^[+-]?[0-9]+$")).as_py():
        raise NeedsLineReader("an id that is not an integer")


def _both(first, second):
    def screen(dictionary: pa.Array) -> None:
        first(dictionary)
        second(dictionary)
    return screen


def _scan(stream: BinaryIO) -> Tuple[bool, int]:
    """(the text is ASCII, its number of quote characters); NeedsLineReader when it is not UTF-8 or holds NUL.

    Reads ``stream`` (UTF-8 bytes) to its end and closes it.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    ascii_only, quotes = True, 0
    with stream as fh:
        while True:
            chunk = fh.read(_SCAN_CHUNK)
            if not chunk:
                break
            if ascii_only and chunk.isascii():
                pass
            else:
                ascii_only = False
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    raise NeedsLineReader("not UTF-8") from None
            if b'"' in chunk:
                quotes += chunk.count(b'"')
            if b"\x00" in chunk:  # Python's csv refuses NUL characters
                raise NeedsLineReader("a NUL character")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise NeedsLineReader("not UTF-8") from None
    return ascii_only, quotes


def _refuse_open_quote(source: TextSource, layout: Layout) -> None:
    """The line reader's error if a quote is never closed: Arrow takes one at the end of the file and reads
    the rest of the file into that field. A quoted line break that closes passes (Python's csv reads it too)."""
    with source.open_text() as fh:
        for _ in iter_rows(layout.name, fh, layout.sep):
            pass


def _row_lines(source: TextSource) -> int:
    """Physical lines that are not empty: the rows (and header) Arrow reads when no field spans lines."""
    with source.open_bytes() as fh:
        return sum(1 for line in fh if line.strip(b"\r\n"))


class _Rewritten(TransformedStream):
    """UTF-8 bytes with ``'::'`` (or each run of blanks) rewritten to one unit separator, whole lines at a time.

    Exactly what :func:`~lae_fast.data.delimited_layout.iter_rows` does line by line, so both readers see
    the same fields: ``'::'`` is replaced left to right; a blank-separated line loses its leading and
    trailing blanks. Closing it closes ``stream``.
    """

    def __init__(self, stream: BinaryIO, sep: str) -> None:
        super().__init__(stream)
        self._sep = sep
        self._partial = b""   # the start of a line whose end is not read yet

    def _next(self) -> Optional[bytes]:
        while True:
            chunk = self._raw.read(_SCAN_CHUNK)
            if not chunk:
                text, self._partial = self._partial, b""
                return self._convert(text) if text else None
            text = self._partial + chunk
            cut = max(text.rfind(b"\n"), text.rfind(b"\r")) + 1
            if cut:
                text, self._partial = text[:cut], text[cut:]
                return self._convert(text)
            self._partial = text

    def _convert(self, text: bytes) -> bytes:
        if self._sep != WHITESPACE:
            return text.replace(self._sep.encode(), _UNIT_SEP.encode())
        lines = text.splitlines(keepends=True)
        out = []
        for line in lines:
            body = line.rstrip(b"\r\n")
            out.append(_BLANK_RUN.sub(b"\x1f", body.strip(b" \t\x0b\x0c\x1c\x1d\x1e\x1f")) + line[len(body):])
        return b"".join(out)
