from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.money import (
    CURRENCY_EXPONENTS,
    InexactAmount,
    UnknownCurrency,
    format_amount,
    normalize_currency,
    to_minor_units,
)


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [("12.34", "USD", 1234), ("-0.01", "eur", -1), ("1,000.50", "gbp", 100050), ("100", "jpy", 100),
     ("1.234", "kwd", 1234), ("7", "clf", 70000), ("0.10", "usd", 10)],
)
def test_to_minor_units_is_exact(amount, currency, expected):
    assert to_minor_units(amount, currency) == expected


@pytest.mark.parametrize(("amount", "currency"), [("1.234", "usd"), ("1.5", "jpy"), ("abc", "usd"), ("NaN", "usd")])
def test_to_minor_units_refuses_inexact_or_non_numbers(amount, currency):
    with pytest.raises(InexactAmount):
        to_minor_units(amount, currency)


def test_floats_and_unknown_currencies_are_refused():
    with pytest.raises(TypeError):
        to_minor_units(0.1, "usd")
    with pytest.raises(UnknownCurrency):
        normalize_currency("xyz")


@given(minor=st.integers(min_value=-(10**15), max_value=10**15), currency=st.sampled_from(sorted(CURRENCY_EXPONENTS)))
def test_format_then_parse_round_trips(minor, currency):
    text = format_amount(minor, currency).split()[0]
    assert to_minor_units(text, currency) == minor
    assert Decimal(text).as_tuple().exponent == -CURRENCY_EXPONENTS[currency] or CURRENCY_EXPONENTS[currency] == 0
