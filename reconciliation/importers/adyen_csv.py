"""Adyen "Settlement details report" CSV (classic 30 columns and the 2025 layout).

Columns are read by header name: merchants can reorder and add columns, and newer
reports append columns after ``Reserved10``. A record's ``currency`` is the net
(settlement) currency. ``net`` is ``Net Credit (NC) - Net Debit (NC)``; ``fee`` is
``Commission + Markup + Scheme Fees + Interchange`` (all NC; ``None`` when all four are
empty). ``gross`` is ``Gross Credit (GC) - Gross Debit (GC)`` when the gross currency
is the net currency; when the payment was converted (``Gross Currency`` differs),
``gross`` is the gross in the net currency, ``net + fee``, which is how Adyen derives
net from gross (``gross * exchange rate - fees``). The 2025 fee columns
(``Payment Fees (NC)``, ``DCC Markup (NC)``, ``Gross Fees (NC)``) are not added in:
their overlap with the four classic ones is not documented.
``Creation Date`` is read in the zone of the ``TimeZone`` column (an abbreviation
such as ``PST``/``PDT``, or an IANA name) and converted to UTC.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from reconciliation.record_types import DISPUTE_LINES, RecordType

from .amounts import currency_of, optional_minor_units
from .csv_rows import Columns, CsvRow, iter_csv_rows
from .dates import parse_datetime, zone
from .errors import ImportFormatError, RowError
from .records import MalformedRecord, RenderedLine, SettlementRecord, line_row, render_line_row

REQUIRED_COLUMNS = ("Type", "Net Currency", "Net Debit (NC)", "Net Credit (NC)")
FEE_COLUMNS = ("Commission (NC)", "Markup (NC)", "Scheme Fees (NC)", "Interchange (NC)")

#: Adyen journal ``Type`` (lowercased) -> ``SettlementRecord.record_type``. Other types
#: (PaidOut, CashOut*, ...) are kept as ``unknown`` for an operator to look at.
TYPE_MAP = {
    **dict.fromkeys(
        ("settled", "settledbulk", "settledexternally", "settledexternallywithinfo", "settledininstallments"),
        RecordType.CHARGE,
    ),
    **dict.fromkeys(
        ("refunded", "refundedbulk", "refundedexternally", "refundedexternallywithinfo", "refundedininstallments"),
        RecordType.REFUND,
    ),
    **dict.fromkeys(
        ("chargeback", "chargebackexternally", "chargebackexternallywithinfo", "secondchargeback"),
        RecordType.CHARGEBACK,
    ),
    **dict.fromkeys(
        ("chargebackreversed", "chargebackreversedexternally", "chargebackreversedexternallywithinfo"),
        RecordType.CHARGEBACK_REVERSAL,
    ),
    **dict.fromkeys(
        ("fee", "misccosts", "paymentcost", "authorisationschemefee", "invoicededuction"),
        RecordType.FEE,
    ),
    **dict.fromkeys(("merchantpayout", "bankinstructionreturned"), RecordType.PAYOUT),
    "depositcorrection": RecordType.DEPOSIT_CORRECTION,
    **dict.fromkeys(
        ("balancetransfer", "reserveadjustment", "manualcorrected", "settledreversed", "refundedreversed"),
        RecordType.ADJUSTMENT,
    ),
}
_UNKNOWN = RecordType.UNKNOWN


def iter_adyen(path: Path) -> Iterator[SettlementRecord | MalformedRecord]:
    rows = iter_csv_rows(path)
    header = next(rows, None)
    if header is None:
        raise ImportFormatError(f"{path.name}: empty Adyen report (no header)")
    columns = read_header(header.fields)
    for row in rows:
        try:
            yield _record(row, columns)
        except RowError as exc:
            yield MalformedRecord(row.line_number, str(exc), row.source_line)


def read_header(header: list[str]) -> Columns:
    """The report's columns by name; ``ImportFormatError`` when a required one is missing."""
    return Columns(header, REQUIRED_COLUMNS, "Adyen settlement details")


def render_rows(rows: Iterable[CsvRow], columns: Columns) -> Iterator[RenderedLine]:
    """Rows of a report, each read by ``_record`` and rendered for COPY (a bad row as a malformed line): what
    ``iter_adyen`` yields, as the importing service writes it."""
    for row in rows:
        try:
            yield render_line_row(line_row(_record(row, columns)))
        except RowError as exc:
            yield render_line_row(line_row(MalformedRecord(row.line_number, str(exc), row.source_line)))


def _signed(row: CsvRow, columns: Columns, currency: str, debit: str, credit: str) -> int | None:
    debit_amount = optional_minor_units(columns.get(row, debit), currency, debit)
    credit_amount = optional_minor_units(columns.get(row, credit), currency, credit)
    if debit_amount is None and credit_amount is None:
        return None
    return (credit_amount or 0) - (debit_amount or 0)


def _record(row: CsvRow, columns: Columns) -> SettlementRecord:
    columns.check_width(row)
    get = columns.get
    raw_type = get(row, "Type")
    if raw_type is None:
        raise RowError("column 'Type' is empty")
    currency = currency_of(get(row, "Net Currency"), "Net Currency")
    net = _signed(row, columns, currency, "Net Debit (NC)", "Net Credit (NC)")
    if net is None:
        raise RowError("neither 'Net Debit (NC)' nor 'Net Credit (NC)' has an amount")

    fees = [optional_minor_units(get(row, name), currency, name) for name in FEE_COLUMNS]
    present = [fee for fee in fees if fee is not None]
    fee = sum(present) if present else None

    gross = None
    if get(row, "Gross Debit (GC)") is not None or get(row, "Gross Credit (GC)") is not None:
        gross_currency = currency_of(get(row, "Gross Currency"), "Gross Currency")
        gross = _signed(row, columns, gross_currency, "Gross Debit (GC)", "Gross Credit (GC)")
        if gross_currency != currency:
            gross = net + (fee or 0)

    record_type = TYPE_MAP.get(raw_type.lower(), _UNKNOWN)
    created = get(row, "Creation Date")
    occurred_at = parse_datetime(created, "Creation Date", zone(get(row, "TimeZone")))
    return SettlementRecord(
        line_number=row.line_number,
        record_type=record_type,
        raw_type=raw_type,
        currency=currency,
        gross=gross,
        fee=fee,
        net=net,
        psp_reference=get(row, "Psp Reference"),
        merchant_reference=get(row, "Merchant Reference"),
        payout_reference=get(row, "Batch Number"),
        # A chargeback's own reference (the dispute's id at Adyen); other lines keep the payment's only.
        source_reference=get(row, "Modification Reference") if record_type in DISPUTE_LINES else None,
        occurred_at=occurred_at,
        source_line=row.source_line,
    )
