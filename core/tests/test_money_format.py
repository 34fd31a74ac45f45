"""format_money: the one way people see an amount (admin pages, CSV exports)."""
import pytest

from core.money import format_money


@pytest.mark.parametrize(("minor", "currency", "shown"), [
    # zero decimals
    (1235, "jpy", "1,235 JPY"), (0, "jpy", "0 JPY"), (-1234567, "JPY", "-1,234,567 JPY"), (5, "krw", "5 KRW"),
    # two decimals
    (123456, "usd", "1,234.56 USD"), (-123450, "usd", "-1,234.50 USD"), (5, "eur", "0.05 EUR"),
    (-5, "eur", "-0.05 EUR"), (0, "usd", "0.00 USD"), (99999999, "gbp", "999,999.99 GBP"),
    (123456789012, "usd", "1,234,567,890.12 USD"),
    # three decimals
    (1234, "kwd", "1.234 KWD"), (123456, "kwd", "123.456 KWD"), (-1, "bhd", "-0.001 BHD"),
    (1234567, "kwd", "1,234.567 KWD"),
])
def test_major_units_by_exponent_code_beside_separators_and_sign(minor, currency, shown):
    assert format_money(minor, currency) == shown


def test_missing_amount_and_unknown_currency_say_so():
    assert format_money(None, "usd") == "-"
    assert format_money(1234, "") == "1,234 minor units (no currency)"
    assert format_money(1234, "xyz") == "1,234 minor units XYZ (unknown currency)"
