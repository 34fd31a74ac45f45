"""A negative balance's episode, kept by the statement that moves the balance: since when, and which movement
took it below zero."""
import pytest

from wallet.models import Wallet
from wallet.selectors import wallets_negative
from wallet.services import wallet_credit, wallet_debit, wallet_negative_locked

pytestmark = pytest.mark.django_db(transaction=True)


def episode():
    wallet = Wallet.objects.with_total().get(owner_id="sel_a", currency="usd")  # the row's and its slots'
    return wallet.total, wallet.negative_since is not None, wallet.negative_since_movement_id


def test_an_episode_starts_below_zero_and_ends_at_zero_or_above():
    wallet_credit(owner_id="sel_a", currency="usd", amount=100, idempotency_key="c1", reason="t", held=False)
    assert episode() == (100, False, None)
    below, _ = wallet_debit(owner_id="sel_a", currency="usd", amount=300, idempotency_key="d1", reason="t")
    assert episode() == (-200, True, below.id)
    since = Wallet.objects.get().negative_since
    wallet_debit(owner_id="sel_a", currency="usd", amount=50, idempotency_key="d2", reason="t")
    wallet_credit(owner_id="sel_a", currency="usd", amount=100, idempotency_key="c2", reason="t")  # still below
    assert episode() == (-150, True, below.id) and Wallet.objects.get().negative_since == since
    wallet_credit(owner_id="sel_a", currency="usd", amount=150, idempotency_key="c3", reason="t")
    assert episode() == (0, False, None)  # square: the episode is over
    again, _ = wallet_debit(owner_id="sel_a", currency="usd", amount=1, idempotency_key="d3", reason="t")
    assert episode() == (-1, True, again.id)  # a new one
    wallet_debit(owner_id="sel_a", currency="usd", amount=1, idempotency_key="d3", reason="t")  # a repeat: nothing
    assert episode() == (-1, True, again.id)


def test_the_first_movement_may_start_one_and_the_lock_reads_it():
    first, _ = wallet_debit(owner_id="sel_a", currency="usd", amount=70, idempotency_key="d1", reason="t")
    wallet_credit(owner_id="sel_b", currency="usd", amount=5, idempotency_key="c1", reason="t")
    negative = wallet_negative_locked(owner_id="sel_a", currency="USD")
    assert (negative.owed, negative.movement_id, negative.currency) == (70, first.id, "usd")
    assert wallet_negative_locked(owner_id="sel_b", currency="usd") is None
    assert wallet_negative_locked(owner_id="sel_c", currency="usd") is None
    assert [(o, c, b) for o, c, b, _ in wallets_negative()] == [("sel_a", "usd", -70)]
    assert wallets_negative(since_before=negative.since) == []
