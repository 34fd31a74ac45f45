"""The ledger's accounts, reversals and reads, through its services and selectors (docs/mutation.md)."""
import pytest

from ledger import accounts, selectors
from ledger.exceptions import UnknownAccount
from ledger.models import Account, LedgerTransaction
from ledger.services import EntrySpec, ledger_account_get, ledger_transaction_post, ledger_transaction_reverse

pytestmark = pytest.mark.django_db


def capture(key: str, seller: str = "sel_1", amount: int = 1000, reference: str = "ord_1"):
    return ledger_transaction_post(idempotency_key=key, description=f"capture {key}", reference=reference, entries=[
        EntrySpec(accounts.PSP_RECEIVABLE, "usd", amount), EntrySpec(accounts.seller_payable(seller), "usd", -amount)])


def test_the_fixed_accounts_open_with_their_name_and_kind_once():
    bank = ledger_account_get(code=accounts.BANK)
    assert (bank.code, bank.name, bank.kind) == ("assets:bank", "Bank account", "asset")
    fees = ledger_account_get(code=accounts.PSP_FEES)
    assert (fees.name, fees.kind) == ("PSP fees", "expense")
    assert ledger_account_get(code=accounts.BANK).pk == bank.pk
    assert Account.objects.filter(code=accounts.BANK).count() == 1


def test_a_seller_payable_opens_on_first_use_as_a_liability_named_for_the_seller():
    payable = ledger_account_get(code=accounts.seller_payable("sel_42"))
    assert (payable.name, payable.kind) == ("Payable to seller sel_42", "liability")


def test_an_unknown_account_is_refused_and_not_opened():
    with pytest.raises(UnknownAccount) as refused:
        ledger_account_get(code="assets:somewhere")
    assert str(refused.value) == "assets:somewhere"
    assert not Account.objects.filter(code="assets:somewhere").exists()


def test_accounts_opened_by_a_posting_carry_their_names():
    capture("k1", seller="sel_7")
    assert Account.objects.get(code=accounts.seller_payable("sel_7")).name == "Payable to seller sel_7"
    assert Account.objects.get(code=accounts.PSP_RECEIVABLE).kind == "asset"


def test_a_reversal_keeps_the_originals_reference_unless_given_one_and_cancels_it():
    capture("k1", reference="ord_1")
    reversed_, created = ledger_transaction_reverse(original_key="k1", idempotency_key="k1:reversal",
                                                   description="reversal")
    assert created and reversed_.reference == "ord_1"
    assert LedgerTransaction.objects.get(idempotency_key="k1:reversal").reference == "ord_1"
    capture("k2", reference="ord_2")
    other, _ = ledger_transaction_reverse(original_key="k2", idempotency_key="k2:reversal", description="reversal",
                                          reference="rf_9")
    assert other.reference == "rf_9"
    assert selectors.trial_balance() == {"usd": 0}
    assert selectors.account_balance(code=accounts.PSP_RECEIVABLE, currency="usd") == 0


def test_balances_by_account_without_a_prefix_is_every_account():
    capture("k1", seller="sel_1", amount=1000)
    capture("k2", seller="sel_2", amount=300)
    assert selectors.balances_by_account() == {
        (accounts.PSP_RECEIVABLE, "usd"): 1300,
        (accounts.seller_payable("sel_1"), "usd"): -1000,
        (accounts.seller_payable("sel_2"), "usd"): -300,
    }


def test_posting_keys_with_a_prefix_and_no_suffix_are_all_of_that_prefix():
    capture("payment_order:a:capture")
    capture("payment_order:b:capture")
    capture("refund:c")
    assert sorted(selectors.posting_keys_with_prefix(prefix="payment_order:")) == [
        "payment_order:a:capture", "payment_order:b:capture"]
