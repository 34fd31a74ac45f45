"""Step 9: the bank's word on its balance. After booking, the closing balance of each bank account's latest
statement, summed per currency, is compared with ``assets:bank``; a difference is a ``bank_balance_mismatch``
break holding both figures (``expected``: the books, ``actual``: the bank).

Checked for the currencies the run's own statements report (an old statement says nothing of today's
books), keyed by the statement's file and currency, so a run repeated adds nothing. Operators resolve it
like any break, or by a correction (``services.corrections``).
"""
from __future__ import annotations

from django.db.models import F

from core.money import format_money, normalize_currency
from ledger import accounts
from ledger import selectors as ledger_selectors
from reconciliation.models import Break, BreakClass, BreakState, SettlementFile

from .scope import RunScope


def _closing_balances(files) -> dict[tuple[str, str], tuple[int, SettlementFile, dict]]:
    """``{(account, currency): (closing balance, file, statement)}``, the last statement seen of each, in the
    order the files' batches closed."""
    latest: dict[tuple[str, str], tuple[int, SettlementFile, dict]] = {}
    for settlement_file in files.order_by(F("settled_at").asc(nulls_first=True), "id"):
        for statement in settlement_file.statements or ():
            if statement.get("closing_balance") is None or not statement.get("currency"):
                continue
            key = (statement.get("account") or "", normalize_currency(statement["currency"]))
            latest[key] = (int(statement["closing_balance"]), settlement_file, statement)
    return latest


def bank_balance_check(scope: RunScope) -> list[Break]:
    """A ``bank_balance_mismatch`` break per currency of this run's statements where the bank and the books
    disagree (new ones returned); runs after ``booking``."""
    statements = SettlementFile.objects.exclude(statements=[]).only("id", "format", "statements", "settled_at")
    checked = {currency for (_, currency) in _closing_balances(statements.filter(pk__in=scope.files))}
    if not checked:
        return []
    latest = _closing_balances(statements.filter(reconciled_at__isnull=False))
    found = []
    for currency in sorted(checked):
        bank = [(closing, settlement_file, statement)
                for (_, each), (closing, settlement_file, statement) in latest.items() if each == currency]
        closing = sum(figure for figure, _, _ in bank)
        books = ledger_selectors.account_balance(code=accounts.BANK, currency=currency)
        if closing == books:
            continue
        _, settlement_file, statement = max(bank, key=lambda entry: entry[1].pk)
        statement_id = statement.get("statement_id") or "-"
        brk, created = Break.objects.get_or_create(
            key=f"{BreakClass.BANK_BALANCE_MISMATCH}:statement:{settlement_file.pk}:{currency}",
            defaults={
                "break_class": BreakClass.BANK_BALANCE_MISMATCH, "state": BreakState.OPEN, "run_id": scope.run_id,
                "last_seen_run_id": scope.run_id, "file_format": settlement_file.format,
                "occurred_on": settlement_file.settled_at.date() if settlement_file.settled_at else None,
                "expected_amount": books, "expected_currency": currency, "actual_amount": closing,
                "actual_currency": currency, "object_kind": "bank_statement", "object_id": statement_id[:64],
                "description": (f"The bank's statements close at {format_money(closing, currency)}"
                                f" ({len(bank)} account(s), latest {statement_id}); {accounts.BANK} holds"
                                f" {format_money(books, currency)}: a difference of"
                                f" {format_money(closing - books, currency)}."),
            },
        )
        if created:
            found.append(brk)
        else:
            Break.objects.filter(pk=brk.pk).update(last_seen_run_id=scope.run_id)
    return found
