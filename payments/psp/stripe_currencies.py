"""Stripe's currency rules, and the conversion between our minor units and Stripe's amounts.

We keep amounts in ISO 4217 minor units (``core.money``). Stripe reads an amount by its own
exponent, which differs from ISO's for a few currencies, and adds rules of its own. From
Stripe's published "Supported currencies" page:

- zero-decimal currencies are sent in whole units (JPY 500 is ¥500); MGA is among them
  although ISO gives it two decimals, so our MGA amounts must be whole ariary;
- ISK and UGX are sent with two decimals that must be ``00`` (Stripe's backwards
  compatibility): ISO gives them no decimals, so ISK 5 is sent as 500. (HUF and TWD are whole
  for payouts only; a charge may carry decimals.);
- three-decimal currencies (BHD, JOD, KWD, OMR, TND) must end in 0;
- an amount is at most eight digits (99999999 in Stripe's units) and at least the minimum
  charge where Stripe publishes one (0.50 USD, 0.30 GBP, ¥50, …).

``psp_amount_problem`` names the first rule an amount breaks; checkout refuses it with a 400
before it reaches the PSP. ``to_stripe``/``from_stripe`` convert at the adapter's boundary.
"""
from __future__ import annotations

from core.money import currency_exponent, format_amount, is_known_currency
from payments.psp.base import AmountProblem

ZERO_DECIMAL = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf vnd vuv xaf xof xpf".split())
TWO_DECIMAL_WHOLE = frozenset("isk ugx".split())
THREE_DECIMAL = frozenset("bhd jod kwd omr tnd".split())

SUPPORTED = frozenset((
    "aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bhd bif bmd bnd bob brl bsd bwp byn bzd "
    "cad cdf chf clp cny cop crc cve czk djf dkk dop dzd egp etb eur fjd fkp gbp gel gip gmd gnf gtq "
    "gyd hkd hnl htg huf idr ils inr isk jmd jod jpy kes kgs khr kmf krw kwd kyd kzt lak lbp lkr lrd "
    "lsl mad mdl mga mkd mmk mnt mop mur mvr mwk mxn myr mzn nad ngn nio nok npr nzd omr pab pen pgk "
    "php pkr pln pyg qar ron rsd rub rwf sar sbd scr sek sgd shp sle sos srd szl thb tjs tnd top try "
    "ttd twd tzs uah ugx usd uyu uzs vnd vuv wst xaf xcd xof xpf yer zar zmw"
).split())

# Stripe's minimum charge amounts, in Stripe's units of each currency.
MINIMUM_CHARGE = {
    "usd": 50, "aed": 200, "aud": 50, "bgn": 100, "brl": 50, "cad": 50, "chf": 50, "czk": 1500,
    "dkk": 250, "eur": 50, "gbp": 30, "hkd": 400, "huf": 17500, "inr": 50, "jpy": 50, "mxn": 1000,
    "myr": 200, "nok": 300, "nzd": 50, "pln": 200, "ron": 200, "sek": 300, "sgd": 50, "thb": 1000,
}
MAXIMUM_AMOUNT = 99_999_999


def stripe_exponent(currency: str) -> int:
    if currency in ZERO_DECIMAL:
        return 0
    if currency in THREE_DECIMAL:
        return 3
    return 2


def _shift(currency: str) -> int:
    """Stripe's exponent minus ISO's: +2 for ISK and UGX, -2 for MGA, 0 for nearly all."""
    return stripe_exponent(currency) - currency_exponent(currency)


def to_stripe(amount: int, currency: str) -> int:
    """Our minor units to Stripe's amount. Only exact for amounts ``psp_amount_problem`` accepts."""
    shift = _shift(currency)
    return amount * 10**shift if shift >= 0 else amount // 10**-shift


def from_stripe(amount: int, currency: str) -> int:
    """Stripe's amount back to our minor units."""
    shift = _shift(currency)
    return amount // 10**shift if shift >= 0 else amount * 10**-shift


def psp_amount_problem(amount: int, currency: str) -> AmountProblem | None:
    """The Stripe rule this amount breaks, or ``None`` when Stripe would take it."""
    if not is_known_currency(currency) or currency not in SUPPORTED:
        return AmountProblem("currency_not_supported", f"{currency.upper()} is not a currency the PSP charges in.")
    shift = _shift(currency)
    if shift < 0 and amount % 10**-shift:
        return AmountProblem("amount_not_whole", f"{currency.upper()} is charged in whole units: "
                                                 f"{format_amount(amount, currency)} has a fraction.")
    stripe_amount = to_stripe(amount, currency)
    if currency in THREE_DECIMAL and stripe_amount % 10:
        return AmountProblem("amount_invalid_precision",
                             f"{currency.upper()} amounts must end in 0 (the PSP rounds three-decimal "
                             f"currencies to two): {format_amount(amount, currency)}.")
    if stripe_amount > MAXIMUM_AMOUNT:
        limit = format_amount(from_stripe(MAXIMUM_AMOUNT, currency), currency)
        return AmountProblem("amount_too_large",
                             f"{format_amount(amount, currency)} is above the PSP's maximum of {limit}.")
    minimum = MINIMUM_CHARGE.get(currency, 1)
    if stripe_amount < minimum:
        limit = format_amount(from_stripe(minimum, currency), currency)
        return AmountProblem("amount_too_small",
                             f"{format_amount(amount, currency)} is below the PSP's minimum charge of {limit}.")
    return None  # an amount taken is not formatted (a Decimal per order, for nothing)
