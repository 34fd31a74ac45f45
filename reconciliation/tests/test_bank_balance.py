"""The bank statement's closing balance against ``assets:bank`` after each reconcile: a break of its own."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from ledger import accounts
from ledger import selectors as ledger_selectors
from payments.audit import money_audit
from psp_sandbox.settlement import write_settlement
from psp_sandbox.store import Store
from reconciliation.importers import iter_records
from reconciliation.importers.records import FileHeader
from reconciliation.models import Break
from reconciliation.services import correction_approve, correction_propose, reconciliation_run, settlement_file_import

from .helpers import bank_statement, fee, row, stripe_report
from .test_corrections import ALICE, BOB, captured

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid_out(tmp_path, now) -> int:
    """A captured order settled and paid out by the PSP; returns the payout's amount."""
    captured(amount=1000, psp_reference="pi_paid")
    net = 1000 - fee(1000)
    settlement_file_import(path=stripe_report(tmp_path / "s.csv", [
        row("charge", gross=1000, fee=fee(1000), pi="pi_paid", created=now - timedelta(hours=2), payout="po_day"),
        row("payout", gross=-net, created=now, source="po_day", payout="po_day"),
    ]), actor="test")
    return net


def reconcile_statement(tmp_path, now, credits) -> None:
    """A camt.053 statement (the sandbox's own generator: opening 0, closing the sum of its credits)."""
    settlement_file_import(path=bank_statement(tmp_path / "bank.xml", now + timedelta(days=1), credits),
                           actor="test")
    reconciliation_run(day=now.date(), actor="test")


def bank_breaks():
    return list(Break.objects.filter(break_class="bank_balance_mismatch"))


def test_a_statement_that_agrees_with_the_books_raises_nothing(tmp_path, now, paid_out):
    reconcile_statement(tmp_path, now, [{"id": "po_day", "currency": "usd", "amount": paid_out}])
    assert ledger_selectors.account_balance(code=accounts.BANK, currency="usd") == paid_out
    assert bank_breaks() == []
    assert not Break.objects.exists()


def test_a_real_difference_is_a_break_with_both_figures_then_corrected(tmp_path, now, paid_out):
    reconcile_statement(tmp_path, now, [{"id": "po_day", "currency": "usd", "amount": paid_out},
                                        {"id": "DEPOSIT-77", "currency": "usd", "amount": 5000}])
    [brk] = bank_breaks()
    assert (brk.state, brk.expected_amount, brk.expected_currency, brk.actual_amount, brk.actual_currency) == (
        "open", paid_out, "usd", paid_out + 5000, "usd")
    assert brk.file_format == "camt053" and brk.object_kind == "bank_statement"
    assert brk.run.stats["breaks"]["bank_balance_mismatch"]["amounts"] == {"usd": 5000}

    reconciliation_run(day=now.date(), actor="test")  # again: nothing new
    assert [b.pk for b in bank_breaks()] == [brk.pk]

    correction = correction_propose(break_id=brk.pk, adjustment="bank_receipt_unbooked",
                                    reason="the PSP's deposit, booked by hand", actor=ALICE)
    assert correction.amount == 5000
    correction_approve(correction_id=correction.pk, reason="seen on the bank's portal", actor=BOB)
    assert ledger_selectors.account_balance(code=accounts.BANK, currency="usd") == paid_out + 5000
    assert Break.objects.get(pk=brk.pk).state == "resolved"
    assert money_audit() == []


def test_a_statement_short_of_the_books_is_a_break(tmp_path, now, paid_out):
    """The bank holds less than the payout booked against it (the statement's own closing balance, edited)."""
    path = bank_statement(tmp_path / "bank.xml", now + timedelta(days=1),
                          [{"id": "po_day", "currency": "usd", "amount": paid_out}])
    closing = f"{paid_out / 100:.2f}</Amt>\n        <CdtDbtInd>CRDT</CdtDbtInd><Dt>"
    assert path.read_text().count(closing) == 1
    path.write_text(path.read_text().replace(closing, f"{(paid_out - 250) / 100:.2f}</Amt>\n"
                                                      "        <CdtDbtInd>CRDT</CdtDbtInd><Dt>"))
    settlement_file_import(path=path, actor="test")
    reconciliation_run(day=now.date(), actor="test")
    [brk] = bank_breaks()
    assert (brk.expected_amount, brk.actual_amount) == (paid_out, paid_out - 250)


def sandbox_charge(store: Store, *, payment_intent: str, amount: int, at: datetime) -> None:
    """A succeeded charge in the sandbox's own store, made at ``at``."""
    store.insert_charge({"id": "ch_" + payment_intent[3:], "payment_intent": payment_intent, "amount": amount,
                         "amount_refunded": 0, "currency": "usd", "status": "succeeded",
                         "created": int(at.timestamp()), "created_at": at.timestamp()})


def test_two_sandbox_days_statements_chain_their_balances_with_no_false_break(tmp_path):
    """The sandbox's second statement opens at the first's closing balance (its bank account's history), so
    the bank's closing balance is all that was paid out, as ``assets:bank`` holds: no ``bank_balance_mismatch``."""
    store = Store(":memory:")
    first = timezone.now().date() - timedelta(days=3)
    days, nets = (first, first + timedelta(days=1)), (1000 - fee(1000), 2500 - fee(2500))
    statements = []
    for n, (day, amount) in enumerate(zip(days, (1000, 2500), strict=True)):
        captured(amount=amount, psp_reference=f"pi_day{n}")
        sandbox_charge(store, payment_intent=f"pi_day{n}", amount=amount,
                       at=datetime(day.year, day.month, day.day, 12, tzinfo=UTC))
    for day in days:
        written = write_settlement(store, {}, {"date": day.isoformat(), "directory": str(tmp_path / str(day))})
        for key in ("settlement_report", "bank_statement"):
            assert settlement_file_import(path=Path(written[key]), actor="test").malformed == 0
        reconciliation_run(day=day, actor="test")
        statements += [item for item in iter_records(Path(written["bank_statement"])) if isinstance(item, FileHeader)]

    assert [(s.opening_balance, s.closing_balance) for s in statements] == [
        (0, nets[0]), (nets[0], nets[0] + nets[1])]
    assert ledger_selectors.account_balance(code=accounts.BANK, currency="usd") == nets[0] + nets[1]
    assert list(Break.objects.values_list("break_class", "description")) == []
    assert money_audit() == []
