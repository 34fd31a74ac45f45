"""Refunds: reserve the amount on the order (PostgreSQL refuses to exceed the capture), ask
the PSP, then debit the seller's wallet and post the reversing ledger transaction. A refund the PSP
fails after it succeeded (the buyer's bank sent it back) is reversed: postings, wallet and reservation."""
from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from core.db import db_connection_release
from core.models import ApiClient
from core.transitions import transition_apply
from payments.exceptions import PaymentOrderNotFound, RefundNotAllowed, RefundTooLarge
from payments.models import PaymentOrder, PaymentOrderState, Refund, RefundState, RefundTransition
from payments.psp import get_psp
from payments.psp.base import PaymentStatus, PSPKeySpent, PSPPermanentError, RefundRequest, RefundResult
from payments.services.enqueue import enqueue_refund
from payments.services.execution import retry_delay
from payments.services.merchant_events import refund_succeeded_record
from payments.services.postings import refund_failed_post, refund_post

logger = logging.getLogger(__name__)


def payment_order_lock(*, payment_order_id: str) -> PaymentOrder:
    """The order, locked until the transaction ends: what refunds lock before they touch its refunded amount,
    for another app whose money on the order must not race them or itself (two disputes of one charge)."""
    return PaymentOrder.objects.select_for_update().get(pk=payment_order_id)


@transaction.atomic
def refund_create(*, client: ApiClient, payment_order_id: str, amount: int | None, reason: str,
                  actor: str) -> Refund:
    """Create a refund for (part of) a succeeded order; the PSP call is enqueued on commit."""
    order = (PaymentOrder.objects.select_for_update()
             .filter(payment_event__client=client, pk=payment_order_id).first())
    if order is None:
        raise PaymentOrderNotFound(param="payment_order")
    if order.state != PaymentOrderState.SUCCEEDED:
        raise RefundNotAllowed(f"Payment order {order.id} is {order.state}; only succeeded orders are refunded.")
    remaining = order.amount - order.amount_refunded
    if remaining <= 0:
        raise RefundTooLarge("This payment order has already been fully refunded.", code="charge_already_refunded")
    amount = remaining if amount is None else amount
    try:
        with transaction.atomic():
            # The CHECK constraint payment_order_refunds_within_amount is the real guard.
            PaymentOrder.objects.filter(pk=order.pk).update(amount_refunded=F("amount_refunded") + amount)
    except IntegrityError as exc:
        raise RefundTooLarge(f"Refund of {amount} exceeds the {remaining} left to refund.", param="amount") from exc
    refund = Refund.objects.create(
        payment_order=order, amount=amount, currency=order.currency, reason=reason,
        next_action_at=timezone.now() + timedelta(seconds=settings.PAYMENT_STALL_SECONDS),
    )
    RefundTransition.objects.create(refund=refund, from_state="", to_state=refund.state, actor=actor[:100],
                                    reason=reason or "refund requested")
    enqueue_refund(refund.id)
    return refund


