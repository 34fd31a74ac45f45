"""Held credits: pending, reserved and available, now and at other moments, kept by PostgreSQL."""
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from wallet import selectors
from wallet.services import Hold, payout_hold, wallet_credit, wallet_debit, wallet_move

pytestmark = pytest.mark.django_db(transaction=True)  # each movement its own transaction: its own time


@pytest.fixture
def reserve(settings):
    settings.PAYOUT_HOLD_DAYS = 2
    settings.PAYOUT_RESERVE_BPS = 1000  # 10 %
    settings.PAYOUT_RESERVE_DAYS = 7


def buckets(owner="sel_a", as_of=None):
    return {b.currency: (b.available, b.pending, b.reserved, b.total)
            for b in selectors.wallet_buckets(owner_id=owner, as_of=as_of)}


def test_a_credit_is_pending_then_available_its_reserve_later(reserve):
    before = timezone.now()
    wallet_credit(owner_id="sel_a", currency="usd", amount=1005, idempotency_key="c1", reason="capture")
    assert buckets() == {"usd": (0, 905, 100, 1005)}  # the reserve rounded down: the seller's favour
    now = timezone.now()
    assert buckets(as_of=now + timedelta(days=2, seconds=5)) == {"usd": (905, 0, 100, 1005)}
    assert buckets(as_of=now + timedelta(days=7, seconds=5)) == {"usd": (1005, 0, 0, 1005)}
    assert buckets(as_of=before - timedelta(seconds=1)) == {}  # nothing was written yet


def test_debits_take_from_available_which_may_go_negative(reserve):
    wallet_credit(owner_id="sel_a", currency="usd", amount=1000, idempotency_key="c1", reason="capture")
    after_credit = timezone.now()
    wallet_debit(owner_id="sel_a", currency="usd", amount=300, idempotency_key="r1", reason="refund")
    assert buckets() == {"usd": (-300, 900, 100, 700)}
    assert buckets(as_of=after_credit) == {"usd": (0, 900, 100, 1000)}  # as it was before the refund


def test_money_given_back_is_available_at_once_and_currencies_apart(reserve):
    wallet_credit(owner_id="sel_a", currency="usd", amount=500, idempotency_key="back", reason="payout failed",
                  held=False)
    wallet_credit(owner_id="sel_a", currency="eur", amount=200, idempotency_key="c-eur", reason="capture")
    wallet_credit(owner_id="sel_b", currency="usd", amount=999, idempotency_key="c-b", reason="capture")
    assert buckets() == {"eur": (0, 180, 20, 200), "usd": (500, 0, 0, 500)}


def test_no_hold_configured_is_available_at_once(settings):
    settings.PAYOUT_HOLD_DAYS = 0
    settings.PAYOUT_RESERVE_BPS = 0
    wallet_credit(owner_id="sel_a", currency="usd", amount=100, idempotency_key="c1", reason="capture")
    assert buckets() == {"usd": (100, 0, 0, 100)}


def test_the_reserve_is_released_no_earlier_than_the_hold(settings):
    settings.PAYOUT_HOLD_DAYS = 3
    settings.PAYOUT_RESERVE_BPS = 500
    settings.PAYOUT_RESERVE_DAYS = 1
    assert payout_hold(1000) == Hold(seconds=3 * 86400, reserve_amount=50, reserve_seconds=3 * 86400)


@pytest.mark.parametrize("amount, hold", [
    (-100, Hold(seconds=10)),  # only credits are held
    (100, Hold(seconds=10, reserve_amount=101, reserve_seconds=10)),  # a reserve beyond the credit
    (100, Hold(seconds=10, reserve_amount=1, reserve_seconds=5)),  # the reserve released first
])
def test_a_hold_that_makes_no_sense_is_refused(amount, hold):
    with pytest.raises(ValueError, match="hold"):
        wallet_move(owner_id="sel_a", currency="usd", amount=amount, idempotency_key="k", reason="t", hold=hold)


def test_postgresql_refuses_an_inconsistent_hold():
    wallet_credit(owner_id="sel_a", currency="usd", amount=100, idempotency_key="c1", reason="capture")
    with pytest.raises(IntegrityError, match="wallet_movement_hold_consistent"), transaction.atomic(), \
            connection.cursor() as cur:
        cur.execute("INSERT INTO wallet_walletmovement (wallet_id, amount, idempotency_key, reason, created_at,"
                    " hold_until, reserve_amount, reserve_until) SELECT id, -5, 'x', 't', now(), now(), 0, now()"
                    " FROM wallet_wallet")
