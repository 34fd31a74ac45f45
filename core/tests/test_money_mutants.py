"""What core.money tells the people who read its refusals (docs/mutation.md): a settlement line that is
not an amount becomes a malformed-line break whose text is this message."""
import re
from decimal import Decimal

import pytest

from core.money import InexactAmount, to_minor_units


@pytest.mark.parametrize(("amount", "message"), [
    ("abc", "not an amount: 'abc'"),
    ("Infinity", "not an amount: 'Infinity'"),
    ("1.234", "'1.234' has more than 2 decimals for usd"),
], ids=lambda value: re.sub(r"\W+", "-", str(value))[:24])  # short ids without spaces (mutmut)
def test_a_refused_amount_says_why(amount, message):
    with pytest.raises(InexactAmount) as refused:
        to_minor_units(amount, "usd")
    assert str(refused.value) == message


def test_a_float_is_refused_with_the_reason():
    with pytest.raises(TypeError, match="^floats are never used for money$"):
        to_minor_units(12.5, "usd")


@pytest.mark.parametrize(("amount", "expected"), [(Decimal("12.34"), 1234), (Decimal("1E+2"), 10000), (7, 700)])
def test_decimals_and_ints_convert_exactly(amount, expected):
    assert to_minor_units(amount, "usd") == expected
