"""Step 3: refund lines, each against the refund of ours its reference finds (``rules.refund_line_outcome``).

Refunds are few: they are read in batches and looked up through payments' selector.
"""
from __future__ import annotations

from django.db.backends.utils import CursorWrapper

from payments import selectors as payment_selectors
from reconciliation.record_types import RecordType

from .history import open_lines_of
from .outcomes import outcomes_add
from .rules import refund_line_outcome
from .scope import RunScope

_BATCH = 5000

_OPEN_REFUND_LINES = f"""
SELECT line.id, line.psp_reference, line.source_reference, line.currency, COALESCE(line.gross, line.net)
FROM {open_lines_of([RecordType.REFUND])} line WHERE line.record_type = '{RecordType.REFUND}'
ORDER BY line.file_id, line.ordinal
"""


def refund_lines_decide(cursor: CursorWrapper, scope: RunScope) -> None:
    """An outcome for every open refund line. The refund is found by the line's own id (Stripe's ``re_...``),
    else by its PSP reference."""
    cursor.execute(_OPEN_REFUND_LINES, scope.params)
    while rows := cursor.fetchmany(_BATCH):
        references = sorted({r for row in rows for r in (row[1], row[2]) if r})
        refunds = payment_selectors.refunds_by_psp_reference(psp_references=references)
        outcomes_add(
            refund_line_outcome(line_id=line_id, currency=currency, amount=-amount,  # a refund row is negative
                                refund=refunds.get(source_reference) or refunds.get(psp_reference))
            for line_id, psp_reference, source_reference, currency, amount in rows
        )
