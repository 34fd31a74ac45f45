"""The fee rule: what of a settlement line the PSP kept as its fee. Booked per payout batch by matching.

A line's fee is its ``fee`` column, plus, for a fee row (``record_type`` ``fee``), its own
net, which is negative: the PSP took that much. Payout rows, bank lines and malformed lines
bear no fee (``record_types.NOT_FEE_BEARING``), and a dispute's lines' fee is booked by the dispute
(``record_types.DISPUTE_LINES``). The rule is written twice here, once per line
(``line_fee``) and once per column of lines for the Arrow reader (``arrow_line_fees``); the
tests hold the two readers to the same totals.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciliation.record_types import DISPUTE_LINES, NOT_FEE_BEARING, RecordType

if TYPE_CHECKING:
    import pyarrow as pa

_NOT_FEE_BEARING = frozenset(str(t) for t in (*NOT_FEE_BEARING, *DISPUTE_LINES))
_FEE = RecordType.FEE.value


def line_fee(record_type: str, fee: int | None, net: int | None) -> int | None:
    """The PSP's fee on one line, minor units; ``None`` for a line that bears none."""
    if record_type in _NOT_FEE_BEARING:
        return None
    return (fee or 0) - ((net or 0) if record_type == _FEE else 0)


def arrow_line_fees(record_type: pa.Array, fee: pa.Array, net: pa.Array) -> tuple[pa.Array, pa.Array]:
    """``line_fee`` of a column of lines (``fee`` may hold nulls, ``net`` not): the fees, and a mask of
    the lines that bear one."""
    import pyarrow as pa
    import pyarrow.compute as pc

    bearing = pc.invert(pc.is_in(record_type, value_set=pa.array(sorted(_NOT_FEE_BEARING))))
    amount = pc.subtract(pc.fill_null(fee, 0), pc.if_else(pc.equal(record_type, _FEE), net, 0))
    return amount, bearing
