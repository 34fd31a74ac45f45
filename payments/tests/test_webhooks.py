"""Signed webhooks: forged, stale and replayed deliveries; duplicates and out-of-order events."""
import time

import pytest

from ledger import selectors as ledger_selectors
from payments.models import PaymentOrder, PaymentOrderState, WebhookEvent
from payments.services import capture_posting_key, webhook_event_process
from payments.tests.factories import PaymentOrderFactory
from payments.tests.webhook_signing import deliver, payment_intent_event, signed
from wallet import selectors as wallet_selectors

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def order():
    return PaymentOrderFactory(state=PaymentOrderState.EXECUTING, amount=4200)


def test_forged_signature_is_refused_and_nothing_is_stored(order):
    payload, signature = signed(payment_intent_event("evt_forged", order, "succeeded"), secret="whsec_attacker")
    response = deliver(payload, signature)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_signature"
    assert not WebhookEvent.objects.exists()
    order.refresh_from_db()
    assert order.state == PaymentOrderState.EXECUTING


@pytest.mark.parametrize("signature", [None, "", "t=abc,v1=def", "garbage"])
def test_missing_or_malformed_signature_is_refused(order, signature):
    payload, _ = signed(payment_intent_event("evt_x", order, "succeeded"))
    assert deliver(payload, signature).status_code == 400
    assert not WebhookEvent.objects.exists()


def test_stale_timestamp_is_refused(order, settings):
    stale = int(time.time()) - settings.PSP_WEBHOOK_TOLERANCE_SECONDS - 60
    payload, signature = signed(payment_intent_event("evt_stale", order, "succeeded"), timestamp=stale)
    assert deliver(payload, signature).status_code == 400
    assert not WebhookEvent.objects.exists()


def test_tampered_payload_is_refused(order):
    payload, signature = signed(payment_intent_event("evt_t", order, "succeeded"))
    assert deliver(payload.replace(b"4200", b"9999"), signature).status_code == 400


def test_replayed_delivery_is_stored_once_and_moves_money_once(order):
    payload, signature = signed(payment_intent_event("evt_once", order, "succeeded"))
    first, second = deliver(payload, signature), deliver(payload, signature)
    assert first.status_code == second.status_code == 200
    assert first.json()["duplicate"] is False and second.json()["duplicate"] is True
    event = WebhookEvent.objects.get()
    assert event.deliveries == 2 and event.status == WebhookEvent.Status.PROCESSED
    order.refresh_from_db()
    assert order.state == PaymentOrderState.SUCCEEDED
    assert order.transitions.last().actor == "webhook:evt_once"
    assert wallet_selectors.wallet_balance(owner_id=order.seller_id, currency="usd") == 4200
    assert ledger_selectors.postings_count_by_key(keys=[capture_posting_key(order.id)]) == {
        capture_posting_key(order.id): 1}


def test_duplicates_under_other_event_ids_move_money_once(order):
    for event_id in ("evt_a", "evt_b", "evt_c"):
        assert deliver(*signed(payment_intent_event(event_id, order, "succeeded"))).status_code == 200
    assert WebhookEvent.objects.count() == 3
    assert wallet_selectors.wallet_balance(owner_id=order.seller_id, currency="usd") == 4200


def test_late_processing_after_succeeded_changes_nothing(order):
    deliver(*signed(payment_intent_event("evt_2", order, "succeeded")))
    deliver(*signed(payment_intent_event("evt_1", order, "processing")))  # sent first, arrives last
    order.refresh_from_db()
    assert order.state == PaymentOrderState.SUCCEEDED
    assert list(order.transitions.values_list("to_state", flat=True)) == ["succeeded"]


def test_processing_then_failed_in_order(order):
    deliver(*signed(payment_intent_event("evt_1", order, "processing")))
    order.refresh_from_db()
    assert order.state == PaymentOrderState.PENDING
    deliver(*signed(payment_intent_event("evt_2", order, "requires_payment_method")))
    order.refresh_from_db()
    assert order.state == PaymentOrderState.FAILED and order.failure_code == "generic_decline"
    assert wallet_selectors.wallet_balance(owner_id=order.seller_id, currency="usd") == 0


def test_event_for_an_unknown_order_is_ignored():
    ghost = PaymentOrderFactory.build(id="ord_ghost")
    deliver(*signed(payment_intent_event("evt_ghost", ghost, "succeeded", pi_id="pi_ghost")))
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.IGNORED


def test_processing_failure_is_kept_and_can_be_rerun(order):
    # The PSP claims another amount than we asked for: refused, kept as failed.
    event = payment_intent_event("evt_bad", order, "succeeded")
    event["data"]["object"]["amount"] = 1
    deliver(*signed(event))
    stored = WebhookEvent.objects.get()
    assert stored.status == WebhookEvent.Status.FAILED and "expected 4200" in stored.last_error
    order.refresh_from_db()
    assert order.state == PaymentOrderState.EXECUTING
    assert webhook_event_process(event_id="evt_bad") == WebhookEvent.Status.FAILED
    assert WebhookEvent.objects.get().attempts == 2


def test_operator_reruns_a_failed_event_from_the_admin(order, admin_client):
    payload, signature = signed(payment_intent_event("evt_rerun", order, "succeeded"))
    PaymentOrder.objects.filter(pk=order.pk).update(amount=1)  # make processing fail once
    deliver(payload, signature)
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.FAILED
    PaymentOrder.objects.filter(pk=order.pk).update(amount=4200)
    asked = admin_client.post("/admin/payments/webhookevent/", {"action": "reprocess",
                                                               "_selected_action": ["evt_rerun"]})
    assert asked.status_code == 200 and WebhookEvent.objects.get().status == WebhookEvent.Status.FAILED  # asks first
    response = admin_client.post("/admin/payments/webhookevent/", {"action": "reprocess", "confirmed": "1",
                                                                  "reason": "amount fixed (INC-7)",
                                                                  "_selected_action": ["evt_rerun"]})
    assert response.status_code == 302
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.PROCESSED
    order.refresh_from_db()
    assert order.state == PaymentOrderState.SUCCEEDED


def test_an_event_we_cannot_read_is_kept_as_failed(order):
    event = payment_intent_event("evt_odd", order, "succeeded")
    del event["data"]["object"]["amount"]
    response = deliver(*signed(event))
    assert response.status_code == 500  # the PSP delivers it again
    assert response.json()["error"]["code"] == "webhook_processing_failed"
    stored = WebhookEvent.objects.get()
    assert stored.status == WebhookEvent.Status.FAILED and "amount" in stored.last_error
