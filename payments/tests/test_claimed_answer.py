"""The executor's answer for the order as its claim left it: written without reading or locking the order again
(``payment_order_apply_result(claimed=...)``), and only while the row is still as claimed; otherwise decided on
the locked row as any other answer."""
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ledger import selectors as ledger_selectors
from payments.models import MerchantEvent, PaymentEvent, PaymentOrder, PaymentOrderState, SuspectedDoubleCharge
from payments.psp.base import PaymentResult, PaymentStatus
from payments.services.execution import payment_order_apply_result, payment_order_apply_result_or_dead_letter
from payments.services.order_rows import order_claim
from payments.tests.factories import PaymentOrderFactory
from wallet import selectors as wallet_selectors

pytestmark = pytest.mark.django_db

LOCK = "FOR UPDATE OF o"  # lock_order's statement


def claim(order: PaymentOrder) -> PaymentOrder:
    return order_claim(order.id, actor="task:t", reason="sent", next_action_at=timezone.now() + timedelta(seconds=40))


def answer(status, amount=1000, psp_reference="pi_1"):
    return PaymentResult(status=status, psp_reference=psp_reference, amount=amount, currency="usd",
                         failure_code="card_declined" if status is PaymentStatus.FAILED else "")


def apply(order_id: str, claimed: PaymentOrder | None, result: PaymentResult) -> tuple[str, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        state = payment_order_apply_result_or_dead_letter(payment_order_id=order_id, result=result, actor="task:t",
                                                          claimed=claimed)
    return state, [q["sql"] for q in captured.captured_queries]


def books(order: PaymentOrder) -> tuple[int, dict]:
    return wallet_selectors.wallet_balance(owner_id=order.seller_id, currency="usd"), ledger_selectors.trial_balance()


@pytest.mark.parametrize("status", [PaymentStatus.SUCCEEDED, PaymentStatus.FAILED])
def test_an_answer_for_the_row_as_claimed_is_written_without_locking_it_again(status):
    order = PaymentOrderFactory()
    claimed = claim(order)
    state, statements = apply(order.id, claimed, answer(status))
    assert state == status.value and not any(LOCK in s for s in statements)
    stored = PaymentOrder.objects.get(pk=order.pk)
    assert (stored.state, stored.psp_reference, stored.attempts) == (status.value, "pi_1", 1)
    assert stored.next_action_at == claimed.next_action_at and stored.completed_at is not None
    assert [(t.from_state, t.to_state) for t in stored.transitions.order_by("id")] == [
        ("not_started", "executing"), ("executing", status.value)]
    succeeded = status is PaymentStatus.SUCCEEDED
    assert books(order) == ((1000, {"usd": 0}) if succeeded else (0, {}))
    assert stored.payment_event.orders_succeeded + stored.payment_event.orders_failed == 1


def test_an_order_decided_since_its_claim_moves_money_once():
    order = PaymentOrderFactory()
    claimed = claim(order)
    payment_order_apply_result(payment_order_id=order.id, result=answer(PaymentStatus.SUCCEEDED), actor="webhook")
    state, statements = apply(order.id, claimed, answer(PaymentStatus.SUCCEEDED))
    assert state == "succeeded" and any(LOCK in s for s in statements)  # decided on the locked row
    assert books(order) == (1000, {"usd": 0})
    assert order.transitions.count() == 2
    assert not SuspectedDoubleCharge.objects.exists()
    # The guarded statement that also counts the decision on the event wrote nothing: counted once, told once.
    event = PaymentEvent.objects.get(pk=order.payment_event_id)
    assert (event.state, event.orders_succeeded, event.orders_failed) == ("succeeded", 1, 0)
    assert sorted(MerchantEvent.objects.values_list("type", flat=True)) == ["checkout.completed",
                                                                            "payment_order.succeeded"]


def test_a_late_success_for_an_order_failed_since_its_claim_is_a_suspected_double_charge():
    order = PaymentOrderFactory()
    claimed = claim(order)
    payment_order_apply_result(payment_order_id=order.id, result=answer(PaymentStatus.FAILED, psp_reference=""),
                               actor="webhook")
    assert apply(order.id, claimed, answer(PaymentStatus.SUCCEEDED))[0] == "failed"
    assert books(order) == (0, {})
    assert SuspectedDoubleCharge.objects.get().payment_order_id == order.id


def test_a_late_success_for_an_order_failed_since_its_claim_posts_nothing_for_a_paid_seller():
    """The capture's posting and credit share the decision's statement (account and wallet open: the seller was
    paid before): written only if the decision was, so nothing for an order the claim no longer describes."""
    paid = PaymentOrderFactory()
    apply(paid.id, claim(paid), answer(PaymentStatus.SUCCEEDED, psp_reference="pi_0"))
    order = PaymentOrderFactory(seller=paid.seller)
    claimed = claim(order)
    payment_order_apply_result(payment_order_id=order.id, result=answer(PaymentStatus.FAILED, psp_reference=""),
                               actor="webhook")
    assert apply(order.id, claimed, answer(PaymentStatus.SUCCEEDED))[0] == "failed"
    assert books(order) == (1000, {"usd": 0})  # the paid order's alone
    assert SuspectedDoubleCharge.objects.get().payment_order_id == order.id


@pytest.mark.parametrize("change", ["another attempt", "next action moved"])
def test_a_row_changed_since_the_claim_is_decided_on_the_locked_row_and_keeps_the_change(change):
    order = PaymentOrderFactory()
    claimed = claim(order)
    if change == "another attempt":
        claim(order)
    else:  # e.g. payment_order_schedule_retry, or an operator: a field the transition also writes
        PaymentOrder.objects.filter(pk=order.pk).update(next_action_at=timezone.now() + timedelta(days=1))
    before = PaymentOrder.objects.get(pk=order.pk)
    state, statements = apply(order.id, claimed, answer(PaymentStatus.SUCCEEDED))
    assert state == "succeeded" and any(LOCK in s for s in statements)
    stored = PaymentOrder.objects.get(pk=order.pk)
    assert (stored.attempts, stored.next_action_at) == (before.attempts, before.next_action_at)  # not the claim's
    assert books(order) == (1000, {"usd": 0})


def test_a_success_that_does_not_match_the_claimed_row_goes_to_the_dead_letter_as_before():
    order = PaymentOrderFactory()
    claimed = claim(order)
    state, statements = apply(order.id, claimed, answer(PaymentStatus.SUCCEEDED, amount=999))
    assert state == "dead_letter" and any(LOCK in s for s in statements)
    assert PaymentOrder.objects.get(pk=order.pk).failure_code == "psp_amount_mismatch"
    assert books(order) == (0, {})


def test_a_psp_reference_another_order_holds_goes_to_the_dead_letter_and_nothing_is_written():
    PaymentOrderFactory(state=PaymentOrderState.SUCCEEDED, psp_reference="pi_1")
    order = PaymentOrderFactory()
    claimed = claim(order)
    state, _ = apply(order.id, claimed, answer(PaymentStatus.SUCCEEDED))
    assert state == "dead_letter"
    stored = PaymentOrder.objects.get(pk=order.pk)
    assert (stored.psp_reference, stored.payment_event.orders_succeeded) == ("", 0)
    assert wallet_selectors.wallet_balance(owner_id=order.seller_id, currency="usd") == 0
