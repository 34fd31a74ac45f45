"""A payout the PSP reports failed after it reported it paid (a bank sends the money back days later, as Stripe
does): the money goes back to the seller, the transfer is taken back, and the books, audit_money and
reconciliation agree, whatever order and however many times the webhooks arrive."""
from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from conftest import wait_for
from core.tests import loopback
from ledger import accounts
from ledger import selectors as ledger_selectors
from payouts.models import Payout, PayoutState, PayoutTransition
from payouts.psp import get_payout_provider
from payouts.services import payout_apply_result, payout_webhook_process, payout_webhook_receive, payouts_run
from payouts.tests.helpers import (
    age_holds,
    capture,
    connect_webhooks,
    onboard,
    payout_account,
    psp_payouts,
    psp_transfers,
    wait_state,
)
from reconciliation.models import Break
from reconciliation.services import reconciliation_run, settlement_file_import
from reconciliation.tests.test_money_out import psp_holds, receivable, settle
from wallet import selectors as wallet_selectors

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def payable(seller, currency="usd"):
    return -ledger_selectors.account_balance(code=accounts.seller_payable(seller), currency=currency)


def available(seller, currency="usd"):
    return {b.currency: b.available for b in wallet_selectors.wallet_buckets(owner_id=seller)}.get(currency, 0)


def postings(payout_id):
    keys = [f"payout:{payout_id}:{what}" for what in ("created", "paid", "bank_returned", "returned")]
    counts = ledger_selectors.postings_count_by_key(keys=keys)
    return {key.rsplit(":", 1)[1]: counts.get(key, 0) for key in keys}


