"""What ``ledger_transaction_post`` hands back and refuses, to the letter (docs/mutation.md: the survivors
of the per-module run in ``ledger/services.py``)."""
import pytest
from django.db import transaction
from django.utils import timezone

from ledger import accounts
from ledger.exceptions import LedgerError, UnbalancedTransaction, UnknownAccount
from ledger.models import Account, LedgerTransaction
from ledger.services import EntrySpec, ledger_transaction_post

pytestmark = pytest.mark.django_db


def entries(amount: int = 1000, seller: str = "sel_1") -> list[EntrySpec]:
    return [EntrySpec(accounts.PSP_RECEIVABLE, "usd", amount),
            EntrySpec(accounts.seller_payable(seller), "usd", -amount)]


def test_the_posting_handed_back_is_the_one_stored():
    when = timezone.now()
    posted, created = ledger_transaction_post(idempotency_key="k1", description="d" * 301, entries=entries(),
                                              reference="ord_1", occurred_at=when)
    stored = LedgerTransaction.objects.get(idempotency_key="k1")
    assert created is True
    assert (posted.pk, posted.idempotency_key, posted.description, posted.reference, posted.occurred_at) == (
        stored.pk, "k1", "d" * 300, "ord_1", when)
    assert stored.description == "d" * 300
    assert posted._state.adding is False and posted._state.db == "default"


def test_a_posting_without_a_reference_stores_an_empty_one():
    posted, _ = ledger_transaction_post(idempotency_key="k2", description="d", entries=entries())
    assert posted.reference == "" == LedgerTransaction.objects.get(idempotency_key="k2").reference


def test_an_entry_of_one_minor_unit_posts():
    posted, created = ledger_transaction_post(idempotency_key="k3", description="d", entries=entries(amount=1))
    assert created and sorted(e.amount for e in posted.entries.all()) == [-1, 1]


def test_a_new_sellers_payable_opens_named_for_the_seller_within_the_posting():
    ledger_transaction_post(idempotency_key="k4", description="d", entries=entries(seller="sel_9"))
    payable = Account.objects.get(code=accounts.seller_payable("sel_9"))
    assert (payable.name, payable.kind) == ("Payable to seller sel_9", "liability")


def test_refusals_say_why():
    # Each in a savepoint of its own: the service joins its caller's transaction, which a refusal spoils.
    with pytest.raises(UnbalancedTransaction, match="^a transaction needs at least two entries$"), \
            transaction.atomic():
        ledger_transaction_post(idempotency_key="r1", description="d", entries=entries()[:1])
    with pytest.raises(LedgerError, match="^entry amount must be a non-zero int, got 0$"), transaction.atomic():
        ledger_transaction_post(idempotency_key="r2", description="d",
                                entries=[EntrySpec(accounts.PSP_RECEIVABLE, "usd", 0), *entries()])
    with pytest.raises(UnbalancedTransaction, match=r"^entries do not balance per currency: "), \
            transaction.atomic():
        ledger_transaction_post(idempotency_key="r3", description="d",
                                entries=[EntrySpec(accounts.PSP_RECEIVABLE, "usd", 5),
                                         EntrySpec(accounts.seller_payable("s"), "usd", -4)])
    with pytest.raises(UnknownAccount, match="^assets:nowhere$"), transaction.atomic():
        ledger_transaction_post(idempotency_key="r4", description="d",
                                entries=[EntrySpec("assets:nowhere", "usd", 5), EntrySpec(accounts.BANK, "usd", -5)])
    assert not LedgerTransaction.objects.filter(idempotency_key__startswith="r").exists()
