"""Helpers shared by the parsers: CSV streaming, amounts, dates, references."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.money import CURRENCY_EXPONENTS, InexactAmount, UnknownCurrency, normalize_currency, to_minor_units

from .errors import ImportFormatError

SOURCE_LINE_LIMIT = 300


class RowError(ValueError):
    """A single line/entry is malformed; becomes a ``MalformedRecord``."""


def excerpt(text: str, limit: int = SOURCE_LINE_LIMIT) -> str:
    """A one-line, at most ``limit`` characters long excerpt for an operator."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[: limit - 3] + "..."


def clean(value: str | None) -> str | None:
    """Strip a field; empty strings become ``None``."""
    if value is None:
        return None
    value = value.strip()
    return value or None


def first(*values: str | None) -> str | None:
    for value in values:
        value = clean(value)
        if value:
            return value
    return None


# --- money -------------------------------------------------------------------------


_PLAIN_AMOUNT = re.compile(r"(-?)(\d+)(?:\.(\d+))?")
_CURRENCY_CACHE: dict[str, str] = {}


def currency_of(value: str | None, column: str) -> str:
    """Normalized currency or ``RowError`` naming the column."""
    cached = _CURRENCY_CACHE.get(value) if value else None
    if cached is not None:
        return cached
    if not clean(value):
        raise RowError(f"column {column!r} is empty")
    try:
        normalized = normalize_currency(value or "")
    except UnknownCurrency:
        raise RowError(f"column {column!r} is not a known ISO 4217 currency: {value!r}") from None
    if len(_CURRENCY_CACHE) < 1000:
        _CURRENCY_CACHE[value or ""] = normalized
    return normalized


def minor_units(value: str | Decimal, currency: str, column: str) -> int:
    """Exact minor units of a major-unit decimal, or ``RowError`` naming the column."""
    if isinstance(value, str):
        # Fast path, exact: "-12.34" -> -1234 without Decimal; anything else takes the strict path.
        match = _PLAIN_AMOUNT.fullmatch(value)
        exponent = CURRENCY_EXPONENTS.get(currency)
        if match is not None and exponent is not None:
            sign, whole, fraction = match.groups()
            if fraction is None or len(fraction) <= exponent:
                minor = int(whole) * 10**exponent + (int(fraction.ljust(exponent, "0")) if fraction else 0)
                return -minor if sign else minor
        text = value.strip()
        # to_minor_units drops thousands separators; a CSV amount never has them, so
        # "1,5" (a decimal comma) must not silently become 15.
        if "," in text or not text:
            raise RowError(f"column {column!r} is not an amount: {value!r}")
        value = text
    try:
        return to_minor_units(value, currency)
    except InexactAmount as exc:
        if "decimals" in str(exc):
            raise RowError(f"column {column!r} has more decimals than {currency.upper()} allows: {value!r}") from None
        raise RowError(f"column {column!r} is not an amount: {value!r}") from None
    except UnknownCurrency:
        raise RowError(f"unknown currency {currency!r} for column {column!r}") from None


def optional_minor_units(value: str | None, currency: str, column: str) -> int | None:
    if not clean(value):
        return None
    return minor_units(value or "", currency, column)


# --- dates -------------------------------------------------------------------------

# Abbreviations PSP reports write in a "TimeZone" column, as fixed offsets (hours).
_TZ_ABBREVIATIONS = {
    "UTC": 0,
    "GMT": 0,
    "Z": 0,
    "WET": 0,
    "WEST": 1,
    "BST": 1,
    "IST": 5.5,
    "CET": 1,
    "CEST": 2,
    "MET": 1,
    "MEST": 2,
    "EET": 2,
    "EEST": 3,
    "MSK": 3,
    "PST": -8,
    "PDT": -7,
    "MST": -7,
    "MDT": -6,
    "CST": -6,
    "CDT": -5,
    "EST": -5,
    "EDT": -4,
    "AST": -4,
    "ADT": -3,
    "NST": -3.5,
    "NDT": -2.5,
    "AKST": -9,
    "AKDT": -8,
    "HST": -10,
    "BRT": -3,
    "ART": -3,
    "SGT": 8,
    "HKT": 8,
    "AWST": 8,
    "JST": 9,
    "KST": 9,
    "ACST": 9.5,
    "ACDT": 10.5,
    "AEST": 10,
    "AEDT": 11,
    "NZST": 12,
    "NZDT": 13,
}
_OFFSET_RE = re.compile(r"^(?:UTC|GMT)?([+-])(\d{1,2}):?(\d{2})?$")


def zone(name: str | None) -> timezone | ZoneInfo:
    """A tzinfo for an abbreviation (``PST``), an offset (``+01:00``) or an IANA name."""
    name = (name or "").strip()
    if not name:
        return UTC
    hours = _TZ_ABBREVIATIONS.get(name.upper())
    if hours is not None:
        return timezone(timedelta(hours=hours), name.upper())
    match = _OFFSET_RE.match(name.upper())
    if match:
        sign, hh, mm = match.groups()
        delta = timedelta(hours=int(hh), minutes=int(mm or 0))
        return timezone(-delta if sign == "-" else delta)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise RowError(f"unknown time zone {name!r}") from None


