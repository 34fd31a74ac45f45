"""A little of everything the operators' console shows, for its browser tests and ``make screenshots``
(scripts/screenshots.py): checkouts in four currencies from several sellers, succeeded, failed and dead-lettered
orders (one after several PSP calls), refunds, webhooks, a settlement file with lines and open breaks. Written
through the services where money moves (captures and refunds post to the ledger and the wallets); the PSP's
answers are given, not asked (no sandbox needed)."""
from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from payments.models import PaymentOrder, PaymentOrderState, PaymentOrderTransition, WebhookEvent
from payments.psp.base import PaymentResult, PaymentStatus, RefundResult
from payments.services import payment_order_apply_result
from payments.services.execution import payment_order_dead_letter
from payments.services.order_rows import order_claim
from payments.services.refunds import refund_apply_result, refund_create
from payments.tests.factories import ApiClientFactory, PaymentEventFactory, PaymentOrderFactory, SellerFactory
from reconciliation.models import Break, ReconciliationRun, SettlementFile, SettlementLine

OPERATOR, PASSWORD = "olivia", "console-operator-pw"


def _call(order: PaymentOrder, status: str, *, latency: int, error: str = "", psp_reference: str = "") -> dict:
    return {"psp_call": {"attempt": order.attempts, "idempotency_key": order.psp_idempotency_key,
                         "status": status, "error": error, "latency_ms": latency, "psp_reference": psp_reference}}


def _claim(order: PaymentOrder) -> PaymentOrder:
    return order_claim(order.id, actor="task:payment_order_execute", reason="sent to the PSP",
                       next_action_at=timezone.now() + timedelta(seconds=30))


def _succeed(order: PaymentOrder, psp_reference: str) -> None:
    order = _claim(order)
    payment_order_apply_result(payment_order_id=order.id, actor="task:payment_order_execute", result=PaymentResult(
        status=PaymentStatus.SUCCEEDED, psp_reference=psp_reference, amount=order.amount, currency=order.currency),
        psp_call=_call(order, "succeeded", latency=184, psp_reference=psp_reference))


def _retried_then_dead(order: PaymentOrder, calls: int) -> None:
    """``calls`` PSP calls that each answered 503, the last one sending the order to the dead letter."""
    for attempt in range(1, calls + 1):
        order = _claim(order)
        call = _call(order, "retryable error", latency=2000 + attempt * 37, error="PSP 503: service unavailable")
        if attempt < calls:
            PaymentOrderTransition.objects.create(payment_order=order, from_state="executing", to_state="executing",
                                                  actor="task:payment_order_execute", detail=call,
                                                  reason="PSP error, retrying with the same key: PSP 503")
        else:
            payment_order_dead_letter(payment_order_id=order.id, code="retries_exhausted", psp_call=call,
                                      actor="task:payment_order_execute",
                                      message=f"{calls} attempts failed; last error: PSP 503: service unavailable")


def _pi(n: int) -> str:
    """A PaymentIntent id as long as Stripe's (27 characters)."""
    return f"pi_3Qx{n:04d}LkdIwHu7ix28a3tqPa"[:27]


