"""A payout run's wallet work in one statement each: many wallets locked with what is available in them,
and debited once per key, the negative episode kept."""
import pytest
from django.db import transaction
from django.utils import timezone

from wallet import selectors
from wallet.models import Wallet, WalletMovement
from wallet.services import Debit, wallet_credit, wallet_debit, wallets_available_locked, wallets_debit

pytestmark = pytest.mark.django_db(transaction=True)


def test_many_wallets_locked_with_what_is_available(settings):
    settings.PAYOUT_HOLD_DAYS = 2
    wallet_credit(owner_id="sel_a", currency="usd", amount=500, idempotency_key="a1", reason="t", held=False)
    wallet_credit(owner_id="sel_a", currency="usd", amount=300, idempotency_key="a2", reason="capture")  # held
    wallet_credit(owner_id="sel_b", currency="eur", amount=70, idempotency_key="b1", reason="t", held=False)
    wallet_debit(owner_id="sel_b", currency="eur", amount=100, idempotency_key="b2", reason="t")
    with transaction.atomic():
        found = wallets_available_locked(wallets=[("sel_a", "usd"), ("sel_b", "EUR"), ("sel_c", "usd")],
                                         as_of=timezone.now())
    assert found == {("sel_a", "usd"): 500, ("sel_b", "eur"): -30}
    assert wallets_available_locked(wallets=[], as_of=timezone.now()) == {}


def test_many_wallets_debited_once_per_key():
    for owner in ("sel_a", "sel_b"):
        wallet_credit(owner_id=owner, currency="usd", amount=1000, idempotency_key=f"c-{owner}", reason="t",
                      held=False)
    debits = [Debit("sel_a", "usd", 400, "payout:p1:created", "payout p1"),
              Debit("sel_b", "usd", 1200, "payout:p2:created", "payout p2")]
    assert wallets_debit(debits=debits) == 2
    assert wallets_debit(debits=debits) == 0  # the same keys again: nothing
    assert selectors.wallet_balances() == {("sel_a", "usd"): 600, ("sel_b", "usd"): -200}
    assert selectors.wallet_movement_sums() == selectors.wallet_balances()
    below = WalletMovement.objects.get(idempotency_key="payout:p2:created")
    assert Wallet.objects.get(owner_id="sel_b").negative_since_movement_id == below.id
    assert Wallet.objects.get(owner_id="sel_a").negative_since is None


@pytest.mark.parametrize(("debits", "message"), [
    ([Debit("sel_a", "usd", 1, "k1", "t"), Debit("sel_a", "USD", 2, "k2", "t")], "one debit per wallet"),
    ([Debit("sel_a", "usd", 0, "k1", "t")], "given positive"),
    ([Debit("sel_a", "usd", 5, "k1", "t"), Debit("sel_nope", "usd", 5, "k2", "t")], "do not exist"),
])
def test_a_bad_batch_debits_nothing(debits, message):
    wallet_credit(owner_id="sel_a", currency="usd", amount=10, idempotency_key="c", reason="t", held=False)
    with pytest.raises(ValueError, match=message):
        wallets_debit(debits=debits)
    assert selectors.wallet_balances() == {("sel_a", "usd"): 10} and WalletMovement.objects.count() == 1
