"""Reads of payments. A client sees only its own objects."""
from django.db.models import Count, QuerySet, Sum

from core.models import ApiClient
from payments.models import PaymentEvent, PaymentOrder, PaymentOrderState, Seller


def seller_list(*, client: ApiClient) -> QuerySet[Seller]:
    return Seller.objects.filter(client=client)


def seller_get(*, client: ApiClient, seller_id: str) -> Seller | None:
    return Seller.objects.filter(client=client, pk=seller_id).first()


def payment_event_list(*, client: ApiClient) -> QuerySet[PaymentEvent]:
    return PaymentEvent.objects.filter(client=client).prefetch_related("orders")


def payment_event_get(*, client: ApiClient, payment_event_id: str) -> PaymentEvent | None:
    return payment_event_list(client=client).filter(pk=payment_event_id).first()


def payment_order_get(*, client: ApiClient, payment_order_id: str) -> PaymentOrder | None:
    return PaymentOrder.objects.filter(payment_event__client=client, pk=payment_order_id).first()


def succeeded_order_ids() -> list[str]:
    return list(PaymentOrder.objects.filter(state=PaymentOrderState.SUCCEEDED).values_list("id", flat=True))


def order_totals_by_state() -> list[dict]:
    return list(
        PaymentOrder.objects.values("state", "currency")
        .annotate(count=Count("id"), amount=Sum("amount"))
        .order_by("state", "currency")
    )
