"""Payouts end to end: the run (command, beat task, admin), the transfer and payout at the real PSP sandbox,
payout.paid arriving later by webhook, failures giving the money back, faults, recovery and concurrency.
Outcomes are checked at the PSP's own records, in the ledger and by audit_money."""
import threading
from datetime import date, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connections
from django.utils import timezone

from conftest import wait_for
from ledger import accounts
from ledger import selectors as ledger_selectors
from payouts.models import Payout, PayoutRunItem, PayoutState, PayoutTransition
from payouts.services import payouts_recover, payouts_run
from payouts.tests.helpers import (
    age_holds,
    capture,
    connect_webhooks,
    make_due,
    onboard,
    payout_account,
    psp_payouts,
    psp_transfers,
    sandbox_config,
    wait_state,
)
from wallet import selectors as wallet_selectors

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def payable(seller, currency="usd"):
    return -ledger_selectors.account_balance(code=accounts.seller_payable(seller), currency=currency)


def in_transit(currency="usd"):
    return -ledger_selectors.account_balance(code=accounts.PAYOUTS_IN_TRANSIT, currency=currency)


def available(seller, currency="usd"):
    return {b.currency: b.available for b in wallet_selectors.wallet_buckets(owner_id=seller)}.get(currency, 0)


def test_paid_end_to_end_from_the_command(api, sandbox, live_server, settings):
    connect_webhooks(sandbox, live_server, settings)
    seller = onboard(api)
    account = payout_account(api, seller)
    capture(api, seller, 1250)
    capture(api, seller, 990)
    out = StringIO()
    call_command("payouts_run", stdout=out)
    assert "0 payouts created" in out.getvalue()  # all of it still in its hold
    assert "nothing_available" in out.getvalue()
    age_holds(seller)

    out = StringIO()
    call_command("payouts_run", "--date", "2026-12-01", stdout=out)
    assert "1 payouts created" in out.getvalue(), out.getvalue()
    payout = Payout.objects.get(seller_id=seller)
    assert (payout.amount, payout.currency, str(payout.payout_date)) == (2240, "usd", "2026-12-01")
    assert payable(seller) == 0 and available(seller) == 0  # out of the seller's balance at once
    paid = wait_state(payout.id, PayoutState.PAID)

    # The PSP's own records: one transfer to the connected account, one payout to the bank, both ours.
    transfers = psp_transfers(sandbox, account["psp_account"])
    payouts = psp_payouts(sandbox, account["bank_account"]["id"])
    assert [(t["amount"], t["transfer_group"], t["id"]) for t in transfers] == [(2240, payout.id, paid.psp_transfer_id)]
    assert [(p["amount"], p["status"], p["metadata"]["payout_id"], p["id"]) for p in payouts] == \
        [(2240, "paid", payout.id, paid.psp_payout_id)]
    assert paid.arrival_date is not None
    steps = list(PayoutTransition.objects.filter(payout=payout).values_list("from_state", "to_state", "actor"))
    assert [(f, t) for f, t, _ in steps] == [("", "pending"), ("pending", "in_transit"), ("in_transit", "paid")]
    assert steps[0][2] == "command:payouts_run" and steps[2][2].startswith("webhook:evt_")  # paid arrived later

    assert in_transit() == 0 and payable(seller) == 0
    call_command("payouts_run", "--date", "2026-12-01", stdout=StringIO())  # again: nothing more
    call_command("payouts_run", stdout=StringIO())
    assert Payout.objects.filter(seller_id=seller).count() == 1
    call_command("audit_money", stdout=StringIO())


def test_a_failed_payout_gives_the_money_back_and_the_transfer_is_taken_back(api, sandbox, live_server, settings):
    connect_webhooks(sandbox, live_server, settings)
    seller = onboard(api)
    account = payout_account(api, seller, token="btok_us_verified_accountClosed")
    capture(api, seller, 3000)
    age_holds(seller)
    run = payouts_run(payout_date=timezone.now().date(), actor="test")
    payout = run.items.get().payout
    failed = wait_state(payout.id, PayoutState.FAILED)
    assert failed.failure_code == "account_closed"
    assert payable(seller) == 3000 and available(seller) == 3000 and in_transit() == 0  # back, available at once
    reversed_ = wait_for(lambda: (t := psp_transfers(sandbox, account["psp_account"])[0])["reversed"] and t,
                         message="the transfer reversed")
    assert reversed_["amount_reversed"] == 3000
    wait_for(lambda: Payout.objects.get(pk=payout.id).transfer_reversed_at, message="the reversal recorded")
    assert [p["status"] for p in psp_payouts(sandbox, account["bank_account"]["id"])] == ["failed"]
    call_command("audit_money", stdout=StringIO())


