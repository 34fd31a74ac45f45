"""A refund the PSP fails after it succeeded (Stripe's ``refund.failed`` after ``refund.succeeded``: the buyer's
bank sent the money back): the refund goes ``succeeded -> failed`` with an audit row naming the PSP's reason, its
posting is reversed once (``refund:<id>:failed``), the seller's wallet gets back what the refund took, and its
amount can be refunded again. Duplicated and out-of-order webhooks move money once."""
import pytest
from django.test import Client

from conftest import wait_for
from core.tests import loopback
from ledger import accounts
from ledger import selectors as ledger_selectors
from ledger.models import LedgerTransaction
from payments.models import PaymentOrderState, Refund, RefundState, WebhookEvent
from payments.psp.base import PaymentResult, PaymentStatus, RefundResult
from payments.services import payment_order_apply_result, refund_apply_result, refund_create, refund_posting_key
from payments.services.postings import refund_failed_posting_key
from payments.tests.factories import PaymentOrderFactory
from payments.tests.test_checkout_flow import assert_audit_clean
from payments.tests.test_psp_faults import configure, one_order, wait_state
from payments.tests.webhook_signing import signed
from wallet import selectors as wallet_selectors
from wallet.models import WalletMovement

# In the test's transaction: no refund task is enqueued (on commit) for the worker another test may have started.
pytestmark = pytest.mark.django_db


@pytest.fixture
def commission(settings):
    settings.PLATFORM_COMMISSION_BPS = 1000  # 10 %: the platform's cut is given back by a refund, and restored
    return settings


def captured(amount=1000, reference="pi_rf_late"):
    order = PaymentOrderFactory(state=PaymentOrderState.EXECUTING, amount=amount, psp_reference=reference)
    payment_order_apply_result(payment_order_id=order.id, actor="test", result=PaymentResult(
        status=PaymentStatus.SUCCEEDED, psp_reference=reference, amount=amount, currency="usd"))
    order.refresh_from_db()
    return order


def refund(order, amount):
    return refund_create(client=order.payment_event.client, payment_order_id=order.id, amount=amount,
                         reason="returned", actor="test")


def money(order) -> dict[str, int]:
    """The seller's wallet, and the ledger accounts a refund moves (as balances: debit positive)."""
    def account(code):
        return ledger_selectors.account_balance(code=code, currency="usd")

    return {"wallet": wallet_selectors.wallet_balance(owner_id=order.seller_id, currency="usd"),
            "payable": account(accounts.seller_payable(order.seller_id)),
            "receivable": account(accounts.PSP_RECEIVABLE), "commission": account(accounts.PLATFORM_COMMISSION)}


def refund_event(event_id, row, status, *, kind=None, reason="expired_or_canceled_card") -> dict:
    obj = {"id": f"re_{row.id}", "object": "refund", "amount": row.amount, "currency": row.currency,
           "status": status, "failure_reason": reason if status == "failed" else None,
           "metadata": {"refund_id": row.id, "payment_order_id": row.payment_order_id}}
    kind = kind or {"succeeded": "refund.updated", "failed": "refund.failed"}[status]
    return {"id": event_id, "object": "event", "type": kind, "created": 1, "data": {"object": obj}}


def deliver(event: dict):
    payload, signature = signed(event)
    response = Client().post("/webhooks/psp", payload, content_type="application/json",
                             HTTP_STRIPE_SIGNATURE=signature)
    assert response.status_code == 200, response.content
    return response


