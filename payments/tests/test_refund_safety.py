"""Refunds that can't loop forever, can't be trusted blindly, and can't round the seller below zero."""
import pytest
from django.contrib.auth.models import Permission
from django.db import transaction
from django.db.models import F
from hypothesis import given
from hypothesis import strategies as st

from conftest import wait_for
from core.tests import loopback
from ledger import accounts
from ledger import selectors as ledger_selectors
from payments.models import PaymentOrder, PaymentOrderState, Refund, RefundState
from payments.psp import get_psp
from payments.psp.base import PaymentResult, PaymentStatus, RefundResult
from payments.services.execution import payment_order_apply_result
from payments.services.postings import commission_for, commission_reversed
from payments.services.refunds import (
    refund_apply_result,
    refund_create,
    refund_execute,
    refund_replay_dead_letter,
)
from payments.tests.factories import PaymentOrderFactory
from payments.tests.test_checkout_flow import assert_audit_clean, sandbox_money
from payments.tests.test_psp_faults import configure, one_order, wait_state
from wallet import selectors as wallet_selectors


@given(captured=st.integers(1, 10**8), bps=st.integers(0, 10_000),
       parts=st.lists(st.integers(1, 10**6), min_size=1, max_size=20))
def test_commission_reversed_never_exceeds_what_was_taken_and_sums_to_it(captured, bps, parts):
    commission = captured * bps // 10_000
    refunds, left = [], captured
    for part in parts:  # partial refunds up to the capture, the last one taking what is left
        amount = min(part, left)
        if amount:
            refunds.append(amount)
            left -= amount
    refunds.append(left) if left else None
    given_back, refunded = 0, 0
    for amount in refunds:
        part = commission_reversed(commission=commission, captured=captured, refunded_before=refunded, amount=amount)
        assert 0 <= part <= amount  # the seller is never debited more than the refund, nor less than nothing
        given_back += part
        refunded += amount
        assert given_back <= commission  # never more than the platform took
    assert refunded == captured and given_back == commission  # all of it, once everything is refunded


@pytest.mark.django_db
def test_a_capture_at_250_bps_refunded_as_300_and_700_leaves_everyone_at_zero(settings):
    settings.PLATFORM_COMMISSION_BPS = 250
    order = PaymentOrderFactory(state=PaymentOrderState.EXECUTING, amount=1000)
    payment_order_apply_result(payment_order_id=order.id, result=PaymentResult(
        status=PaymentStatus.SUCCEEDED, psp_reference="pi_1", amount=1000, currency="usd"), actor="t")
    assert commission_for(1000) == 25
    assert wallet_selectors.wallet_balance(owner_id=order.seller_id, currency="usd") == 975
    for amount in (300, 700):
        refund = refund_create(client=order.payment_event.client, payment_order_id=order.id, amount=amount,
                               reason="returned", actor="t")
        refund_apply_result(refund_id=refund.id, actor="t", result=RefundResult(
            status=PaymentStatus.SUCCEEDED, psp_reference=f"re_{amount}", amount=amount, currency="usd"))
    assert wallet_selectors.wallet_balance(owner_id=order.seller_id, currency="usd") == 0
    for code in (accounts.seller_payable(order.seller_id), accounts.PLATFORM_COMMISSION, accounts.PSP_RECEIVABLE):
        assert ledger_selectors.account_balance(code=code, currency="usd") == 0


@pytest.mark.django_db
def test_a_refund_the_psp_answers_with_another_amount_goes_to_the_dead_letter():
    order = PaymentOrderFactory(state=PaymentOrderState.SUCCEEDED, amount=1000, psp_reference="pi_1")
    refund = refund_create(client=order.payment_event.client, payment_order_id=order.id, amount=400, reason="",
                           actor="t")
    state = refund_apply_result(refund_id=refund.id, actor="t", result=RefundResult(
        status=PaymentStatus.SUCCEEDED, psp_reference="re_1", amount=1000, currency="usd"))
    refund.refresh_from_db()
    order.refresh_from_db()
    assert state == RefundState.DEAD_LETTER and refund.failure_code == "psp_amount_mismatch"
    assert order.amount_refunded == 400  # still reserved: the PSP did refund something
    assert wallet_selectors.wallet_balance(owner_id=order.seller_id, currency="usd") == 0  # nothing posted


