"""Disputes from the PSP's webhooks (Stripe's shape): signed events delivered to /webhooks/psp, stored in
payments' inbox and applied by disputes; duplicated and out-of-order; unknown charge; more than captured;
an order still being decided."""
import time
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from disputes.models import Dispute, DisputeProblem, DisputeState
from disputes.postings import reinstated_key, withdrawn_key
from disputes.services import dispute_webhooks_recover
from ledger import selectors as ledger_selectors
from payments.models import PaymentOrder, PaymentOrderState, WebhookEvent
from payments.services.postings import commission_for
from payments.tests.factories import PaymentOrderFactory
from payments.tests.webhook_signing import signed

from .helpers import captured_order, payable, wallet

pytestmark = pytest.mark.django_db


def dispute_object(status="needs_response", *, dispute_id="dp_1", amount=10_000, currency="usd", fee=1500,
                   pi="pi_test_1", won=False):
    withdrawal = {"id": "txn_w", "object": "balance_transaction", "amount": -amount, "fee": fee,
                  "net": -amount - fee, "currency": currency, "reporting_category": "dispute"}
    transactions = [withdrawal]
    if won:
        transactions.append({"id": "txn_r", "object": "balance_transaction", "amount": amount, "fee": -fee,
                             "net": amount + fee, "currency": currency, "reporting_category": "dispute_reversal"})
    return {"id": dispute_id, "object": "dispute", "amount": amount, "currency": currency, "charge": "ch_1",
            "payment_intent": pi, "reason": "fraudulent", "status": status, "balance_transactions": transactions,
            "evidence_details": {"due_by": int(time.time()) + 7 * 86_400, "has_evidence": False,
                                 "past_due": False, "submission_count": 0}}


def deliver(event_id, event_type, obj):
    event = {"id": event_id, "object": "event", "type": event_type, "created": int(time.time()),
             "data": {"object": obj}}
    payload, signature = signed(event)
    return Client().post("/webhooks/psp", payload, content_type="application/json",
                         HTTP_STRIPE_SIGNATURE=signature)


def booked(dispute):
    return ledger_selectors.postings_count_by_key(keys=[withdrawn_key(dispute.id), reinstated_key(dispute.id)])


def test_created_updated_closed_won():
    order = captured_order(10_000)
    share = 10_000 - commission_for(10_000)
    response = deliver("evt_1", "charge.dispute.created", dispute_object())
    assert response.status_code == 200 and response.json()["status"] == "processed"
    dispute = Dispute.objects.get()
    assert (dispute.state, dispute.psp_dispute_id, dispute.fee, dispute.reason) == (
        DisputeState.NEEDS_RESPONSE, "dp_1", 1500, "fraudulent")
    assert dispute.due_by is not None and dispute.payment_order_id == order.id
    assert payable(order.seller_id) == share - 11_500
    deliver("evt_2", "charge.dispute.updated", dispute_object("under_review"))
    deliver("evt_3", "charge.dispute.closed", dispute_object("won", won=True))
    dispute = Dispute.objects.get()
    assert dispute.state == DisputeState.WON and dispute.psp_status == "won"
    assert booked(dispute) == {withdrawn_key(dispute.id): 1, reinstated_key(dispute.id): 1}
    assert payable(order.seller_id) == wallet(order.seller_id) == share
    assert [t.actor for t in dispute.transitions.all()] == ["webhook:evt_1", "webhook:evt_2", "webhook:evt_3"]


def test_duplicated_and_out_of_order_webhooks_book_once():
    order = captured_order(10_000)
    share = 10_000 - commission_for(10_000)
    assert deliver("evt_3", "charge.dispute.closed", dispute_object("lost")).status_code == 200
    again = deliver("evt_3", "charge.dispute.closed", dispute_object("lost"))
    assert again.json()["duplicate"] is True
    deliver("evt_1", "charge.dispute.created", dispute_object())
    deliver("evt_w", "charge.dispute.funds_withdrawn", dispute_object())
    deliver("evt_2", "charge.dispute.updated", dispute_object("under_review"))
    dispute = Dispute.objects.get()
    assert dispute.state == DisputeState.LOST
    assert booked(dispute) == {withdrawn_key(dispute.id): 1}
    assert payable(order.seller_id) == wallet(order.seller_id) == share - 11_500
    assert WebhookEvent.objects.get(pk="evt_3").deliveries == 2


def test_a_dispute_on_an_unknown_charge_is_stored_for_the_operator_and_moves_no_money():
    response = deliver("evt_1", "charge.dispute.created", dispute_object(pi="pi_not_ours"))
    assert response.status_code == 200 and response.json()["status"] == "processed"
    dispute = Dispute.objects.get()
    assert dispute.problem == DisputeProblem.UNKNOWN_CHARGE and not dispute.booked
    assert WebhookEvent.objects.get(pk="evt_1").status == "processed"
    assert booked(dispute) == {}


def test_a_dispute_for_more_than_was_captured_is_kept_with_a_clear_reason():
    order = captured_order(5_000)
    response = deliver("evt_1", "charge.dispute.created", dispute_object(amount=9_000))
    assert response.status_code == 200
    dispute = Dispute.objects.get()
    assert dispute.problem == DisputeProblem.EXCEEDS_CAPTURED
    assert dispute.problem_detail.startswith(f"The dispute is for 9000 but order {order.id} has 5000 left")
    assert booked(dispute) == {}


def test_a_dispute_on_an_order_still_being_decided_is_sent_again_later():
    order = PaymentOrderFactory(state=PaymentOrderState.EXECUTING, psp_reference="pi_test_1", amount=10_000)
    response = deliver("evt_1", "charge.dispute.created", dispute_object())
    assert response.status_code == 500  # the PSP sends it again
    assert WebhookEvent.objects.get(pk="evt_1").status == "failed" and not Dispute.objects.exists()
    order.delete()
    captured_order(10_000)
    assert deliver("evt_1", "charge.dispute.created", dispute_object()).json()["status"] == "processed"
    assert Dispute.objects.get().booked


def test_an_inquiry_or_an_unreadable_dispute_is_ignored():
    assert deliver("evt_1", "charge.dispute.created",
                   dispute_object("warning_needs_response")).json()["status"] == "ignored"
    assert deliver("evt_2", "charge.dispute.created", {**dispute_object(), "amount": "lots"}).json()[
        "status"] == "ignored"
    assert not Dispute.objects.exists()


def test_unfinished_dispute_webhooks_are_run_again_by_the_recovery_round():
    PaymentOrderFactory(state=PaymentOrderState.UNKNOWN, psp_reference="pi_test_1", amount=10_000)
    assert deliver("evt_1", "charge.dispute.created", dispute_object()).status_code == 500
    WebhookEvent.objects.filter(pk="evt_1").update(received_at=timezone.now() - timedelta(minutes=5))
    assert dispute_webhooks_recover(older_than_seconds=60) == 1  # still undecided: failed again, nothing stored
    assert WebhookEvent.objects.get(pk="evt_1").status == "failed" and not Dispute.objects.exists()
    PaymentOrder.objects.all().delete()
    captured_order(10_000)
    assert dispute_webhooks_recover(older_than_seconds=60) == 1
    assert WebhookEvent.objects.get(pk="evt_1").status == "processed" and Dispute.objects.get().booked
    assert dispute_webhooks_recover(older_than_seconds=60) == 0
