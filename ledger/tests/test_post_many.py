"""Many postings in one statement (a payout run's): each once per its key, balanced, its accounts opened."""
import pytest
from django.db import transaction

from ledger import accounts, selectors
from ledger.exceptions import LedgerError, UnbalancedTransaction
from ledger.models import LedgerTransaction
from ledger.services import EntrySpec, PostingSpec, ledger_transaction_post, ledger_transactions_post

pytestmark = pytest.mark.django_db


def payout(key, seller, amount, currency="usd"):
    return PostingSpec(idempotency_key=key, description=f"payout {key}", reference=key, entries=[
        EntrySpec(accounts.seller_payable(seller), currency, amount),
        EntrySpec(accounts.PAYOUTS_IN_TRANSIT, currency, -amount)])


def test_each_posting_once_per_key_with_its_entries():
    ledger_transaction_post(idempotency_key="k0", description="before", entries=payout("x", "sel_a", 5).entries)
    posted = ledger_transactions_post(postings=[payout("k0", "sel_a", 5), payout("k1", "sel_a", 100),
                                                payout("k2", "sel_b", 250, "eur")])
    assert posted == {"k1", "k2"}  # k0 was posted before: left as it was
    assert ledger_transactions_post(postings=[payout("k1", "sel_a", 100)]) == set()
    assert selectors.account_balance(code=accounts.seller_payable("sel_a"), currency="usd") == 105
    assert selectors.account_balance(code=accounts.PAYOUTS_IN_TRANSIT, currency="eur") == -250
    assert selectors.entries_by_key(keys=["k2"]) == {"k2": [(accounts.seller_payable("sel_b"), "eur", 250),
                                                            (accounts.PAYOUTS_IN_TRANSIT, "eur", -250)]}
    assert LedgerTransaction.objects.get(idempotency_key="k1").reference == "k1"
    assert ledger_transactions_post(postings=[]) == set()


def test_a_bad_batch_posts_nothing():
    unbalanced = PostingSpec(idempotency_key="k2", description="t", entries=[
        EntrySpec(accounts.PSP_RECEIVABLE, "usd", 5), EntrySpec(accounts.PAYOUTS_IN_TRANSIT, "usd", -4)])
    with pytest.raises(UnbalancedTransaction), transaction.atomic():
        ledger_transactions_post(postings=[payout("k1", "sel_a", 1), unbalanced])
    with pytest.raises(LedgerError, match="one key twice"), transaction.atomic():
        ledger_transactions_post(postings=[payout("k1", "sel_a", 1), payout("k1", "sel_a", 2)])
    assert not LedgerTransaction.objects.exists()
