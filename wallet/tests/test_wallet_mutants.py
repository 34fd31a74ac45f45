"""Wallet movements at their edges, through the services (docs/mutation.md)."""
import pytest
from django.db import transaction

from wallet import selectors
from wallet.models import WalletMovement
from wallet.services import wallet_credit, wallet_debit, wallet_move

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("amount", [0, 1.5, True, "5"])
def test_only_a_non_zero_int_moves_a_wallet(amount):
    with pytest.raises(ValueError, match="non-zero int"), transaction.atomic():
        wallet_move(owner_id="sel_a", currency="usd", amount=amount, idempotency_key="k", reason="t")
    assert not WalletMovement.objects.exists()
    assert selectors.wallet_balance(owner_id="sel_a", currency="usd") == 0


@pytest.mark.parametrize("amount", [0, -5])
def test_credits_and_debits_are_given_positive(amount):
    with pytest.raises(ValueError, match="^a credit is positive$"):
        wallet_credit(owner_id="sel_a", currency="usd", amount=amount, idempotency_key="c", reason="t")
    with pytest.raises(ValueError, match="^a debit amount is given positive$"):
        wallet_debit(owner_id="sel_a", currency="usd", amount=amount, idempotency_key="d", reason="t")
    assert not WalletMovement.objects.exists()


def test_one_minor_unit_can_be_credited_and_debited_and_the_movements_are_returned():
    credit, _ = wallet_credit(owner_id="sel_a", currency="usd", amount=1, idempotency_key="c", reason="t")
    debit, _ = wallet_debit(owner_id="sel_a", currency="usd", amount=1, idempotency_key="d", reason="t")
    stored = list(WalletMovement.objects.order_by("id"))
    assert [(m.id, m.amount, m.idempotency_key) for m in stored] == [(credit.id, 1, "c"), (debit.id, -1, "d")]
    assert [(m.id, m.amount, m.idempotency_key) for m in (credit, debit)] == [(stored[0].id, 1, "c"),
                                                                            (stored[1].id, -1, "d")]
    assert selectors.wallet_balance(owner_id="sel_a", currency="usd") == 0


def test_a_long_reason_is_kept_cut_to_its_column():
    reason = "r" * 250
    movement, created = wallet_credit(owner_id="sel_a", currency="usd", amount=5, idempotency_key="c", reason=reason)
    assert created and movement.reason == reason[:200]
    assert WalletMovement.objects.get().reason == reason[:200]


def test_a_balance_is_one_owners_in_one_currency():
    wallet_credit(owner_id="sel_a", currency="usd", amount=100, idempotency_key="a-usd", reason="t")
    wallet_credit(owner_id="sel_a", currency="eur", amount=7, idempotency_key="a-eur", reason="t")
    wallet_credit(owner_id="sel_b", currency="usd", amount=30, idempotency_key="b-usd", reason="t")
    assert selectors.wallet_balance(owner_id="sel_b", currency="usd") == 30
    assert selectors.wallet_balance(owner_id="sel_a", currency="eur") == 7
    assert selectors.wallet_balance(owner_id="sel_b", currency="eur") == 0
    assert selectors.wallet_balances() == {("sel_a", "usd"): 100, ("sel_a", "eur"): 7, ("sel_b", "usd"): 30}
