"""Item-text templates: ``str.format`` syntax restricted to field names and indexes.

``"{title} ({year}). Genres: {genres}"`` joins fields of a record; ``{genres[0]}`` takes
the first element of a list field and ``{meta[lang]}`` a key of an object field. Nothing
else of ``str.format`` is allowed: no attribute access (``{title.__class__}`` would reach
Python internals), no conversions (``!r``) and no format specs (``:>10``, whose nested
fields ``{title:{year}}`` are evaluated too), so a template can only read the record.
"""
from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Any, Callable, List, Mapping, Optional, Sequence, Tuple, Union

__all__ = ["Template"]

_FIELD = re.compile(r"([^.\[\]!:{}]+)((?:\[[^\[\]]+\])*)\Z")
_INDEX = re.compile(r"\[([^\[\]]+)\]")

Key = Union[int, str]


@dataclass(frozen=True)
class _Field:
    text: str                 # as written, for messages: "genres[0]"
    name: str                 # the record field: "genres"
    keys: Tuple[Key, ...]     # indexes applied in turn: (0,)


class Template:
    """A parsed template; :meth:`render` fills it from one record.

    Parameters
    ----------
    template : str
        E.g. ``"{title} ({year}). Genres: {genres}"``.

    Raises
    ------
    TypeError
        ``template`` is not a str.
    ValueError
        Not a valid format string, a positional field (``{}``, ``{0}``), attribute access,
        a conversion or a format spec, or no field at all.
    """

    def __init__(self, template: str) -> None:
        if not isinstance(template, str):
            raise TypeError(f"template must be a str such as '{{title}} ({{year}})', got {template!r}")
        self.text = template
        self._parts: List[Tuple[str, Optional[_Field]]] = []
        try:
            parsed = list(string.Formatter().parse(template))
        except ValueError as exc:
            raise ValueError(f"template {template!r} is not a valid format string: {exc}") from None
        for literal, name, spec, conversion in parsed:
            self._parts.append((literal, None if name is None else self._field(name, spec, conversion)))
        if not self.fields:
            raise ValueError(f"template {template!r} names no field; use e.g. '{{title}} ({{year}})'")

    def _field(self, name: str, spec: str, conversion: Optional[str]) -> _Field:
        shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        if name == "" or name.isdigit():
            raise ValueError(f"template {self.text!r} has a positional field {shown}; name the fields, "
                             "e.g. '{title} ({year})'")
        if conversion or spec:
            raise ValueError(f"template {self.text!r}: {shown} has a conversion or format spec; only field names "
                             "and indexes are allowed, e.g. {title} or {genres[0]}")
        m = _FIELD.match(name)
        if m is None:
            raise ValueError(f"template {self.text!r}: {shown} is not a plain field name with optional indexes "
                             "(attribute access such as {title.upper} is not allowed); write e.g. {title} or "
                             "{genres[0]}")
        keys = tuple(int(k) if k.isdigit() else k for k in _INDEX.findall(m.group(2)))
        return _Field(name, m.group(1), keys)

    @property
    def fields(self) -> List[str]:
        """The record fields the template reads, in order, each once."""
        out: List[str] = []
        for _, field in self._parts:
            if field is not None and field.name not in out:
                out.append(field.name)
        return out

    def render(self, record: Mapping[str, Any], as_text: Callable[[Any], str],
               fail: Callable[[str], Exception]) -> str:
        """The text of one record (which has every field of :attr:`fields`).

        An index past the end of a list, or a key an object lacks, gives an empty
        string, as a null value does; indexing a value that is not a list or an
        object raises ``fail(message)``.
        """
        pieces: List[str] = []
        for literal, field in self._parts:
            pieces.append(literal)
            if field is not None:
                pieces.append(as_text(_lookup(record[field.name], field, fail)))
        return "".join(pieces)


def _lookup(value: Any, field: _Field, fail: Callable[[str], Exception]) -> Any:
    for key in field.keys:
        if value is None:
            return None
        if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
            if not isinstance(key, int):
                raise fail(f"{{{field.text}}} indexes the list in field {field.name!r} with {key!r}; "
                           "lists take a number, e.g. [0]")
            value = value[key] if key < len(value) else None
        elif isinstance(value, Mapping):
            value = value.get(str(key))
        else:
            raise fail(f"{{{field.text}}} indexes field {field.name!r}, which is a {type(value).__name__} here, "
                       "not a list or an object")
    return value
