"""Stripe "Payout reconciliation" report, itemized (``payout_reconciliation.itemized.*``).

Columns are read by header name. Amounts are major-unit decimal strings; ``gross`` and
``net`` are signed from the merchant's point of view and ``fee`` is Stripe's fee as a
positive cost, which is already the ``SettlementRecord`` convention, so they are kept
as written. Timestamps (``created_utc`` or ``created``) are UTC.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from core.money import CURRENCY_EXPONENTS

from ._base import (
    Columns,
    CsvRow,
    RowError,
    currency_of,
    iter_csv_lines,
    iter_csv_rows,
    minor_units,
    parse_datetime,
)
from .errors import ImportFormatError
from .records import MalformedRecord, RenderedLine, SettlementRecord, line_row, render_line_row

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
    rows, columns, layout = _open(path)
    for row in rows:
        try:
            yield _record(row, columns, layout)
        except RowError as exc:
            yield MalformedRecord(row.line_number, str(exc), row.source_line)


def iter_stripe_lines(path: Path) -> Iterator[RenderedLine]:
    """What ``iter_stripe`` yields, rendered for COPY (``records.RenderedLine``), faster.

    A report has a million rows a night, so this is one loop over plain rows (the header's
    width, no quote, backslash or tab) with conversions of repeated values remembered. Any
    row it is not sure about goes to ``_record``, as in ``iter_stripe``.
    """
    lines = iter_csv_lines(path)
    columns, layout = _header(path, lines)
    return render_rows(lines, columns, layout)


def render_rows(lines: Iterable[tuple[int, list[str], str, str | None]], columns: Columns,
                layout: _Layout) -> Iterator[RenderedLine]:
    """``(line_number, fields, raw, error)`` rows of a report rendered for COPY (see ``iter_stripe_lines``)."""
    width = len(columns.names)
    category_at, currency_at, net_at, gross_at, fee_at = (
        layout.category, layout.currency, layout.net, layout.gross, layout.fee)
    created_at, source_at = tuple(layout.created), layout.source_id
    first_psp, first_payout, first_merchant = (
        _first_of(tuple(layout.psp)), _first_of(tuple(layout.payout)), _first_of(tuple(layout.merchant)))
    scales = {currency: 10**exponent for currency, exponent in CURRENCY_EXPONENTS.items()}
    categories: dict[str, tuple[str, str] | None] = {}
    currencies: dict[str, tuple[str, int | None] | None] = {}
    times: dict[str, object] = {}
    for line_number, fields, raw, error in lines:
        rendered = None
        if len(fields) == width and error is None and '"' not in raw and "\\" not in raw and "\t" not in raw:
            value = fields[category_at]
            kind = categories.get(value) or _remember(categories, value, _category(value))
            value = fields[currency_at]
            money = currencies.get(value) or _remember(currencies, value, _currency(value, scales))
            if kind is not None and money is not None:
                currency, scale = money
                net = _amount(fields[net_at], currency, scale)
                gross = _amount(fields[gross_at], currency, scale)
                fee = _amount(fields[fee_at], currency, scale)
                occurred = _EMPTY
                for position in created_at:
                    value = fields[position]
                    occurred = times.get(value) or _remember(times, value, _time(value))
                    if occurred is not _EMPTY:
                        break
                if not (net is None or net is _BAD or gross is _BAD or fee is _BAD or occurred is _BAD):
                    occurred_at, stamp = (None, _NULL) if occurred is _EMPTY else occurred
                    record_type, category = kind
                    source_id = fields[source_at].strip() if source_at is not None else ""
                    payout = first_payout(fields)
                    if not payout and record_type == "payout" and source_id.startswith("po_"):
                        payout = source_id
                    rendered = record_type, occurred_at, payout, currency, fee, net, (
                        f"{line_number}\t{record_type}\t{category}\t{first_psp(fields)}\t{source_id}\t"
                        f"{first_merchant(fields)}\t{payout}\t{currency}\t{_NULL if gross is None else gross}\t"
                        f"{_NULL if fee is None else fee}\t{net}\t{stamp}\t\t\n")
        if rendered is None:
            row = CsvRow(line_number, fields, raw, error)
            try:
                rendered = render_line_row(line_row(_record(row, columns, layout)))
            except RowError as exc:
                rendered = render_line_row(line_row(MalformedRecord(line_number, str(exc), row.source_line)))
        yield rendered


def _open(path: Path) -> tuple[Iterator[CsvRow], Columns, _Layout]:
    rows = iter_csv_rows(path)
    header = next(rows, None)
    if header is None:
        raise ImportFormatError(f"{path.name}: empty Stripe report (no header)")
    return (rows, *_layout(header.fields))


def _header(path: Path, lines: Iterator[tuple]) -> tuple[Columns, _Layout]:
    header = next(lines, None)
    if header is None:
        raise ImportFormatError(f"{path.name}: empty Stripe report (no header)")
    return _layout(header[1])


def _layout(header: list[str]) -> tuple[Columns, _Layout]:
    columns = Columns(header, REQUIRED_COLUMNS, "Stripe")
    metadata = [name for name in columns.names if _METADATA_RE.match(name)]
    order_columns = [n for n in metadata if _METADATA_RE.match(n).group(1) == _ORDER_ID_KEY]
    other_metadata = [n for n in metadata if n not in order_columns]
    return columns, _Layout(columns, [*order_columns, *other_metadata])


class _Layout:
    """Column positions, looked up once per file (a report can have millions of rows)."""

    def __init__(self, columns: Columns, merchant_columns: list[str]) -> None:
        at = columns.position
        self.category, self.currency, self.net = at("reporting_category"), at("currency"), at("net")
        self.gross, self.fee = at("gross"), at("fee")
        self.created = [p for p in (at("created_utc"), at("created")) if p is not None]
        self.source_id = at("source_id")
        self.psp = [p for p in (at("payment_intent_id"), at("charge_id"), self.source_id) if p is not None]
        self.payout = [p for p in (at("automatic_payout_id"), at("payout_id")) if p is not None]
        self.merchant = [p for p in (*(at(n) for n in merchant_columns), at("description")) if p is not None]


def _first(fields: list[str], positions: list[int]) -> str | None:
    size = len(fields)
    for position in positions:
        if position < size:
            value = fields[position].strip()
            if value:
                return value
    return None


def _record(row: CsvRow, columns: Columns, layout: _Layout) -> SettlementRecord:
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
    record_type = CATEGORY_TYPES.get(category.lower(), "unknown")
    payout = _first(fields, layout.payout)
    if payout is None and record_type == "payout" and source_id and source_id.startswith("po_"):
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


_CACHE_LIMIT = 200_000  # entries per cache; past it, values are converted but not remembered


# --- the fast path's conversions: each the same as ``_record``'s, or ``None`` / ``_BAD`` to leave it to ``_record``


def _remember(cache: dict, value: str, converted: object) -> object:
    if len(cache) < _CACHE_LIMIT:
        cache[value] = converted
    return converted


def _category(value: str) -> tuple[str, str] | None:
    category = value.strip()
    return (CATEGORY_TYPES.get(category.lower(), "unknown"), category) if category else None


def _currency(value: str, scales: dict[str, int]) -> tuple[str, int | None] | None:
    try:
        currency = currency_of(value.strip() or None, "currency")
    except RowError:
        return None
    return currency, scales.get(currency)


def _time(value: str) -> object:
    """``(datetime, its COPY text)``, ``_EMPTY`` or ``_BAD``."""
    try:
        parsed = parse_datetime(value, "created") if value.strip() else None
    except RowError:
        return _BAD
    return _EMPTY if parsed is None else (parsed, parsed.isoformat())


def _first_of(positions: tuple[int, ...]) -> Callable[[list[str]], str]:
    """``_first`` for a row of the header's width, ``""`` for none: unrolled for up to three columns."""
    if not positions:
        return lambda fields: ""
    if len(positions) == 1:
        (a,) = positions
        return lambda fields: fields[a].strip()
    if len(positions) == 2:
        a, b = positions
        return lambda fields: fields[a].strip() or fields[b].strip()
    if len(positions) == 3:
        a, b, c = positions
        return lambda fields: fields[a].strip() or fields[b].strip() or fields[c].strip()
    return lambda fields: _first(fields, list(positions)) or ""


_BAD = object()  # a value _record would refuse
_EMPTY = object()  # an empty field
_NULL = "\\N"  # COPY's NULL


def _amount(value: str, currency: str, scale: int | None) -> int | None | object:
    """``minor_units`` of a plain amount ("-12.34" with as many decimals as the currency has),
    without a regular expression; ``None`` for an empty field, ``_BAD`` for one ``_record`` would refuse."""
    text = value.strip()
    whole, dot, fraction = text.partition(".")
    if scale is not None and (whole.isdecimal() or (whole[:1] == "-" and whole[1:].isdecimal())):
        if not dot:
            return int(whole) * scale
        if 10 ** len(fraction) == scale and fraction.isdecimal():
            return int(whole + fraction)
    if not text:
        return None
    try:
        return minor_units(text, currency, "amount")
    except RowError:
        return _BAD
