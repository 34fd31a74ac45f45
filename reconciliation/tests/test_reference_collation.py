"""Settlement lines' and orders' PSP references share one collation ("C": reconciliation 0015, payments 0019).

A comparison of two columns takes the collation that is not the database's default, and an index serves a
comparison only in its own collation: were one column "C" and the other not, matching's probes of the other's
index (the orders' by a line's reference, ``matching.candidates``; the lines' by an order's, ``matching.history``)
would find no index to use.
"""
from __future__ import annotations

import json

import pytest
from django.db import connection

from payments.models import PaymentOrder, SettleableOrder
from reconciliation.models import SettlementLine

pytestmark = pytest.mark.django_db

LINES = SettlementLine._meta.db_table
ORDERS = SettleableOrder._meta.db_table

#: Each join of one side's reference to the other's, and the index its probe must use.
PROBES = {
    f"""SELECT 1 FROM {LINES} line JOIN {ORDERS} payment_order
        ON payment_order.psp_reference = line.psp_reference AND payment_order.psp_reference <> ''
        WHERE line.file_id = 1""": "payment_order_one_per_psp_reference",
    f"""SELECT 1 FROM {ORDERS} payment_order JOIN {LINES} earlier ON earlier.psp_reference = payment_order.psp_reference
        WHERE payment_order.id = 'ord_x'""": "settlement_line_psp_ref",
}


def test_the_lines_and_the_orders_references_are_compared_byte_by_byte():
    with connection.cursor() as cursor:
        cursor.execute("""SELECT table_name, collation_name FROM information_schema.columns
                          WHERE column_name = 'psp_reference' AND table_name = ANY(%s)""",
                       [[LINES, ORDERS, PaymentOrder._meta.db_table]])
        assert dict(cursor.fetchall()) == {LINES: "C", ORDERS: "C", PaymentOrder._meta.db_table: "C"}


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


@pytest.mark.parametrize("query", list(PROBES))
def test_a_reference_of_either_side_probes_the_others_index(query):
    with connection.cursor() as cursor:
        for setting in ("seqscan", "hashjoin", "mergejoin", "bitmapscan"):
            cursor.execute(f"SET LOCAL enable_{setting} = off")
        cursor.execute("EXPLAIN (FORMAT JSON) " + query)
        (plan,) = cursor.fetchone()
    if isinstance(plan, str):
        plan = json.loads(plan)
    index = PROBES[query]
    conditions = [node.get("Index Cond", "") for node in _nodes(plan[0]["Plan"]) if node.get("Index Name") == index]
    # The index is probed by the reference, not read whole under a join filter.
    assert any("psp_reference" in condition for condition in conditions), plan
