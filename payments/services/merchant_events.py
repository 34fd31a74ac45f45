"""What the storefront is told: payments' outbox of merchant events, and its relay to notifications.

The outbox row is written in the statement that already records the change (the order's decision
counted on its payment event, ``checkout_outcome``), so it costs the hot path no round trip and
exists if and only if the change committed: ``payment_order.succeeded`` / ``payment_order.failed``
for every decided order, and ``checkout.completed`` with the order that decides its checkout. A
refund's ``refund.succeeded`` is one INSERT in the refund's transaction.

The relay (``merchant_events_relay``, Celery beat every ``MERCHANT_EVENTS_RELAY_SECONDS``) takes the
rows in order, each once (``DELETE … RETURNING`` under ``SKIP LOCKED``), and hands each to
``notifications.services.outbound_event_record`` with the object as the API shows it, in the same
transaction: a crash leaves the rows for the next round. Notifications stores nothing for a client
without endpoints, and knows nothing of payments.
"""
from __future__ import annotations

from django.db import connection, transaction

from notifications.services import outbound_event_record
from payments.models import MerchantEvent, PaymentEvent, PaymentOrder, Refund

# Joined into checkout_outcome's counter UPDATE (its CTE ``ev``); parameters: the order's event type
# and id. ``checkout.completed`` goes with the order that leaves no order of the event undecided.
OUTBOX_CTE = f"""
outbox AS (
    INSERT INTO "{MerchantEvent._meta.db_table}" (client_id, type, object_id, created_at)
    SELECT client_id, %s, %s, now() FROM ev
    UNION ALL
    SELECT client_id, 'checkout.completed', id, now() FROM ev
    WHERE state = 'processing' AND orders_succeeded + orders_failed = total
)"""

_TAKE_SQL = f"""
DELETE FROM "{MerchantEvent._meta.db_table}" WHERE id IN (
    SELECT id FROM "{MerchantEvent._meta.db_table}" ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED
) RETURNING id, client_id, type, object_id
"""


_REFUND_SQL = f"""
INSERT INTO "{MerchantEvent._meta.db_table}" (client_id, type, object_id, created_at)
SELECT client_id, 'refund.succeeded', %s, now() FROM "{PaymentEvent._meta.db_table}" WHERE id = %s
"""


def refund_succeeded_record(*, refund: Refund, order: PaymentOrder) -> None:
    """``refund.succeeded``, in the refund's transaction: one statement."""
    with connection.cursor() as cur:
        cur.execute(_REFUND_SQL, [refund.id, order.payment_event_id])


def _order_data(order: PaymentOrder) -> dict:
    return {"id": order.id, "object": "payment_order", "payment_event": order.payment_event_id,
            "seller": order.seller_id, "amount": order.amount, "currency": order.currency, "state": order.state,
            "psp_reference": order.psp_reference, "failure_code": order.failure_code,
            "failure_message": order.failure_message, "amount_refunded": order.amount_refunded,
            "completed_at": order.completed_at.isoformat() if order.completed_at else None}


def _event_data(event: PaymentEvent) -> dict:
    session = getattr(event, "checkout_session", None)  # the hosted page's session, when it came from one
    return {"id": event.id, "object": "payment_event", "state": event.state, "failure_reason": event.failure_reason,
            "buyer": {"reference": event.buyer_reference, "email": event.buyer_email},
            "checkout_session": session.id if session else None,
            "completed_at": event.completed_at.isoformat() if event.completed_at else None,
            "orders": [_order_data(o) for o in event.orders.order_by("created_at", "id")]}


def _refund_data(refund: Refund) -> dict:
    return {"id": refund.id, "object": "refund", "payment_order": refund.payment_order_id, "amount": refund.amount,
            "currency": refund.currency, "reason": refund.reason, "state": refund.state,
            "psp_reference": refund.psp_reference}


def _data(kind: str, object_id: str) -> dict | None:
    if kind.startswith("payment_order."):
        order = PaymentOrder.objects.filter(pk=object_id).first()
        return _order_data(order) if order else None
    if kind == "checkout.completed":
        event = PaymentEvent.objects.filter(pk=object_id).first()
        return _event_data(event) if event else None
    refund = Refund.objects.filter(pk=object_id).first()
    return _refund_data(refund) if refund else None


def merchant_events_relay(*, limit: int = 500) -> int:
    """Hand the outbox's oldest rows to notifications, once each. Returns how many were taken."""
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute(_TAKE_SQL, [limit])
            rows = sorted(cur.fetchall())
        for _, client_id, kind, object_id in rows:
            data = _data(kind, object_id)
            if data is not None:
                outbound_event_record(client_id=client_id, type=kind, data=data)
    return len(rows)
