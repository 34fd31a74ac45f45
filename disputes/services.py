"""Disputes' writes. One entry point for the PSP's word, ``dispute_report_apply``, whichever source carries it
(a webhook, a settlement line, a look at the PSP): the first report of a dispute stores it and books its money,
later ones only move it forward; repeated, late or out-of-order reports change nothing. Keyed on the PSP's
dispute id; concurrent reports of one dispute queue on its row (the unique id, then the row lock), disputes of
one order on the order's row (locked after the dispute's, as refunds lock it before theirs)."""
from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from core.transitions import transition_apply
from payments import selectors as payment_selectors
from payments.models import TERMINAL_STATES, PaymentOrderState
from payments.services import payment_order_lock, webhook_event_process

from . import postings
from .exceptions import (
    DisputeCurrencyMismatch,
    DisputeExceedsCaptured,
    DisputeNotBookable,
    DisputeNotCaptured,
    DisputeNotFound,
    DisputeOrderUndecided,
    DisputeReportInvalid,
    DisputeUnknownCharge,
)
from .models import (
    CLOSED_STATES,
    STATE_RANK,
    Dispute,
    DisputeNote,
    DisputeProblem,
    DisputeState,
    DisputeTransition,
)
from .psp import DisputeReport

logger = logging.getLogger(__name__)
#: The PSP's dispute events (``PSP_WEBHOOK_HANDLERS`` routes them here).
DISPUTE_EVENT_PREFIX = "charge.dispute."


def dispute_report_apply(*, report: DisputeReport, actor: str) -> tuple[Dispute, bool]:
    """Apply what the PSP said about a dispute. Returns ``(dispute, created)``.

    A new dispute is stored and, when nothing is wrong with it, its money is withdrawn from the seller in the
    same transaction; when something is (an unknown charge, more than was captured...), it is stored with the
    problem for an operator and nothing moves. A report moves the dispute forward only (needs_response →
    under_review → won | lost); a won dispute gets its money back in the transaction that marks it won."""
    with transaction.atomic():
        dispute, created = _claim(report, actor)
        if created or dispute.problem == DisputeProblem.UNKNOWN_CHARGE:
            _book(dispute, actor)  # a charge unknown at first may be ours by now (our order learnt its reference)
        _advance(dispute, report, actor)
        _details_update(dispute, report)
    return dispute, created


def _claim(report: DisputeReport, actor: str) -> tuple[Dispute, bool]:
    """The dispute's row, locked: the one stored, else a new one (a concurrent twin waits on the unique id,
    then finds the row the first one committed)."""
    existing = Dispute.objects.select_for_update().filter(psp_dispute_id=report.psp_dispute_id).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            dispute = Dispute.objects.create(
                psp_dispute_id=report.psp_dispute_id, psp_charge_id=report.psp_charge_id[:100],
                psp_payment_reference=report.psp_payment_reference[:100], amount=report.amount,
                currency=report.currency, fee=report.fee, fee_currency=report.fee_currency if report.fee else "",
                fee_payer=settings.DISPUTE_FEE_PAYER, reason=report.reason, psp_status=report.psp_status,
                due_by=report.due_by, source=report.source)
            DisputeTransition.objects.create(dispute=dispute, from_state="", to_state=dispute.state,
                                             actor=actor[:100], reason=f"opened, reported by {report.source}")
    except IntegrityError:
        return Dispute.objects.select_for_update().get(psp_dispute_id=report.psp_dispute_id), False
    return dispute, True


