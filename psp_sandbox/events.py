"""The events ``Api.emit`` stores: built for the current request, completed, and encoded with their object
encoded once, so that the answer carrying the same object can send that text instead of encoding it again."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

from . import object_fields, object_text, objects
from .context import RequestContext
from .encoding import dumps_with, remember
from .store import new_id


def new(event_type: str, obj: dict[str, Any], cfg: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    """The complete event (webhooks and /_sandbox/events carry complete objects): built with every field
    ``objects.event`` would add (``data.previous_attributes``, ``account``, ``context``), its object completed."""
    return {
        "id": new_id("evt"),
        "object": "event",
        "api_version": ctx.api_version,
        "type": event_type,
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1 if cfg["webhook_url"] else 0,
        "request": {"id": ctx.request_id, "idempotency_key": ctx.idempotency_key},
        "data": {"object": objects.complete(obj), "previous_attributes": None},
        "account": None,
        "context": None,
    }


def due(cfg: dict[str, Any]) -> float:
    """When the event is to be delivered."""
    at = time.time() + cfg["webhook_delay_s"]
    window = cfg["webhook_reorder_window_s"]
    if cfg["webhook_reorder"] and window > 0:
        # Hold events until the end of the next window boundary so every event of a window
        # becomes due at once and the dispatcher delivers the batch shuffled.
        at = (math.floor(at / window) + 2) * window
    return at


def encode(event: dict[str, Any]) -> tuple[str, str]:
    """``(dumps(event), dumps(event["data"]["object"]))``, the same texts, the object encoded once."""
    data = event["data"]
    obj_json = object_text.dumps_complete(data["object"])
    return dumps_with(event, "data", dumps_with(data, "object", obj_json)), obj_json


def _names(obj: Any) -> Iterator[str]:
    """The field names in ``obj`` and its short string values (not the samples' ``None``-derived ones)."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield key
            yield from _names(value)
    elif isinstance(obj, list):
        for item in obj:
            yield from _names(item)
    elif isinstance(obj, str) and len(obj) <= 32 and "None" not in obj:
        yield obj


# The field names and constant values of the complete objects the sandbox sends, escaped once (``encoding``).
_SAMPLES = [objects.complete({"object": kind}) for kind in objects._BY_OBJECT if kind not in ("list", "search_result")]
_SAMPLES.append(objects.complete({"object": "charge", "status": "succeeded", "payment_method": "pm_card_visa"}))
remember(_names(_SAMPLES))
remember(name for value in vars(object_fields).values() if isinstance(value, tuple) for name in value)
