"""Negative balances written off: the ledger posting to the loss account and the wallet credit in one
transaction, once per negative episode (again, or twice at once, posts once), by an operator or after
NEGATIVE_BALANCE_WRITE_OFF_DAYS."""
import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from ledger import accounts
from ledger import selectors as ledger_selectors
from ledger.services import EntrySpec, ledger_transaction_post
from payments.tests.factories import SellerFactory
from payouts.audit import write_off_problems
from payouts.models import NegativeBalanceWriteOff
from payouts.services import negative_balance_write_off, negative_balances_write_off_due
from wallet import selectors as wallet_selectors
from wallet.models import Wallet
from wallet.services import wallet_credit, wallet_debit

pytestmark = pytest.mark.django_db(transaction=True)


def move(seller, amount, key, currency="usd"):
    """The seller's payable and wallet moved together (a capture given back at once, or a refund)."""
    ledger_transaction_post(idempotency_key=key, description="t", reference=key, entries=[
        EntrySpec(accounts.PSP_RECEIVABLE, currency, amount), EntrySpec(accounts.seller_payable(seller), currency,
                                                                        -amount)])
    if amount > 0:
        wallet_credit(owner_id=seller, currency=currency, amount=amount, idempotency_key=key, reason="t", held=False)
    else:
        wallet_debit(owner_id=seller, currency=currency, amount=-amount, idempotency_key=key, reason="t")


def payable(seller, currency="usd"):
    return -ledger_selectors.account_balance(code=accounts.seller_payable(seller), currency=currency)


def losses(currency="usd"):
    return ledger_selectors.account_balance(code=accounts.SELLER_LOSSES, currency=currency)


def test_a_write_off_squares_the_seller_once_per_episode():
    seller = SellerFactory().pk
    move(seller, 1000, "c1")
    move(seller, -3000, "r1")
    assert payable(seller) == -2000
    written = negative_balance_write_off(seller_id=seller, currency="usd", actor="operator:alice", reason="gone")
    assert (written.amount, written.currency, written.actor, written.reason) == (2000, "usd", "operator:alice", "gone")
    assert payable(seller) == 0 and losses() == 2000
    assert wallet_selectors.wallet_balance(owner_id=seller, currency="usd") == 0
    assert Wallet.objects.get(owner_id=seller).negative_since is None
    assert negative_balance_write_off(seller_id=seller, currency="usd", actor="t", reason="again") is None
    assert NegativeBalanceWriteOff.objects.count() == 1

    move(seller, -500, "r2")  # a new episode: its own write-off
    second = negative_balance_write_off(seller_id=seller, currency="usd", actor="t", reason="again")
    assert second.amount == 500 and second.idempotency_key != written.idempotency_key
    assert payable(seller) == 0 and losses() == 2500
    assert write_off_problems() == []


def test_nothing_to_write_off_when_not_negative():
    seller = SellerFactory().pk
    move(seller, 1000, "c1")
    assert negative_balance_write_off(seller_id=seller, currency="usd", actor="t", reason="r") is None
    assert negative_balance_write_off(seller_id=seller, currency="eur", actor="t", reason="r") is None
    assert not NegativeBalanceWriteOff.objects.exists() and losses() == 0


def test_two_write_offs_at_once_post_once():
    seller = SellerFactory().pk
    move(seller, -700, "r1")
    barrier = threading.Barrier(2)
    results, errors = [], []

    def write_off():
        try:
            barrier.wait()
            results.append(negative_balance_write_off(seller_id=seller, currency="usd", actor="t", reason="r"))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write_off) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and sorted(r is None for r in results) == [False, True]
    assert losses() == 700 and payable(seller) == 0 and write_off_problems() == []


