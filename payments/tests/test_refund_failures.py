"""A refund the PSP fails (the refund object comes back ``failed``, in the create answer or later
through ``refund.updated``/``refund.failed``): its reservation on the order is released, nothing
is posted, the refund ends ``failed`` with the PSP's code, and the amount can be refunded again."""
from datetime import timedelta

import pytest
from django.utils import timezone

from conftest import wait_for
from core.tests import loopback
from ledger import accounts
from ledger import selectors as ledger_selectors
from ledger.models import LedgerTransaction
from payments import services
from payments.exceptions import RefundTooLarge
from payments.models import PaymentOrderState, Refund, RefundState
from payments.psp.base import PaymentResult, PaymentStatus, RefundResult
from payments.services import payment_order_apply_result, refund_apply_result, refund_create, refund_posting_key
from payments.tests.factories import PaymentOrderFactory
from payments.tests.test_checkout_flow import assert_audit_clean
from payments.tests.test_psp_faults import one_order, wait_state
from wallet import selectors as wallet_selectors
from wallet.models import WalletMovement


@pytest.fixture
def captured():
    """A succeeded order of 1000 usd, captured and posted (the seller's wallet holds 1000)."""
    order = PaymentOrderFactory(state=PaymentOrderState.EXECUTING, amount=1000, psp_reference="pi_refund_fail")
    payment_order_apply_result(payment_order_id=order.id, actor="test", result=PaymentResult(
        status=PaymentStatus.SUCCEEDED, psp_reference="pi_refund_fail", amount=1000, currency="usd"))
    order.refresh_from_db()
    return order


def seller_money(order) -> tuple[int, int]:
    return (wallet_selectors.wallet_balance(owner_id=order.seller_id, currency="usd"),
            ledger_selectors.account_balance(code=accounts.seller_payable(order.seller_id), currency="usd"))


def refund(order, amount):
    return refund_create(client=order.payment_event.client, payment_order_id=order.id, amount=amount,
                         reason="returned", actor="test")


@pytest.mark.django_db
def test_failed_refund_releases_its_reservation_and_posts_nothing(captured):
    order = captured
    before = seller_money(order)
    postings, movements = LedgerTransaction.objects.count(), WalletMovement.objects.count()

    first = refund(order, 1000)
    order.refresh_from_db()
    assert order.amount_refunded == 1000  # reserved while the PSP is asked
    with pytest.raises(RefundTooLarge, match="already been fully refunded"):
        refund(order, 1)

    state = refund_apply_result(refund_id=first.id, actor="webhook:evt_1", result=RefundResult(
        status=PaymentStatus.FAILED, psp_reference="re_failed", amount=1000, currency="usd",
        failure_code="expired_or_canceled_card"))

    assert state == RefundState.FAILED
    first.refresh_from_db()
    assert (first.state, first.failure_code) == (RefundState.FAILED, "expired_or_canceled_card")
    assert first.completed_at is not None
    assert list(first.transitions.values_list("to_state", flat=True)) == ["pending", "failed"]
    order.refresh_from_db()
    assert order.amount_refunded == 0  # released
    assert order.state == PaymentOrderState.SUCCEEDED
    assert seller_money(order) == before == (1000, -1000)
    assert LedgerTransaction.objects.count() == postings
    assert WalletMovement.objects.count() == movements
    assert not LedgerTransaction.objects.filter(idempotency_key=refund_posting_key(first.id)).exists()

    # The answer again (a duplicated or late webhook, a success after the failure): nothing moves.
    for status in (PaymentStatus.FAILED, PaymentStatus.SUCCEEDED):
        assert refund_apply_result(refund_id=first.id, actor="webhook:evt_2", result=RefundResult(
            status=status, psp_reference="re_failed", amount=1000, currency="usd")) == RefundState.FAILED
    order.refresh_from_db()
    assert order.amount_refunded == 0 and seller_money(order) == before

    # The same amount can be refunded again, and this time it goes through.
    second = refund(order, 1000)
    order.refresh_from_db()
    assert order.amount_refunded == 1000
    assert refund_apply_result(refund_id=second.id, actor="test", result=RefundResult(
        status=PaymentStatus.SUCCEEDED, psp_reference="re_ok", amount=1000, currency="usd")) == RefundState.SUCCEEDED
    order.refresh_from_db()
    assert order.amount_refunded == 1000
    assert seller_money(order) == (0, 0)
    assert Refund.objects.filter(payment_order=order).count() == 2
    assert_audit_clean()


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_refund_failed_by_the_psp_end_to_end(api, sandbox, live_server):
    """Stripe's refundFail card through the API, the worker and the sandbox: the refund is created
    pending, then the PSP fails it (``refund.updated``/``refund.failed`` webhooks)."""
    from conftest import wait_for
    from payments.tests.test_checkout_flow import sandbox_money
    from payments.tests.test_psp_faults import configure, one_order, wait_state

    configure(sandbox, webhook_url=f"{live_server.url}/webhooks/psp", refund_failure_delay_s=0.5)
    order = wait_state(one_order(api, payment_method="pm_card_refundFail", amount=1000), "succeeded", "failed")
    assert order.state == PaymentOrderState.SUCCEEDED  # the charge itself succeeds
    before = seller_money(order)
    assert before == (1000, -1000)
    url = f"/api/v1/payment-orders/{order.id}/refunds"

    created = api.post(url, json={"amount": 1000, "reason": "returned"}, headers={"Idempotency-Key": "rf-1"})
    assert created.status_code == 201, created.text
    first = Refund.objects.get(pk=created.json()["id"])
    wait_for(lambda: Refund.objects.filter(pk=first.pk, state="failed").exists(), timeout=20,
             message="the PSP to fail the refund")

    first.refresh_from_db()
    assert first.failure_code == "expired_or_canceled_card"
    assert list(first.transitions.values_list("to_state", flat=True)) == ["pending", "failed"]
    assert first.transitions.get(to_state="failed").actor.startswith("webhook:")
    assert api.get(f"/api/v1/refunds/{first.id}").json()["state"] == "failed"
    order.refresh_from_db()
    assert order.amount_refunded == 0
    assert seller_money(order) == before
    assert not LedgerTransaction.objects.filter(idempotency_key=refund_posting_key(first.id)).exists()
    money = sandbox_money(sandbox)
    assert money["totals"]["usd"]["refunded"] == 0
    assert [r["status"] for r in money["refunds"]] == ["failed"]

    # The reservation is released: the same amount can be asked again (this card fails it again).
    again = api.post(url, json={"amount": 1000, "reason": "returned"}, headers={"Idempotency-Key": "rf-2"})
    assert again.status_code == 201, again.text
    second = again.json()["id"]
    wait_for(lambda: Refund.objects.filter(pk=second, state="failed").exists(), timeout=20,
             message="the second refund to fail")
    order.refresh_from_db()
    assert order.amount_refunded == 0 and seller_money(order) == before
    assert_audit_clean()


