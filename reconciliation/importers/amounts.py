"""Currencies and amounts read from a file: exact minor units, never ``float`` (see ``core.money``)."""

from __future__ import annotations

import re
from decimal import Decimal

from core.money import CURRENCY_EXPONENTS, InexactAmount, UnknownCurrency, normalize_currency, to_minor_units

from .errors import RowError
from .text import clean

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