def _bookable_check(dispute: Dispute) -> None:
    """Find the order the dispute is about; raise ``DisputeNotBookable`` (which one says why) when its money
    cannot be withdrawn as reported."""
    order = payment_selectors.payment_order_by_psp_reference(
        psp_references=[dispute.psp_payment_reference, dispute.psp_charge_id])
    if order is None:
        raise DisputeUnknownCharge()
    # Locked before its disputes and refunds are read: two disputes of one charge (or a refund) book one
    # after the other, so together they never take more than was captured.
    order = payment_order_lock(payment_order_id=order.id)
    dispute.payment_order, dispute.seller_id = order, order.seller_id
    if order.state not in TERMINAL_STATES:
        raise DisputeOrderUndecided(f"Order {order.id} is {order.state}: its payment is not decided yet.")
    if order.state != PaymentOrderState.SUCCEEDED:
        raise DisputeNotCaptured(f"Order {order.id} is {order.state} in our books: nothing was captured.")
    if dispute.currency != order.currency:
        raise DisputeCurrencyMismatch(
            f"The dispute is in {dispute.currency.upper()}, order {order.id} in {order.currency.upper()}.")
    disputed = (Dispute.objects.filter(payment_order=order, withdrawn_at__isnull=False, reinstated_at__isnull=True)
                .exclude(pk=dispute.pk).aggregate(total=Sum("amount"))["total"] or 0)
    left = order.amount - order.amount_refunded - disputed
    if dispute.amount > left:
        raise DisputeExceedsCaptured(
            f"The dispute is for {dispute.amount} but order {order.id} has {left} left to dispute "
            f"(captured {order.amount}, refunded {order.amount_refunded}, disputed {disputed}; minor units).")


def _book(dispute: Dispute, actor: str) -> None:
    try:
        _bookable_check(dispute)
    except DisputeNotBookable as exc:
        dispute.problem, dispute.problem_detail = exc.code, exc.message[:500]
        logger.warning("event=dispute_not_booked dispute=%s psp_dispute=%s problem=%s actor=%s detail=%s",
                       dispute.id, dispute.psp_dispute_id, exc.code, actor, exc.message)
        dispute.save(update_fields=["payment_order", "seller", "problem", "problem_detail", "updated_at"])
        return
    _withdraw(dispute)
    logger.info("event=dispute_withdrawn dispute=%s order=%s amount=%s %s fee=%s %s payer=%s actor=%s", dispute.id,
                dispute.payment_order_id, dispute.amount, dispute.currency, dispute.fee, dispute.fee_currency,
                dispute.fee_payer, actor)


def _withdraw(dispute: Dispute) -> None:
    """Book a bookable dispute's money; a dispute already won (booked late) gets it back at once."""
    postings.withdrawn_post(dispute)
    dispute.problem, dispute.problem_detail, dispute.withdrawn_at = "", "", timezone.now()
    dispute.save(update_fields=["payment_order", "seller", "problem", "problem_detail", "withdrawn_at", "updated_at"])
    if dispute.state == DisputeState.WON:
        _reinstate(dispute)


def _reinstate(dispute: Dispute) -> None:
    postings.reinstated_post(dispute)
    dispute.reinstated_at = timezone.now()
    dispute.save(update_fields=["reinstated_at", "updated_at"])


def _advance(dispute: Dispute, report: DisputeReport, actor: str) -> None:
    target = report.state
    if dispute.state in CLOSED_STATES or STATE_RANK[target] <= STATE_RANK[dispute.state]:
        if dispute.state in CLOSED_STATES and target in CLOSED_STATES and target != dispute.state:
            logger.warning("event=dispute_outcome_contradicted dispute=%s is=%s reported=%s source=%s actor=%s",
                           dispute.id, dispute.state, target, report.source, actor)
        return
    why = f"{report.source} reports {report.psp_status or target}"
    if target == DisputeState.UNDER_REVIEW:
        transition_apply(dispute, dispute.submit, actor=actor, reason=why, psp_status=report.psp_status)
    elif target == DisputeState.WON:
        transition_apply(dispute, dispute.win, actor=actor, reason=why, psp_status=report.psp_status)
        if dispute.booked and dispute.reinstated_at is None:
            _reinstate(dispute)
    elif target == DisputeState.LOST:
        transition_apply(dispute, dispute.lose, actor=actor, reason=why, psp_status=report.psp_status)


