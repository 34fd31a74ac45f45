"""The PSP's webhooks: verified, stored in an inbox (one row per event id), then processed
idempotently through the same services the tasks and the janitor use."""
from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from core.parsers import json_loads_problem, json_problem
from core.services import webhook_inbox_process, webhook_inbox_store
from payments.models import PaymentOrder, Refund, WebhookEvent
from payments.psp import get_psp
from payments.psp.base import WebhookSignatureError
from payments.services.execution import payment_order_apply_result
from payments.services.refunds import refund_apply_result

logger = logging.getLogger(__name__)


# Printable ASCII without spaces, as the inbox's primary key holds it (Stripe's are ``evt_`` + 24 characters).
_ID_MAX_LENGTH = WebhookEvent._meta.get_field("id").max_length
_EVENT_ID = re.compile(rf"[\x21-\x7e]{{1,{_ID_MAX_LENGTH}}}")
_TYPE_MAX_LENGTH = WebhookEvent._meta.get_field("type").max_length


class WebhookEventMalformed(Exception):
    """Signed, so it came from the PSP (or whoever holds the secret), but not an event we can keep:
    refused with a 400 and nothing stored. ``param`` names the member at fault."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def webhook_event_receive(*, payload: bytes, signature: str) -> tuple[WebhookEvent, bool]:
    """Verify and store one delivery. Returns ``(event, created)``; a duplicate delivery is
    counted and not stored again. Raises ``WebhookSignatureError`` for a forged, stale or
    future-dated one, ``WebhookEventMalformed`` for a signed one that is not an event."""
    _refuse_future_timestamp(signature)
    try:
        event = get_psp().verify_webhook(payload, signature)
    except WebhookSignatureError:
        raise
    except (ValueError, TypeError, AttributeError, KeyError, RecursionError) as exc:
        # The signature held (it is checked first); the body is JSON but not an event: ``[]``, ``null``, ``5``...
        raise WebhookEventMalformed(
            "The event must be a JSON object." if not isinstance(exc, RecursionError) else json_loads_problem(exc)
        ) from exc
    _check_shape(event)
    return webhook_inbox_store(inbox=WebhookEvent, event=event)


def _refuse_future_timestamp(signature: str) -> None:
    """The SDK refuses a ``t=`` older than the tolerance but not one in the future: a delivery signed
    ahead of time (a leaked secret, a skewed clock) would otherwise stay valid until then."""
    items = [part.split("=", 1) for part in (signature or "").split(",")]
    stamps = [item[1] for item in items if len(item) == 2 and item[0].strip() == "t"]
    if len(stamps) > 1:
        raise WebhookSignatureError("more than one timestamp in the signature header")
    if not stamps:
        return  # the SDK refuses it
    try:
        timestamp = int(stamps[0])
    except ValueError:
        return  # the SDK refuses it
    if timestamp > time.time() + settings.PSP_WEBHOOK_TOLERANCE_SECONDS:
        raise WebhookSignatureError(f"timestamp {timestamp} is in the future beyond the tolerance")


def _check_shape(event) -> None:
    """What the inbox stores and processing reads must be there, of the right type, and storable."""
    if not isinstance(event, dict):
        raise WebhookEventMalformed("The event must be a JSON object.")
    problem = json_problem(event)
    if problem:
        raise WebhookEventMalformed(problem)
    event_id = event.get("id")
    if not isinstance(event_id, str) or not _EVENT_ID.fullmatch(event_id):
        raise WebhookEventMalformed(
            f"The event id must be 1 to {_ID_MAX_LENGTH} printable ASCII characters.",
            param="id")
    event_type = event.get("type")
    if not isinstance(event_type, str) or not 0 < len(event_type) <= _TYPE_MAX_LENGTH:
        raise WebhookEventMalformed(f"The event type must be a string of 1 to {_TYPE_MAX_LENGTH} characters.",
                                    param="type")
    data = event.get("data")
    if not isinstance(data, dict):
        raise WebhookEventMalformed("The event's data must be an object.", param="data")
    obj = data.get("object")
    if not isinstance(obj, dict):
        raise WebhookEventMalformed("The event's data.object must be an object.", param="data.object")
    if not isinstance(obj.get("id", ""), str):
        raise WebhookEventMalformed("The object's id must be a string.", param="data.object.id")


def webhook_event_process(*, event_id: str, actor: str | None = None) -> str:
    """Apply a stored event. Safe to run again: a processed event is left alone, and the
    services it calls never move a decided order. A failure is kept on the row for re-running."""
    actor = actor or f"webhook:{event_id}"
    return webhook_inbox_process(inbox=WebhookEvent, event_id=event_id, apply=lambda event: _apply(event, actor),
                                 failure_event="webhook_processing_failed")


@cache
def _handlers() -> tuple[tuple[str, Callable[..., str]], ...]:
    return tuple((prefix, import_string(path)) for prefix, path in settings.PSP_WEBHOOK_HANDLERS.items())


def _handler_for(event_type: str) -> Callable[..., str] | None:
    """The handler another app registered for this type of event (``PSP_WEBHOOK_HANDLERS``, by prefix): payments
    stores every event in its inbox and knows nothing of what those apps do with theirs."""
    return next((handler for prefix, handler in _handlers() if event_type.startswith(prefix)), None)


def _apply(event: WebhookEvent, actor: str) -> str:
    handler = _handler_for(event.type)
    if handler is not None:  # another app's event (a dispute): in this transaction, its status returned
        return handler(event=event.payload, actor=actor)
    notice = get_psp().webhook_notice(event.payload)
    if notice.payment is not None:
        order_id = notice.payment_order_id or PaymentOrder.objects.filter(  # never '': the partial unique index
            psp_reference=notice.object_id).exclude(psp_reference="").values_list("id", flat=True).first()
        if not order_id or not PaymentOrder.objects.filter(pk=order_id).exists():
            return WebhookEvent.Status.IGNORED  # not one of ours
        payment_order_apply_result(payment_order_id=order_id, result=notice.payment, actor=actor)
        return WebhookEvent.Status.PROCESSED
    if notice.refund is not None:
        refund_id = notice.refund_id or Refund.objects.filter(
            psp_reference=notice.refund.psp_reference).values_list("id", flat=True).first()
        if not refund_id or not Refund.objects.filter(pk=refund_id).exists():
            return WebhookEvent.Status.IGNORED
        refund_apply_result(refund_id=refund_id, result=notice.refund, actor=actor)
        return WebhookEvent.Status.PROCESSED
    return WebhookEvent.Status.IGNORED
