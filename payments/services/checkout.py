"""Onboarding sellers and creating checkouts (a payment event with its orders)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from core.db import objects_insert
from core.ids import new_id
from core.models import ApiClient
from payments.exceptions import AmountRefusedByPSP, SellerNotOnboarded
from payments.models import PaymentEvent, PaymentOrder, PaymentOrderState, PaymentOrderTransition, Seller
from payments.psp import get_psp
from payments.services.enqueue import enqueue_payment_event, enqueue_payment_order


def seller_onboard(*, client: ApiClient, name: str, external_reference: str = "") -> Seller:
    return Seller.objects.create(client=client, name=name, external_reference=external_reference)


@dataclass(frozen=True)
class OrderSpec:
    seller_id: str
    amount: int
    currency: str


#: The sellers of a checkout that are this client's and active (written once: the ORM compiled it per checkout).
_ONBOARDED = f"SELECT id FROM {Seller._meta.db_table} WHERE client_id = %s AND id = ANY(%s) AND status = %s"


def checkout_orders_validate(*, client: ApiClient, orders: list[OrderSpec]) -> None:
    """Refuse, unsent, an amount the PSP would refuse (its minimum charge, a currency's precision)
    and a seller not onboarded (and active) for this client. One query."""
    psp = get_psp()
    for index, order in enumerate(orders):
        problem = psp.amount_problem(order.amount, order.currency)
        if problem is not None:
            raise AmountRefusedByPSP(f"Order {index} ({order.seller_id}): {problem.message}", code=problem.code,
                                     param=f"orders[{index}].amount")
    with connection.cursor() as cursor:
        cursor.execute(_ONBOARDED, [client.pk, [o.seller_id for o in orders], Seller.Status.ACTIVE])
        onboarded = {row[0] for row in cursor.fetchall()}
    for index, order in enumerate(orders):
        if order.seller_id not in onboarded:
            raise SellerNotOnboarded(f"Seller {order.seller_id!r} is not onboarded.", param=f"orders[{index}].seller")


@transaction.atomic(savepoint=False)  # inside the idempotency transaction: no savepoint round trips
def payment_event_create(
    *,
    client: ApiClient,
    buyer_reference: str,
    buyer_email: str,
    payment_method: str,
    orders: list[OrderSpec],
    idempotency_key: str,
    return_url: str = "",
    public_url: str = "",
) -> PaymentEvent:
    """Create the event and all its orders at once; their execution is enqueued on commit.

    ``return_url``: the buyer is present and goes there once back from 3-D Secure. Each order is
    then confirmed on-session, with our own ``/pay/return/<event>`` (under ``public_url``, our
    site's address as the buyer reaches it) as the PSP's return URL. Without it, off-session.

    Should the enqueue be lost (a crash right after commit, a broker outage), the
    sweeper finds the orders still ``not_started`` after ``next_action_at``. An amount the
    PSP would refuse (its minimum charge, a currency's precision) is refused here, unsent.
    """
    checkout_orders_validate(client=client, orders=orders)
    event_id = new_id("pe")
    psp_return_url = ""
    if return_url:
        base = (settings.PAYMENTS_PUBLIC_URL or public_url).rstrip("/")
        psp_return_url = base + reverse("pay:return", args=[event_id])
    event = PaymentEvent(
        id=event_id, client=client, buyer_reference=buyer_reference, buyer_email=buyer_email,
        payment_method=payment_method, idempotency_key=idempotency_key,
        return_url=return_url, psp_return_url=psp_return_url,
        # One order charges the token itself; several need it attached to the buyer's PSP customer first.
        psp_payment_method=payment_method if len(orders) == 1 else "",
    )
    sweep_after = timezone.now() + timedelta(seconds=settings.PAYMENT_STALL_SECONDS)
    created = [PaymentOrder(payment_event=event, seller_id=o.seller_id, amount=o.amount, currency=o.currency,
                            next_action_at=sweep_after) for o in orders]
    audit = [PaymentOrderTransition(payment_order=o, from_state="", to_state=PaymentOrderState.NOT_STARTED,
                                    actor=f"api_client:{client.id}", reason="checkout created") for o in created]
    objects_insert([event], created, audit)  # one statement
    event._created_orders = created  # the response shows them without reading them back
    if len(created) == 1:
        enqueue_payment_order(created[0].id)
    else:
        enqueue_payment_event(event.id)
    return event
