"""What the system finds by itself when every payout webhook is lost (paid, failed, sent back by the bank after
paid), and a bank account that refused a payout for good: not paid to again until the seller gives another."""
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from conftest import wait_for
from core.tests import loopback
from payouts.models import Payout, PayoutAccount, PayoutAccountChange, PayoutRunItem, PayoutState
from payouts.services import payouts_recover, payouts_run
from payouts.tests import helpers as h
from payouts.tests.test_payouts import available

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def recovered(payout_id, state):
    def done():
        h.make_due(payout_id)
        payouts_recover()
        return (p := Payout.objects.get(pk=payout_id)).state == state and p
    return wait_for(done, timeout=30, interval=0.5, message=f"the recovery round to find {payout_id} {state}")


def test_every_webhook_lost_paid_failed_and_returned_are_found_by_the_recovery_round(api, sandbox, settings):
    # No Connect endpoint at the PSP: no payout.paid / payout.failed ever reaches us.
    sellers = {token: h.onboard(api, name=token) for token in ("btok_us_verified", "btok_us_verified_noAccount")}
    returned_seller = h.onboard(api, name="returned")
    for token, seller in [*sellers.items(), ("btok_us_verified", returned_seller)]:
        h.payout_account(api, seller, token=token)
        h.capture(api, seller, 2500)
    h.age_holds(*sellers.values(), returned_seller)
    run = payouts_run(payout_date=timezone.now().date(), actor="test")
    payouts = {item.seller_id: item.payout for item in run.items.all()}
    for payout in payouts.values():
        h.wait_state(payout.id, PayoutState.IN_TRANSIT)

    paid = recovered(payouts[sellers["btok_us_verified"]].id, PayoutState.PAID)
    assert paid.next_action_at > timezone.now() + timedelta(seconds=settings.PAYOUT_RETURN_CHECK_SECONDS - 60)
    failed = recovered(payouts[sellers["btok_us_verified_noAccount"]].id, PayoutState.FAILED)
    assert failed.failure_code == "no_account" and available(sellers["btok_us_verified_noAccount"]) == 2500

    back = recovered(payouts[returned_seller].id, PayoutState.PAID)
    response = loopback.post(f"{sandbox}/_sandbox/payouts/{back.psp_payout_id}/return",
                             json={"failure_code": "account_closed"}, timeout=10)
    assert response.status_code == 200, response.text
    back = recovered(back.id, PayoutState.FAILED)  # found by asking the PSP about a lately paid payout
    assert (back.failure_code, back.returned_at is not None) == ("account_closed", True)
    assert available(returned_seller) == 2500
    assert PayoutAccount.objects.get(seller_id=returned_seller).unusable_at is not None
    call_command("audit_money", stdout=StringIO())


def test_a_paid_payout_is_asked_about_only_within_the_return_window(api, sandbox, settings):
    seller = h.onboard(api)
    h.payout_account(api, seller)
    h.capture(api, seller, 900)
    h.age_holds(seller)
    payout = payouts_run(payout_date=timezone.now().date(), actor="test").items.get().payout
    h.wait_state(payout.id, PayoutState.IN_TRANSIT)
    recovered(payout.id, PayoutState.PAID)
    settings.PAYOUT_RETURN_CHECK_SECONDS = 2 * 86400
    settings.PAYOUT_RETURN_WINDOW_DAYS = 1
    h.make_due(payout.id)
    payouts_recover()  # still in the window: asked, and not again (the next check would fall after it)
    assert Payout.objects.get(pk=payout.id).next_action_at is None
    Payout.objects.filter(pk=payout.id).update(next_action_at=timezone.now(),
                                               completed_at=timezone.now() - timedelta(days=2))
    assert payouts_recover() == 0  # past the window: not asked


def test_a_closed_bank_account_is_not_paid_again_until_the_seller_gives_another(api, sandbox, live_server,
                                                                                  settings):
    h.connect_webhooks(sandbox, live_server, settings)
    seller = h.onboard(api)
    closed = h.payout_account(api, seller, token="btok_us_verified_accountClosed")
    h.capture(api, seller, 3000)
    h.age_holds(seller)
    today = timezone.now().date()
    first = payouts_run(payout_date=today, actor="test").items.get().payout
    assert h.wait_state(first.id, PayoutState.FAILED).failure_code == "account_closed"
    account = PayoutAccount.objects.get(seller_id=seller)
    assert account.unusable_reason == f"payout {first.id} failed: account_closed"
    assert PayoutAccountChange.objects.filter(account=account, reason__startswith="unusable:").count() == 1
    assert api.get(f"/api/v1/sellers/{seller}/payout-account").json()["unusable_reason"] == account.unusable_reason

    item = payouts_run(payout_date=today + timedelta(days=1), actor="test").items.get()
    assert (item.outcome, item.available_amount, item.payout) == (PayoutRunItem.Outcome.PAYOUT_ACCOUNT_UNUSABLE,
                                                                  3000, None)
    assert available(seller) == 3000
    assert [p["status"] for p in h.psp_payouts(sandbox, closed["bank_account"]["id"])] == ["failed"]  # not again

    h.payout_account(api, seller, token="btok_us_verified")  # the seller gives another bank account
    assert api.get(f"/api/v1/sellers/{seller}/payout-account").json()["unusable_reason"] == ""
    again = payouts_run(payout_date=today + timedelta(days=2), actor="test").items.get().payout
    assert (h.wait_state(again.id, PayoutState.PAID).amount, available(seller)) == (3000, 0)
    call_command("audit_money", stdout=StringIO())