def test_run_report_says_why_no_payout(api, sandbox, settings):
    settings.PAYOUT_MINIMUM = 1000
    no_account, small, other_currency, held, paid = (onboard(api, n) for n in ("a", "b", "c", "d", "e"))
    for seller in (small, held, paid):
        payout_account(api, seller)
    payout_account(api, other_currency, token="btok_gb", country="GB")
    capture(api, no_account, 5000)
    capture(api, small, 999)
    capture(api, other_currency, 5000)
    capture(api, held, 5000)
    capture(api, paid, 1000)
    age_holds(no_account, small, other_currency, paid)
    run = payouts_run(payout_date=timezone.now().date(), actor="test",
                      seller_ids=[no_account, small, other_currency, held, paid])
    report = {(i.seller_id, i.currency): (i.outcome, i.available_amount)
              for i in PayoutRunItem.objects.filter(run=run)}
    assert report == {
        (no_account, "usd"): ("no_payout_account", 5000),
        (small, "usd"): ("below_minimum", 999),
        (other_currency, "usd"): ("currency_not_supported", 5000),
        (held, "usd"): ("nothing_available", 0),
        (paid, "usd"): ("created", 1000),
    }
    assert (run.payouts_created, run.skipped) == (1, 4)
    assert not Payout.objects.exclude(seller_id=paid).exists()


def test_two_runs_at_once_make_one_payout_per_seller(api, sandbox, live_server, settings):
    connect_webhooks(sandbox, live_server, settings)
    sellers = [onboard(api, f"s{n}") for n in range(4)]
    for n, seller in enumerate(sellers):
        payout_account(api, seller)
        capture(api, seller, 1000 + n)
    age_holds(*sellers)
    barrier = threading.Barrier(2)
    errors = []

    def run():
        try:
            barrier.wait()
            # Batches of two: each run's second batch waits on wallets the other may hold.
            payouts_run(payout_date=timezone.now().date(), actor="test", seller_ids=sellers, batch_size=2)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    payouts = list(Payout.objects.filter(seller_id__in=sellers).order_by("amount"))
    assert [(p.seller_id, p.amount) for p in payouts] == [(s, 1000 + n) for n, s in enumerate(sellers)]
    for seller in sellers:  # the other run found nothing left (under the lock), or an empty wallet (before it)
        outcomes = sorted(PayoutRunItem.objects.filter(seller_id=seller).values_list("outcome", flat=True))
        assert outcomes in (["created"], ["created", "nothing_available"]), outcomes
    for payout in payouts:
        wait_state(payout.id, PayoutState.PAID)
        bank = payout.psp_bank_account_id
        assert [p["amount"] for p in psp_payouts(sandbox, bank)] == [payout.amount]  # one at the PSP too
    call_command("audit_money", stdout=StringIO())


def test_timeouts_leave_it_pending_and_recovery_finds_what_the_psp_made(api, sandbox, live_server, settings):
    connect_webhooks(sandbox, live_server, settings)
    seller = onboard(api)
    account = payout_account(api, seller, token="btok_sandbox_timeout")  # every call to it: no answer in time
    capture(api, seller, 4200)
    age_holds(seller)
    sandbox_config(sandbox, timeout_delay_s=settings.PSP_TIMEOUT_SECONDS + 1)
    payout = payouts_run(payout_date=timezone.now().date(), actor="test").items.get().payout
    wait_for(lambda: Payout.objects.get(pk=payout.id).next_action_at > timezone.now()
             and Payout.objects.get(pk=payout.id).attempts >= 1, message="the first attempt")

    def recovered():
        current = Payout.objects.get(pk=payout.id)
        if current.state == PayoutState.PAID:
            return current
        if current.state == PayoutState.PENDING and current.next_action_at > timezone.now() + \
                timedelta(seconds=settings.PAYMENT_UNKNOWN_CHECK_SECONDS + 1):
            return None  # a task is sending it (or about to): only an unanswered one is the round's
        make_due(payout.id)
        payouts_recover()
        return None

    paid = wait_for(recovered, timeout=60, interval=0.5, message="recovery to settle the payout")
    assert [t["amount"] for t in psp_transfers(sandbox, account["psp_account"])] == [4200]  # never twice
    assert [(p["amount"], p["id"]) for p in psp_payouts(sandbox, account["bank_account"]["id"])] == \
        [(4200, paid.psp_payout_id)]
    call_command("audit_money", stdout=StringIO())


