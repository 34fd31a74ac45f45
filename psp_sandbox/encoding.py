"""The JSON text the sandbox stores and sends: ``json.dumps``'s own output, with less CPU.

``json.dumps`` with its defaults checks every list and dict for a circular reference (an id per container
put in and taken out of a dict); the sandbox's objects are trees built from decoded JSON and literals, never
circular, so the encoder here skips the check. Everything else (separators, ``ensure_ascii``, NaN) is the
default: the text is the same, byte for byte. ``json`` escapes every string anew, the same hundred field
names in every object: the names ``remember`` was given are escaped once and their text looked up (any other
string is escaped by ``json``'s own C function, as before).

A part whose text is known already (an event's object, encoded once for the event and the answer; a constant
part shared by many objects, an ``Encoded``) is spliced in by ``dumps_with`` instead of being encoded again.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from json import encoder as _json
from typing import Any


class _Escapes(dict):
    """A string's JSON text: remembered (``remember``), else escaped as ``json`` escapes it (not kept)."""

    __missing__ = staticmethod(_json.encode_basestring_ascii)


_ESCAPES = _Escapes()


def remember(strings: Iterable[str]) -> None:
    """Escape these strings (field names) once: their text is looked up from now on."""
    for text in strings:
        _ESCAPES[text] = _json.encode_basestring_ascii(text)


_PLAIN = json.JSONEncoder(check_circular=False)
if _json.c_make_encoder is not None:
    # What ``JSONEncoder.encode`` runs for a non-string (``iterencode(o, _one_shot=True)``), with the defaults
    # but ``check_circular`` and its string escaping looked up first.
    _encode = _json.c_make_encoder(None, _PLAIN.default, _ESCAPES.__getitem__, None, ": ", ", ", False, False, True)

    def dumps(obj: Any) -> str:
        """``json.dumps(obj)``, the same text."""
        return "".join(_encode(obj, 0))
else:  # pragma: no cover - CPython always has _json
    dumps = _PLAIN.encode

# Stands for a part while the object around it is encoded: unguessable (a client's string cannot hold it).
_SLOT = "\0" + secrets.token_hex(16)
_SLOT_JSON = dumps(_SLOT)


def dumps_with(obj: dict[str, Any], key: str, text: str) -> str:
    """``dumps(obj)``, byte for byte, where ``text`` is ``dumps(obj[key])`` (``key`` in ``obj``): spliced in."""
    out = dumps({**obj, key: _SLOT})
    if out.count(_SLOT_JSON) != 1:  # never seen: the slot's text elsewhere in the object
        return dumps(obj)
    return out.replace(_SLOT_JSON, text, 1)


class Encoded(dict):
    """A read-only JSON object (nested objects too) that keeps its own text, ``dumps(self)``, in ``text``.

    ``json`` encodes it as the dict it is; ``dumps_with`` can splice ``text`` in instead. Lists inside are
    refused (they could be changed in place)."""

    __slots__ = ("text",)

    def __init__(self, value: dict[str, Any]) -> None:
        if any(isinstance(v, list) for v in value.values()):
            raise TypeError("an Encoded object holds no lists")
        super().__init__({k: Encoded(v) if isinstance(v, dict) else v for k, v in value.items()})
        self.text = dumps(self)

    def _read_only(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("an Encoded object is read-only")

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _read_only  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return Encoded, (dict(self),)