def _details_update(dispute: Dispute, report: DisputeReport) -> None:
    """What a later report may change beside the state: the evidence due date and the reason."""
    changed = []
    if report.due_by and report.due_by != dispute.due_by:
        dispute.due_by = report.due_by
        changed.append("due_by")
    if report.reason and report.reason != dispute.reason:
        dispute.reason = report.reason
        changed.append("reason")
    if changed:
        dispute.save(update_fields=[*changed, "updated_at"])


def dispute_book_retry(*, dispute_id: str, actor: str, reason: str = "") -> Dispute:
    """An operator's second look at a dispute kept with a problem (the order may be known or captured now):
    books its money, and gives it back at once if it was already won. Raises ``DisputeNotBookable`` with
    the reason when it still cannot be booked (nothing moves)."""
    with transaction.atomic():
        dispute = Dispute.objects.select_for_update().filter(pk=dispute_id).first()
        if dispute is None:
            raise DisputeNotFound()
        if dispute.booked or not dispute.problem:
            return dispute
        _bookable_check(dispute)
        _withdraw(dispute)
        DisputeNote.objects.create(dispute=dispute, author=actor[:100],
                                   text=f"booked after a second look{': ' + reason if reason else ''}")
    logger.info("event=dispute_booked_on_retry dispute=%s actor=%s", dispute.id, actor)
    return dispute


def dispute_webhooks_recover(*, older_than_seconds: float = 60.0) -> int:
    """Run again the dispute webhooks payments' inbox holds unfinished: received but never processed (the web
    process died between storing and applying), or failed (the order was still being decided). The PSP's own
    redeliveries stop after a while; this does not. Returns how many were run."""
    before = timezone.now() - timedelta(seconds=older_than_seconds)
    event_ids = payment_selectors.webhook_events_unfinished(type_prefix=DISPUTE_EVENT_PREFIX, received_before=before)
    for event_id in event_ids:
        status = webhook_event_process(event_id=event_id, actor=f"task:disputes_recover:{event_id}")
        logger.info("event=dispute_webhook_rerun webhook_event=%s status=%s", event_id, status)
    return len(event_ids)


def disputes_unknown_charges_retry(*, younger_than_days: float) -> int:
    """Book again the disputes kept because their charge was unknown: a dispute can come before our order holds
    the charge's reference (a worker killed after the PSP answered; the janitor finds the charge later). Each
    is tried in its own transaction; one still unknown, or whose order is still undecided, is left as it is.
    Returns how many were booked."""
    since = timezone.now() - timedelta(days=younger_than_days)
    dispute_ids = list(Dispute.objects.filter(problem=DisputeProblem.UNKNOWN_CHARGE, withdrawn_at__isnull=True,
                                              created_at__gte=since).values_list("pk", flat=True))
    booked = 0
    for dispute_id in dispute_ids:
        try:
            with transaction.atomic():
                dispute = Dispute.objects.select_for_update().get(pk=dispute_id)
                if dispute.problem != DisputeProblem.UNKNOWN_CHARGE:
                    continue
                _book(dispute, actor="task:disputes_recover")
                if dispute.booked:
                    DisputeNote.objects.create(dispute=dispute, author="task:disputes_recover",
                                               text="booked by the recovery round: its charge is ours now")
                    booked += 1
        except DisputeOrderUndecided:
            continue
    return booked


def dispute_note_add(*, dispute_id: str, author: str, text: str) -> DisputeNote:
    """An operator's evidence note; notes are never edited (each is its own row with its author)."""
    text = (text or "").strip()
    if not text:
        raise DisputeReportInvalid("A note needs text.", param="text")
    if not Dispute.objects.filter(pk=dispute_id).exists():
        raise DisputeNotFound()
    return DisputeNote.objects.create(dispute_id=dispute_id, author=author[:100], text=text[:5000])
