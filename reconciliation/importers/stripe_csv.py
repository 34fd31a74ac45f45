"""Stripe "Payout reconciliation" report, itemized (``payout_reconciliation.itemized.*``).

Columns are read by header name. Amounts are major-unit decimal strings; ``gross`` and
``net`` are signed from the merchant's point of view and ``fee`` is Stripe's fee as a
positive cost, which is already the ``SettlementRecord`` convention, so they are kept
as written. Timestamps (``created_utc`` or ``created``, a payouts report's ``effective_at``) are UTC.

Connect: the platform's report carries its transfers to connected accounts (``transfer``, negative) and
their reversals (``transfer_reversal``); a connected account's report (a ``connected_account`` column,
e.g. ``connected_account_payouts.itemized``) carries that account's payouts to its bank. A ``payout`` or
``payout_reversal`` row with a connected account is a seller's payout or its failure
(``CONNECTED_CATEGORY_TYPES``), never the platform's own payout to us.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from reconciliation.record_types import RecordType

from .amounts import currency_of, minor_units
from .csv_rows import Columns, CsvRow, iter_csv_rows
from .dates import parse_datetime
from .errors import ImportFormatError, RowError
from .records import MalformedRecord, RenderedLine, SettlementRecord, line_row, render_line_row

REQUIRED_COLUMNS = ("currency", "gross", "fee", "net", "reporting_category")

#: Stripe ``reporting_category`` -> ``SettlementRecord.record_type``. Anything else
#: (topup, issuing_*, platform_earning, ...) is kept as ``"unknown"``.
CATEGORY_TYPES = {
    "charge": RecordType.CHARGE,
    "refund": RecordType.REFUND,
    "dispute": RecordType.CHARGEBACK,
    "dispute_reversal": RecordType.CHARGEBACK_REVERSAL,
    "fee": RecordType.FEE,
    "network_cost": RecordType.FEE,
    "tax": RecordType.FEE,
    "payout": RecordType.PAYOUT,
    "payout_reversal": RecordType.PAYOUT,
    "transfer": RecordType.TRANSFER,
    "transfer_reversal": RecordType.TRANSFER_REVERSAL,
    "adjustment": RecordType.ADJUSTMENT,
    "other_adjustment": RecordType.ADJUSTMENT,
    "charge_failure": RecordType.ADJUSTMENT,
    "refund_failure": RecordType.REFUND_FAILURE,
    "partial_capture_reversal": RecordType.ADJUSTMENT,
    "risk_reserved_funds": RecordType.ADJUSTMENT,
    "connect_reserved_funds": RecordType.ADJUSTMENT,
    "unreconciled_customer_funds": RecordType.ADJUSTMENT,
}

#: The same categories on a row of a connected account (its ``connected_account`` column set): its payout to the
#: seller's bank, and that payout failed (the money back in the connected account).
CONNECTED_CATEGORY_TYPES = {
    "payout": RecordType.SELLER_PAYOUT,
    "payout_reversal": RecordType.SELLER_PAYOUT_FAILURE,
}

_UNKNOWN, _PAYOUT = RecordType.UNKNOWN, RecordType.PAYOUT  # read per row: a module global is cheaper
_METADATA_RE = re.compile(r"^\w*metadata\[(.+)\]$")
_ORDER_ID_KEY = "payment_order_id"


def iter_stripe(path: Path) -> Iterator[SettlementRecord | MalformedRecord]:
    rows = iter_csv_rows(path)
    columns, layout = _header(path, rows)
    for row in rows:
        try:
            yield _record(row, columns, layout)
        except RowError as exc:
            yield MalformedRecord(row.line_number, str(exc), row.source_line)


def iter_stripe_lines(path: Path) -> Iterator[RenderedLine]:
    """What ``iter_stripe`` yields, rendered for COPY (``records.RenderedLine``)."""
    rows = iter_csv_rows(path)
    columns, layout = _header(path, rows)
    return render_rows(rows, columns, layout)


def render_rows(rows: Iterable[CsvRow], columns: Columns, layout: StripeLayout) -> Iterator[RenderedLine]:
    """Rows of a report, each read by ``_record`` and rendered for COPY (a bad row as a malformed line)."""
    for row in rows:
        try:
            yield render_line_row(line_row(_record(row, columns, layout)))
        except RowError as exc:
            yield render_line_row(line_row(MalformedRecord(row.line_number, str(exc), row.source_line)))


def _header(path: Path, rows: Iterator[CsvRow]) -> tuple[Columns, StripeLayout]:
    header = next(rows, None)
    if header is None:
        raise ImportFormatError(f"{path.name}: empty Stripe report (no header)")
    return read_header(header.fields)


def read_header(header: list[str]) -> tuple[Columns, StripeLayout]:
    """The report's columns by name (``ImportFormatError`` when a required one is missing) and their positions."""
    columns = Columns(header, REQUIRED_COLUMNS, "Stripe")
    metadata = [name for name in columns.names if _METADATA_RE.match(name)]
    order_columns = [n for n in metadata if _METADATA_RE.match(n).group(1) == _ORDER_ID_KEY]
    other_metadata = [n for n in metadata if n not in order_columns]
    return columns, StripeLayout(columns, [*order_columns, *other_metadata])


