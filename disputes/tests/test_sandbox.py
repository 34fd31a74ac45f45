"""End to end through the PSP sandbox, its webhooks and a real worker: a charge of ``pm_card_createDispute``
is disputed and won; a dispute opened with ``POST /_sandbox/disputes`` is accepted (lost); Stripe's shapes."""
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from conftest import wait_for
from core.tests import loopback
from disputes.models import Dispute, DisputeState
from payments.models import PaymentOrder
from payments.services.postings import commission_for
from payouts.tests.helpers import PSP_AUTH, onboard, sandbox_config
from reconciliation.models import Break
from reconciliation.selectors import settlement_lines_with_match
from reconciliation.services import reconciliation_run, settlement_file_import

from .helpers import payable, wallet

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


def checkout(api, seller, amount, payment_method):
    body = {"buyer": {"reference": "buyer-1"}, "payment_method": payment_method,
            "orders": [{"seller": seller, "amount": amount, "currency": "usd"}]}
    response = api.post("/api/v1/checkouts", json=body, headers={"Idempotency-Key": f"co-{seller}-{payment_method}"})
    assert response.status_code == 201, response.text
    event = response.json()["id"]
    done = wait_for(lambda: (b := api.get(f"/api/v1/checkouts/{event}").json())["state"] != "processing" and b,
                    message="the checkout")
    assert done["state"] == "succeeded", done
    return PaymentOrder.objects.get(pk=done["orders"][0]["id"])


def wait_dispute(state, **lookup):
    return wait_for(lambda: (d := Dispute.objects.filter(**lookup).first()) is not None and d.state == state and d,
                    message=f"dispute {lookup} {state}")


def test_the_dispute_test_card_is_disputed_then_won(api, sandbox, live_server, capsys, tmp_path):
    sandbox_config(sandbox, webhook_url=f"{live_server.url}/webhooks/psp", dispute_delay_s=0.5)
    seller = onboard(api)
    order = checkout(api, seller, 10_000, "pm_card_createDispute")
    share = 10_000 - commission_for(10_000)
    dispute = wait_dispute(DisputeState.NEEDS_RESPONSE, payment_order=order)
    assert dispute.booked and dispute.fee == 1500 and dispute.psp_dispute_id.startswith("dp_")
    assert payable(seller) == wallet(seller) == share - 11_500
    psp = loopback.get(f"{sandbox}/v1/disputes/{dispute.psp_dispute_id}", headers=PSP_AUTH).json()
    assert psp["object"] == "dispute" and psp["payment_intent"] == order.psp_reference
    assert psp["balance_transactions"][0]["fee"] == 1500 and psp["evidence_details"]["due_by"]
    assert loopback.get(f"{sandbox}/v1/charges/{psp['charge']}", headers=PSP_AUTH).json()["disputed"] is True
    submitted = loopback.post(f"{sandbox}/v1/disputes/{dispute.psp_dispute_id}", headers=PSP_AUTH,
                              data={"evidence[uncategorized_text]": "delivered, signed for", "submit": "true"})
    assert submitted.status_code == 200 and submitted.json()["status"] == "under_review"
    wait_dispute(DisputeState.UNDER_REVIEW, pk=dispute.pk)
    outcome = loopback.post(f"{sandbox}/_sandbox/disputes/{dispute.psp_dispute_id}/outcome", json={"outcome": "won"})
    assert outcome.status_code == 200, outcome.text
    won = wait_dispute(DisputeState.WON, pk=dispute.pk)
    assert won.reinstated_at is not None
    assert payable(seller) == wallet(seller) == share
    # The day's settlement report carries the dispute's withdrawal and reinstatement: both match the dispute.
    day = timezone.now().date()
    files = loopback.post(f"{sandbox}/_sandbox/settlements", json={"date": day.isoformat(),
                                                                 "directory": str(tmp_path)}).json()
    settlement_file_import(path=Path(files["settlement_report"]), actor="test")
    reconciliation_run(day=day, actor="test")
    lines = {(line.record_type, line.match_state, line.matched_object_id or "") for line in
             settlement_lines_with_match() if line.record_type in ("chargeback", "chargeback_reversal")}
    assert lines == {("chargeback", "matched", dispute.id), ("chargeback_reversal", "matched", dispute.id)}
    assert not Break.objects.filter(object_kind="dispute").exists()
    assert payable(seller) == wallet(seller) == share
    call_command("audit_money")
    assert "all invariants hold" in capsys.readouterr().out


def test_a_dispute_opened_by_hand_and_accepted_is_lost(api, sandbox, live_server):
    sandbox_config(sandbox, webhook_url=f"{live_server.url}/webhooks/psp")
    seller = onboard(api)
    order = checkout(api, seller, 8_000, "pm_card_visa")
    opened = loopback.post(f"{sandbox}/_sandbox/disputes", json={"payment_intent": order.psp_reference,
                                                                 "amount": 3_000, "reason": "product_not_received"})
    assert opened.status_code == 200, opened.text
    dispute_id = opened.json()["id"]
    again = loopback.post(f"{sandbox}/_sandbox/disputes", json={"payment_intent": order.psp_reference})
    assert again.status_code == 400 and again.json()["error"]["code"] == "charge_already_disputed"
    wait_dispute(DisputeState.NEEDS_RESPONSE, psp_dispute_id=dispute_id)
    # A disputed charge cannot be refunded as well (Stripe's charge_disputed): the seller is not debited twice.
    refund = api.post(f"/api/v1/payment-orders/{order.id}/refunds", json={"amount": 1_000},
                      headers={"Idempotency-Key": f"rf-{order.id}"})
    assert refund.status_code < 300, refund.text
    refused = wait_for(lambda: (r := api.get(f"/api/v1/refunds/{refund.json()['id']}").json())["state"] != "pending"
                       and r, message="the refund's answer")
    assert (refused["state"], refused["failure_code"]) == ("failed", "charge_disputed")
    closed = loopback.post(f"{sandbox}/v1/disputes/{dispute_id}/close", headers=PSP_AUTH)
    assert closed.status_code == 200 and closed.json()["status"] == "lost"
    lost = wait_dispute(DisputeState.LOST, psp_dispute_id=dispute_id)
    assert lost.amount == 3_000 and lost.reason == "product_not_received" and lost.reinstated_at is None
    assert payable(seller) == 8_000 - commission_for(8_000) - 4_500
    late = loopback.post(f"{sandbox}/_sandbox/disputes/{dispute_id}/outcome", json={"outcome": "won"})
    assert late.status_code == 400


def test_the_demo_opens_a_dispute_and_wins_it(api, sandbox, live_server):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    from demo_disputes import dispute_demo

    sandbox_config(sandbox, webhook_url=f"{live_server.url}/webhooks/psp", dispute_delay_s=0.5)
    won = dispute_demo(api, sandbox, run="t1")
    assert won["state"] == "won" and won["reinstated"] and won["fee"] == 1500
