"""Times read from a file: time zones by abbreviation, offset or IANA name; always aware, in UTC."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import RowError
from .text import clean

# Abbreviations PSP reports write in a "TimeZone" column, as fixed offsets (hours).
TZ_ABBREVIATIONS = {
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
    hours = TZ_ABBREVIATIONS.get(name.upper())
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
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 9999-12-31 in a zone west of UTC, 0001-01-01 east of it: no such time in UTC
        raise RowError(f"column {column!r} is out of range in UTC: {value!r}") from None


def midnight_utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