def parse_datetime(value: str | None, column: str, tz: timezone | ZoneInfo = UTC) -> datetime | None:
    """An aware UTC datetime; naive values are read in ``tz``. Empty gives ``None``."""
    text = clean(value)
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise RowError(f"column {column!r} is not a date/time: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(UTC)


def midnight_utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


# --- references --------------------------------------------------------------------

# A Stripe payout id ("po_1Nxyz...") or an Adyen payout description
# ("TX3488899933XT batch 3, MerchantAccount" -> the batch number "3").
_STRIPE_PAYOUT_RE = re.compile(r"(?<![A-Za-z0-9_])(po_[A-Za-z0-9]{3,})")
_ADYEN_PAYOUT_RE = re.compile(r"\bTX\w+XT batch (\d+)\b")


def find_payout_reference(texts: Iterable[str | None]) -> str | None:
    """A PSP payout id mentioned in free text (bank remittance info, references)."""
    texts = [t for t in texts if t]
    for text in texts:
        match = _STRIPE_PAYOUT_RE.search(text)
        if match:
            return match.group(1)
    for text in texts:
        match = _ADYEN_PAYOUT_RE.search(text)
        if match:
            return match.group(1)
    return None


# --- CSV ---------------------------------------------------------------------------


@dataclass(slots=True)
class CsvRow:
    line_number: int  # physical line the row starts on, 1-based
    fields: list[str]
    raw: str
    error: str | None = None  # the csv module could not split the line

    @property
    def source_line(self) -> str:
        return excerpt(self.raw)


class _LineTap:
    """Feeds lines to ``csv.reader``, starting with ``pending``, and keeps the raw lines of the current row."""

    __slots__ = ("_lines", "lines", "pending")

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self.lines: list[str] = []
        self.pending: str | None = None

    def __iter__(self) -> _LineTap:
        return self

    def __next__(self) -> str:
        if self.pending is not None:
            line, self.pending = self.pending, None
            return line
        line = next(self._lines)
        self.lines.append(line)
        return line


def iter_csv_lines(path: Path) -> Iterator[tuple[int, list[str], str, str | None]]:
    """Non-blank CSV rows (the header included) as ``(line_number, fields, raw, error)``.

    Tolerates a UTF-8 BOM, CRLF or CR line ends and quoted fields spanning lines. A line
    without quotes (nearly every line of a report) is split on commas directly, which is
    what ``csv.reader`` makes of it; any other line goes through ``csv.reader``.
    """
    with open(path, encoding="utf-8-sig", newline="") as handle:
        lines = _utf8_lines(handle, path)
        tap = _LineTap(lines)
        reader = csv.reader(tap, strict=False)
        consumed = 0
        for line in lines:
            consumed += 1
            if '"' not in line and "\x00" not in line:
                if line.replace(",", "").strip():  # not blank (or only separators)
                    yield consumed, line.rstrip("\r\n").split(","), line, None
                continue
            # The csv module reads this row from this line on, and from more lines while a quote is open.
            start = consumed
            tap.lines = [line]
            tap.pending = line
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                consumed = start + len(tap.lines) - 1
                yield start, [], "".join(tap.lines), f"not a valid CSV line: {exc}"
                continue
            consumed = start + len(tap.lines) - 1
            if any(field.strip() for field in fields):
                yield start, fields, "".join(tap.lines), None


def _utf8_lines(handle, path: Path) -> Iterator[str]:
    """The file's lines; ``ImportFormatError`` where it stops being UTF-8."""
    number = 0
    while True:
        try:
            line = next(handle)
        except StopIteration:
            return
        except UnicodeDecodeError as exc:
            raise ImportFormatError(f"{path.name}: not UTF-8 text near line {number + 1}: {exc.reason}") from None
        number += 1
        yield line


def iter_csv_rows(path: Path) -> Iterator[CsvRow]:
    """``iter_csv_lines`` as ``CsvRow`` objects."""
    for line_number, fields, raw, error in iter_csv_lines(path):
        yield CsvRow(line_number, fields, raw, error)


def _key(name: str) -> str:
    return " ".join(name.split()).casefold()


class Columns:
    """Header-name lookup for a CSV row: columns are never read by position."""

    def __init__(self, header: Sequence[str], required: Iterable[str], fmt: str) -> None:
        self.names = [" ".join(name.split()) for name in header]
        self._index: dict[str, int] = {}
        self._positions: dict[str, int | None] = {}  # lookups by the caller's spelling
        for position, name in enumerate(self.names):
            self._index.setdefault(_key(name), position)
        missing = [name for name in required if _key(name) not in self._index]
        if missing:
            raise ImportFormatError(f"{fmt} file is missing required column(s): {', '.join(missing)}")
        # Width of the header without trailing empty column names.
        width = len(self.names)
        while width and not self.names[width - 1]:
            width -= 1
        self.width = width

    def __contains__(self, name: str) -> bool:
        return _key(name) in self._index

    def position(self, name: str) -> int | None:
        return self._index.get(_key(name))

    def get(self, row: CsvRow, name: str) -> str | None:
        """The stripped value of column ``name``; ``None`` if absent or empty."""
        try:
            position = self._positions[name]
        except KeyError:
            position = self._positions[name] = self._index.get(_key(name))
        if position is None or position >= len(row.fields):
            return None
        return row.fields[position].strip() or None

    def check_width(self, row: CsvRow) -> None:
        """``RowError`` unless the row has a field for every named column.

        Extra trailing fields are tolerated only when empty (Adyen writes them).
        """
        if row.error:
            raise RowError(row.error)
        got = len(row.fields)
        if got < self.width:
            raise RowError(f"expected {self.width} columns, got {got}: fields are missing")
        if got > len(self.names) and any(f.strip() for f in row.fields[len(self.names) :]):
            raise RowError(f"expected {len(self.names)} columns, got {got}")