def bank_returns(sandbox, psp_payout_id, code="account_closed"):
    response = loopback.post(f"{sandbox}/_sandbox/payouts/{psp_payout_id}/return", json={"failure_code": code},
                             timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "failed"


def paid_out(api, settings, amount=3000):
    seller = onboard(api)
    account = payout_account(api, seller)
    capture(api, seller, amount)
    age_holds(seller)
    payout = payouts_run(payout_date=timezone.now().date(), actor="test").items.get().payout
    return seller, account, payout


def test_a_paid_payout_the_bank_sends_back_gives_the_money_back(api, sandbox, live_server, settings, tmp_path):
    connect_webhooks(sandbox, live_server, settings)
    seller, account, payout = paid_out(api, settings)
    paid = wait_state(payout.id, PayoutState.PAID)
    assert payable(seller) == 0 and receivable() == 3000 - 3000  # the capture, less the payout paid

    bank_returns(sandbox, paid.psp_payout_id)
    returned = wait_state(payout.id, PayoutState.FAILED)
    assert (returned.failure_code, returned.returned_at is not None) == ("account_closed", True)
    steps = list(PayoutTransition.objects.filter(payout=payout).values_list("from_state", "to_state", "actor"))
    assert [(f, t) for f, t, _ in steps] == [("", "pending"), ("pending", "in_transit"), ("in_transit", "paid"),
                                             ("paid", "failed")]
    assert steps[-1][2].startswith("webhook:evt_")
    assert postings(payout.id) == {"created": 1, "paid": 1, "bank_returned": 1, "returned": 1}
    # Back with the seller, available at once; back at the PSP (in the connected account, then our balance).
    assert payable(seller) == 3000 and available(seller) == 3000 and receivable() == 3000
    assert -ledger_selectors.account_balance(code=accounts.PAYOUTS_IN_TRANSIT, currency="usd") == 0
    wait_for(lambda: Payout.objects.get(pk=payout.id).transfer_reversed_at, message="the transfer taken back")
    assert psp_transfers(sandbox, account["psp_account"])[0]["amount_reversed"] == 3000

    # The PSP's answer again (the recovery round, a webhook sent twice) and the old paid answer: nothing moves.
    psp = get_payout_provider()
    again = psp.retrieve_payout(paid.psp_payout_id, psp_account=paid.psp_account_id)
    assert again.status == "failed"
    assert payout_apply_result(payout_id=payout.id, result=again, actor="test") == PayoutState.FAILED
    for event in loopback.get(f"{sandbox}/_sandbox/events", timeout=10).json()["events"]:
        if event["type"].startswith("payout.") and event["event"]["data"]["object"]["id"] == paid.psp_payout_id:
            payload = {**event["event"], "id": event["id"] + "_again"}  # another delivery, another event id
            payout_webhook_receive(event=payload)
            payout_webhook_process(event_id=payload["id"])
    assert Payout.objects.get(pk=payout.id).state == PayoutState.FAILED
    assert postings(payout.id) == {"created": 1, "paid": 1, "bank_returned": 1, "returned": 1}
    assert payable(seller) == 3000 and available(seller) == 3000
    call_command("audit_money", stdout=StringIO())

    # Reconciled: the platform's transfer and its reversal, the seller's payout and its failure, all matched.
    day = timezone.now().date()
    written = settle(sandbox, day, tmp_path)
    assert written["seller_payouts"] == 2
    for key in ("settlement_report", "bank_statement", "connected_payouts_report"):
        settlement_file_import(path=Path(written[key]), actor="test")
    reconciliation_run(day=day, actor="test")
    assert list(Break.objects.values_list("break_class", "description")) == []
    assert receivable() == 0 and psp_holds(sandbox, day) == {"usd": 0}
    call_command("audit_money", stdout=StringIO())


def test_returned_payout_webhooks_out_of_order_and_the_report_before_our_books(
        api, sandbox, live_server, settings, tmp_path):
    """No webhooks reach us at first: the PSP pays the payout and the bank sends it back while our books still
    have it in transit. The PSP's report says failed first (a break), then the events arrive failed-before-paid."""
    seller, account, payout = paid_out(api, settings, amount=4200)
    sent = wait_state(payout.id, PayoutState.IN_TRANSIT)
    wait_for(lambda: [p["status"] for p in psp_payouts(sandbox, account["bank_account"]["id"])] == ["paid"],
             message="the PSP to pay it")
    bank_returns(sandbox, sent.psp_payout_id)

    day = timezone.now().date()
    first = settle(sandbox, day, tmp_path / "first")
    settlement_file_import(path=Path(first["connected_payouts_report"]), actor="test")
    reconciliation_run(day=day, actor="test")
    brk = Break.objects.get()
    assert (brk.break_class, brk.object_id, brk.state) == ("payout_failed_at_psp", payout.id, "open")
    assert "in_transit in our books" in brk.description

    events = [e for e in loopback.get(f"{sandbox}/_sandbox/events", timeout=10).json()["events"]
              if e["type"] in ("payout.paid", "payout.failed")
              and e["event"]["data"]["object"]["id"] == sent.psp_payout_id]
    assert [e["type"] for e in events] == ["payout.paid", "payout.failed"]
    for event in reversed(events):  # failed first, then the stale paid
        payout_webhook_receive(event=event["event"])
        payout_webhook_process(event_id=event["id"])
    failed = Payout.objects.get(pk=payout.id)
    assert failed.state == PayoutState.FAILED and failed.returned_at is None  # it was never paid in our books
    assert postings(payout.id) == {"created": 1, "paid": 0, "bank_returned": 0, "returned": 1}
    assert payable(seller) == 4200 and available(seller) == 4200
    wait_for(lambda: Payout.objects.get(pk=payout.id).transfer_reversed_at, message="the transfer taken back")
    call_command("audit_money", stdout=StringIO())

    second = settle(sandbox, day, tmp_path / "second")
    for key in ("settlement_report", "bank_statement", "connected_payouts_report"):
        settlement_file_import(path=Path(second[key]), actor="test")
    reconciliation_run(day=day, actor="test")
    brk.refresh_from_db()
    assert (brk.state, brk.resolution) == ("auto_resolved", "cleared")
    assert not Break.objects.filter(state="open").exists()
    assert receivable() == 0 and psp_holds(sandbox, day) == {"usd": 0}
    call_command("audit_money", stdout=StringIO())
