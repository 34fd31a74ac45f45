"""The operator's side: the admin's "pay out now" and dead-letter replay actions, with a reason, against the
real worker and PSP sandbox."""
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from conftest import wait_for
from payouts.models import Payout, PayoutAccount, PayoutState, PayoutTransition
from payouts.services import payouts_recover, payouts_run
from payouts.tests.helpers import (
    age_holds,
    capture,
    connect_webhooks,
    make_due,
    onboard,
    payout_account,
    psp_payouts,
    sandbox_config,
    wait_state,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_pay_out_now_from_the_admin(api, sandbox, live_server, settings, admin_client):
    connect_webhooks(sandbox, live_server, settings)
    seller = onboard(api)
    payout_account(api, seller)
    capture(api, seller, 2500)
    age_holds(seller)
    account = PayoutAccount.objects.get(seller_id=seller)
    asked = admin_client.post("/admin/payouts/payoutaccount/", {"action": "pay_out_now",
                                                                "_selected_action": [account.pk]})
    assert asked.status_code == 200 and b"reason" in asked.content  # a reason is asked first
    assert not Payout.objects.exists()
    done = admin_client.post("/admin/payouts/payoutaccount/", {
        "action": "pay_out_now", "_selected_action": [account.pk], "confirmed": "1",
        "reason": "seller asked for an early payout", "payout_date": ""}, follow=True)
    assert done.status_code == 200
    payout = Payout.objects.get(seller_id=seller)
    assert PayoutTransition.objects.get(payout=payout, to_state="pending").actor == "operator:admin"
    wait_state(payout.id, PayoutState.PAID)
    call_command("audit_money", stdout=StringIO())


def test_dead_letter_after_saved_failures_then_replayed_from_the_admin(api, sandbox, live_server, settings,
                                                                       admin_client):
    connect_webhooks(sandbox, live_server, settings)
    seller = onboard(api)
    account = payout_account(api, seller)
    capture(api, seller, 1800)
    age_holds(seller)
    sandbox_config(sandbox, error_rate=1.0)  # every transfer: a 500 saved against its key
    payout = payouts_run(payout_date=timezone.now().date(), actor="test").items.get().payout

    def dead():
        current = Payout.objects.get(pk=payout.id)
        if current.state == PayoutState.DEAD_LETTER:
            return current
        if current.psp_key_spent_at:
            make_due(payout.id)
            payouts_recover()  # nothing at the PSP: new keys, sent again
        return None

    dead_lettered = wait_for(dead, timeout=60, interval=0.3, message="the dead letter")
    assert dead_lettered.failure_code == "retries_exhausted" and dead_lettered.psp_key_generation >= 1
    assert psp_payouts(sandbox, account["bank_account"]["id"]) == []  # nothing was paid out
    call_command("audit_money", stdout=StringIO())  # its money waits in transit

    sandbox_config(sandbox, error_rate=0.0)
    admin_client.post("/admin/payouts/payout/", {"action": "replay_dead_letter", "_selected_action": [payout.id],
                                                 "confirmed": "1", "reason": "PSP incident over"})
    paid = wait_state(payout.id, PayoutState.PAID)
    redrive = PayoutTransition.objects.get(payout=payout, from_state="dead_letter")
    assert (redrive.actor, redrive.reason) == ("operator:admin", "PSP incident over")
    assert [p["amount"] for p in psp_payouts(sandbox, account["bank_account"]["id"])] == [paid.amount]
    call_command("audit_money", stdout=StringIO())