@pytest.mark.django_db(transaction=True)
def test_a_refund_left_pending_is_resolved_without_its_webhook(api, sandbox):
    """No webhook arrives (none is configured): the sweeper sends the refund again, the PSP replays
    its first answer ("pending") for the key, and the executor then asks for the refund itself."""
    order = wait_state(one_order(api, payment_method="pm_card_refundFail", amount=1000), "succeeded")
    response = api.post(f"/api/v1/payment-orders/{order.id}/refunds", json={"amount": 1000},
                        headers={"Idempotency-Key": "pending-then-failed"})
    refund = Refund.objects.get(pk=response.json()["id"])
    wait_for(lambda: Refund.objects.get(pk=refund.pk).attempts == 1, message="the first attempt")
    assert Refund.objects.get(pk=refund.pk).state == RefundState.PENDING  # the PSP said pending
    wait_for(lambda: httpx_refund_status(sandbox, refund) == "failed", message="the PSP to fail the refund")

    Refund.objects.filter(pk=refund.pk).update(next_action_at=timezone.now() - timedelta(seconds=1))
    assert services.payment_orders_redrive_stalled() == 1
    wait_for(lambda: Refund.objects.get(pk=refund.pk).state == RefundState.FAILED, message="the refund to fail")
    refund.refresh_from_db()
    order.refresh_from_db()
    assert refund.failure_code == "expired_or_canceled_card" and order.amount_refunded == 0
    assert seller_money(order) == (1000, -1000)
    assert_audit_clean()


def httpx_refund_status(sandbox_url, refund) -> str:
    refund.refresh_from_db()
    if not refund.psp_reference:
        found = loopback.get(f"{sandbox_url}/v1/refunds", params={"payment_intent": refund.payment_order.psp_reference},
                             auth=("sk_test_sandbox", ""), timeout=5).json()["data"]
        return found[0]["status"] if found else ""
    return loopback.get(f"{sandbox_url}/v1/refunds/{refund.psp_reference}", auth=("sk_test_sandbox", ""),
                        timeout=5).json()["status"]