def console_seed(*, orders: int = 24) -> dict:
    """Seed the console's data; returns the objects the tests look for. Also the operator's login."""
    call_command("create_operator_groups", verbosity=0)
    user = User.objects.create_user(OPERATOR, password=PASSWORD, is_staff=True, email="olivia@example.com")
    user.groups.add(*Group.objects.filter(name__in=["Payment operators", "Finance operators"]))
    shop = ApiClientFactory(name="Demo shop")
    sellers = [SellerFactory(client=shop, name=name) for name in
               ("Alpha Books", "Bravo Tools & Hardware Supplies", "Café Crème", "Delta Electronics")]
    currencies = [("usd", 4999), ("eur", 125000), ("jpy", 25000), ("kwd", 12345)]
    ann = PaymentEventFactory(client=shop, buyer_reference="buyer-42", buyer_email="ann@example.com")
    found = PaymentOrderFactory(payment_event=ann, seller=sellers[0], amount=4999, currency="usd")
    _succeed(found, "pi_found")
    with transaction.atomic():  # the refund's task is published decided: a running worker has nothing to do
        refund = refund_create(client=shop, payment_order_id=found.id, amount=1000, reason="damaged",
                               actor="api:shop")
        refund_apply_result(refund_id=refund.id, actor="webhook:evt_re_found", result=RefundResult(
            status=PaymentStatus.SUCCEEDED, psp_reference="re_found", amount=1000, currency="usd"))
    WebhookEvent.objects.create(id="evt_found", type="payment_intent.succeeded", object_id="pi_found",
                                status="processed", attempts=1, processed_at=timezone.now(),
                                payload={"id": "evt_found", "type": "payment_intent.succeeded",
                                         "data": {"object": {"id": "pi_found", "object": "payment_intent",
                                                             "amount": 4999, "currency": "usd"}}})
    for n in range(orders):
        event = PaymentEventFactory(client=shop, buyer_reference=f"buyer-{100 + n}",
                                    buyer_email=f"buyer{100 + n}@example.com")
        currency, amount = currencies[n % 4]
        order = PaymentOrderFactory(payment_event=event, seller=sellers[n % 4], amount=amount + n * 101,
                                    currency=currency)
        if n % 5 == 3:
            order = _claim(order)
            payment_order_apply_result(payment_order_id=order.id, actor="task:payment_order_execute",
                                       result=PaymentResult(status=PaymentStatus.FAILED, psp_reference=_pi(n),
                                                            amount=order.amount, currency=order.currency,
                                                            failure_code="card_declined",
                                                            failure_message="Your card was declined."),
                                       psp_call=_call(order, "failed", latency=240, psp_reference=_pi(n),
                                                      error="card_declined: Your card was declined."))
        else:
            _succeed(order, _pi(n))
    dead = PaymentOrderFactory(payment_event=PaymentEventFactory(client=shop, buyer_reference="buyer-9",
                                                                 buyer_email="dee@example.com"),
                               seller=sellers[1], amount=1234567, currency="usd")
    _retried_then_dead(dead, 6)
    dead_eur = PaymentOrderFactory(payment_event=PaymentEventFactory(client=shop, buyer_reference="buyer-10"),
                                   seller=sellers[2], amount=8990, currency="eur")
    _retried_then_dead(dead_eur, 2)
    WebhookEvent.objects.create(id="evt_failed", type="payment_intent.succeeded", object_id="pi_gone",
                                status="failed", attempts=1, last_error="no payment order for pi_gone",
                                payload={"id": "evt_failed", "type": "payment_intent.succeeded",
                                         "data": {"object": {"id": "pi_gone", "object": "payment_intent"}}})
    run = ReconciliationRun.objects.create(date=timezone.now().date(), actor="task:reconcile")
    file = SettlementFile.objects.create(sha256="c" * 64, name="stripe-settlement-today.csv", format="stripe",
                                         size=2048, imported_by="task:settlement_import",
                                         reconciled_at=timezone.now(), reconciled_run=run)
    line = SettlementLine.objects.create(file=file, ordinal=1, line_number=2, record_type="charge",
                                         psp_reference="pi_found", source_reference="ch_found", payout_reference="po_1",
                                         currency="usd", gross=4999, fee=175, net=4824, occurred_at=timezone.now())
    breaks = [Break.objects.create(key=f"amount_mismatch:object:{found.id}", break_class="amount_mismatch", run=run,
                                   last_seen_run=run, line=line, expected_amount=4999, expected_currency="usd",
                                   actual_amount=4899, actual_currency="usd", object_kind="payment_order",
                                   object_id=found.id, psp_reference="pi_found",
                                   description="the PSP settled 1.00 USD less than our books")]
    for order in PaymentOrder.objects.filter(state=PaymentOrderState.SUCCEEDED).exclude(pk=found.pk).order_by("id")[:3]:
        breaks.append(Break.objects.create(
            key=f"missing_in_settlement:object:{order.id}", break_class="missing_in_settlement", run=run,
            last_seen_run=run, expected_amount=order.amount, expected_currency=order.currency,
            object_kind="payment_order", object_id=order.id, psp_reference=order.psp_reference,
            description="a succeeded order no settlement line settled by the cut-off"))
    return {"found": found, "ann": ann, "dead": dead, "dead_eur": dead_eur, "refund": refund, "breaks": breaks,
            "sellers": sellers}