def refund_execute(*, refund_id: str, actor: str = "task:refund_execute") -> str:
    """Send a pending refund to the PSP (refund id as idempotency key) and record the answer.
    Raises ``PSPRetryableError`` (timeouts included: the same key is safe to send again)."""
    with transaction.atomic():
        # The refund's row only: FOR UPDATE over the join would lock the order too, after the refund, the
        # reverse of refund_apply_result's order -> refund (a deadlock when a webhook's answer lands now).
        refund = Refund.objects.select_for_update(of=("self",)).select_related("payment_order").get(pk=refund_id)
        if refund.state != RefundState.PENDING:
            return refund.state
        refund.attempts += 1
        refund.next_action_at = timezone.now() + timedelta(
            seconds=settings.PSP_TIMEOUT_SECONDS + settings.PAYMENT_STALL_SECONDS)
        refund.save(update_fields=["attempts", "next_action_at", "updated_at"])
        request = RefundRequest(idempotency_key=refund.psp_idempotency_key, refund_id=refund.id,
                                psp_payment_reference=refund.payment_order.psp_reference,
                                amount=refund.amount, currency=refund.currency,
                                metadata={"payment_order_id": refund.payment_order_id})
    psp = get_psp()
    db_connection_release()
    try:
        result = psp.create_refund(request)
    except PSPKeySpent:
        # The PSP saved its failure against this key. Its list of the payment's refunds (which,
        # unlike search, does not lag) says whether the refund exists; if not, a new key.
        result = psp.find_refund(psp_payment_reference=request.psp_payment_reference, refund_id=refund_id)
        if result is None:
            refund_key_renew(refund_id=refund_id, spent_key=request.idempotency_key)
            raise
    except PSPPermanentError as exc:
        # Refused outright (credentials, permissions, parameters): no refund can exist for it, and
        # sending it again would be refused again. Final; the reservation is released.
        result = RefundResult(status=PaymentStatus.FAILED, psp_reference="", amount=request.amount,
                              currency=request.currency, failure_code=exc.code)
    if result.status is PaymentStatus.PROCESSING and result.psp_reference:
        # Sent again under the same key, the PSP replays its first answer ("pending") however the
        # refund has ended since: ask for the refund itself. Still pending: the sweeper asks again.
        result = psp.retrieve_refund(result.psp_reference)
    return refund_apply_result(refund_id=refund_id, result=result, actor=actor)


@transaction.atomic
def refund_key_renew(*, refund_id: str, spent_key: str) -> None:
    """The next attempt goes under a new key (once per spent key, however many tasks race here)."""
    refund = Refund.objects.select_for_update().get(pk=refund_id)
    if refund.state == RefundState.PENDING and refund.psp_idempotency_key == spent_key:
        refund.psp_key_generation += 1
        refund.save(update_fields=["psp_key_generation", "updated_at"])
        logger.warning("event=refund_key_renewed refund=%s key=%s", refund.id, refund.psp_idempotency_key)


@transaction.atomic
def refund_schedule_retry(*, refund_id: str, error: str = "") -> float | None:
    """The delay before the next attempt, or ``None`` once the attempts are used up and the refund
    has gone to the dead letter (its amount stays reserved: the PSP may have refunded it)."""
    refund = Refund.objects.select_for_update().get(pk=refund_id)
    if refund.state != RefundState.PENDING:
        return None
    if refund.attempts >= settings.PAYMENT_EXECUTE_MAX_ATTEMPTS:
        transition_apply(refund, refund.dead_letter, actor="task:refund_execute", code="retries_exhausted",
                    reason=f"{refund.attempts} attempts failed; last error: {error}")
        logger.error("event=refund_dead_letter refund=%s error=%s", refund.id, error)
        return None
    delay = retry_delay(refund.attempts)
    refund.next_action_at = timezone.now() + timedelta(seconds=delay + settings.PAYMENT_STALL_SECONDS)
    refund.save(update_fields=["next_action_at", "updated_at"])
    return delay


@transaction.atomic
def refund_apply_result(*, refund_id: str, result: RefundResult, actor: str) -> str:
    """Record the PSP's answer for a refund; idempotent. Locks the order, then the refund
    (the order first, as refund_create does, so the two never deadlock)."""
    order_id = Refund.objects.values_list("payment_order_id", flat=True).get(pk=refund_id)
    order = PaymentOrder.objects.select_for_update().get(pk=order_id)
    refund = Refund.objects.select_for_update().get(pk=refund_id)
    if refund.state == RefundState.SUCCEEDED and result.status is PaymentStatus.FAILED:
        _fail_after_success(order, refund, result, actor)
    if refund.state != RefundState.PENDING:
        return refund.state
    if result.status is PaymentStatus.SUCCEEDED and (result.amount, result.currency) != (refund.amount,
                                                                                          refund.currency):
        transition_apply(refund, refund.dead_letter, actor=actor, code="psp_amount_mismatch",
                    reason=f"PSP refunded {result.amount} {result.currency} ({result.psp_reference}), "
                           f"asked {refund.amount} {refund.currency}")
        logger.error("event=refund_dead_letter refund=%s code=psp_amount_mismatch", refund.id)
    elif result.status is PaymentStatus.SUCCEEDED:
        transition_apply(refund, refund.succeed, actor=actor, reason="PSP refunded", psp_reference=result.psp_reference)
        refund_post(order, refund)
        refund_succeeded_record(refund=refund, order=order)  # the merchant's webhook (payments' outbox)
    elif result.status is PaymentStatus.FAILED:
        transition_apply(refund, refund.fail, actor=actor, reason=f"PSP: {result.failure_code}",
                         code=result.failure_code)
        PaymentOrder.objects.filter(pk=order.pk).update(amount_refunded=F("amount_refunded") - refund.amount)
    return refund.state