class StripeLayout:
    """Column positions, looked up once per file (a report can have millions of rows). ``merchant_columns``:
    the metadata columns to read our order id from, ``payment_order_id`` first."""

    def __init__(self, columns: Columns, merchant_columns: list[str]) -> None:
        at = columns.position
        self.category, self.currency, self.net = at("reporting_category"), at("currency"), at("net")
        self.gross, self.fee = at("gross"), at("fee")
        self.created = [p for p in (at("created_utc"), at("created"), at("effective_at")) if p is not None]
        self.source_id = at("source_id")
        self.psp = [p for p in (at("payment_intent_id"), at("charge_id"), self.source_id) if p is not None]
        self.payout = [p for p in (at("automatic_payout_id"), at("payout_id")) if p is not None]
        self.merchant = [p for p in (*(at(n) for n in merchant_columns), at("description")) if p is not None]
        self.connected_account = at("connected_account")


def _first(fields: list[str], positions: list[int]) -> str | None:
    size = len(fields)
    for position in positions:
        if position < size:
            value = fields[position].strip()
            if value:
                return value
    return None


def _record(row: CsvRow, columns: Columns, layout: StripeLayout) -> SettlementRecord:
    columns.check_width(row)
    fields = row.fields
    category = _first(fields, [layout.category])
    if category is None:
        raise RowError("column 'reporting_category' is empty")
    currency = currency_of(_first(fields, [layout.currency]), "currency")
    net = _first(fields, [layout.net])
    if net is None:
        raise RowError("column 'net' is empty")
    source_id = _first(fields, [layout.source_id]) if layout.source_id is not None else None
    record_type = CATEGORY_TYPES.get(category.lower(), _UNKNOWN)
    if layout.connected_account is not None and _first(fields, [layout.connected_account]):
        record_type = CONNECTED_CATEGORY_TYPES.get(category.lower(), record_type)
    payout = _first(fields, layout.payout)
    if payout is None and record_type == _PAYOUT and source_id and source_id.startswith("po_"):
        payout = source_id
    gross = _first(fields, [layout.gross])
    fee = _first(fields, [layout.fee])
    return SettlementRecord(
        line_number=row.line_number,
        record_type=record_type,
        raw_type=category,
        currency=currency,
        gross=None if gross is None else minor_units(gross, currency, "gross"),
        fee=None if fee is None else minor_units(fee, currency, "fee"),
        net=minor_units(net, currency, "net"),
        psp_reference=_first(fields, layout.psp),
        merchant_reference=_first(fields, layout.merchant),
        payout_reference=payout,
        occurred_at=parse_datetime(_first(fields, layout.created), "created"),
        source_line=row.source_line,
        source_reference=source_id,
    )