@pytest.mark.django_db(transaction=True)
def test_a_permanent_psp_error_is_final_and_releases_the_reservation(sandbox, settings):
    order = PaymentOrderFactory(state=PaymentOrderState.SUCCEEDED, amount=1000, psp_reference="pi_1",
                                amount_refunded=400)
    # Made by hand, not by refund_create: no task is enqueued for a worker of another test to run.
    refund = Refund.objects.create(payment_order=order, amount=400, currency="usd")
    settings.PSP_API_KEY = "sk_live_revoked"  # the PSP refuses the credentials: 401, never worth retrying
    get_psp.cache_clear()
    try:
        assert refund_execute(refund_id=refund.id) == RefundState.FAILED
    finally:
        get_psp.cache_clear()
    refund.refresh_from_db()
    assert refund.failure_code and refund.attempts == 1
    assert PaymentOrder.objects.get(pk=order.pk).amount_refunded == 0


@pytest.mark.django_db(transaction=True)
def test_refunds_dead_letter_after_their_attempts_and_a_replay_asks_the_psp_first(api, sandbox):
    order = wait_state(one_order(api, amount=1000), "succeeded")
    configure(sandbox, refund_error_rate=1.0)
    url = f"/api/v1/payment-orders/{order.id}/refunds"
    first = Refund.objects.get(pk=api.post(url, json={"amount": 300}, headers={"Idempotency-Key": "a"}).json()["id"])
    wait_for(lambda: Refund.objects.filter(pk=first.pk, state="dead_letter").exists(), timeout=60,
             message="the refund to use up its attempts")
    configure(sandbox, refund_error_rate=0.0)
    assert refund_replay_dead_letter(refund_id=first.id, operator="alice", reason="PSP fixed (INC-9)") == "pending"
    wait_for(lambda: Refund.objects.filter(pk=first.pk, state="succeeded").exists(), message="the replayed refund")

    # A refund the PSP made while we heard nothing: the replay applies it and sends nothing. It is dead-lettered
    # in the transaction that creates it, so its task (published on commit) finds it dead and sends nothing:
    # made and dead-lettered in two commits, a fast worker could send it before the test marked it dead.
    with transaction.atomic():
        second = refund_create(client=order.payment_event.client, payment_order_id=order.id, amount=200,
                               reason="", actor="t")
        Refund.objects.filter(pk=second.pk).update(state=RefundState.DEAD_LETTER, attempts=F("attempts") + 6)
    loopback.post(f"{sandbox}/v1/refunds", auth=("sk_test_sandbox", ""), timeout=5,
                  headers={"Idempotency-Key": "made-at-the-psp"},
                  data={"payment_intent": order.psp_reference, "amount": 200,
                     "metadata[refund_id]": second.id}).raise_for_status()
    assert refund_replay_dead_letter(refund_id=second.id, operator="alice", reason="ticket 12") == "succeeded"
    money = sandbox_money(sandbox)
    assert sorted(r["amount"] for r in money["refunds"]) == [200, 300]
    assert wallet_selectors.wallet_balance(owner_id=order.seller_id, currency="usd") == 500
    assert list(second.transitions.values_list("to_state", "actor")) == [
        ("pending", "t"), ("pending", "operator:alice"), ("succeeded", "operator:alice")]
    assert_audit_clean()


@pytest.mark.django_db
def test_the_replay_action_is_offered_to_payment_operators_only(admin_client, client, django_user_model):
    order = PaymentOrderFactory(state=PaymentOrderState.SUCCEEDED, psp_reference="pi_1")
    refund = refund_create(client=order.payment_event.client, payment_order_id=order.id, amount=100, reason="",
                           actor="t")
    Refund.objects.filter(pk=refund.pk).update(state=RefundState.DEAD_LETTER)
    page = admin_client.get("/admin/payments/refund/")
    assert page.status_code == 200 and b"replay_dead_letter" in page.content
    asked = admin_client.post("/admin/payments/refund/", {"action": "replay_dead_letter",
                                                          "_selected_action": [refund.pk]})
    assert asked.status_code == 200 and b"reason" in asked.content  # asks why before anything happens
    viewer = django_user_model.objects.create_user("viewer", password="x" * 16, is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_refund"))
    client.force_login(viewer)
    assert b"replay_dead_letter" not in client.get("/admin/payments/refund/").content
