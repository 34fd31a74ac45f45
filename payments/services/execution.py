"""Executing payment orders against the PSP and recording what the PSP says."""
from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_fsm import ConcurrentTransition

from core.db import db_connection_release
from core.transitions import transition_apply, transition_prepare
from payments.exceptions import PSPAmountMismatch, PSPMismatch
from payments.models import PaymentEvent, PaymentOrder, PaymentOrderState, PaymentOrderTransition, SuspectedDoubleCharge
from payments.psp import get_psp
from payments.psp.base import (
    PaymentRequest,
    PaymentResult,
    PaymentStatus,
    PSPKeySpent,
    PSPPaymentMethodRefused,
    PSPPermanentError,
    PSPRetryableError,
    PSPUnknownOutcome,
)
from payments.services.checkout_outcome import DECISION_WRITTEN, payment_event_order_decided
from payments.services.customers import payment_event_payment_method
from payments.services.order_rows import lock_order, order_claim
from payments.services.postings import capture_parts, capture_post, capture_posted

logger = logging.getLogger(__name__)


def _after(seconds: float):
    return timezone.now() + timedelta(seconds=seconds)


def retry_delay(attempt: int) -> float:
    """Exponential backoff with "equal jitter": half of the window fixed, half random."""
    ceiling = min(settings.PAYMENT_RETRY_MAX_SECONDS, settings.PAYMENT_RETRY_BASE_SECONDS * 2 ** max(attempt - 1, 0))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def payment_order_execute(*, payment_order_id: str, actor: str = "task:payment_order_execute",
                          event: PaymentEvent | None = None) -> str:
    """Execute one order against the PSP. Safe to call any number of times, concurrently too.

    (a) commit the order as executing and count the attempt; (b) call the PSP with the
    order's key as idempotency key, outside any transaction; (c) record the outcome in a
    new transaction. A timeout, a dropped connection or a failure the PSP saved against the
    key leaves the order ``unknown`` for the janitor. ``PSPRetryableError`` is raised for the
    task to retry with the same key. Returns the state. ``event``: the order's payment event as its
    event's task read it (and readied its payment method), not read again with the claim.
    """
    order = order_claim(payment_order_id, actor=actor, reason="sent to the PSP", event=event,
                        next_action_at=_after(settings.PSP_TIMEOUT_SECONDS + settings.PAYMENT_STALL_SECONDS))
    if order is None:  # decided, pending at the PSP, or waiting for the janitor or an operator
        return PaymentOrder.objects.values_list("state", flat=True).get(pk=payment_order_id)
    db_connection_release()
    try:
        payment_method, customer = payment_event_payment_method(event=order.payment_event)
    except PSPPaymentMethodRefused as exc:
        return payment_order_apply_result_or_dead_letter(
            payment_order_id=payment_order_id, actor=actor,
            result=_refused(order, code=exc.code, message=f"the PSP refused the payment method: {exc}"))
    request = payment_request(order, payment_method=payment_method, customer=customer)
    started = time.monotonic()
    try:
        result = get_psp().create_payment(request)
    except PSPKeySpent as exc:
        return payment_order_mark_unknown(payment_order_id=payment_order_id, reason=str(exc), actor=actor,
                                          key_spent=True,
                                          psp_call=psp_call_detail(order, started, status="key spent", error=str(exc)))
    except PSPUnknownOutcome as exc:
        return payment_order_mark_unknown(payment_order_id=payment_order_id, reason=str(exc), actor=actor,
                                          psp_call=psp_call_detail(order, started, status="no answer", error=str(exc)))
    except PSPPermanentError as exc:
        # The PSP refused the request itself; no charge can exist for it.
        result = _refused(order, code=exc.code, message=str(exc))
        call = psp_call_detail(order, started, status="refused", error=f"{exc.code}: {exc}" if exc.code else str(exc))
    except PSPRetryableError as exc:
        exc.psp_call = psp_call_detail(order, started, status="retryable error", error=str(exc))  # for the task
        raise
    else:
        call = psp_call_detail(order, started, status=str(result.status.value), psp_reference=result.psp_reference,
                               error=": ".join(x for x in (result.failure_code, result.failure_message) if x))
    return payment_order_apply_result_or_dead_letter(payment_order_id=payment_order_id, result=result, actor=actor,
                                                     psp_call=call, claimed=order)


def psp_call_detail(order: PaymentOrder, started: float, *, status: str, error: str = "",
                    psp_reference: str = "") -> dict:
    """One call to the PSP as the audit row that records its answer keeps it (``detail``, no statement of its
    own): which attempt, under which idempotency key, what came back and how long it took."""
    return {"psp_call": {"attempt": order.attempts, "idempotency_key": order.psp_idempotency_key,
                         "status": status, "error": error[:500], "psp_reference": psp_reference,
                         "latency_ms": round((time.monotonic() - started) * 1000)}}


