"""The items the settlement-file parsers yield.

Money is always an ``int`` in the currency's minor unit next to a lowercase ISO 4217
code (see ``core.money``); parsers never use ``float``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

#: Every normalized ``SettlementRecord.record_type``.
RECORD_TYPES = frozenset(
    {
        "charge",
        "refund",
        "chargeback",
        "chargeback_reversal",
        "fee",
        "payout",
        "adjustment",
        "deposit_correction",
        "bank_credit",
        "bank_debit",
        "unknown",
    }
)


@dataclass(frozen=True, slots=True)
class SettlementRecord:
    """One money movement read from a settlement report or a bank statement.

    ``line_number`` is 1-based: the physical line the row starts on for CSV (the
    header counts), the ``Ntry`` ordinal in the file for camt.053 (every record of a
    batch entry shares its entry's ordinal) and the transaction ordinal in the file
    for MT940.
    """

    line_number: int
    record_type: str
    raw_type: str
    currency: str
    gross: int | None
    fee: int | None
    net: int
    psp_reference: str | None
    merchant_reference: str | None
    payout_reference: str | None
    occurred_at: datetime | None
    source_line: str
    #: The row's own object id when the format has one (Stripe ``source_id``: ``re_...``
    #: for a refund, while ``psp_reference`` is its payment intent).
    source_reference: str | None = None


@dataclass(frozen=True, slots=True)
class MalformedRecord:
    """A line (or entry) that could not be read; the parser went on with the next."""

    line_number: int
    reason: str
    source_line: str


@dataclass(frozen=True, slots=True)
class FileHeader:
    """Statement-level facts, yielded before the statement's records."""

    format: str
    statement_id: str | None
    account: str | None
    currency: str | None
    opening_balance: int | None
    closing_balance: int | None


#: The order of a line row: a record or malformed line as a flat tuple.
LINE_ROW_FIELDS = (
    "line_number", "record_type", "raw_type", "psp_reference", "source_reference", "merchant_reference",
    "payout_reference", "currency", "gross", "fee", "net", "occurred_at", "source_line", "error",
)
LineRow = tuple


def line_row(item: SettlementRecord | MalformedRecord) -> LineRow:
    """``item`` as a line row (``LINE_ROW_FIELDS``); a malformed line's ``record_type`` is ``"malformed"``.

    Only a malformed line keeps its text (``source_line``): a record is its fields, its file and
    its line number, and a million copies of the file's text would double what an import writes.
    """
    if isinstance(item, MalformedRecord):
        return (item.line_number, "malformed", "", "", "", "", "", "", None, None, None, None, item.source_line,
                item.reason)
    return (item.line_number, item.record_type, item.raw_type or "", item.psp_reference or "",
            item.source_reference or "", item.merchant_reference or "", item.payout_reference or "", item.currency,
            item.gross, item.fee, item.net, item.occurred_at, "", "")


#: ``(record_type, occurred_at, payout_reference, currency, fee, net, text)``: a line row as the
#: importing service writes it (``text``: its ``LINE_ROW_FIELDS`` in PostgreSQL's COPY text
#: format, tab-separated, newline-ended), with what the service sums up on the way.
RenderedLine = tuple


def render_line_row(row: LineRow) -> RenderedLine:
    """``row`` in COPY text format: ``\\N`` for ``None``, backslash escapes, NUL dropped (text cannot hold it)."""
    values = []
    for value in row:
        if value is None:
            values.append("\\N")
        elif isinstance(value, str):
            values.append(_copy_text(value))
        elif isinstance(value, datetime):
            values.append(value.isoformat())
        else:
            values.append(str(value))
    return row[1], row[11], row[6], row[7], row[9], row[10], "\t".join(values) + "\n"


def _copy_text(value: str) -> str:
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value or "\x00" in value:
        value = (value.replace("\x00", "").replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
                 .replace("\r", "\\r"))
    return value
