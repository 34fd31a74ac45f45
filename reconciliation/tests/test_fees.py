"""The fee rule, in its two forms (a line at a time, a column of lines for Arrow), for every type of line.

Plain pytest functions: no database (``pytest reconciliation/tests/test_fees.py -p no:django``).
"""
from __future__ import annotations

import pyarrow as pa

from reconciliation.importers.fees import arrow_line_fees, line_fee
from reconciliation.record_types import NOT_FEE_BEARING, RecordType


def test_both_forms_of_the_fee_rule_agree_on_every_type():
    cases = [(t, fee, net) for t in RecordType for fee, net in ((30, 970), (None, -50), (0, 0), (None, 12))]
    amounts, bearing = arrow_line_fees(pa.array([str(t) for t, _, _ in cases]), pa.array([f for _, f, _ in cases]),
                                       pa.array([n for _, _, n in cases]))
    by_column = [amount if bears else None for amount, bears in zip(amounts.to_pylist(), bearing.to_pylist(),
                                                                    strict=True)]
    assert by_column == [line_fee(t, fee, net) for t, fee, net in cases]


def test_what_a_line_pays():
    assert line_fee(RecordType.CHARGE, 30, 970) == 30
    assert line_fee(RecordType.FEE, None, -50) == 50  # a fee row: its own negative net
    assert line_fee(RecordType.REFUND, None, -300) == 0
    assert all(line_fee(t, 30, 970) is None for t in NOT_FEE_BEARING)