def _fail_after_success(order: PaymentOrder, refund: Refund, result: RefundResult, actor: str) -> None:
    """The PSP says a refund we hold succeeded has failed (Stripe's ``refund.failed`` after ``refund.succeeded``:
    the buyer's bank sent the money back to the PSP). In the caller's transaction, under the order's and the
    refund's locks: the transition with its audit row, the refund's posting reversed and the seller's wallet
    credited back (``refund:<id>:failed``), and its amount released on the order, so it can be refunded again.
    Once: a repeated or late answer finds the refund failed and changes nothing."""
    # Only the PSP's own refund object, failed, says so: not a failure made up from a refused request (a
    # permanent error, a spent key) that raced the success, nor an answer about another refund or amount.
    if not result.psp_reference or result.psp_reference != refund.psp_reference or (
            result.amount, result.currency) != (refund.amount, refund.currency):
        logger.error("event=refund_failure_not_applied refund=%s psp_reference=%s amount=%s %s (ours: %s %s %s)",
                     refund.id, result.psp_reference, result.amount, result.currency, refund.psp_reference,
                     refund.amount, refund.currency)
        return
    code = result.failure_code or "refund_failed"
    transition_apply(refund, refund.fail_after_success, actor=actor, code=code,
                     reason=f"PSP: the refund failed after it succeeded ({code}); the money is back at the PSP")
    refund_failed_post(order, refund)
    PaymentOrder.objects.filter(pk=order.pk).update(amount_refunded=F("amount_refunded") - refund.amount)
    logger.warning("event=refund_failed_after_success refund=%s order=%s amount=%s %s code=%s", refund.id, order.id,
                   refund.amount, refund.currency, code)


def refund_refresh(*, refund_id: str, actor: str) -> str:
    """Ask the PSP about a refund our books hold succeeded and apply its answer: the recovery path (an operator's
    question, a settlement's ``refund_failure`` line for a refund we still hold succeeded). A refund the PSP
    now shows failed is reversed as its webhook would; any other answer changes nothing."""
    refund = Refund.objects.get(pk=refund_id)
    if refund.state != RefundState.SUCCEEDED or not refund.psp_reference:
        return refund.state
    db_connection_release()
    result = get_psp().retrieve_refund(refund.psp_reference)
    return refund_apply_result(refund_id=refund.id, result=result, actor=actor)


def refund_replay_dead_letter(*, refund_id: str, operator: str, reason: str) -> str:
    """An operator sends a dead-lettered refund back. The PSP is asked first (the payment's list
    of refunds): a refund it did make is applied, never sent again; otherwise it is sent again."""
    if not reason.strip():
        raise ValueError("a reason is required")
    actor = f"operator:{operator}"
    refund = Refund.objects.select_related("payment_order").get(pk=refund_id)
    if refund.state != RefundState.DEAD_LETTER:
        return refund.state
    db_connection_release()
    found = get_psp().find_refund(psp_payment_reference=refund.payment_order.psp_reference, refund_id=refund.id)
    with transaction.atomic():
        PaymentOrder.objects.select_for_update().get(pk=refund.payment_order_id)
        refund = Refund.objects.select_for_update().get(pk=refund_id)
        if refund.state != RefundState.DEAD_LETTER:
            return refund.state
        refund.attempts = 0
        refund.next_action_at = timezone.now() + timedelta(seconds=settings.PAYMENT_STALL_SECONDS)
        transition_apply(refund, refund.redrive, actor=actor, reason=reason)
        if found is not None:
            return refund_apply_result(refund_id=refund.id, result=found, actor=actor)
        enqueue_refund(refund.id)
    return refund.state
