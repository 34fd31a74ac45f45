"""A checkout's rows written and answered from plain values, without the ORM.

Why: ``POST /api/v1/checkouts`` is the API's busiest write, and through the ORM most of its own CPU was
building five model instances (``Model.__init__``, django-fsm's initial states), preparing each of their
~66 values for the database and adapting them as SQL literals one by one, then rendering the same
instances back through ``PaymentEventOutput`` (about 2.2 M of a checkout's 7 M instructions). A checkout's
rows are always the same shape: every column but a few is a constant of a new event or order. So:

- ``checkout_rows_insert`` inserts the event, its orders and their audit rows (one per order, from ``""`` to
  ``not_started``: the house rule) in **one statement** of constant text: the event's values as parameters,
  its orders' as one JSON array (``jsonb_to_recordset``; one ``json.dumps`` in C, where psycopg adapts a
  Python list in Python). Whatever the number of orders, PostgreSQL prepares the statement once per
  connection (``DATABASE_PREPARE_THRESHOLD``) instead of parsing and planning a new one for every checkout.
  The rows are the ones Django's insert wrote, column for column, timestamps taken in the same order
  (``created_at`` then ``updated_at`` per order, then the audit rows), each at least a microsecond after the
  one before (the orders keep their creation order in ``created_at``); ``payments/tests/test_checkout_write.py``
  compares them with the ORM's rows.
- ``checkout_new`` makes those values (ids, times, URLs) with nothing written, so that the API answers a
  checkout before writing it: its response is stored by its idempotency key's claim (``core.services.Answer``),
  not by an ``UPDATE`` after the rows.
- ``payments.serializers.checkout_output`` renders the answer from the same values: exactly
  ``PaymentEventOutput(event).data`` for the new event (held to it by that test, for many shapes of checkout).

The sellers are checked by the insert itself (each this client's and active, as ``checkout_orders_validate``
checks them in a query of its own): if any is not, the statement writes nothing and answers the refused ones,
and ``SellerNotOnboarded`` names the first order with one, as before; one statement and round trip fewer per
checkout. The PSP's amount rules are checked before the insert (``checkout_amounts_validate``); the enqueue on
commit and the errors are the ORM path's own. ``payment_event_create`` (the hosted page's confirmation,
the tests' factories of real checkouts) writes through here too and returns the model instances.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from core.ids import new_id
from core.models import ApiClient
from payments.exceptions import SellerNotOnboarded
from payments.models import (
    PaymentEvent,
    PaymentEventState,
    PaymentOrder,
    PaymentOrderState,
    PaymentOrderTransition,
    Seller,
)
from payments.services.enqueue import enqueue_payment_event, enqueue_payment_order

_PROCESSING, _NOT_STARTED = PaymentEventState.PROCESSING.value, PaymentOrderState.NOT_STARTED.value
AUDIT_REASON = "checkout created"


@dataclass(frozen=True, slots=True)
class NewOrder:
    """A payment order as a checkout writes it (every other column is its model's default)."""

    id: str
    seller_id: str
    amount: int
    currency: str
    created_at: datetime
    updated_at: datetime
    audit_created_at: datetime  # its audit row's


@dataclass(frozen=True, slots=True)
class NewCheckout:
    """A payment event as a checkout writes it, with its orders in the order they were sent."""

    id: str
    client_id: str
    buyer_reference: str
    buyer_email: str
    payment_method: str
    psp_payment_method: str
    idempotency_key: str
    return_url: str
    psp_return_url: str
    created_at: datetime
    next_action_at: datetime  # the orders': when the sweeper may re-drive them
    actor: str  # the audit rows'
    orders: tuple[NewOrder, ...]

    def payment_event(self) -> PaymentEvent:
        """The event as a saved model instance, its orders as ``order_list`` (for callers that need models)."""
        event = PaymentEvent(
            id=self.id, client_id=self.client_id, buyer_reference=self.buyer_reference, buyer_email=self.buyer_email,
            payment_method=self.payment_method, psp_payment_method=self.psp_payment_method,
            idempotency_key=self.idempotency_key, return_url=self.return_url, psp_return_url=self.psp_return_url,
            created_at=self.created_at)
        event._created_orders = [
            PaymentOrder(id=o.id, payment_event=event, seller_id=o.seller_id, amount=o.amount, currency=o.currency,
                         next_action_at=self.next_action_at, created_at=o.created_at, updated_at=o.updated_at)
            for o in self.orders]
        for obj in (event, *event._created_orders):
            obj._state.adding, obj._state.db = False, connection.alias
        return event


_EVENT, _ORDER, _AUDIT, _SELLER = (m._meta.db_table for m in (PaymentEvent, PaymentOrder, PaymentOrderTransition,
                                                                Seller))
_ACTIVE = Seller.Status.ACTIVE.value

#: The event, its orders and their audit rows: every column (``test_checkout_write`` holds the lists to the
#: models'), the constants of a new row written into the text, the event's values as parameters, the orders'
#: as one JSON array (one ``json.dumps``; psycopg adapts a Python list in Python, ~7-12 us each).
_CHECKS = f"""\
o AS (
  SELECT * FROM jsonb_to_recordset(%(orders)s::jsonb) AS o(id varchar, seller_id varchar, amount bigint,
    currency varchar, created_at timestamptz, updated_at timestamptz, audit_created_at timestamptz)
), refused AS (
  SELECT o.seller_id FROM o WHERE NOT EXISTS (SELECT FROM {_SELLER} s
    WHERE s.id = o.seller_id AND s.client_id = %(client)s AND s.status = '{_ACTIVE}')
)"""
_WRITES = f"""\
event AS (
  INSERT INTO {_EVENT} (id, client_id, buyer_reference, buyer_email, payment_method, psp_customer,
    psp_payment_method, idempotency_key, psp_return_url, return_url, created_at, state, completed_at,
    failure_reason, orders_succeeded, orders_failed)
  SELECT %(event)s, %(client)s, %(buyer_reference)s, %(buyer_email)s, %(payment_method)s, '',
    %(psp_payment_method)s, %(idempotency_key)s, %(psp_return_url)s, %(return_url)s, %(created_at)s,
    '{_PROCESSING}', NULL, '', 0, 0 WHERE {{guard}}
), orders AS (
  INSERT INTO {_ORDER} (id, payment_event_id, seller_id, amount, currency, state, psp_reference, failure_code,
    failure_message, attempts, psp_key_generation, psp_key_spent_at, amount_refunded, next_action_at,
    next_action_url, created_at, updated_at, completed_at)
  SELECT o.id, %(event)s, o.seller_id, o.amount, o.currency, '{_NOT_STARTED}', '', '', '', 0, 0, NULL, 0,
    %(next_action_at)s, '', o.created_at, o.updated_at, NULL FROM o WHERE {{guard}}
), audit AS (
  INSERT INTO {_AUDIT} (from_state, to_state, actor, reason, created_at, payment_order_id, detail)
  SELECT '', '{_NOT_STARTED}', %(actor)s, '{AUDIT_REASON}', o.audit_created_at, o.id, NULL FROM o
  WHERE {{guard}}
)"""
_REFUSED = "EXISTS (SELECT FROM refused)"
_INSERT = f"WITH {_CHECKS}, {_WRITES.format(guard='NOT ' + _REFUSED)}\nSELECT seller_id FROM refused"
#: The same writes in the statement of the checkout's idempotency key's claim (``CheckoutRows``): guarded by the
#: claim, which is written only when no seller is refused.
_WRITES_CLAIMED = _WRITES.format(guard="EXISTS (SELECT FROM claim)")


def checkout_new(*, client: ApiClient, buyer_reference: str, buyer_email: str, payment_method: str, orders: list,
                 idempotency_key: str, return_url: str = "", public_url: str = "") -> NewCheckout:
    """A checkout's values (ids, times, URLs) as ``checkout_rows_insert`` writes them; nothing written.
    ``orders``: ``OrderSpec``s."""
    event_id = new_id("pe")
    psp_return_url = ""
    if return_url:
        base = (settings.PAYMENTS_PUBLIC_URL or public_url).rstrip("/")
        psp_return_url = base + reverse("pay:return", args=[event_id])
    next_action_at = timezone.now() + timedelta(seconds=settings.PAYMENT_STALL_SECONDS)
    # The event's created_at, each order's created_at and updated_at, then each audit row's: Django's insert
    # took them in this order.
    stamps = _times(1 + 3 * len(orders))
    created_at, n = stamps[0], len(orders)
    new_orders = tuple(NewOrder(new_id("ord"), o.seller_id, o.amount, o.currency, stamps[1 + 2 * i],
                                stamps[2 + 2 * i], stamps[1 + 2 * n + i]) for i, o in enumerate(orders))
    return NewCheckout(
        id=event_id, client_id=client.pk, buyer_reference=buyer_reference, buyer_email=buyer_email,
        payment_method=payment_method, idempotency_key=idempotency_key, return_url=return_url,
        psp_return_url=psp_return_url, created_at=created_at, next_action_at=next_action_at,
        # One order charges the token itself; several need it attached to the buyer's PSP customer first.
        psp_payment_method=payment_method if len(orders) == 1 else "",
        actor=f"api_client:{client.pk}", orders=new_orders)


def checkout_rows_insert(checkout: NewCheckout) -> None:
    """Insert a checkout's rows (its amounts validated: ``checkout_amounts_validate``) in one statement, which
    also checks its sellers (``SellerNotOnboarded``, nothing written), and enqueue its execution on commit.
    Runs in the caller's transaction."""
    with connection.cursor() as cur:
        cur.execute(_INSERT, _parameters(checkout))
        refused = {row[0] for row in cur.fetchall()}
    if refused:  # nothing was written
        sellers_onboarded_check(checkout.orders, refused=refused)
    _enqueue(checkout)


@dataclass(frozen=True, slots=True)
class CheckoutRows:
    """A checkout's rows as its idempotency key's claim writes them, in the claim's own statement
    (``core.services.ClaimedRows``): the sellers checked first (one refused: neither the key nor a row is
    written, and the API's transaction path then refuses it as ``checkout_rows_insert`` does), the rows written
    only if the key is claimed, the execution enqueued once they are committed."""

    checkout: NewCheckout
    params: dict
    before: str = _CHECKS
    refused: str = _REFUSED
    after: str = _WRITES_CLAIMED

    def done(self) -> None:
        _enqueue(self.checkout)


def checkout_rows(checkout: NewCheckout) -> CheckoutRows:
    """``checkout``'s rows, to be written by its idempotency key's claim (``core.services.Answer.rows``)."""
    return CheckoutRows(checkout, _parameters(checkout))


def _enqueue(checkout: NewCheckout) -> None:
    if len(checkout.orders) == 1:
        enqueue_payment_order(checkout.orders[0].id)
    else:
        enqueue_payment_event(checkout.id)


def sellers_onboarded_check(orders: list, *, refused: set[str]) -> None:
    """``SellerNotOnboarded`` for the first order whose seller is in ``refused`` (not this client's, or not
    active)."""
    for index, order in enumerate(orders):
        if order.seller_id in refused:
            raise SellerNotOnboarded(f"Seller {order.seller_id!r} is not onboarded.", param=f"orders[{index}].seller")


def _times(count: int) -> list[datetime]:
    """``count`` times from ``timezone.now()``, each at least a microsecond after the one before: orders listed
    by ``created_at`` come back in the order they were sent (Django's insert took them a few microseconds apart,
    and two equal ones would be listed by their ids' random bits)."""
    times = [timezone.now() for _ in range(count)]
    for i in range(1, count):
        if times[i] <= times[i - 1]:
            times[i] = times[i - 1] + _MICROSECOND
    return times


_MICROSECOND = timedelta(microseconds=1)


def _parameters(checkout: NewCheckout) -> dict:
    orders = [{"id": o.id, "seller_id": o.seller_id, "amount": o.amount, "currency": o.currency,
               "created_at": o.created_at.isoformat(), "updated_at": o.updated_at.isoformat(),
               "audit_created_at": o.audit_created_at.isoformat()} for o in checkout.orders]
    return {
        "event": checkout.id, "client": checkout.client_id, "buyer_reference": checkout.buyer_reference,
        "buyer_email": checkout.buyer_email, "payment_method": checkout.payment_method,
        "psp_payment_method": checkout.psp_payment_method, "idempotency_key": checkout.idempotency_key,
        "psp_return_url": checkout.psp_return_url, "return_url": checkout.return_url,
        "created_at": checkout.created_at, "next_action_at": checkout.next_action_at, "actor": checkout.actor,
        "orders": json.dumps(orders),
    }
