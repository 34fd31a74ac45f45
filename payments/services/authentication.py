"""3-D Secure: an order whose PaymentIntent waits for its buyer (``requires_action``).

The buyer's answer reaches us twice: the PSP sends them back to our ``return_url`` (the
redirect), and it sends a webhook. Neither is believed as it is: the redirect's query string is
never read (we ask the PSP about the event's own orders), and the webhook is signed. Whichever
comes first is applied by ``payment_order_apply_result``, which locks the order and never moves
a decided one, so the second changes nothing. A challenge nobody answers is cancelled at the PSP
by the janitor once ``PAYMENT_ACTION_EXPIRY_SECONDS`` have passed, and the order fails with
``authentication_expired``.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from django.conf import settings

from core.db import db_connection_release
from core.exceptions import NotFound
from payments.models import PaymentEvent, PaymentOrder, PaymentOrderState
from payments.psp import get_psp
from payments.psp.base import PaymentStatus, PSPError
from payments.services.execution import payment_order_apply_result_or_dead_letter
from payments.services.recovery import _due

logger = logging.getLogger(__name__)

AUTHENTICATION_EXPIRED = "authentication_expired"


class CheckoutNotFound(NotFound):
    message = "No such checkout."


@dataclass(frozen=True)
class BuyerReturn:
    """Where to send a buyer back from a challenge: the next order's challenge, or ``return_url``."""

    payment_event_id: str
    next_action_url: str
    return_url: str


def payment_event_buyer_returned(*, payment_event_id: str, actor: str = "redirect:buyer") -> BuyerReturn:
    """The buyer is back from a 3-D Secure challenge: ask the PSP about each of the event's orders
    waiting for them and apply its answer. Nothing from the redirect itself is trusted (a tampered
    or replayed query string changes nothing). Returns where the buyer goes next: the challenge of
    another order still waiting (each order is its own PaymentIntent), else the event's ``return_url``."""
    event = PaymentEvent.objects.filter(pk=payment_event_id).only("id", "return_url").first()
    if event is None:
        raise CheckoutNotFound(param="payment_event")
    waiting = list(PaymentOrder.objects.filter(payment_event_id=event.id, state=PaymentOrderState.REQUIRES_ACTION)
                   .order_by("created_at", "id").values_list("id", "psp_reference"))
    psp = get_psp()
    db_connection_release()
    for order_id, psp_reference in waiting:
        try:
            result = psp.retrieve_payment(psp_reference)
        except PSPError as exc:  # the webhook or the janitor will bring the answer
            logger.warning("event=buyer_return_psp_error order=%s error=%s", order_id, exc)
            continue
        payment_order_apply_result_or_dead_letter(payment_order_id=order_id, result=result, actor=actor)
    next_url = (PaymentOrder.objects.filter(payment_event_id=event.id, state=PaymentOrderState.REQUIRES_ACTION)
                .order_by("created_at", "id").values_list("next_action_url", flat=True).first())
    return BuyerReturn(payment_event_id=event.id, next_action_url=next_url or "", return_url=event.return_url)


def payment_order_expire_action(*, payment_order_id: str, actor: str = "janitor") -> str:
    """A challenge past its time: cancel the PaymentIntent at the PSP (so that a buyer answering
    later can't be charged for a failed order) and fail the order with ``authentication_expired``.
    If the PSP decided it meanwhile, its answer is applied instead. A PSP error leaves the order for
    the next round."""
    order = PaymentOrder.objects.get(pk=payment_order_id)
    if order.state != PaymentOrderState.REQUIRES_ACTION:
        return order.state
    psp = get_psp()
    db_connection_release()
    try:
        result = psp.retrieve_payment(order.psp_reference)
        if result.status is PaymentStatus.REQUIRES_ACTION:
            result = psp.cancel_payment(order.psp_reference,
                                        idempotency_key=f"cancel:{order.id}:{order.psp_reference}")
            if result.status is PaymentStatus.FAILED:  # cancelled by us, because nobody answered
                result = dataclasses.replace(
                    result, failure_code=AUTHENTICATION_EXPIRED,
                    failure_message=f"The buyer did not complete 3-D Secure within "
                                    f"{settings.PAYMENT_ACTION_EXPIRY_SECONDS:.0f} seconds; the payment was "
                                    "cancelled at the PSP.")
    except PSPError as exc:
        logger.warning("event=action_expiry_psp_error order=%s error=%s", order.id, exc)
        return order.state
    if result.status is PaymentStatus.REQUIRES_ACTION:  # the PSP would not cancel it: ask again next round
        logger.warning("event=action_expiry_not_cancelled order=%s", order.id)
        return order.state
    return payment_order_apply_result_or_dead_letter(payment_order_id=order.id, result=result, actor=actor)


def payment_orders_expire_actions(*, limit: int = 500) -> int:
    """The janitor's round for challenges: every order waiting for its buyer past its expiry."""
    due = _due(PaymentOrder.objects.filter(state=PaymentOrderState.REQUIRES_ACTION), limit=limit)
    for order_id in due:
        payment_order_expire_action(payment_order_id=order_id)
    return len(due)
