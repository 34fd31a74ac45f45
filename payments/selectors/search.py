"""The operators' console's search: a payment found by anything an operator knows of it."""
import re
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.fields.json import KT

from core.money import CURRENCY_EXPONENTS
from payments.models import (
    PaymentEvent,
    PaymentOrder,
    Refund,
    WebhookEvent,
)

_OUR_ID = re.compile(r"^(ord|pe|rf|sel)_[0-9a-z]+$", re.IGNORECASE)
_AMOUNT = re.compile(r"^\d{1,3}(,\d{3})*(\.\d+)?$|^\d+(\.\d+)?$")


def _our_id(term: str) -> str:
    """Our ids as stored (``ord_01J…``: a lowercase prefix, an uppercase ULID), however they were typed."""
    if not _OUR_ID.match(term):
        return term
    prefix, _, rest = term.partition("_")
    return f"{prefix.lower()}_{rest.upper()}"


def amount_search_q(term: str) -> Q | None:
    """An amount typed as major units (``49.99``, ``1,234.50``: per currency exponent) or, when whole, also
    as minor units (``4999``): the orders of any currency whose amount it can be. ``None``: not an amount."""
    if not _AMOUNT.match(term):
        return None
    value = Decimal(term.replace(",", ""))
    by_exponent: dict[int, list[str]] = {}
    for code, exponent in CURRENCY_EXPONENTS.items():
        by_exponent.setdefault(exponent, []).append(code)
    q = Q(amount=int(value)) if value == value.to_integral_value() else Q(pk__in=[])
    for exponent, codes in sorted(by_exponent.items()):
        minor = value.scaleb(exponent)
        if minor == minor.to_integral_value():
            q |= Q(amount=int(minor), currency__in=codes)
    return q


def _amount_bound_q(value: Decimal, lookup: str) -> Q:
    """Orders whose amount, in major units of their own currency, is ``lookup`` (gte/lte) ``value``."""
    by_exponent: dict[int, list[str]] = {}
    for code, exponent in CURRENCY_EXPONENTS.items():
        by_exponent.setdefault(exponent, []).append(code)
    q = Q(pk__in=[])
    for exponent, codes in sorted(by_exponent.items()):
        minor = value.scaleb(exponent)
        bound = int(minor.to_integral_value(rounding=ROUND_CEILING if lookup == "gte" else ROUND_FLOOR))
        q |= Q(**{f"amount__{lookup}": bound, "currency__in": codes})
    return q


def payment_orders_in_amount_range(*, orders: QuerySet[PaymentOrder], low: Decimal | None,
                                   high: Decimal | None) -> QuerySet[PaymentOrder]:
    """``orders`` whose amount lies between ``low`` and ``high`` (inclusive, either may be ``None``), both
    read in major units of each order's currency: ``10`` is 10.00 USD, 10 JPY and 10.000 KWD."""
    if low is not None:
        orders = orders.filter(_amount_bound_q(low, "gte"))
    if high is not None:
        orders = orders.filter(_amount_bound_q(high, "lte"))
    return orders


def payment_orders_search(*, orders: QuerySet[PaymentOrder], query: str, psp_references: list[str] = (),
                          object_ids: list[str] = ()) -> QuerySet[PaymentOrder]:
    """``orders`` found by what an operator knows of a payment, typed in one box: our ids (order, checkout,
    refund, seller), the PSP's (``pi_``, ``re_``, and ``ch_`` through the webhooks that carried the charge),
    the buyer's reference or email, the seller's name or reference, an amount (``49.99`` or minor units).
    ``psp_references`` / ``object_ids``: what a settlement reference pointed to (reconciliation finds them;
    payments does not read reconciliation). Forward joins and EXISTS only: each order at most once."""
    term = query.strip()
    if not term:
        return orders
    our_id = _our_id(term)
    refund = Refund.objects.filter(payment_order=OuterRef("pk"))
    charge_intents = (WebhookEvent.objects.filter(object_id=term)
                      .annotate(intent=KT("payload__data__object__payment_intent")).values("intent"))
    q = (Q(pk=our_id) | Q(payment_event_id=our_id) | Q(seller_id=our_id)
         | Q(psp_reference=term) | Q(psp_reference__in=charge_intents)
         | Exists(refund.filter(Q(pk=our_id) | Q(psp_reference=term))))
    if not _OUR_ID.match(term) and not term.startswith(("pi_", "re_", "ch_")):
        q |= (Q(payment_event__buyer_reference__iexact=term) | Q(payment_event__buyer_email__icontains=term)
              | Q(seller__name__icontains=term) | Q(seller__external_reference__iexact=term)
              | Q(payment_event__idempotency_key=term))
    amount = amount_search_q(term)
    if amount is not None:
        q |= amount
    if psp_references:
        q |= Q(psp_reference__in=list(psp_references)) | Exists(refund.filter(psp_reference__in=list(psp_references)))
    if object_ids:
        q |= Q(pk__in=list(object_ids)) | Exists(refund.filter(pk__in=list(object_ids)))
    return orders.filter(q)


def payment_events_search(*, events: QuerySet[PaymentEvent], query: str, psp_references: list[str] = (),
                          object_ids: list[str] = ()) -> QuerySet[PaymentEvent]:
    """``events`` holding an order ``payment_orders_search`` finds, or whose own id, buyer or idempotency key
    it is. EXISTS, never a join to the orders: each event once, and its order count is not multiplied."""
    term = query.strip()
    if not term:
        return events
    matching_orders = payment_orders_search(orders=PaymentOrder.objects.filter(payment_event=OuterRef("pk")),
                                            query=term, psp_references=psp_references, object_ids=object_ids)
    return events.filter(Q(pk=_our_id(term)) | Q(buyer_reference__iexact=term) | Q(buyer_email__icontains=term)
                         | Q(idempotency_key=term) | Exists(matching_orders))
