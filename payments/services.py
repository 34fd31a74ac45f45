"""The pay-in path: checkout, execution against the PSP, and what success moves."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.db import transaction
from django_fsm import can_proceed

from core.models import ApiClient
from ledger import accounts
from ledger.services import EntrySpec, ledger_transaction_post
from payments.exceptions import SellerNotOnboarded
from payments.models import PaymentEvent, PaymentOrder, PaymentOrderState, PaymentOrderTransition, Seller
from payments.psp import get_psp
from payments.psp.base import PaymentRequest, PaymentResult, PaymentStatus, PSPPermanentError
from wallet.services import wallet_credit

logger = logging.getLogger(__name__)


def seller_onboard(*, client: ApiClient, name: str, external_reference: str = "") -> Seller:
    return Seller.objects.create(client=client, name=name, external_reference=external_reference)


@dataclass(frozen=True)
class OrderSpec:
    seller_id: str
    amount: int
    currency: str


@transaction.atomic
def payment_event_create(
    *,
    client: ApiClient,
    buyer_reference: str,
    buyer_email: str,
    payment_method: str,
    orders: list[OrderSpec],
    idempotency_key: str,
) -> PaymentEvent:
    """Create the event and all its orders at once; their execution is enqueued on commit."""
    seller_ids = [o.seller_id for o in orders]
    onboarded = set(
        Seller.objects.filter(client=client, id__in=seller_ids, status=Seller.Status.ACTIVE)
        .values_list("id", flat=True)
    )
    for index, order in enumerate(orders):
        if order.seller_id not in onboarded:
            raise SellerNotOnboarded(f"Seller {order.seller_id!r} is not onboarded.",
                                     param=f"orders[{index}].seller")
    event = PaymentEvent.objects.create(
        client=client, buyer_reference=buyer_reference, buyer_email=buyer_email,
        payment_method=payment_method, idempotency_key=idempotency_key,
    )
    created = PaymentOrder.objects.bulk_create(
        PaymentOrder(payment_event=event, seller_id=o.seller_id, amount=o.amount, currency=o.currency)
        for o in orders
    )
    PaymentOrderTransition.objects.bulk_create(
        PaymentOrderTransition(payment_order=o, from_state="", to_state=PaymentOrderState.NOT_STARTED,
                               actor=f"api_client:{client.id}", reason="checkout created")
        for o in created
    )
    for order in created:
        transaction.on_commit(partial(_enqueue_execution, order.id))
    return event


def _enqueue_execution(payment_order_id: str) -> None:
    from payments.tasks import payment_order_execute_task

    payment_order_execute_task.delay(payment_order_id=payment_order_id)


def _lock_order(payment_order_id: str) -> PaymentOrder:
    return PaymentOrder.objects.select_for_update().select_related("payment_event").get(pk=payment_order_id)


def _transition(order: PaymentOrder, method, *, actor: str, reason: str, **kwargs) -> None:
    """Apply one FSM transition to a locked order, save it, and write its audit row."""
    from_state = order.state
    method(**kwargs)
    order.save()
    PaymentOrderTransition.objects.create(
        payment_order=order, from_state=from_state, to_state=order.state, actor=actor, reason=reason[:500]
    )


def payment_order_execute(*, payment_order_id: str, actor: str = "task:payment_order_execute") -> str:
    """Execute one order against the PSP. Safe to call any number of times.

    (a) commit the order as executing; (b) call the PSP with the order id as the
    idempotency key, outside any transaction; (c) record the outcome in a new one.
    Raises ``PSPRetryableError`` for the caller (the task) to retry. Returns the state.
    """
    with transaction.atomic():
        order = _lock_order(payment_order_id)
        if order.state == PaymentOrderState.NOT_STARTED:
            _transition(order, order.start, actor=actor, reason="sent to the PSP")
        elif order.state != PaymentOrderState.EXECUTING:
            return order.state  # terminal, or pending on the PSP: nothing to send
        request = PaymentRequest(
            idempotency_key=order.psp_idempotency_key,
            amount=order.amount,
            currency=order.currency,
            payment_method=order.payment_event.payment_method,
            metadata={"payment_event_id": order.payment_event_id, "seller_id": order.seller_id},
        )
    try:
        result = get_psp().create_payment(request)
    except PSPPermanentError as exc:
        # The PSP refused the request itself; no charge can exist for it.
        result = PaymentResult(status=PaymentStatus.FAILED, psp_reference="", amount=request.amount,
                               currency=request.currency, failure_code="psp_refused_request",
                               failure_message=str(exc))
    return payment_order_apply_result(payment_order_id=payment_order_id, result=result, actor=actor)


@transaction.atomic
def payment_order_apply_result(*, payment_order_id: str, result: PaymentResult, actor: str) -> str:
    """Record what the PSP said about an order. Idempotent; used by tasks, webhooks and janitor.

    Success does three things in this one transaction: the order becomes succeeded, the
    seller's wallet is credited and a balanced ledger transaction is posted.
    """
    order = _lock_order(payment_order_id)
    if order.is_terminal:
        if order.state != result.status:
            logger.warning("event=payment_order_outcome_conflict order=%s state=%s psp_status=%s",
                           order.id, order.state, result.status)
        return order.state
    if result.status is PaymentStatus.SUCCEEDED:
        if (result.amount, result.currency) != (order.amount, order.currency):
            raise ValueError(f"PSP captured {result.amount} {result.currency} for {order.id}, "
                             f"expected {order.amount} {order.currency}")
        _transition(order, order.succeed, actor=actor, reason="PSP captured the payment",
                    psp_reference=result.psp_reference)
        _post_capture(order)
    elif result.status is PaymentStatus.FAILED:
        _transition(order, order.fail, actor=actor, reason=f"PSP: {result.failure_code}",
                    code=result.failure_code, message=result.failure_message,
                    psp_reference=result.psp_reference)
    elif can_proceed(order.await_psp) and order.state != PaymentOrderState.PENDING:
        _transition(order, order.await_psp, actor=actor, reason="PSP is still processing",
                    psp_reference=result.psp_reference)
    return order.state


def commission_for(amount: int) -> int:
    """The platform's cut, in whole minor units, rounded down in the seller's favour."""
    return amount * settings.PLATFORM_COMMISSION_BPS // 10_000


def _post_capture(order: PaymentOrder) -> None:
    commission = commission_for(order.amount)
    seller_share = order.amount - commission
    entries = [
        EntrySpec(accounts.PSP_RECEIVABLE, order.currency, order.amount),
        EntrySpec(accounts.seller_payable(order.seller_id), order.currency, -seller_share),
    ]
    if commission:
        entries.append(EntrySpec(accounts.PLATFORM_COMMISSION, order.currency, -commission))
    ledger_transaction_post(
        idempotency_key=capture_posting_key(order.id),
        description=f"Capture of payment order {order.id}",
        reference=order.id,
        entries=entries,
    )
    wallet_credit(
        owner_id=order.seller_id, currency=order.currency, amount=seller_share,
        idempotency_key=capture_posting_key(order.id), reason=f"payment order {order.id} succeeded",
    )


def capture_posting_key(payment_order_id: str) -> str:
    return f"payment_order:{payment_order_id}:capture"
