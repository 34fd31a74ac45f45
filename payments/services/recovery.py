"""Nothing left hanging: the sweeper re-drives lost tasks, the janitor asks the PSP about
unknown and pending orders, and operators send dead-lettered orders back (Kill Bill's way)."""
from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from payments.models import PaymentOrder, PaymentOrderState, Refund, RefundState
from payments.psp import get_psp
from payments.psp.base import PSPError
from payments.services.enqueue import enqueue_payment_order, enqueue_refund
from payments.services.execution import lock_order, payment_order_apply_result_or_dead_letter, transition_order

logger = logging.getLogger(__name__)


def _due(queryset, *, limit: int) -> list[str]:
    """Claim due rows (skipping those another sweeper holds) by pushing their next action out."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            queryset.filter(next_action_at__lte=now).select_for_update(skip_locked=True)
            .order_by("next_action_at").values_list("id", flat=True)[:limit]
        )
        queryset.model.objects.filter(pk__in=ids).update(
            next_action_at=now + timedelta(seconds=settings.PAYMENT_STALL_SECONDS))
    return ids


def payment_orders_redrive_stalled(*, limit: int = 1000) -> int:
    """Enqueue again every order whose task was lost: never enqueued, dropped by the broker,
    or taken by a worker that died. A duplicate task is harmless: execution is idempotent."""
    stalled = PaymentOrder.objects.filter(state__in=[PaymentOrderState.NOT_STARTED, PaymentOrderState.EXECUTING])
    ids = _due(stalled, limit=limit)
    for order_id in ids:
        with transaction.atomic():
            enqueue_payment_order(order_id)
    refund_ids = _due(Refund.objects.filter(state=RefundState.PENDING), limit=limit)
    for refund_id in refund_ids:
        with transaction.atomic():
            enqueue_refund(refund_id)
    if ids or refund_ids:
        logger.warning("event=sweeper_redrive orders=%s refunds=%s", len(ids), len(refund_ids))
    return len(ids) + len(refund_ids)


def payment_order_resolve(*, payment_order_id: str, actor: str = "janitor") -> str:
    """Ask the PSP what became of an unknown or pending order and apply the answer through
    the same service the webhooks use. If the PSP never saw it, send it again (same key)."""
    order = PaymentOrder.objects.get(pk=payment_order_id)
    if order.state not in (PaymentOrderState.UNKNOWN, PaymentOrderState.PENDING):
        return order.state
    psp = get_psp()
    try:
        if order.psp_reference:
            result = psp.retrieve_payment(order.psp_reference)
        else:
            result = psp.find_payment(order.psp_idempotency_key)
    except PSPError as exc:
        logger.warning("event=janitor_psp_error order=%s error=%s", order.id, exc)
        return order.state  # the next round asks again
    if result is not None:
        return payment_order_apply_result_or_dead_letter(payment_order_id=order.id, result=result, actor=actor)
    with transaction.atomic():
        order = lock_order(payment_order_id)
        if order.state == PaymentOrderState.UNKNOWN:
            transition_order(order, order.redrive, actor=actor,
                             reason="the PSP has no payment for this key: sending it again")
            enqueue_payment_order(order.id)
    return order.state


def payment_orders_resolve_unknown(*, limit: int = 500) -> int:
    """The janitor's round: every unknown or pending order that is due."""
    due = _due(PaymentOrder.objects.filter(state__in=[PaymentOrderState.UNKNOWN, PaymentOrderState.PENDING]),
               limit=limit)
    for order_id in due:
        payment_order_resolve(payment_order_id=order_id)
    return len(due)


@transaction.atomic
def payment_order_replay_dead_letter(*, payment_order_id: str, operator: str, reason: str) -> str:
    """An operator sends a dead-lettered order back to the PSP (same idempotency key)."""
    if not reason.strip():
        raise ValueError("a reason is required")
    order = lock_order(payment_order_id)
    if order.state != PaymentOrderState.DEAD_LETTER:
        return order.state
    order.attempts = 0
    order.next_action_at = timezone.now() + timedelta(seconds=settings.PAYMENT_STALL_SECONDS)
    transition_order(order, order.redrive, actor=f"operator:{operator}", reason=reason)
    enqueue_payment_order(order.id)
    return order.state
