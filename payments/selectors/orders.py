"""Reads of payments: sellers, orders, events, refunds and what reconciliation and the audit need.
A client sees only its own objects."""
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, F, QuerySet, Sum
from django.utils import timezone

from core.models import ApiClient
from payments.models import (
    OPEN_STATES,
    PaymentEvent,
    PaymentEventState,
    PaymentOrder,
    PaymentOrderState,
    Refund,
    RefundState,
    Seller,
    SettleableOrder,
    SuspectedDoubleCharge,
    WebhookEvent,
)


def seller_list(*, client: ApiClient) -> QuerySet[Seller]:
    return Seller.objects.filter(client=client)


def seller_names(*, seller_ids: list[str]) -> dict[str, str]:
    """``{seller id: name}`` of the given sellers (any client's: the operators' console names them)."""
    return dict(Seller.objects.filter(pk__in=set(seller_ids)).values_list("id", "name"))


def seller_ids_named(*, name: str, limit: int = 200) -> list[str]:
    """Ids of the sellers whose name contains ``name`` (any client's: the operators' console searches by it)."""
    return list(Seller.objects.filter(name__icontains=name.strip()).values_list("id", flat=True)[:limit])


def payment_order_failure_codes() -> list[str]:
    """The failure codes orders carry, each once, sorted."""
    return list(PaymentOrder.objects.exclude(failure_code="").order_by("failure_code")
                .values_list("failure_code", flat=True).distinct())


def seller_get(*, client: ApiClient, seller_id: str) -> Seller | None:
    return Seller.objects.filter(client=client, pk=seller_id).first()


def payment_event_list(*, client: ApiClient) -> QuerySet[PaymentEvent]:
    return PaymentEvent.objects.filter(client=client).prefetch_related("orders")


def payment_event_get(*, client: ApiClient, payment_event_id: str) -> PaymentEvent | None:
    return payment_event_list(client=client).filter(pk=payment_event_id).first()


def payment_order_get(*, client: ApiClient, payment_order_id: str) -> PaymentOrder | None:
    return PaymentOrder.objects.filter(payment_event__client=client, pk=payment_order_id).first()


def payment_order_by_psp_reference(*, psp_references: list[str]) -> PaymentOrder | None:
    """The order the PSP knows by one of ``psp_references`` (a PaymentIntent or charge id), for another app
    reporting on it (a dispute). Any client's: the PSP's word is not scoped to a client."""
    references = [r for r in psp_references if r]
    if not references:
        return None
    return (PaymentOrder.objects.filter(psp_reference__in=references)
            .exclude(psp_reference="")  # what lets a prepared statement's generic plan use the partial unique index
            .order_by("created_at", "id").first())


def webhook_events_unfinished(*, type_prefix: str, received_before: datetime, limit: int = 500) -> list[str]:
    """Ids of inbox events of a type (by prefix) still received or failed since before ``received_before``,
    oldest first: for the app that handles them to run again (``webhook_event_process``)."""
    return list(WebhookEvent.objects.filter(
        type__startswith=type_prefix, received_at__lt=received_before,
        status__in=[WebhookEvent.Status.RECEIVED, WebhookEvent.Status.FAILED],
    ).order_by("received_at").values_list("id", flat=True)[:limit])


def succeeded_order_ids() -> list[str]:
    return list(PaymentOrder.objects.filter(state=PaymentOrderState.SUCCEEDED).values_list("id", flat=True))


def order_totals_by_state() -> list[dict]:
    return list(
        PaymentOrder.objects.values("state", "currency")
        .annotate(count=Count("id"), amount=Sum("amount"))
        .order_by("state", "currency")
    )


@dataclass(frozen=True)
class SettledObject:
    """What reconciliation needs to know of one of our refunds."""

    kind: str  # "refund"
    id: str
    payment_order_id: str
    seller_id: str
    psp_reference: str
    amount: int  # minor units, positive
    currency: str
    state: str
    completed_at: datetime | None


def refunds_by_psp_reference(*, psp_references: list[str]) -> dict[str, SettledObject]:
    refunds = Refund.objects.filter(psp_reference__in=[r for r in psp_references if r]).select_related(
        "payment_order")
    return {
        r.psp_reference: SettledObject(kind="refund", id=r.id, payment_order_id=r.payment_order_id,
                                       seller_id=r.payment_order.seller_id, psp_reference=r.psp_reference,
                                       amount=r.amount, currency=r.currency, state=r.state,
                                       completed_at=r.completed_at)
        for r in refunds
    }