def test_refund_failed_webhook_after_succeeded_reverses_the_refund_once(commission):
    order = captured(1000)
    before = money(order)
    assert before == {"wallet": 900, "payable": -900, "receivable": 1000, "commission": -100}
    row = refund(order, 400)
    deliver(refund_event("evt_ok", row, "succeeded"))
    row.refresh_from_db()
    assert row.state == RefundState.SUCCEEDED
    refunded = money(order)
    assert refunded == {"wallet": 540, "payable": -540, "receivable": 600, "commission": -60}

    deliver(refund_event("evt_failed", row, "failed", reason="lost_or_stolen_card"))

    row.refresh_from_db()
    order.refresh_from_db()
    assert (row.state, row.failure_code) == (RefundState.FAILED, "lost_or_stolen_card")
    assert row.reversed_at is not None and row.completed_at is not None
    assert money(order) == before  # the seller, the PSP's balance and the platform's cut as before the refund
    assert order.amount_refunded == 0
    audit = row.transitions.order_by("id").last()
    assert (audit.from_state, audit.to_state, audit.actor) == ("succeeded", "failed", "webhook:evt_failed")
    assert "lost_or_stolen_card" in audit.reason
    # The reversal is the exact opposite of the refund's posting, under its own key; the wallet mirrors it.
    entries = ledger_selectors.entries_by_key(keys=[refund_posting_key(row.id), refund_failed_posting_key(row.id)])
    assert sorted(entries[refund_failed_posting_key(row.id)]) == sorted(
        (code, currency, -amount) for code, currency, amount in entries[refund_posting_key(row.id)])
    moved = wallet_selectors.movement_amounts_by_key(keys=[refund_posting_key(row.id),
                                                           refund_failed_posting_key(row.id)])
    assert moved[refund_failed_posting_key(row.id)] == (order.seller_id, 360) == (
        order.seller_id, -moved[refund_posting_key(row.id)][1])
    postings, movements = LedgerTransaction.objects.count(), WalletMovement.objects.count()

    # Duplicated (same event again, Stripe's refund.updated of the same failure under another id) and out of
    # order (the success's refund.updated delivered late): nothing more moves, the refund stays failed.
    deliver(refund_event("evt_failed", row, "failed", reason="lost_or_stolen_card"))
    deliver(refund_event("evt_failed_upd", row, "failed", kind="refund.updated", reason="lost_or_stolen_card"))
    deliver(refund_event("evt_ok_late", row, "succeeded"))
    deliver(refund_event("evt_ok", row, "succeeded"))
    row.refresh_from_db()
    assert row.state == RefundState.FAILED
    assert row.transitions.filter(to_state="failed").count() == 1
    assert (LedgerTransaction.objects.count(), WalletMovement.objects.count()) == (postings, movements)
    assert money(order) == before
    assert WebhookEvent.objects.get(pk="evt_failed").deliveries == 2
    assert_audit_clean()


def test_refund_failed_before_its_success_was_seen_moves_nothing(commission):
    """Out of order the other way: ``refund.failed`` arrives while our refund is still pending (the success's
    event is late). The refund fails as a plain failure (nothing was booked); the late success changes nothing."""
    order = captured(1000)
    before = money(order)
    row = refund(order, 400)
    deliver(refund_event("evt_failed", row, "failed"))
    deliver(refund_event("evt_ok", row, "succeeded"))
    row.refresh_from_db()
    order.refresh_from_db()
    assert (row.state, row.reversed_at, order.amount_refunded) == (RefundState.FAILED, None, 0)
    assert money(order) == before
    assert not LedgerTransaction.objects.filter(idempotency_key__startswith=f"refund:{row.id}").exists()
    assert_audit_clean()


def test_the_amount_is_refunded_again_after_the_failure_and_the_cut_adds_up(commission):
    """After a failure the amount can be refunded again, and the platform's cut given back by the refunds that
    stand adds up to all of it over a full refund: a 5, a 5 (its cut rounds up to 1), the first fails, then the
    995 left. Counting only the refunds that stand, the last would give back 100 and the platform 101 in all."""
    order = captured(1000)
    first, second = refund(order, 5), refund(order, 5)
    for row in (first, second):
        assert refund_apply_result(refund_id=row.id, actor="test", result=RefundResult(
            status=PaymentStatus.SUCCEEDED, psp_reference=f"re_{row.id}", amount=5, currency="usd")) == "succeeded"
    assert refund_apply_result(refund_id=first.id, actor="webhook:evt_1", result=RefundResult(
        status=PaymentStatus.FAILED, psp_reference=f"re_{first.id}", amount=5, currency="usd",
        failure_code="expired_or_canceled_card")) == RefundState.FAILED
    order.refresh_from_db()
    assert order.amount_refunded == 5

    rest = refund(order, 995)
    assert refund_apply_result(refund_id=rest.id, actor="test", result=RefundResult(
        status=PaymentStatus.SUCCEEDED, psp_reference=f"re_{rest.id}", amount=995, currency="usd")) == "succeeded"
    order.refresh_from_db()
    assert order.amount_refunded == 1000
    assert money(order) == {"wallet": 0, "payable": 0, "receivable": 0, "commission": 0}
    assert_audit_clean()


