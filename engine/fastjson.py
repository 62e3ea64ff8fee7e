"""JSON for minibox's own small records, through CPython's C codec (no kernel mechanism here).

``import json`` costs ~1.5 ms, and it is the only reason a ``minibox run`` would import ``re``
(and with it ``enum``, ~4 ms more): the ``json`` package compiles regular expressions for its
pure-Python fallback, which CPython does not use when its C accelerator ``_json`` is there. Every
``minibox run`` reads and writes a few small JSON files (the image's config and layers, the
container's record), so it calls the accelerator directly, as ``json`` itself would.

- ``dumps(value)`` is ``json.dumps(value)``: compact, ASCII. Indented JSON, meant for people to
  read, is written with ``json`` itself (``state.write_json_atomic(indent=2)``).
- ``loads(text)`` is ``json.loads(text)``; what is not JSON raises ``ValueError``
  (``json.JSONDecodeError`` is one).
"""

from __future__ import annotations

import _json

_WHITESPACE = " \t\n\r"


class _DecoderOptions:
    """What ``json.JSONDecoder`` hands its C scanner: json's defaults."""

    strict = True  # no raw control characters inside strings
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    @staticmethod
    def parse_constant(name: str) -> float:
        return float(name.replace("Infinity", "inf"))  # NaN, Infinity, -Infinity, as json accepts


def _not_json(value: object) -> object:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_scan = _json.make_scanner(_DecoderOptions())
# markers (for cycles), default, string encoder, indent, ": ", ", ", sort_keys, skipkeys, allow_nan
_encode = _json.make_encoder(None, _not_json, _json.encode_basestring_ascii, None, ": ", ", ", False, False, True)


def dumps(value: object) -> str:
    return "".join(_encode(value, 0))


def loads(text: str | bytes) -> object:
    if isinstance(text, bytes):
        text = text.decode()
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration as stop:
        raise ValueError(f"not JSON: no value at character {stop.value}") from None
    if text[end:].strip(_WHITESPACE):
        raise ValueError(f"not JSON: more after the value at character {end}")
    return value


def load(file: object) -> object:
    return loads(file.read())  # type: ignore[attr-defined]
