"""The JSON text the sandbox stores and sends: ``json.dumps``'s own output, with less CPU.

``json.dumps`` with its defaults checks every list and dict for a circular reference (an id per container
put in and taken out of a dict); the sandbox's objects are trees built from decoded JSON and literals, never
circular, so the encoder here skips the check. Everything else (separators, ``ensure_ascii``, NaN) is the
default: the text is the same, byte for byte.

A part whose text is known already (an event's object, encoded once for the event and the answer; a constant
part shared by many objects, an ``Encoded``) is spliced in by ``dumps_with`` instead of being encoded again.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

dumps = json.JSONEncoder(check_circular=False).encode

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
