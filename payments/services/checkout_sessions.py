"""Hosted payment pages, in Stripe Checkout's shape.

A storefront creates a checkout session (what the buyer is about to pay, per seller, and where to
send them after) and sends the buyer to its ``url`` on our domain. There the card is typed into the
PSP's own field and tokenised at the PSP; the page confirms the session with the ``pm_`` token,
which creates the session's payment event (the same checkout as ``POST /checkouts``, with the buyer
present, so 3-D Secure can be asked). A session is paid at most once: its row is locked while it is
confirmed, and a second confirmation (another tab, a refresh, a double click) finds the payment
event already made and changes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from core.exceptions import InvalidRequest, NotFound
from core.models import ApiClient
from payments.models import CheckoutSession
from payments.services.checkout import OrderSpec, checkout_orders_validate, payment_event_create


class CheckoutSessionNotFound(NotFound):
    message = "No such checkout session."


class CheckoutSessionExpired(InvalidRequest):
    code = "checkout_session_expired"
    message = "This payment page has expired; nothing was charged. Return to the shop to start again."


class CheckoutItemsMismatch(InvalidRequest):
    code = "items_amount_mismatch"


@dataclass(frozen=True)
class ItemSpec:
    name: str
    quantity: int
    amount: int  # per unit, minor units


@dataclass(frozen=True)
class SessionOrderSpec:
    seller_id: str
    amount: int
    currency: str
    items: list[ItemSpec] = field(default_factory=list)


def _check_items(orders: list[SessionOrderSpec]) -> None:
    for index, order in enumerate(orders):
        if order.items and sum(i.quantity * i.amount for i in order.items) != order.amount:
            raise CheckoutItemsMismatch(
                f"Order {index}: its items add up to {sum(i.quantity * i.amount for i in order.items)}, "
                f"not its amount {order.amount}.", param=f"orders[{index}].items")


@transaction.atomic(savepoint=False)  # inside the idempotency transaction
def checkout_session_create(*, client: ApiClient, buyer_reference: str, buyer_email: str,
                            orders: list[SessionOrderSpec], success_url: str, cancel_url: str,
                            idempotency_key: str) -> CheckoutSession:
    """A hosted payment page for these orders, valid ``CHECKOUT_SESSION_EXPIRY_SECONDS``. Refuses now
    what the checkout would refuse (sellers not onboarded, amounts the PSP won't take), so the buyer
    never meets it."""
    _check_items(orders)
    checkout_orders_validate(client=client, orders=[OrderSpec(o.seller_id, o.amount, o.currency) for o in orders])
    return CheckoutSession.objects.create(
        client=client, buyer_reference=buyer_reference, buyer_email=buyer_email,
        orders=[{"seller": o.seller_id, "amount": o.amount, "currency": o.currency,
                 "items": [{"name": i.name, "quantity": i.quantity, "amount": i.amount} for i in o.items]}
                for o in orders],
        success_url=success_url, cancel_url=cancel_url, idempotency_key=idempotency_key,
        expires_at=timezone.now() + timedelta(seconds=settings.CHECKOUT_SESSION_EXPIRY_SECONDS),
    )


@transaction.atomic
def checkout_session_confirm(*, session_id: str, payment_method: str, public_url: str) -> CheckoutSession:
    """The buyer pays: the session's payment event is created with their token, once. A session
    already confirmed is answered as it is (the first token stands, nothing more is charged); an
    expired one is refused, unsent. ``public_url``: our site as the buyer reaches it."""
    session = (CheckoutSession.objects.select_for_update(of=("self",)).select_related("client")
               .filter(pk=session_id).first())
    if session is None:
        raise CheckoutSessionNotFound(param="checkout_session")
    if session.payment_event_id:
        return session  # another tab, a refresh or a double click: the payment already made
    if session.expires_at <= timezone.now():
        raise CheckoutSessionExpired(param="checkout_session")
    base = (settings.PAYMENTS_PUBLIC_URL or public_url).rstrip("/")
    session.payment_event = payment_event_create(
        client=session.client, buyer_reference=session.buyer_reference, buyer_email=session.buyer_email,
        payment_method=payment_method,
        orders=[OrderSpec(o["seller"], o["amount"], o["currency"]) for o in session.orders],
        idempotency_key=f"checkout_session:{session.id}",
        return_url=base + reverse("pay:session", args=[session.id]), public_url=base,
    )
    session.save(update_fields=["payment_event"])
    return session