def payment_request(order: PaymentOrder, *, payment_method: str, customer: str = "") -> PaymentRequest:
    """What the PSP is sent for an order: the same every time under one key, so a resend is a replay."""
    return PaymentRequest(
        idempotency_key=order.psp_idempotency_key,
        payment_order_id=order.id,
        amount=order.amount,
        currency=order.currency,
        payment_method=payment_method,
        customer=customer,
        metadata={"payment_event_id": order.payment_event_id, "seller_id": order.seller_id},
        return_url=order.payment_event.psp_return_url,  # blank: off-session
    )


def _refused(order: PaymentOrder, *, code: str, message: str) -> PaymentResult:
    return PaymentResult(status=PaymentStatus.FAILED, psp_reference="", amount=order.amount,
                         currency=order.currency, failure_code=code, failure_message=message)


def payment_order_apply_result_or_dead_letter(*, payment_order_id: str, result: PaymentResult, actor: str,
                                              psp_call: dict | None = None, claimed: PaymentOrder | None = None) -> str:
    """Apply the PSP's answer; an answer that contradicts the order goes to an operator."""
    try:
        return payment_order_apply_result(payment_order_id=payment_order_id, result=result, actor=actor,
                                          psp_call=psp_call, claimed=claimed)
    except PSPMismatch as exc:
        return payment_order_dead_letter(payment_order_id=payment_order_id, code=exc.code, message=str(exc),
                                         actor=actor, psp_call=psp_call)


@transaction.atomic
def payment_order_dead_letter(*, payment_order_id: str, code: str, message: str, actor: str,
                              psp_call: dict | None = None) -> str:
    order = lock_order(payment_order_id)
    if order.state in (PaymentOrderState.EXECUTING, PaymentOrderState.PENDING, PaymentOrderState.UNKNOWN,
                       PaymentOrderState.REQUIRES_ACTION):
        transition_apply(order, order.dead_letter, actor=actor, code=code, message=message, reason=message,
                         audit_detail=psp_call)
        logger.error("event=payment_order_dead_letter order=%s code=%s message=%s", order.id, code, message)
    return order.state


@transaction.atomic
def payment_order_mark_unknown(*, payment_order_id: str, reason: str, actor: str, key_spent: bool = False,
                               psp_call: dict | None = None) -> str:
    """No answer from the PSP: not a failure. The janitor asks the PSP after a short delay.

    ``key_spent``: the PSP saved its failure against the key, so the janitor may send the
    order again only under a new key, and only once a search past the PSP's search lag
    shows no payment for it. Each spent key counts against the attempts: once they are used
    up the order goes to the dead letter (where a replay asks the PSP first, too).
    """
    order = lock_order(payment_order_id)
    if order.state != PaymentOrderState.EXECUTING:
        return order.state
    if key_spent:
        order.psp_key_spent_at = timezone.now()
        if order.attempts >= settings.PAYMENT_EXECUTE_MAX_ATTEMPTS:
            transition_apply(order, order.dead_letter, actor=actor, code="retries_exhausted", reason=reason,
                             message=f"{order.attempts} attempts failed; last error: {reason}", audit_detail=psp_call)
            return order.state
        order.next_action_at = _after(settings.PSP_SEARCH_CONSISTENCY_SECONDS)
        transition_apply(order, order.lose_track, actor=actor, audit_detail=psp_call,
                         reason=f"the PSP failed and saved it against key {order.psp_idempotency_key}: {reason}")
    else:
        order.next_action_at = _after(settings.PAYMENT_UNKNOWN_CHECK_SECONDS)
        transition_apply(order, order.lose_track, actor=actor, reason=f"no answer from the PSP: {reason}",
                         audit_detail=psp_call)
    return order.state


@transaction.atomic
def payment_order_schedule_retry(*, payment_order_id: str, error: str, actor: str,
                                 psp_call: dict | None = None) -> float | None:
    """After a retryable PSP error: the delay before the next attempt, or ``None`` once
    the attempts are used up and the order has gone to the dead-letter state. ``psp_call``
    (``psp_call_detail``) is kept on an audit row ``executing → executing`` (the retry path's
    own statement: the settled path writes no more than before)."""
    order = lock_order(payment_order_id)
    if order.state != PaymentOrderState.EXECUTING:
        return None
    if order.attempts >= settings.PAYMENT_EXECUTE_MAX_ATTEMPTS:
        payment_order_dead_letter(payment_order_id=order.id, code="retries_exhausted", actor=actor,
                                  message=f"{order.attempts} attempts failed; last error: {error}", psp_call=psp_call)
        return None
    delay = retry_delay(order.attempts)
    order.next_action_at = _after(delay + settings.PAYMENT_STALL_SECONDS)
    order.save(update_fields=["next_action_at", "updated_at"])
    if psp_call is not None:
        PaymentOrderTransition.objects.create(
            payment_order=order, from_state=order.state, to_state=order.state, actor=actor[:100], detail=psp_call,
            reason=f"PSP error, retrying in {delay:.1f} s with the same key: {error}"[:500])
    return delay


