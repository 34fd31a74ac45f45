"""Arrays sent as PostgreSQL array literals (``core.db.array_literal``): every value comes back as sent."""
import pytest
from django.db import connection

from core.db import array_literal

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("values", [
    ["assets:psp_receivable", "liabilities:seller_payable:sel_1"],
    ['a"b', "c\\d", "e,f", "{g}", " h ", "NULL", "null", "é€", "", "$1", "%s", "%(x)s", "'", "a\nb", "\\\\\""],
    [],
])
def test_text_values_come_back_as_sent(values):
    with connection.cursor() as cur:
        cur.execute("SELECT %s::text[]", [array_literal(values)])
        assert cur.fetchone()[0] == values


def test_bigint_values_come_back_as_sent():
    values = [1, -2, 0, 2**62, -(2**63), 2**63 - 1]
    with connection.cursor() as cur:
        cur.execute("SELECT %s::bigint[]", [array_literal(values)])
        assert cur.fetchone()[0] == values
