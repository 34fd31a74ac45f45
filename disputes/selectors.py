"""Disputes' reads."""
from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone

from core.models import ApiClient

from .models import Dispute, DisputeState


def disputes_by_psp_id(*, psp_dispute_ids: list[str]) -> dict[str, Dispute]:
    """``{PSP dispute id: dispute}`` of those we have (reconciliation's look-up for chargeback lines)."""
    ids = [i for i in psp_dispute_ids if i]
    return {d.psp_dispute_id: d for d in Dispute.objects.filter(psp_dispute_id__in=ids)} if ids else {}


def dispute_get(*, dispute_id: str) -> Dispute | None:
    return Dispute.objects.filter(pk=dispute_id).select_related("payment_order").first()


def dispute_queue() -> QuerySet[Dispute]:
    """The operators' queue: open disputes and those kept with a problem, evidence due soonest first."""
    return (Dispute.objects.exclude(state__in=[DisputeState.WON, DisputeState.LOST], problem="")
            .order_by("due_by", "created_at"))


def disputes_overdue_count() -> int:
    return Dispute.objects.filter(state=DisputeState.NEEDS_RESPONSE, due_by__lt=timezone.now()).count()


def dispute_get_for_client(*, client: ApiClient, dispute_id: str) -> Dispute | None:
    """A dispute on one of the client's sellers' orders (one on a charge we do not know is no client's)."""
    return Dispute.objects.filter(pk=dispute_id, seller__client=client).first()


def seller_disputes(*, client: ApiClient, seller_id: str) -> QuerySet[Dispute]:
    return Dispute.objects.filter(seller__client=client, seller_id=seller_id)


def disputes_of_orders(*, payment_order_ids: list[str]) -> list[Dispute]:
    """The disputes on these payment orders, with their audit rows and notes (for the operators' timeline)."""
    return list(Dispute.objects.filter(payment_order_id__in=payment_order_ids)
                .prefetch_related("transitions", "notes").order_by("created_at"))
