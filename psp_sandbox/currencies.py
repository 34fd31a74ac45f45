"""Stripe's currency rules for charge amounts.

Sources: Stripe's published "Supported currencies" page (https://docs.stripe.com/currencies):

* Presentment currencies: the lowercase ISO 4217 codes below (``SUPPORTED``).
* Zero-decimal currencies (amount in whole units): ``ZERO_DECIMAL``.
* Special cases: ISK and UGX are sent as two-decimal amounts that must be divisible by 100
  (``DIVISIBLE_BY_100``). HUF and TWD are zero-decimal for *payouts* only: charges may carry
  decimals, so they are not refused here.
* Three-decimal currencies (BHD, JOD, KWD, OMR, TND): the amount must be rounded to the
  nearest ten (its last digit 0) for compatibility with Stripe's partners.
* Minimum charge amounts, by settlement currency (``MINIMUM``, in minor units: USD 0.50,
  EUR 0.50, GBP 0.30, JPY 50, ...). Stripe checks other currencies after converting them to
  the settlement currency; the sandbox has no exchange rates and only asks them for 1.
* Maximum: 99999999 minor units (eight digits) for every currency.
"""

from __future__ import annotations

from .errors import ApiError, invalid

MAX_AMOUNT = 99_999_999

SUPPORTED = frozenset(
    """
    usd aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bhd bif bmd bnd bob brl bsd bwp byn
    bzd cad cdf chf clp cny cop crc cve czk djf dkk dop dzd egp etb eur fjd fkp gbp gel gip gmd gnf
    gtq gyd hkd hnl htg huf idr ils inr isk jmd jod jpy kes kgs khr kmf krw kwd kyd kzt lak lbp lkr
    lrd lsl mad mdl mga mkd mmk mnt mop mur mvr mwk mxn myr mzn nad ngn nio nok npr nzd omr pab pen
    pgk php pkr pln pyg qar ron rsd rub rwf sar sbd scr sek sgd shp sle sos srd std szl thb tjs tnd
    top try ttd twd tzs uah ugx uyu uzs vnd vuv wst xaf xcd xcg xof xpf yer zar zmw
    """.split()
)

ZERO_DECIMAL = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf vnd vuv xaf xof xpf".split())
DIVISIBLE_BY_100 = frozenset({"isk", "ugx"})
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})

MINIMUM: dict[str, int] = {
    "usd": 50, "aed": 200, "aud": 50, "bgn": 100, "brl": 50, "cad": 50, "chf": 50, "czk": 1500,
    "dkk": 250, "eur": 50, "gbp": 30, "hkd": 400, "huf": 17500, "inr": 50, "jpy": 50, "mxn": 1000,
    "myr": 200, "nok": 300, "nzd": 50, "pln": 200, "ron": 200, "sek": 300, "sgd": 50, "thb": 1000,
}  # fmt: skip


def exponent(currency: str) -> int:
    """Digits after the decimal point in API amounts."""
    if currency in ZERO_DECIMAL:
        return 0
    return 3 if currency in THREE_DECIMAL else 2


def display(amount: int, currency: str) -> str:
    """``50, "usd"`` -> ``"0.50 usd"``."""
    exp = exponent(currency)
    major = str(amount) if exp == 0 else f"{amount / 10**exp:.{exp}f}"
    return f"{major} {currency}"


def check_currency(raw: str) -> str:
    """The currency as Stripe takes it (lowercase, supported) or a 400 on ``currency``."""
    currency = raw.lower()
    if currency not in SUPPORTED:
        raise invalid(
            f"Invalid currency: {raw}. Stripe currently supports these currencies: {', '.join(sorted(SUPPORTED))}",
            param="currency",
            code="parameter_invalid_string",
        )
    return currency


def check_amount(amount: int, currency: str) -> None:
    """Refuse an amount Stripe refuses for ``currency`` (minimum, maximum, decimals)."""
    minimum = MINIMUM.get(currency, 1)
    if amount < minimum:
        raise invalid(f"Amount must be at least {display(minimum, currency)}", param="amount", code="amount_too_small")
    if amount > MAX_AMOUNT:
        raise invalid(
            f"Amount must be no more than {display(MAX_AMOUNT, currency)}", param="amount", code="amount_too_large"
        )
    if currency in DIVISIBLE_BY_100 and amount % 100:
        raise _invalid_amount(f"{currency.upper()} amounts are sent with two decimals and must be divisible by 100")
    if currency in THREE_DECIMAL and amount % 10:
        raise _invalid_amount(f"{currency.upper()} amounts have three decimals and must end in 0")


def _invalid_amount(rule: str) -> ApiError:
    return invalid(f"Invalid amount: {rule}.", param="amount", code="invalid_charge_amount")
