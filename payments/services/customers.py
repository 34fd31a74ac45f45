"""One buyer's card for several sellers: a checkout of several orders charges one PaymentIntent
per order, and a PSP token that is not attached to a customer pays one PaymentIntent only.
So the token is first attached to a customer of the buyer's at the PSP.

A new buyer's customer is created with the token attached, in one call (``POST /v1/customers``
with ``payment_method``), under a key of the event's: a replay of it always means this event's
token. A returning buyer's token is attached to the customer stored for them. One customer is
stored per buyer (whichever was stored first); each event charges the customer its own token
went to, which is kept on the event."""
from __future__ import annotations

from django.db import connection
from django.utils import timezone

from core.db import db_connection_release
from payments.models import PaymentEvent, PaymentOrderState, PSPCustomer
from payments.psp import get_psp
from payments.psp.base import CustomerRequest, PSPPaymentMethodRefused
from payments.services.order_rows import event_with_orders

_C = PSPCustomer._meta
_CUSTOMER_STORE = (f'INSERT INTO "{_C.db_table}" ("{_C.get_field("client").column}", buyer_reference, '
                   f'psp_customer_id, created_at) VALUES (%s, %s, %s, %s) '
                   f'ON CONFLICT ("{_C.get_field("client").column}", buyer_reference) DO NOTHING')
_E = PaymentEvent._meta
_METHOD, _CUSTOMER = (f'"{_E.get_field(name).column}"' for name in ("psp_payment_method", "psp_customer"))
# The event's readied method and customer, kept by the first run of the event to store them (written once: the
# ORM's update() compiled it anew for every event: more CPU than the event's other statement, its read).
_METHOD_KEEP = (f'UPDATE "{_E.db_table}" SET {_METHOD} = %s, {_CUSTOMER} = %s '
                f'WHERE "{_E.pk.column}" = %s AND {_METHOD} = \'\'')
# A new buyer's customer stored and the event's method kept in one statement (one commit): the customer's row is
# written first (the UPDATE's condition reads the INSERT's result, so its row lock is taken after the customer's
# key; two runs of one event cannot take them in opposite orders).
_CUSTOMER_STORE_AND_METHOD_KEEP = (f"WITH stored AS ({_CUSTOMER_STORE} RETURNING 1) {_METHOD_KEEP}"
                                   " AND (SELECT count(*) FROM stored) >= 0")


def buyer_psp_customer(*, event: PaymentEvent) -> str:
    """The customer stored for the event's buyer, or ``""``."""
    return (PSPCustomer.objects.filter(client_id=event.client_id, buyer_reference=event.buyer_reference)
            .values_list("psp_customer_id", flat=True).first() or "")


def _create_with_method(event: PaymentEvent) -> tuple[str, str, bool]:
    """A new customer for the buyer with the event's token attached: one call, keyed by the event. The
    customer is stored with the event's method (``_ready_and_keep``): the buyer's first stored stays theirs."""
    db_connection_release()
    customer = get_psp().create_customer(CustomerRequest(
        idempotency_key=f"customer:{event.id}", buyer_reference=event.buyer_reference, email=event.buyer_email,
        payment_method=event.payment_method))
    # Attached, a created token keeps its id; a test id (pm_card_visa) serves any PaymentIntent of any customer.
    return event.payment_method, customer, True


def _attach(event: PaymentEvent, customer: str) -> tuple[str, str, bool]:
    db_connection_release()
    return get_psp().attach_payment_method(payment_method=event.payment_method, customer=customer,
                                           idempotency_key=f"attach:{event.id}"), customer, False


def _ready(event: PaymentEvent, known: str) -> tuple[str, str, bool]:
    """``(payment method, customer, whether the customer is new and to be stored)`` from the PSP. Two runs of
    one event (its task and the orders the sweeper re-drove) can see the buyer's stored customer differently
    and take the two ways: whichever reached the PSP first holds the token, so a refusal is answered by the
    other way's call, which replays that success under its key (or is refused too: the token really is
    refused)."""
    if known:
        try:
            return _attach(event, known)
        except PSPPaymentMethodRefused:
            return _create_with_method(event)
    try:
        return _create_with_method(event)
    except PSPPaymentMethodRefused:
        known = buyer_psp_customer(event=event)
        if not known:
            raise
        return _attach(event, known)


def _ready_and_keep(event: PaymentEvent, known: str) -> tuple[str, str]:
    method, customer, new = _ready(event, known)
    with connection.cursor() as cur:
        if new:
            cur.execute(_CUSTOMER_STORE_AND_METHOD_KEEP, [event.client_id, event.buyer_reference, customer,
                                                          timezone.now(), method, customer, event.pk])
        else:
            cur.execute(_METHOD_KEEP, [method, customer, event.pk])
        kept = cur.rowcount
    if not kept:
        # Another run of the event stored its answer first: every order charges that one (not
        # refresh_from_db: the event's state is a protected FSM field, which django-fsm refuses to reload).
        method, customer = (PaymentEvent.objects.filter(pk=event.pk)
                            .values_list("psp_payment_method", "psp_customer").get())
    event.psp_payment_method, event.psp_customer = method, customer
    return method, customer


def payment_event_payment_method(*, event: PaymentEvent) -> tuple[str, str]:
    """``(payment method, customer)`` that each order of the event charges.

    An event of one order charges its token as it is. For several, the event's task readies it
    once before its orders (``payment_event_prepare``); an order that finds it not ready (the task
    was lost and the sweeper sent the order) readies it itself, under the same keys, so the
    event's runs get the same answers (or a retryable conflict while one is in flight).
    Raises ``PSPPaymentMethodRefused`` when the PSP won't take the token at all.
    """
    if event.psp_payment_method:
        return event.psp_payment_method, event.psp_customer
    return _ready_and_keep(event, buyer_psp_customer(event=event))


def payment_event_prepare(*, payment_event_id: str, redelivered: bool = False) -> tuple[PaymentEvent, list[str]]:
    """Ready the buyer's payment method once for all the event's orders; return the event (as read, its
    method readied) and the orders for its task to execute: those not started (and, for a task delivered
    again after its worker died, those it left executing: each goes through ``order_claim`` again, under
    its own key).

    Raises ``PSPRetryableError`` for the task to retry. A refusal is left for each order to
    meet (the PSP answers it again for the same key), so each fails with the PSP's code. Should
    the task be lost, the sweeper enqueues the orders, and the first of them readies the method.
    """
    states = [PaymentOrderState.NOT_STARTED, *([PaymentOrderState.EXECUTING] if redelivered else [])]
    event, known, order_ids = event_with_orders(payment_event_id, states=states)
    if order_ids and not event.psp_payment_method:
        try:
            _ready_and_keep(event, known)
        except PSPPaymentMethodRefused:
            pass
    return event, order_ids
