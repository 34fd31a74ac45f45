"""Nothing left hanging: the sweeper re-drives lost tasks, the janitor asks the PSP about
unknown and pending orders, and operators send dead-lettered orders back (Kill Bill's way)."""
from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.db import db_connection_release
from core.transitions import transition_apply
from payments.exceptions import ReplayNotPossible
from payments.models import PaymentOrder, PaymentOrderState, Refund, RefundState
from payments.psp import get_psp
from payments.psp.base import PaymentResult, PSPError
from payments.services.enqueue import enqueue_payment_order, enqueue_refund
from payments.services.execution import payment_order_apply_result_or_dead_letter, psp_call_detail
from payments.services.order_rows import lock_order

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
    the same service the webhooks use. If the PSP shows no payment, send the order again."""
    order = PaymentOrder.objects.get(pk=payment_order_id)
    if order.state not in (PaymentOrderState.UNKNOWN, PaymentOrderState.PENDING):
        return order.state
    started = time.monotonic()
    try:
        result = _ask_psp(order)
    except PSPError as exc:
        logger.warning("event=janitor_psp_error order=%s error=%s", order.id, exc)
        return order.state  # the next round asks again
    lookup, decided = _record_answer(order, started, result, actor)
    if decided is not None:
        return decided
    with transaction.atomic():
        order = lock_order(payment_order_id)
        if order.state == PaymentOrderState.UNKNOWN:
            _send_again(order, actor=actor, reason="", psp_call=lookup)
    return order.state


def _lookup_detail(order: PaymentOrder, started: float, result: PaymentResult | None) -> dict:
    """The janitor's or an operator's question to the PSP, as the audit row of its answer keeps it."""
    status = f"lookup: {result.status.value}" if result is not None else "lookup: no payment"
    detail = psp_call_detail(order, started, status=status, psp_reference=result.psp_reference if result else "",
                             error=": ".join(x for x in (result.failure_code, result.failure_message) if x)
                             if result else "")
    detail["psp_call"]["kind"] = "lookup"
    return detail


def _record_answer(order: PaymentOrder, started: float, result: PaymentResult | None, actor: str
                   ) -> tuple[dict, str | None]:
    """The PSP's answer about ``order`` (its call as the audit row keeps it), and the order's state once the
    payment it found is applied; ``None``: the PSP knows of no payment."""
    lookup = _lookup_detail(order, started, result)
    if result is None:
        return lookup, None
    return lookup, payment_order_apply_result_or_dead_letter(payment_order_id=order.id, result=result, actor=actor,
                                                             psp_call=lookup)


def _ask_psp(order: PaymentOrder) -> PaymentResult | None:
    """The PSP's payment for the order: by id when we have one, else by a search on our order
    id (which finds it under any of the order's keys, but may lag behind the PSP's writes)."""
    psp = get_psp()
    db_connection_release()
    if order.psp_reference:
        return psp.retrieve_payment(order.psp_reference)
    return psp.find_payment(order.id)


def _send_again(order: PaymentOrder, *, actor: str, reason: str, psp_call: dict | None = None) -> bool:
    """Send a locked order the PSP shows no payment for back to the executor. Returns False
    when it must wait: its key is spent and the search may still be lagging.

    Under its current key this is always safe, even if the search lags: the PSP answers a
    key it has seen with the payment it made. A spent key would replay the saved failure,
    so the order gets a new key, but only once a search made past the PSP's search lag
    has found nothing under the old one.
    """
    if order.psp_key_spent_at:
        trusted_from = order.psp_key_spent_at + timedelta(seconds=settings.PSP_SEARCH_CONSISTENCY_SECONDS)
        if timezone.now() < trusted_from:
            order.next_action_at = trusted_from
            order.save(update_fields=["next_action_at", "updated_at"])
            return False
        order.psp_key_generation += 1
        order.psp_key_spent_at = None
        why = f"the PSP has no payment for this order and its key is spent: new key {order.psp_idempotency_key}"
    else:
        why = "the PSP shows no payment for this key: sending it again with the same key"
    order.next_action_at = timezone.now() + timedelta(seconds=settings.PAYMENT_STALL_SECONDS)
    logger.info("event=payment_order_send_again order=%s key=%s why=%s", order.id, order.psp_idempotency_key, why)
    transition_apply(order, order.redrive, actor=actor, reason=reason or why,  # an operator's words verbatim
                     audit_detail=psp_call)
    enqueue_payment_order(order.id)
    return True


def payment_orders_resolve_unknown(*, limit: int = 500) -> int:
    """The janitor's round: every unknown or pending order that is due."""
    due = _due(PaymentOrder.objects.filter(state__in=[PaymentOrderState.UNKNOWN, PaymentOrderState.PENDING]),
               limit=limit)
    for order_id in due:
        payment_order_resolve(payment_order_id=order_id)
    return len(due)


def payment_order_replay_dead_letter(*, payment_order_id: str, operator: str, reason: str) -> str:
    """An operator sends a dead-lettered order back. The PSP is asked first: a payment it made
    (a retry that did go through) is applied, never charged again; otherwise the order is
    sent again as the janitor would (same key, or a new one if the PSP saved a failure)."""
    if not reason.strip():
        raise ValueError("a reason is required")
    actor = f"operator:{operator}"
    order = PaymentOrder.objects.get(pk=payment_order_id)
    if order.state != PaymentOrderState.DEAD_LETTER:
        return order.state
    started = time.monotonic()
    try:
        result = _ask_psp(order)
    except PSPError as exc:
        raise ReplayNotPossible(f"The PSP could not be asked about {order.id}: {exc}") from exc
    lookup, decided = _record_answer(order, started, result, actor)
    if decided is not None:
        return decided
    with transaction.atomic():
        order = lock_order(payment_order_id)
        if order.state != PaymentOrderState.DEAD_LETTER:
            return order.state
        order.attempts = 0
        if not _send_again(order, actor=actor, reason=reason, psp_call=lookup):
            raise ReplayNotPossible(f"{order.id}: the PSP saved a failure against its key less than "
                                    f"{settings.PSP_SEARCH_CONSISTENCY_SECONDS:.0f} s ago and its search may "
                                    "lag; try again in a moment.")
    return order.state
