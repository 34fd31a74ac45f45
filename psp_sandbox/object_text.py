"""The JSON text of complete objects (``objects.complete``'s), byte for byte ``dumps``'s, with parts whose text is
known spliced in: a PaymentIntent's shared default payment_method_options (``objects._DEFAULT_PMO``, an
``Encoded``) and the null types of a charge's payment_method_details."""

from __future__ import annotations

from typing import Any

from . import object_fields
from .encoding import Encoded, dumps, dumps_with

# A complete charge's payment_method_details: its type, its card, then null for every other type (their text
# made once: encoding a null field costs the C encoder about as much as any other).
_PMD_NULLS = tuple(name for name in object_fields.CHARGE_PMD_TYPES if name != "card")
_PMD_KEYS = ("type", "card", *_PMD_NULLS)
_PMD_NONES = [None] * len(_PMD_NULLS)
_PMD_TAIL = dumps(dict.fromkeys(_PMD_NULLS))[1:-1]


def _dumps_details(details: dict[str, Any]) -> str:
    """``dumps(details)`` of a charge's payment_method_details, its run of null types' text made once."""
    if tuple(details) == _PMD_KEYS and list(details.values())[2:] == _PMD_NONES:
        return f'{{"type": {dumps(details["type"])}, "card": {dumps(details["card"])}, {_PMD_TAIL}}}'
    return dumps(details)


def dumps_complete(obj: Any) -> str:
    """``dumps(obj)`` for a complete object: its shared default payment_method_options' text spliced in, and a
    charge's payment_method_details' null types."""
    if not isinstance(obj, dict):
        return dumps(obj)
    if type(pmo := obj.get("payment_method_options")) is Encoded:
        return dumps_with(obj, "payment_method_options", pmo.text)
    if obj.get("object") == "charge" and isinstance(details := obj.get("payment_method_details"), dict):
        return dumps_with(obj, "payment_method_details", _dumps_details(details))
    return dumps(obj)
