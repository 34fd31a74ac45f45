"""Currencies and amounts. The one place that knows each currency's minor-unit exponent.

Money is always an ``int`` in the currency's minor unit next to a lowercase ISO 4217
code. Converting from a decimal string (a settlement file, say) goes through
``Decimal`` and refuses anything that does not fit the exponent exactly.
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

# ISO 4217 active codes whose minor unit is not 2.
_EXPONENT_OVERRIDES = {
    **dict.fromkeys(
        "bif clp djf gnf isk jpy kmf krw pyg rwf ugx uyi vnd vuv xaf xof xpf".split(), 0
    ),
    **dict.fromkeys("bhd iqd jod kwd lyd omr tnd".split(), 3),
    **dict.fromkeys("clf uyw".split(), 4),
}
_TWO_DECIMALS = (
    "aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bmd bnd bob bov brl bsd btn "
    "bwp byn bzd cad cdf che chf chw cny cop cou crc cuc cup cve czk dkk dop dzd egp ern "
    "etb eur fjd fkp gbp gel ghs gip gmd gtq gyd hkd hnl htg huf idr ils inr irr jmd kes "
    "kgs khr kpw kyd kzt lak lbp lkr lrd lsl mad mdl mga mkd mmk mnt mop mru mur mvr mwk "
    "mxn mxv myr mzn nad ngn nio nok npr nzd pab pen pgk php pkr pln qar ron rsd rub sar "
    "sbd scr sdg sek sgd shp sle sll sos srd ssp stn svc syp szl thb tjs tmt top try ttd "
    "twd tzs uah usd usn uyu uzs ved ves wst xcd xcg yer zar zmw zwg zwl"
).split()
CURRENCY_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(_TWO_DECIMALS, 2),
    **_EXPONENT_OVERRIDES,
}


class UnknownCurrency(ValueError):
    pass


class InexactAmount(ValueError):
    pass


def normalize_currency(code: str) -> str:
    """Return the lowercase ISO 4217 code, or raise ``UnknownCurrency``."""
    normalized = (code or "").strip().lower()
    if normalized not in CURRENCY_EXPONENTS:
        raise UnknownCurrency(f"unknown ISO 4217 currency code: {code!r}")
    return normalized


def is_known_currency(code: str) -> bool:
    return (code or "").strip().lower() in CURRENCY_EXPONENTS


def currency_exponent(code: str) -> int:
    return CURRENCY_EXPONENTS[normalize_currency(code)]


def to_minor_units(amount: str | Decimal | int, currency: str) -> int:
    """Convert a major-unit decimal (``"12.34"``) to minor units (``1234``), exactly.

    Raises ``InexactAmount`` if the value has more decimals than the currency allows or
    is not a number. Floats are refused: they cannot carry an exact amount.
    """
    if isinstance(amount, float):
        raise TypeError("floats are never used for money")
    exponent = currency_exponent(currency)
    try:
        value = Decimal(str(amount).strip().replace(",", "") if isinstance(amount, str) else amount)
    except InvalidOperation as exc:
        raise InexactAmount(f"not an amount: {amount!r}") from exc
    if not value.is_finite():
        raise InexactAmount(f"not an amount: {amount!r}")
    scaled = value.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise InexactAmount(f"{amount!r} has more than {exponent} decimals for {currency}")
    return int(scaled)


def format_amount(minor: int, currency: str) -> str:
    """``format_amount(1234, "usd") == "12.34 USD"``."""
    exponent = currency_exponent(currency)
    value = Decimal(minor).scaleb(-exponent)
    return f"{value:.{exponent}f} {currency.upper()}"


def format_money(minor: int | None, currency: str | None) -> str:
    """How every admin page and CSV export shows an amount: major units by the currency's exponent,
    thousands separators, the uppercase code beside it and a leading minus for negative amounts.

    ``format_money(-123450, "usd") == "-1,234.50 USD"``, ``format_money(1235, "jpy") == "1,235 JPY"``,
    ``format_money(1234, "kwd") == "1.234 KWD"``. ``None`` is ``"-"``; an amount whose currency is
    missing or unknown (a malformed settlement line) says so rather than guessing an exponent.
    """
    if minor is None:
        return "-"
    if not is_known_currency(currency or ""):
        code = (currency or "").strip().upper()
        return f"{minor:,} minor units {code} (unknown currency)" if code else f"{minor:,} minor units (no currency)"
    exponent = currency_exponent(currency)
    sign = "-" if minor < 0 else ""
    major, fraction = divmod(abs(int(minor)), 10**exponent)
    text = f"{major:,}" + (f".{fraction:0{exponent}d}" if exponent else "")
    return f"{sign}{text} {currency.strip().upper()}"
