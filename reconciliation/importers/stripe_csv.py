"""Stripe "Payout reconciliation" report, itemized (``payout_reconciliation.itemized.*``).

Columns are read by header name. Amounts are major-unit decimal strings; ``gross`` and
``net`` are signed from the merchant's point of view and ``fee`` is Stripe's fee as a
positive cost, which is already the ``SettlementRecord`` convention, so they are kept
as written. Timestamps (``created_utc`` or ``created``) are UTC.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from ._base import (
    Columns,
    CsvRow,
    RowError,
    currency_of,
    first,
    iter_csv_rows,
    minor_units,
    optional_minor_units,
    parse_datetime,
)
from .errors import ImportFormatError
from .records import MalformedRecord, SettlementRecord

REQUIRED_COLUMNS = ("currency", "gross", "fee", "net", "reporting_category")

#: Stripe ``reporting_category`` -> ``SettlementRecord.record_type``. Anything else
#: (transfer, topup, issuing_*, platform_earning, ...) is kept as ``"unknown"``.
CATEGORY_TYPES = {
    "charge": "charge",
    "refund": "refund",
    "dispute": "chargeback",
    "dispute_reversal": "chargeback_reversal",
    "fee": "fee",
    "network_cost": "fee",
    "tax": "fee",
    "payout": "payout",
    "payout_reversal": "payout",
    "adjustment": "adjustment",
    "other_adjustment": "adjustment",
    "charge_failure": "adjustment",
    "refund_failure": "adjustment",
    "partial_capture_reversal": "adjustment",
    "risk_reserved_funds": "adjustment",
    "connect_reserved_funds": "adjustment",
    "unreconciled_customer_funds": "adjustment",
}

_METADATA_RE = re.compile(r"^\w*metadata\[(.+)\]$")
_ORDER_ID_KEY = "payment_order_id"


def iter_stripe(path: Path) -> Iterator[SettlementRecord | MalformedRecord]:
    rows = iter_csv_rows(path)
    header = next(rows, None)
    if header is None:
        raise ImportFormatError(f"{path.name}: empty Stripe report (no header)")
    columns = Columns(header.fields, REQUIRED_COLUMNS, "Stripe")
    metadata = [name for name in columns.names if _METADATA_RE.match(name)]
    order_columns = [n for n in metadata if _METADATA_RE.match(n).group(1) == _ORDER_ID_KEY]
    other_metadata = [n for n in metadata if n not in order_columns]
    for row in rows:
        try:
            yield _record(row, columns, order_columns, other_metadata)
        except RowError as exc:
            yield MalformedRecord(row.line_number, str(exc), row.source_line)


def _record(row: CsvRow, columns: Columns, order_columns: list[str], other_metadata: list[str]) -> SettlementRecord:
    columns.check_width(row)
    get = columns.get
    category = get(row, "reporting_category")
    if category is None:
        raise RowError("column 'reporting_category' is empty")
    currency = currency_of(get(row, "currency"), "currency")
    net = get(row, "net")
    if net is None:
        raise RowError("column 'net' is empty")
    created = first(get(row, "created_utc"), get(row, "created"))
    source_id = get(row, "source_id")
    record_type = CATEGORY_TYPES.get(category.lower(), "unknown")
    payout = first(get(row, "automatic_payout_id"), get(row, "payout_id"))
    if payout is None and record_type == "payout" and source_id and source_id.startswith("po_"):
        payout = source_id
    return SettlementRecord(
        line_number=row.line_number,
        record_type=record_type,
        raw_type=category,
        currency=currency,
        gross=optional_minor_units(get(row, "gross"), currency, "gross"),
        fee=optional_minor_units(get(row, "fee"), currency, "fee"),
        net=minor_units(net, currency, "net"),
        psp_reference=first(get(row, "payment_intent_id"), get(row, "charge_id"), source_id),
        merchant_reference=first(
            *(get(row, name) for name in order_columns),
            *(get(row, name) for name in other_metadata),
            get(row, "description"),
        ),
        payout_reference=payout,
        occurred_at=parse_datetime(created, "created"),
        source_line=row.source_line,
    )
