"""Onboarding sellers and creating checkouts (a payment event with its orders)."""
from __future__ import annotations

from dataclasses import dataclass

from django.db import connection, transaction

from core.models import ApiClient
from payments.exceptions import AmountRefusedByPSP
from payments.models import PaymentEvent, Seller
from payments.psp import get_psp
from payments.services.checkout_write import NewCheckout, checkout_new, checkout_rows_insert, sellers_onboarded_check


def seller_onboard(*, client: ApiClient, name: str, external_reference: str = "") -> Seller:
    return Seller.objects.create(client=client, name=name, external_reference=external_reference)


@dataclass(frozen=True)
class OrderSpec:
    seller_id: str
    amount: int
    currency: str


#: The sellers of a checkout that are this client's and active (written once: the ORM compiled it per checkout).
_ONBOARDED = f"SELECT id FROM {Seller._meta.db_table} WHERE client_id = %s AND id = ANY(%s) AND status = %s"


def checkout_amounts_validate(*, orders: list[OrderSpec]) -> None:
    """Refuse, unsent, an amount the PSP would refuse (its minimum charge, a currency's precision)."""
    psp = get_psp()
    for index, order in enumerate(orders):
        problem = psp.amount_problem(order.amount, order.currency)
        if problem is not None:
            raise AmountRefusedByPSP(f"Order {index} ({order.seller_id}): {problem.message}", code=problem.code,
                                     param=f"orders[{index}].amount")


def checkout_orders_validate(*, client: ApiClient, orders: list[OrderSpec]) -> None:
    """Refuse, unsent, an amount the PSP would refuse and a seller not onboarded (and active) for this
    client. One query. (A checkout's write checks its sellers in its insert: ``checkout_rows_insert``.)"""
    checkout_amounts_validate(orders=orders)
    with connection.cursor() as cursor:
        cursor.execute(_ONBOARDED, [client.pk, [o.seller_id for o in orders], Seller.Status.ACTIVE])
        onboarded = {row[0] for row in cursor.fetchall()}
    sellers_onboarded_check(orders, refused={o.seller_id for o in orders} - onboarded)


@transaction.atomic(savepoint=False)  # inside the idempotency transaction: no savepoint round trips
def payment_event_write(
    *,
    client: ApiClient,
    buyer_reference: str,
    buyer_email: str,
    payment_method: str,
    orders: list[OrderSpec],
    idempotency_key: str,
    return_url: str = "",
    public_url: str = "",
) -> NewCheckout:
    """Create the event and all its orders at once; their execution is enqueued on commit. Returns the rows'
    values (``checkout_output`` renders them); ``payment_event_create`` for model instances.

    ``return_url``: the buyer is present and goes there once back from 3-D Secure. Each order is
    then confirmed on-session, with our own ``/pay/return/<event>`` (under ``public_url``, our
    site's address as the buyer reaches it) as the PSP's return URL. Without it, off-session.

    Should the enqueue be lost (a crash right after commit, a broker outage), the
    sweeper finds the orders still ``not_started`` after ``next_action_at``. An amount the
    PSP would refuse (its minimum charge, a currency's precision) is refused here, unsent.
    """
    checkout = payment_event_make(client=client, buyer_reference=buyer_reference, buyer_email=buyer_email,
                                     payment_method=payment_method, orders=orders,
                                     idempotency_key=idempotency_key, return_url=return_url, public_url=public_url)
    checkout_rows_insert(checkout)  # the sellers: checked by the insert, which writes nothing for a refused one
    return checkout


def payment_event_make(*, client: ApiClient, orders: list[OrderSpec], **values) -> NewCheckout:
    """``payment_event_write``'s checks of the amounts and its values (same arguments), nothing written:
    ``payment_event_insert`` writes them. The API answers a checkout before writing it (its response is
    stored with its idempotency key's claim: ``core.services.Answer``)."""
    checkout_amounts_validate(orders=orders)
    return checkout_new(client=client, orders=orders, **values)


@transaction.atomic(savepoint=False)
def payment_event_insert(*, checkout: NewCheckout) -> None:
    """Write a checkout ``payment_event_make`` made (``SellerNotOnboarded``: nothing written)."""
    checkout_rows_insert(checkout)


def payment_event_create(**kwargs) -> PaymentEvent:
    """``payment_event_write`` (same arguments), answered as the saved event with its orders (``order_list``)."""
    return payment_event_write(**kwargs).payment_event()