def succeeded_refund_ids() -> list[str]:
    return list(Refund.objects.filter(state=RefundState.SUCCEEDED).values_list("id", flat=True))


def reversed_refund_ids() -> list[str]:
    """Refunds that failed after they had succeeded (their postings reversed)."""
    return list(Refund.objects.filter(state=RefundState.FAILED, reversed_at__isnull=False).values_list("id", flat=True))


def orders_with_refunds_above_capture() -> list[tuple[str, int, int]]:
    """Orders whose succeeded refunds add up to more than they captured (never, if the DB holds)."""
    rows = (PaymentOrder.objects.filter(refunds__state=RefundState.SUCCEEDED)
            .annotate(refunded=Sum("refunds__amount")).filter(refunded__gt=F("amount"))
            .values_list("id", "amount", "refunded"))
    return list(rows)


SETTLEABLE_ORDER_VIEW = "payments_settleable_order"


def settleable_order_view() -> str:
    """Name of the read-only SQL view (id, seller_id, psp_reference, amount, currency, state,
    completed_at) for set-based joins by reconciliation; the selectors above answer per object."""
    return SETTLEABLE_ORDER_VIEW


def settleable_orders() -> QuerySet[SettleableOrder]:
    """Payment orders as reconciliation reads them with the ORM (``SettleableOrder``: the view above)."""
    return SettleableOrder.objects.all()


#: ``SettleableOrder.state`` values whose outcome the PSP may still decide, and the failed one: where
#: reconciliation's break workbench looks for an order the PSP captured after all.
OPEN_ORDER_STATES = tuple(str(state) for state in OPEN_STATES)
FAILED_ORDER_STATE = str(PaymentOrderState.FAILED)


def order_volumes_since(*, since: datetime) -> list[dict]:
    """Orders created since ``since``: count and amount per state and currency (the dashboard)."""
    return list(
        PaymentOrder.objects.filter(created_at__gte=since).values("state", "currency")
        .annotate(count=Count("id"), amount=Sum("amount")).order_by("currency", "state")
    )


def attention_counts() -> dict[str, int]:
    """What operators should look at: dead letters, orders waiting on the PSP, failed webhooks,
    checkouts partially succeeded in the last 24 hours."""
    states = dict(
        PaymentOrder.objects.filter(state__in=[PaymentOrderState.DEAD_LETTER, PaymentOrderState.UNKNOWN,
                                               PaymentOrderState.PENDING])
        .values_list("state").annotate(n=Count("id"))
    )
    return {
        "dead_letter": states.get(PaymentOrderState.DEAD_LETTER, 0),
        "unknown": states.get(PaymentOrderState.UNKNOWN, 0),
        "pending": states.get(PaymentOrderState.PENDING, 0),
        "failed_webhooks": WebhookEvent.objects.filter(status=WebhookEvent.Status.FAILED).count(),
        "dead_letter_refunds": Refund.objects.filter(state=RefundState.DEAD_LETTER).count(),
        "suspected_double_charges": SuspectedDoubleCharge.objects.filter(
            state=SuspectedDoubleCharge.State.OPEN).count(),
        # Checkouts whose buyer paid some sellers and not others (only under CHECKOUT_ON_PARTIAL_FAILURE=keep).
        "partially_succeeded_checkouts": PaymentEvent.objects.filter(
            state=PaymentEventState.PARTIALLY_SUCCEEDED, completed_at__gte=timezone.now() - timedelta(hours=24),
        ).count(),
    }


def refund_get(*, client: ApiClient, refund_id: str) -> Refund | None:
    """One of this client's refunds, or ``None``."""
    return Refund.objects.filter(payment_order__payment_event__client=client, pk=refund_id).first()


def refund_list(*, client: ApiClient, payment_order_id: str) -> QuerySet[Refund]:
    """A payment order's refunds, when the order is this client's (empty otherwise)."""
    return Refund.objects.filter(payment_order__payment_event__client=client, payment_order_id=payment_order_id)