def test_flaky_psp_is_retried_with_the_same_keys(api, sandbox, live_server, settings):
    connect_webhooks(sandbox, live_server, settings)
    seller = onboard(api)
    account = payout_account(api, seller, token="btok_sandbox_flaky")
    capture(api, seller, 777)
    age_holds(seller)
    sandbox_config(sandbox, flaky_failures=2)
    payout = payouts_run(payout_date=timezone.now().date(), actor="test").items.get().payout
    paid = wait_state(payout.id, PayoutState.PAID)
    assert paid.attempts >= 3 and paid.psp_key_generation == 0
    assert len(psp_transfers(sandbox, account["psp_account"])) == 1
    assert len(psp_payouts(sandbox, account["bank_account"]["id"])) == 1
    call_command("audit_money", stdout=StringIO())


def test_a_lost_webhook_is_made_up_for_by_asking_the_psp(api, sandbox):
    seller = onboard(api)  # no Connect endpoint: payout.paid is never delivered
    payout_account(api, seller)
    capture(api, seller, 1500)
    age_holds(seller)
    payout = payouts_run(payout_date=timezone.now().date(), actor="test").items.get().payout
    wait_state(payout.id, PayoutState.IN_TRANSIT)

    def settled():
        make_due(payout.id)
        payouts_recover()
        return Payout.objects.get(pk=payout.id).state == PayoutState.PAID

    wait_for(settled, timeout=20, interval=0.5, message="the janitor to find it paid")
    assert PayoutTransition.objects.get(payout=payout, to_state="paid").actor == "janitor"
    call_command("audit_money", stdout=StringIO())


def test_a_refund_after_the_payout_is_netted_off_the_next_one(api, sandbox, live_server, settings):
    connect_webhooks(sandbox, live_server, settings)
    settings.PAYOUT_MINIMUM = 1000
    seller = onboard(api)
    account = payout_account(api, seller)
    order = capture(api, seller, 5000)
    age_holds(seller)
    first = payouts_run(payout_date=date(2026, 12, 1), actor="test").items.get().payout
    wait_state(first.id, PayoutState.PAID)
    before_refund = timezone.now()

    refund = api.post(f"/api/v1/payment-orders/{order}/refunds", json={"amount": 2000, "reason": "returned"},
                      headers={"Idempotency-Key": "rf-after-payout"})
    assert refund.status_code == 201, refund.text
    wait_for(lambda: api.get(f"/api/v1/refunds/{refund.json()['id']}").json()["state"] == "succeeded",
             message="the refund")
    after_refund = timezone.now()
    assert available(seller) == -2000 and payable(seller) == -2000  # the seller owes it

    def report(day):
        run = payouts_run(payout_date=day, actor="test", seller_ids=[seller])
        return list(run.items.values_list("outcome", "available_amount", "payout"))

    assert report(date(2026, 12, 2)) == [("negative_balance", -2000, None)]  # on the report, with the debt
    capture(api, seller, 2500, key="co-second")
    assert report(date(2026, 12, 2)) == [("negative_balance", -2000, None)]  # the new capture still held
    age_holds(seller)
    assert report(date(2026, 12, 2)) == [("below_minimum", 500, None)]  # 2500 less the 2000 owed
    capture(api, seller, 500, key="co-third")
    age_holds(seller)
    second = payouts_run(payout_date=date(2026, 12, 2), actor="test").items.get().payout
    assert second.amount == 1000  # 3000 captured less the 2000 owed
    wait_state(second.id, PayoutState.PAID)
    assert available(seller) == 0 and payable(seller) == 0

    listed = api.get(f"/api/v1/sellers/{seller}/payouts", params={"limit": 1})
    assert listed.status_code == 200, listed.text
    assert [(p["id"], p["amount"], p["state"]) for p in listed.json()["results"]] == [(second.id, 1000, "paid")]
    older = api.get(listed.json()["next"]).json()["results"]
    assert [(p["id"], p["amount"]) for p in older] == [(first.id, 5000)]
    detail = api.get(f"/api/v1/payouts/{first.id}").json()
    assert (detail["object"], detail["state"], detail["bank_account"]) == \
        ("payout", "paid", account["bank_account"]["id"])
    assert api.get("/api/v1/payouts/pyt_nope").status_code == 404
    assert api.get("/api/v1/sellers/sel_nope/payouts").status_code == 404

    def available_as_of(moment):
        response = api.get(f"/api/v1/sellers/{seller}/balance", params={"as_of": moment.isoformat()})
        assert response.status_code == 200, response.text
        return response.json()["available"]

    assert available_as_of(before_refund) == [{"amount": 0, "currency": "usd"}]  # paid out, not yet refunded
    assert available_as_of(after_refund) == [{"amount": -2000, "currency": "usd"}]  # refunded: owed
    assert available_as_of(timezone.now()) == [{"amount": 0, "currency": "usd"}]  # netted off: square
    assert sorted(p["amount"] for p in psp_payouts(sandbox, account["bank_account"]["id"])) == [1000, 5000]
    call_command("audit_money", stdout=StringIO())
