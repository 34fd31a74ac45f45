"""The items the settlement-file parsers yield.

Money is always an ``int`` in the currency's minor unit next to a lowercase ISO 4217
code (see ``core.money``); parsers never use ``float``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from reconciliation.record_types import RecordType


@dataclass(frozen=True, slots=True)
class SettlementRecord:
    """One money movement read from a settlement report or a bank statement (``record_type``: one of
    ``record_types.RECORD_TYPES``).

    ``line_number`` is 1-based: the physical line the row starts on for CSV (the
    header counts), the ``Ntry`` ordinal in the file for camt.053 (every record of a
    batch entry shares its entry's ordinal) and the transaction ordinal in the file
    for MT940.
    """

    line_number: int
    record_type: RecordType
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


class LineRow(NamedTuple):
    """A record or malformed line as a row of ``settlement_line`` (after its file and ordinal)."""

    line_number: int
    record_type: str
    raw_type: str
    psp_reference: str
    source_reference: str
    merchant_reference: str
    payout_reference: str
    currency: str
    gross: int | None
    fee: int | None
    net: int | None
    occurred_at: datetime | None
    source_line: str
    error: str


#: The columns of a line row, in ``settlement_line``'s COPY order.
LINE_ROW_FIELDS = LineRow._fields
_make_row = LineRow._make
_MALFORMED = RecordType.MALFORMED.value


def line_row(item: SettlementRecord | MalformedRecord) -> LineRow:
    """``item`` as a line row; a malformed line's ``record_type`` is ``malformed``.

    Only a malformed line keeps its text (``source_line``): a record is its fields, its file and
    its line number, and a million copies of the file's text would double what an import writes.
    """
    # ``_make`` from a plain tuple: half the cost of the keyword-aware constructor, a million times a file.
    if isinstance(item, MalformedRecord):
        return _make_row((item.line_number, _MALFORMED, "", "", "", "", "", "", None, None, None, None,
                          item.source_line, item.reason))
    return _make_row((item.line_number, item.record_type, item.raw_type or "", item.psp_reference or "",
                      item.source_reference or "", item.merchant_reference or "", item.payout_reference or "",
                      item.currency, item.gross, item.fee, item.net, item.occurred_at, "", ""))


@dataclass(slots=True)
class RenderedLine:
    """A line row as the importing service writes it: ``text``, the row in PostgreSQL's COPY text format
    (tab-separated, newline-ended), with the fields the service sums up on the way."""

    record_type: str
    occurred_at: datetime | None
    payout_reference: str
    currency: str
    fee: int | None
    net: int | None
    text: str
    psp_reference: str = ""


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
    return RenderedLine(row.record_type, row.occurred_at, row.payout_reference, row.currency, row.fee, row.net,
                        "\t".join(values) + "\n", row.psp_reference)


def _copy_text(value: str) -> str:
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value or "\x00" in value:
        value = (value.replace("\x00", "").replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
                 .replace("\r", "\\r"))
    return value
