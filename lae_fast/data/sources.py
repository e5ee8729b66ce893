"""Where delimited text comes from: a file, or a member of a zip archive, opened afresh for each pass.

The text reader makes up to three passes over its source (the layout from the first lines, Arrow's blocks,
and the line-by-line reader when Arrow cannot vouch for the file), so a :class:`TextSource` is something
that can be opened again, never a half-read stream. Text is UTF-8; a latin-1 source (the GroupLens files)
is transcoded to UTF-8 while it is read, so Arrow and the line reader see the same characters.
"""
from __future__ import annotations

import io
from typing import BinaryIO, Callable, Optional, TextIO, Union

__all__ = ["TextSource", "TransformedStream", "ENCODINGS"]

#: the encodings a source may declare
ENCODINGS = ("utf-8", "latin-1")
_CHUNK = 1 << 20


class TextSource:
    """Text to read, by name (how messages call it) and by a function that opens its bytes from the start.

    Parameters
    ----------
    name : str
        The file's path, or ``archive.zip:member`` (used in every message).
    opener : callable
        Returns a new binary stream positioned at the start (a file, a ``zipfile`` member, ...).
    encoding : {"utf-8", "latin-1"}
        How the bytes are written. A UTF-8 byte-order mark is skipped.
    path : str, optional
        The file on disk, when there is one: Arrow then reads it natively.
    """

    def __init__(self, name: str, opener: Callable[[], BinaryIO], *, encoding: str = "utf-8",
                 path: Optional[str] = None) -> None:
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}")
        self.name = name
        self.encoding = encoding
        self.path = path
        self._opener = opener

    @classmethod
    def file(cls, path: str, *, encoding: str = "utf-8") -> "TextSource":
        """A file on disk, named by its path."""
        return cls(path, lambda: open(path, "rb"), encoding=encoding, path=path)

    def open_bytes(self) -> BinaryIO:
        """The text as UTF-8 bytes, from the start."""
        raw = self._opener()
        return raw if self.encoding == "utf-8" else io.BufferedReader(_Latin1ToUtf8(raw), _CHUNK)

    def open_text(self) -> TextIO:
        """The text as str (newlines kept as written, as the csv module wants), from the start; seekable to 0."""
        encoding = "utf-8-sig" if self.encoding == "utf-8" else "latin-1"
        return io.TextIOWrapper(self._opener(), encoding=encoding, newline="")

    def arrow_input(self) -> Union[str, BinaryIO]:
        """What Arrow's reader opens: the path of a UTF-8 file (read natively), else the UTF-8 byte stream."""
        return self.path if self.path is not None and self.encoding == "utf-8" else self.open_bytes()


class TransformedStream(io.RawIOBase):
    """A binary stream read through a transformation, piece by piece; closing it closes ``raw``.

    Subclasses define :meth:`_next`: the next transformed bytes (possibly empty), or None at the end.
    """

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self._raw = raw
        self._pending = b""  # transformed bytes not handed out yet

    def _next(self) -> Optional[bytes]:  # pragma: no cover - abstract
        raise NotImplementedError

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            more = self._next()
            if more is None:
                return 0
            self._pending = more
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


class _Latin1ToUtf8(TransformedStream):
    """A latin-1 byte stream as UTF-8, chunk by chunk (latin-1 is one byte per character: any cut is safe)."""

    def _next(self) -> Optional[bytes]:
        chunk = self._raw.read(_CHUNK)
        if not chunk:
            return None
        return chunk if chunk.isascii() else chunk.decode("latin-1").encode("utf-8")
