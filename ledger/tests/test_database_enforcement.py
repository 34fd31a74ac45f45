"""The ledger's guarantees hold in PostgreSQL itself, whatever the application does."""

import pytest
from django.db import DatabaseError, connection, transaction

from ledger import accounts, selectors
from ledger.exceptions import UnbalancedTransaction
from ledger.models import Entry, LedgerTransaction
from ledger.services import EntrySpec, ledger_transaction_post, ledger_transaction_reverse

pytestmark = pytest.mark.django_db(transaction=True)


def _post(key="t1", amount=500, currency="usd"):
    return ledger_transaction_post(
        idempotency_key=key,
        description="test capture",
        entries=[
            EntrySpec(accounts.PSP_RECEIVABLE, currency, amount),
            EntrySpec(accounts.seller_payable("sel_1"), currency, -amount),
        ],
    )


def test_posting_is_idempotent_per_key():
    first, created = _post()
    again, created_again = _post()
    assert created and not created_again and first.pk == again.pk
    assert Entry.objects.count() == 2
    assert selectors.trial_balance() == {"usd": 0}
    assert selectors.account_balance(code=accounts.PSP_RECEIVABLE, currency="usd") == 500


def test_python_refuses_an_unbalanced_posting():
    with pytest.raises(UnbalancedTransaction):
        ledger_transaction_post(
            idempotency_key="bad",
            description="bad",
            entries=[
                EntrySpec(accounts.PSP_RECEIVABLE, "usd", 500),
                EntrySpec(accounts.seller_payable("s"), "usd", -499),
            ],
        )
    assert LedgerTransaction.objects.count() == 0


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_entry SET amount = amount + 1",
        "DELETE FROM ledger_entry",
        "UPDATE ledger_ledgertransaction SET description = 'rewritten'",
        "DELETE FROM ledger_ledgertransaction",
    ],
)
def test_raw_sql_cannot_update_or_delete(statement):
    _post()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cur:
        cur.execute(statement)
    assert Entry.objects.count() == 2
    assert sorted(Entry.objects.values_list("amount", flat=True)) == [-500, 500]


def _raw_insert(entries):
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            "INSERT INTO ledger_account (code, name, kind, created_at) VALUES "
            "('assets:raw', 'raw', 'asset', now()) ON CONFLICT (code) DO NOTHING"
        )
        cur.execute("SELECT id FROM ledger_account WHERE code = 'assets:raw'")
        account_id = cur.fetchone()[0]
        cur.execute(
            "INSERT INTO ledger_ledgertransaction (idempotency_key, description, reference, occurred_at, "
            "created_at) VALUES ('raw', 'raw', '', now(), now()) RETURNING id"
        )
        txn_id = cur.fetchone()[0]
        for currency, amount in entries:
            cur.execute(
                "INSERT INTO ledger_entry (transaction_id, account_id, currency, amount) VALUES (%s, %s, %s, %s)",
                [txn_id, account_id, currency, amount],
            )


@pytest.mark.parametrize(
    "entries",
    [
        [("usd", 100), ("usd", -99)],  # off by one
        [("usd", 100), ("eur", -100)],  # balanced in total, not per currency
        [("usd", 100)],  # a single entry
        [],  # a transaction with no entries
    ],
)
def test_database_refuses_to_commit_an_unbalanced_transaction(entries):
    with pytest.raises(DatabaseError, match="balance|entries"):
        _raw_insert(entries)
    assert LedgerTransaction.objects.filter(idempotency_key="raw").count() == 0


def test_raw_balanced_insert_commits():
    _raw_insert([("usd", 100), ("usd", -100)])
    assert LedgerTransaction.objects.filter(idempotency_key="raw").count() == 1


def test_reversal_is_a_new_transaction_that_cancels_the_original():
    _post(key="capture", amount=700)
    reversal, created = ledger_transaction_reverse(
        original_key="capture", idempotency_key="capture:reversal", description="reversal"
    )
    assert created
    assert LedgerTransaction.objects.count() == 2
    assert selectors.account_balance(code=accounts.PSP_RECEIVABLE, currency="usd") == 0
    assert selectors.trial_balance() == {"usd": 0}