def test_a_failure_that_does_not_match_the_refund_is_not_applied():
    """Another PSP refund, or another amount, is not this refund's failure: nothing moves (logged)."""
    order = captured(1000)
    row = refund(order, 400)
    refund_apply_result(refund_id=row.id, actor="test", result=RefundResult(
        status=PaymentStatus.SUCCEEDED, psp_reference="re_ours", amount=400, currency="usd"))
    refunded = money(order)
    for reference, amount in (("re_other", 400), ("re_ours", 300), ("", 400)):  # "": a refused request's
        assert refund_apply_result(refund_id=row.id, actor="test", result=RefundResult(
            status=PaymentStatus.FAILED, psp_reference=reference, amount=amount, currency="usd")) == "succeeded"
    assert money(order) == refunded
    assert Refund.objects.get(pk=row.pk).state == RefundState.SUCCEEDED
    assert_audit_clean()


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_the_psp_failing_a_paid_refund_reaches_us_by_webhook(api, sandbox, live_server):
    """The sandbox fails a succeeded refund (``POST /_sandbox/refunds/{id}/fail``) and sends ``refund.updated`` and
    ``refund.failed`` to our endpoint: the refund is reversed once; the event sent again moves nothing."""
    configure(sandbox, webhook_url=f"{live_server.url}/webhooks/psp")
    order = wait_state(one_order(api, amount=1000), "succeeded")
    created = api.post(f"/api/v1/payment-orders/{order.id}/refunds", json={"amount": 1000},
                       headers={"Idempotency-Key": "rf-webhook"})
    assert created.status_code == 201, created.text
    row = Refund.objects.get(pk=created.json()["id"])
    wait_for(lambda: Refund.objects.get(pk=row.pk).state == RefundState.SUCCEEDED, message="the refund")
    row.refresh_from_db()
    assert money(order) == {"wallet": 0, "payable": 0, "receivable": 0, "commission": 0}

    loopback.post(f"{sandbox}/_sandbox/refunds/{row.psp_reference}/fail",
                  json={"failure_reason": "lost_or_stolen_card"}, timeout=5).raise_for_status()

    def processed() -> set[str]:
        return set(WebhookEvent.objects.filter(object_id=row.psp_reference, status=WebhookEvent.Status.PROCESSED,
                                               type__in=["refund.updated", "refund.failed"]).values_list("type",
                                                                                                          flat=True))
    wait_for(lambda: Refund.objects.get(pk=row.pk).state == RefundState.FAILED, message="the refund to fail")
    wait_for(lambda: processed() == {"refund.updated", "refund.failed"}, message="both events processed")
    row.refresh_from_db()
    order.refresh_from_db()
    assert (row.failure_code, order.amount_refunded) == ("lost_or_stolen_card", 0)
    assert row.transitions.get(from_state="succeeded", to_state="failed").actor.startswith("webhook:evt_")
    assert money(order) == {"wallet": 1000, "payable": -1000, "receivable": 1000, "commission": 0}
    assert api.get(f"/api/v1/refunds/{row.id}").json()["state"] == "failed"
    movements = WalletMovement.objects.count()

    sent = loopback.get(f"{sandbox}/_sandbox/events", params={"type": "refund.failed"}, timeout=5).json()["events"]
    loopback.post(f"{sandbox}/_sandbox/events/{sent[0]['id']}/resend", timeout=5).raise_for_status()
    wait_for(lambda: WebhookEvent.objects.get(pk=sent[0]["id"]).deliveries == 2, message="the resent event")
    assert WalletMovement.objects.count() == movements
    assert money(order) == {"wallet": 1000, "payable": -1000, "receivable": 1000, "commission": 0}
    assert_audit_clean()


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_an_operator_asks_the_psp_and_a_refund_failed_there_is_reversed(api, sandbox):
    """The recovery path from the refunds admin: no webhook came (none configured); the operator's question to the
    PSP finds the refund failed and reverses it, written to the admin log with the reason."""
    from django.contrib.admin.models import LogEntry

    from payments.tests.test_admin_actions import _ask, _login

    order = wait_state(one_order(api, amount=1000), "succeeded")
    created = api.post(f"/api/v1/payment-orders/{order.id}/refunds", json={"amount": 250},
                       headers={"Idempotency-Key": "rf-ask"})
    row = Refund.objects.get(pk=created.json()["id"])
    wait_for(lambda: Refund.objects.get(pk=row.pk).state == RefundState.SUCCEEDED, message="the refund")
    row.refresh_from_db()
    loopback.post(f"{sandbox}/_sandbox/refunds/{row.psp_reference}/fail", json={}, timeout=5).raise_for_status()
    assert Refund.objects.get(pk=row.pk).state == RefundState.SUCCEEDED  # we have not heard
    operator = _login("pat", "Payment operators")

    page = _ask(operator, "/admin/payments/refund/", "ask_psp", [row.pk])
    assert page.status_code == 200 and b"Ask the PSP about succeeded refunds" in page.content
    done = _ask(operator, "/admin/payments/refund/", "ask_psp", [row.pk], confirmed="1", reason="settlement break")
    assert done.status_code == 302
    row.refresh_from_db()
    assert (row.state, row.failure_code) == (RefundState.FAILED, "expired_or_canceled_card")
    assert row.transitions.get(from_state="succeeded").actor == "operator:pat"
    assert "Reason: settlement break" in LogEntry.objects.get(object_id=row.pk).change_message
    assert money(order) == {"wallet": 1000, "payable": -1000, "receivable": 1000, "commission": 0}
    assert_audit_clean()