def test_written_off_after_the_setting_s_days_and_not_before(settings):
    old, recent = SellerFactory().pk, SellerFactory().pk
    move(old, -300, "r-old")
    move(recent, -400, "r-recent")
    move(recent, -100, "r-recent-eur", currency="eur")
    Wallet.objects.filter(owner_id=old).update(negative_since=timezone.now() - timedelta(days=31))
    Wallet.objects.filter(owner_id=recent).update(negative_since=timezone.now() - timedelta(days=29))
    settings.NEGATIVE_BALANCE_WRITE_OFF_DAYS = None
    assert negative_balances_write_off_due() == []  # unset: never automatically
    settings.NEGATIVE_BALANCE_WRITE_OFF_DAYS = 30
    written = negative_balances_write_off_due()
    assert [(w.seller_id, w.amount, w.actor) for w in written] == [(old, 300, "task:write_off_negative_balances")]
    assert "30 days" in written[0].reason
    assert negative_balances_write_off_due() == []  # done once
    assert payable(recent) == -400 and payable(old) == 0
    later = negative_balances_write_off_due(now=timezone.now() + timedelta(days=2))
    assert sorted((w.seller_id, w.currency, w.amount) for w in later) == [(recent, "eur", 100), (recent, "usd", 400)]
    assert write_off_problems() == []


@pytest.mark.integration
def test_the_admin_lists_negative_balances_and_an_operator_writes_one_off(api, sandbox, live_server, admin_client,
                                                                          django_user_model, client):
    from io import StringIO

    from django.contrib.auth.models import Permission
    from django.core.management import call_command

    from conftest import wait_for
    from payouts.models import PayoutState
    from payouts.services import payouts_run
    from payouts.tests.helpers import age_holds, capture, onboard, payout_account, wait_state

    seller = onboard(api, name="Owing Shop")
    payout_account(api, seller)
    order = capture(api, seller, 5000)
    age_holds(seller)
    payout = payouts_run(payout_date=timezone.now().date(), actor="test").items.get().payout
    wait_state(payout.id, PayoutState.IN_TRANSIT, PayoutState.PAID)
    refund = api.post(f"/api/v1/payment-orders/{order}/refunds", json={"amount": 2000, "reason": "returned"},
                      headers={"Idempotency-Key": "rf-1"})
    wait_for(lambda: api.get(f"/api/v1/refunds/{refund.json()['id']}").json()["state"] == "succeeded",
             message="the refund")
    wallet = Wallet.objects.get(owner_id=seller)

    listed = admin_client.get("/admin/payouts/negativebalance/")
    assert listed.status_code == 200
    page = listed.content.decode()
    assert "Owing Shop" in page and "-20.00 USD" in page and "Negative for" in page

    # A staff member without the permission cannot write it off.
    clerk = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_negativebalance"))
    client.force_login(clerk)
    assert client.get("/admin/payouts/negativebalance/").status_code == 200
    client.post("/admin/payouts/negativebalance/", {"action": "write_off", "_selected_action": [wallet.pk],
                                                    "confirmed": "1", "reason": "no"})
    assert not NegativeBalanceWriteOff.objects.exists()

    asked = admin_client.post("/admin/payouts/negativebalance/", {"action": "write_off",
                                                                  "_selected_action": [wallet.pk]})
    assert asked.status_code == 200 and b"reason" in asked.content and not NegativeBalanceWriteOff.objects.exists()
    admin_client.post("/admin/payouts/negativebalance/", {"action": "write_off", "_selected_action": [wallet.pk],
                                                          "confirmed": "1", "reason": "seller closed, unrecoverable"})
    written = NegativeBalanceWriteOff.objects.get()
    assert (written.seller_id, written.amount, written.actor, written.reason) == \
        (seller, 2000, "operator:admin", "seller closed, unrecoverable")
    assert payable(seller) == 0 and losses() == 2000
    assert "Owing Shop" not in admin_client.get("/admin/payouts/negativebalance/").content.decode()

    lines = api.get(f"/api/v1/sellers/{seller}/movements").json()["results"]
    assert [(m["amount"], m["source"]["type"], m["source"]["id"]) for m in lines][0] == (2000, "write_off", written.id)
    call_command("audit_money", stdout=StringIO())
