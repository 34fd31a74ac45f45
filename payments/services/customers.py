"""One buyer's card for several sellers: a checkout of several orders charges one PaymentIntent
per order, and a PSP token that is not attached to a customer pays one PaymentIntent only.
So the token is first attached to the buyer's customer at the PSP (made once per buyer)."""
from __future__ import annotations

import hashlib

from django.db import transaction

from core.db import db_connection_release
from payments.models import PaymentEvent, PaymentOrderState, PSPCustomer
from payments.psp import get_psp
from payments.psp.base import CustomerRequest, PSPPaymentMethodRefused
from payments.services.enqueue import enqueue_payment_order


def buyer_psp_customer(*, event: PaymentEvent) -> str:
    """The buyer's customer at the PSP, created on first need (idempotent per buyer)."""
    known = (PSPCustomer.objects.filter(client_id=event.client_id, buyer_reference=event.buyer_reference)
             .values_list("psp_customer_id", flat=True).first())
    if known:
        return known
    buyer = hashlib.sha256(f"{event.client_id}:{event.buyer_reference}".encode()).hexdigest()[:48]
    db_connection_release()
    customer_id = get_psp().create_customer(CustomerRequest(
        idempotency_key=f"customer:{buyer}", buyer_reference=event.buyer_reference, email=event.buyer_email))
    row, _ = PSPCustomer.objects.get_or_create(client_id=event.client_id, buyer_reference=event.buyer_reference,
                                               defaults={"psp_customer_id": customer_id})
    return row.psp_customer_id


def payment_event_payment_method(*, event: PaymentEvent) -> tuple[str, str]:
    """``(payment method, customer)`` that each order of the event charges.

    An event of one order charges its token as it is. For several, the first order to get
    here attaches the token to the buyer's customer; its siblings send the same idempotency
    keys, so they get the same answer (or a retryable conflict while it is in flight).
    Raises ``PSPPaymentMethodRefused`` when the PSP won't take the token at all.
    """
    if event.psp_payment_method:
        return event.psp_payment_method, event.psp_customer
    customer = buyer_psp_customer(event=event)
    db_connection_release()
    attached = get_psp().attach_payment_method(payment_method=event.payment_method, customer=customer,
                                               idempotency_key=f"attach:{event.id}")
    PaymentEvent.objects.filter(pk=event.pk, psp_payment_method="").update(
        psp_payment_method=attached, psp_customer=customer)
    # Whichever sibling attached first won; read what it stored (not refresh_from_db: the event's
    # state is a protected FSM field, which django-fsm refuses to reload in place).
    event.psp_payment_method, event.psp_customer = (
        PaymentEvent.objects.filter(pk=event.pk).values_list("psp_payment_method", "psp_customer").get())
    return event.psp_payment_method, event.psp_customer


def payment_event_execute(*, payment_event_id: str) -> int:
    """Ready the buyer's payment method once for all the event's orders, then enqueue those not
    yet started (each is still its own task, key and transaction). Returns how many.

    Raises ``PSPRetryableError`` for the task to retry. A refusal is left for each order to
    meet (the PSP replays it for the same key), so each fails with the PSP's code. Should this
    task be lost, the sweeper enqueues the orders, and the first of them readies the method.
    """
    event = PaymentEvent.objects.get(pk=payment_event_id)
    try:
        payment_event_payment_method(event=event)
    except PSPPaymentMethodRefused:
        pass
    order_ids = list(event.orders.filter(state=PaymentOrderState.NOT_STARTED).values_list("id", flat=True))
    with transaction.atomic():
        for order_id in order_ids:
            enqueue_payment_order(order_id)
    return len(order_ids)
