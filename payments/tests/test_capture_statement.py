"""A capture's posting and its wallet credit written by one statement (``postings.capture_post``): the ledger's
CTEs, then the wallet's, whose movement (and so the wallet row's lock) waits on the posting's entries."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.db import _parts_statement, statement_parts_run
from ledger import accounts
from ledger.models import Entry, LedgerTransaction
from ledger.services import EntrySpec, ledger_posting_prepare
from payments.services.postings import capture_post
from payments.tests.factories import PaymentOrderFactory
from wallet.models import Wallet, WalletMovement, WalletSlot
from wallet.services import wallet_credit, wallet_credit_prepare, wallet_debit, wallet_move_prepare

pytestmark = pytest.mark.django_db


def _parts(key: str = "k", seller: str = "s1"):
    posting = ledger_posting_prepare(idempotency_key=key, description="d", entries=[
        EntrySpec(accounts.PSP_RECEIVABLE, "usd", 5), EntrySpec(accounts.seller_payable(seller), "usd", -5)])
    credit = wallet_credit_prepare(owner_id=seller, currency="usd", amount=5, idempotency_key=key, reason="r",
                                   after=posting.written)
    return posting, credit


def test_the_movement_is_inserted_only_once_the_posting_ran():
    posting, credit = _parts()
    sql = _parts_statement((posting.ctes, credit.ctes), (posting.columns, credit.columns))
    with connection.cursor() as cur:
        cur.execute("EXPLAIN " + sql, [*posting.params, *credit.params])
        plan = "\n".join(r[0] for r in cur.fetchall())
    movement = plan[plan.index("CTE movement"):plan.index("CTE free_slot")]
    assert "One-Time Filter" in movement and "CTE Scan on entries" in movement


def test_missing_account_and_wallet_are_opened_and_the_statement_run_again():
    posting, credit = _parts()
    posted, credited = statement_parts_run(posting, credit)
    posting.check(posted)
    assert credited[0] is not None and credited[1] is True
    transaction = LedgerTransaction.objects.get(idempotency_key="k")
    assert sorted(Entry.objects.filter(transaction=transaction).values_list("amount", flat=True)) == [-5, 5]
    assert Wallet.objects.with_total().get(owner_id="s1", currency="usd").total == 5
    posted, credited = statement_parts_run(*_parts())  # the same keys again: nothing more
    assert posted[0] is None and credited[0] is None
    assert Wallet.objects.with_total().get(owner_id="s1", currency="usd").total == 5
    assert WalletMovement.objects.filter(idempotency_key="k").count() == 1


def test_a_capture_posts_and_credits_once():
    order = PaymentOrderFactory(amount=1234, currency="usd")
    capture_post(order)
    capture_post(order)
    transaction = LedgerTransaction.objects.get(idempotency_key=f"payment_order:{order.id}:capture")
    assert Entry.objects.filter(transaction=transaction).count() == 2
    assert Wallet.objects.with_total().get(owner_id=order.seller_id, currency="usd").total == 1234


def _run_with_the_credit_failing(*, key: str, seller: str, step: str) -> None:
    """The capture's posting and credit in one ``statement_parts_run``, the credit's ``step`` (``open_missing``,
    ``finish``) raising: the run raises."""
    posting, credit = _parts(key=key, seller=seller)

    def fails(*args):
        raise RuntimeError(f"the credit's {step} failed")

    object.__setattr__(credit, step, fails)
    with pytest.raises(RuntimeError):
        statement_parts_run(posting, credit)


@pytest.mark.django_db(transaction=True)
def test_a_first_run_commits_nothing_when_the_second_cannot_follow():
    """Outside a caller's transaction, the run that found the wallet missing (its posting written) and the run
    after it are one transaction: a failure between them leaves no posting without its movement."""
    from ledger.services import _accounts_ensure

    _accounts_ensure([accounts.PSP_RECEIVABLE, accounts.seller_payable("s2")])  # the posting's first run writes
    _run_with_the_credit_failing(key="k2", seller="s2", step="open_missing")
    assert not LedgerTransaction.objects.filter(idempotency_key="k2").exists()
    assert not Wallet.objects.filter(owner_id="s2").exists()


def test_a_credits_statement_leaves_the_wallets_row_out():
    """The common credit lands in a slot: its part carries none of the row's CTEs (the lock, the fold, the
    balance), which it would leave empty; a debit's still does."""
    _posting, credit = _parts()
    assert "free_slot" in credit.ctes and "locked" not in credit.ctes and "folded" not in credit.ctes
    assert "UPDATE wallet_wallet SET" not in credit.ctes
    debit = wallet_move_prepare(owner_id="s1", currency="usd", amount=-5, idempotency_key="d", reason="r")
    assert "locked" in debit.ctes and "folded" in debit.ctes


def _below_zero(seller: str) -> None:
    wallet_credit(owner_id=seller, currency="usd", amount=100, idempotency_key="c0", reason="r", held=False)
    wallet_debit(owner_id=seller, currency="usd", amount=300, idempotency_key="d0", reason="r")


def test_a_capture_no_slot_takes_moves_the_wallets_row_in_its_transaction():
    """Below zero the wallet's slots are closed: the capture's credit moves the row (a second statement), the
    episode goes on against the whole balance, and ends on the row once the balance is back to zero."""
    order = PaymentOrderFactory(amount=150, currency="usd")
    seller = order.seller_id
    _below_zero(seller)
    with CaptureQueriesContext(connection) as queries:
        capture_post(order)
    assert len([q for q in queries if "FOR NO KEY UPDATE OF w" in q["sql"]]) == 1  # the row's own statement
    wallet = Wallet.objects.with_total().get(owner_id=seller, currency="usd")
    assert (wallet.balance, wallet.total) == (-50, -50) and wallet.negative_since is not None
    assert not WalletSlot.objects.filter(wallet=wallet).exclude(balance=0).exists()
    capture_post(PaymentOrderFactory(amount=50, currency="usd", seller=order.seller))
    wallet.refresh_from_db()
    assert (wallet.balance, wallet.negative_since) == (0, None)
    assert not WalletSlot.objects.filter(wallet=wallet, open=False).exists()


@pytest.mark.django_db(transaction=True)
def test_a_credit_whose_row_cannot_move_commits_nothing():
    """The row's statement runs in the statement's transaction: when it fails, neither the posting nor the
    movement the first statement wrote is committed."""
    _below_zero("s4")
    _run_with_the_credit_failing(key="k4", seller="s4", step="finish")
    assert not LedgerTransaction.objects.filter(idempotency_key="k4").exists()
    assert not WalletMovement.objects.filter(idempotency_key="k4").exists()
