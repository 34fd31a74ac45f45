"""SWIFT MT940 bank statements, through the ``mt-940`` library (``import mt940``).

Not streamed: the library parses a whole statement from a string, so the file is read
into memory (MT940 files are small: one day of one account per statement). The file
is split on ``:20:`` into statement blocks and each block is parsed on its own, so a
block the library rejects gives one ``MalformedRecord`` and the others still parse.

Per block a ``FileHeader`` comes first (``:20:`` reference and ``:28C:`` number as
statement id, ``:25:`` account, opening ``:60F:``/``:60M:`` and closing
``:62F:``/``:62M:`` balances). Each ``:61:`` line gives a ``bank_credit`` (``C``, or
``RD``: reversal of a debit) or ``bank_debit`` (``D``, or ``RC``: reversal of a credit)
with a signed ``net``; ``line_number`` is the transaction's ordinal in the file.
The library is used with every ``mt940.Options`` fix on (``RC`` signed negative,
lowercase marks, ...). A ``:86:`` after the closing balance is statement-level
information, not part of the last transaction, and is dropped before parsing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import mt940

from reconciliation.record_types import RecordType

from .amounts import currency_of, minor_units
from .dates import midnight_utc
from .errors import RowError
from .records import FileHeader, MalformedRecord, SettlementRecord
from .references import find_payout_reference
from .text import excerpt

FORMAT = "mt940"
_OPTIONS = mt940.Options.all()
_BLOCK_SPLIT = re.compile(r"(?m)^(?=:20:)")
_TAG = re.compile(r"^:(\d{2}[A-Z]?|NS):")
# What mt940 raises on a tag it cannot parse (RuntimeError), a bad number or date.
_LIBRARY_ERRORS = (RuntimeError, ValueError, ArithmeticError, KeyError, TypeError, AttributeError, IndexError)
_CREDIT_MARKS = {"C", "RD"}
_DEBIT_MARKS = {"D", "RC"}


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # SWIFT charset files are often ISO 8859-1


def _drop_trailing_86(block: str) -> str:
    """Remove ``:86:`` fields that follow the closing balance (statement-level info)."""
    out: list[str] = []
    after_closing = dropping = False
    for line in block.splitlines():
        tag = _TAG.match(line)
        if tag:
            name = tag.group(1)
            if name.startswith("62"):
                after_closing = True
            dropping = after_closing and name == "86"
        if not dropping:
            out.append(line)
    return "\n".join(out) + "\n"


def iter_mt940(path: Path) -> Iterator[FileHeader | SettlementRecord | MalformedRecord]:
    text = _read_text(path)
    ordinal = 0
    line = 1
    for block in _BLOCK_SPLIT.split(text):
        block_line, line = line, line + block.count("\n")
        if not block.strip().startswith(":20:"):
            continue  # ABN AMRO / ING envelope lines before the first :20:, or trailer
        statement = mt940.models.Transactions(options=_OPTIONS)
        try:
            statement.parse(_drop_trailing_86(block))
        except _LIBRARY_ERRORS as exc:
            yield MalformedRecord(
                ordinal + 1,
                f"statement at line {block_line} could not be parsed: {exc}",
                excerpt(block),
            )
            continue
        try:
            yield _header(statement)
        except RowError as exc:
            yield MalformedRecord(ordinal + 1, f"statement at line {block_line}: {exc}", excerpt(block))
        for transaction in statement:
            ordinal += 1
            try:
                yield _record(transaction.data, ordinal)
            except RowError as exc:
                yield MalformedRecord(ordinal, str(exc), _source(transaction.data))


def _balance(data: dict[str, Any], *keys: str) -> int | None:
    for key in keys:
        balance = data.get(key)
        amount = getattr(balance, "amount", None)
        if isinstance(amount, mt940.models.Amount):
            currency = currency_of(amount.currency, f"{key} currency")
            return minor_units(amount.amount, currency, key)
    return None


def _header(statement: mt940.models.Transactions) -> FileHeader:
    data = statement.data
    reference = data.get("transaction_reference")
    number = "/".join(p for p in (data.get("statement_number"), data.get("sequence_number")) if p)
    statement_id = " ".join(p for p in (reference, number) if p) or None
    currency = currency_of(statement.currency, "statement currency") if statement.currency else None
    return FileHeader(
        format=FORMAT,
        statement_id=statement_id,
        account=data.get("account_identification"),
        currency=currency,
        opening_balance=_balance(data, "final_opening_balance", "intermediate_opening_balance", "opening_balance"),
        closing_balance=_balance(data, "final_closing_balance", "intermediate_closing_balance", "closing_balance"),
    )


def _clean(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = " ".join(value.split())
    return value or None


def _source(data: dict[str, Any]) -> str:
    amount = data.get("amount")
    parts = [
        f":61: {data.get('date')}",
        str(data.get("status") or ""),
        str(getattr(amount, "amount", "")),
        str(getattr(amount, "currency", "") or ""),
        _clean(data.get("customer_reference")) or "",
        f"//{data['bank_reference']}" if data.get("bank_reference") else "",
        "|",
        _clean(data.get("purpose")) or _clean(data.get("transaction_details")) or "",
    ]
    return excerpt(" ".join(p for p in parts if p))


def _record(data: dict[str, Any], ordinal: int) -> SettlementRecord:
    amount = data.get("amount")
    if not isinstance(amount, mt940.models.Amount):
        raise RowError(":61: has no amount")
    currency = currency_of(amount.currency, "currency")
    net = minor_units(amount.amount, currency, ":61: amount")
    mark = str(data.get("status") or "").upper()
    if mark in _CREDIT_MARKS:
        record_type = RecordType.BANK_CREDIT
    elif mark in _DEBIT_MARKS:
        record_type = RecordType.BANK_DEBIT
    else:
        raise RowError(f":61: debit/credit mark is not C, D, RC or RD: {mark!r}")
    if (record_type == RecordType.BANK_CREDIT) != (net >= 0) and net != 0:
        raise RowError(f":61: mark {mark} does not match the amount's sign {amount.amount}")

    customer_reference = _clean(data.get("customer_reference"))
    if customer_reference:
        # German banks prefix the customer reference with "KREF+"; "NONREF" is "none".
        customer_reference = _clean(customer_reference.removeprefix("KREF+"))
        if customer_reference and customer_reference.upper() == "NONREF":
            customer_reference = None
    purpose = _clean(data.get("purpose"))
    details = _clean(data.get("transaction_details"))
    end_to_end = _clean(data.get("end_to_end_reference"))
    booked: date | None = data.get("entry_date") or data.get("date")
    return SettlementRecord(
        line_number=ordinal,
        record_type=record_type,
        raw_type=mark,
        currency=currency,
        gross=None,
        fee=None,
        net=net,
        psp_reference=_clean(data.get("bank_reference")),
        merchant_reference=end_to_end or customer_reference or purpose or details,
        payout_reference=find_payout_reference([_clean(v) for v in data.values() if isinstance(v, str)]),
        occurred_at=midnight_utc(booked) if booked else None,
        source_line=_source(data),
    )