@transaction.atomic
def payment_order_apply_result(*, payment_order_id: str, result: PaymentResult, actor: str,
                               psp_call: dict | None = None, claimed: PaymentOrder | None = None) -> str:
    """Record what the PSP said about an order. Idempotent and monotonic: a decided order
    never changes. Used by the task, the webhook inbox and the janitor alike.

    Success does three things in this one transaction: the order becomes succeeded, the
    seller's wallet is credited and a balanced ledger transaction is posted. A decision (success
    or failure) is counted on the payment event in the same transaction, which decides the event
    when it was its last undecided order (``checkout_outcome``). The dead-letter path decides
    nothing: a dead-lettered order leaves its event ``processing`` until a replay decides it here.
    ``psp_call``: the executor's call this answers, kept in the transition's audit row.

    ``claimed``: the order as the executor's claim left it (``order_claim``, committed). A success or a
    failure for it is then written without reading the row again: the transition's UPDATE takes the
    row's lock and is guarded by every field it writes still holding the claimed value
    (``transition_apply(guarded=True)``), so it applies only to the row the decision was taken on.
    Anything else (a webhook or the janitor got there first, another attempt, an answer that does not
    match the claimed row) is decided below on the locked row, as without ``claimed``.
    """
    if claimed is not None and _decided_as_claimed(claimed, result, actor=actor, psp_call=psp_call):
        return claimed.state
    order = lock_order(payment_order_id)
    if order.is_terminal or order.state == PaymentOrderState.NOT_STARTED:
        # Captured money our books don't hold: another PaymentIntent for a decided order, or this order's
        # own PaymentIntent captured after we recorded it failed (e.g. one mapped to failed while still open).
        if order.is_terminal and result.status is PaymentStatus.SUCCEEDED and result.psp_reference and (
                result.psp_reference != order.psp_reference or order.state == PaymentOrderState.FAILED):
            _suspect_double_charge(order, result, actor=actor)
        elif order.is_terminal and order.state != result.status and result.status not in (
                PaymentStatus.PROCESSING, PaymentStatus.REQUIRES_ACTION):  # an earlier step, arriving late
            logger.error("event=payment_order_outcome_conflict order=%s state=%s psp_status=%s",
                         order.id, order.state, result.status)
        return order.state
    if result.status is PaymentStatus.SUCCEEDED:
        _check_success_is_ours(order, result)
        _transition_apply_own_reference(order, order.succeed, actor=actor, reason="PSP captured the payment",
                                        psp_reference=result.psp_reference, audit_detail=psp_call)
        # The event's decision before the books: the capture's last statement takes the seller's wallet row,
        # the one row every order of a hot seller waits on, so it is held from there to the commit only.
        payment_event_order_decided(order=order, actor=actor)
        capture_post(order)
    elif result.status is PaymentStatus.FAILED:
        _transition_apply_own_reference(order, order.fail, actor=actor, reason=f"PSP: {result.failure_code}",
                                        code=result.failure_code, message=result.failure_message,
                                        psp_reference=result.psp_reference, audit_detail=psp_call)
        payment_event_order_decided(order=order, actor=actor)
    elif result.status is PaymentStatus.REQUIRES_ACTION:
        # Only before an answer: a late "requires_action" never moves a pending order back.
        if order.state in (PaymentOrderState.EXECUTING, PaymentOrderState.UNKNOWN, PaymentOrderState.DEAD_LETTER):
            # The buyer's answer comes back by redirect or webhook; the janitor expires the challenge.
            order.next_action_at = _after(settings.PAYMENT_ACTION_EXPIRY_SECONDS)
            _transition_apply_own_reference(order, order.require_action, actor=actor,
                                            reason="the PSP asks the buyer to authenticate (3-D Secure)",
                                            psp_reference=result.psp_reference, url=result.action_url,
                                            audit_detail=psp_call)
    elif order.state != PaymentOrderState.PENDING:
        order.next_action_at = _after(settings.PAYMENT_PENDING_CHECK_SECONDS)
        _transition_apply_own_reference(order, order.await_psp, actor=actor, reason="PSP is still processing",
                                        psp_reference=result.psp_reference, audit_detail=psp_call)
    return order.state


def _decided_as_claimed(order: PaymentOrder, result: PaymentResult, *, actor: str, psp_call: dict | None) -> bool:
    """``payment_order_apply_result``'s success or failure of an order still as its claim read it, without its
    lock: False (nothing written) when the answer is another kind, does not match the claimed row, or the row
    changed since the claim (then decided on the locked row). The order's transition, its count on the
    event and a success's capture (posting and wallet credit, written only if the transition was) in one
    statement (``payment_event_order_decided(transition=..., parts=...)``): three statements fewer than the
    locked path."""
    if order.state != PaymentOrderState.EXECUTING or result.status not in (PaymentStatus.SUCCEEDED,
                                                                          PaymentStatus.FAILED):
        return False
    try:
        if result.status is PaymentStatus.SUCCEEDED:
            _check_success_is_ours(order, result)
            write = transition_prepare(order, order.succeed, actor=actor, reason="PSP captured the payment",
                                       psp_reference=result.psp_reference, audit_detail=psp_call, guarded=True)
        else:
            write = transition_prepare(order, order.fail, actor=actor, reason=f"PSP: {result.failure_code}",
                                       code=result.failure_code, message=result.failure_message,
                                       psp_reference=result.psp_reference, audit_detail=psp_call, guarded=True)
        capture = capture_parts(order, after=DECISION_WRITTEN) if result.status is PaymentStatus.SUCCEEDED else ()
        with _own_reference(order, result.psp_reference):
            payment_event_order_decided(order=order, actor=actor, transition=write, parts=capture,
                                        then=(lambda rows: capture_posted(order, capture, rows)) if capture else None)
    except (PSPMismatch, ConcurrentTransition) as exc:
        if isinstance(exc.__cause__, IntegrityError):  # the statement failed: the transaction is lost
            raise
        return False
    return True


#: The partial unique index on orders' PSP references (migration 0018): no two orders share one.
PSP_REFERENCE_UNIQUE = "payment_order_one_per_psp_reference"


def _transition_apply_own_reference(order: PaymentOrder, method: Callable[..., object], *, psp_reference: str,
                                    **kwargs: object) -> None:
    """``transition_apply`` of a transition that records the PSP's reference, under ``_own_reference``."""
    with _own_reference(order, psp_reference):
        transition_apply(order, method, psp_reference=psp_reference, **kwargs)


@contextmanager
def _own_reference(order: PaymentOrder, psp_reference: str) -> Iterator[None]:
    """Around the write of a transition that records the PSP's reference: a reference another order holds
    (a PaymentIntent made for one order, reported for another) is refused by the database's unique index and
    raised as ``PSPMismatch`` (an operator looks), not as the database's error. Costs no statement: the
    index checks it on the write. The caller's transaction (or savepoint) is rolled back by the raise."""
    try:
        yield
    except IntegrityError as exc:
        if getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None) != PSP_REFERENCE_UNIQUE:
            raise
        raise PSPMismatch(f"PaymentIntent {psp_reference} is another order's, not {order.id}'s") from exc


def _check_success_is_ours(order: PaymentOrder, result: PaymentResult) -> None:
    """Only the payment we asked for moves money: the PSP's object must name this order, be the
    PaymentIntent on record (when there is one), and carry its amount and currency."""
    if result.payment_order_id and result.payment_order_id != order.id:
        raise PSPMismatch(f"PaymentIntent {result.psp_reference} is for {result.payment_order_id}, not {order.id}")
    if order.psp_reference and result.psp_reference != order.psp_reference:
        raise PSPMismatch(f"success for PaymentIntent {result.psp_reference}, but {order.id} was sent as "
                          f"{order.psp_reference}")
    if (result.amount, result.currency) != (order.amount, order.currency):
        raise PSPAmountMismatch(f"PSP captured {result.amount} {result.currency} for {order.id}, "
                                f"expected {order.amount} {order.currency}")


def _suspect_double_charge(order: PaymentOrder, result: PaymentResult, *, actor: str) -> None:
    """A decided order, and the PSP says another PaymentIntent for it succeeded: the buyer paid
    money our books don't hold. Kept once per PaymentIntent for an operator; nothing is posted."""
    kind = (SuspectedDoubleCharge.Kind.DOUBLE_CHARGE if order.state == PaymentOrderState.SUCCEEDED
            else SuspectedDoubleCharge.Kind.CAPTURED_FOR_FAILED_ORDER)
    _, created = SuspectedDoubleCharge.objects.get_or_create(
        psp_reference=result.psp_reference,
        defaults={"payment_order": order, "kind": kind, "amount": result.amount, "currency": result.currency,
                  "detected_by": actor[:100]})
    if created:
        logger.error("event=suspected_double_charge order=%s state=%s psp_reference=%s amount=%s currency=%s",
                     order.id, order.state, result.psp_reference, result.amount, result.currency)
