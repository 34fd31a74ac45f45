"""Step 3b: ``refund_failure`` lines (a refund that succeeded and failed later: the buyer's bank sent the money
back, and the PSP put it back on our balance), each against the refund its own reference names (Stripe's
``source_id``, ``re_...``), after ``charges`` gave every one the ``missing_in_books`` outcome of a charge-like
line nothing explains. A line replaces that outcome here:

- a refund our books hold failed, in the line's currency and amount: **matched** to it (its reversal was booked
  by ``payments.services.refunds``, from the webhook or the PSP's answer);
- a refund our books still hold succeeded (or pending): ``refund_failed_at_psp``. Nothing moves here: payments
  reverses it when the PSP's webhook, or an operator's question to the PSP (the refunds admin), says so, and the
  next run clears the break;
- another currency or amount: ``currency_mismatch`` / ``amount_mismatch``;
- no refund of ours: stays ``missing_in_books``.
"""
from __future__ import annotations

from django.db import connection
from django.db.backends.utils import CursorWrapper

from payments import selectors as payment_selectors
from payments.selectors import SettledObject
from reconciliation.models import BreakClass, MatchState
from reconciliation.record_types import RecordType

from .outcomes import Outcome
from .rules import SETTLED_GROSS, money_difference
from .scope import RunScope
from .tables import LINES

_OPEN_REFUND_FAILURE_LINES = f"""
SELECT line.id, line.source_reference, line.psp_reference, line.currency, {SETTLED_GROSS}
FROM recon_outcome outcome JOIN {LINES} line ON line.id = outcome.line_id
WHERE outcome.from_candidates AND outcome.record_type = '{RecordType.REFUND_FAILURE}'  -- only those lines read
ORDER BY line.file_id, line.ordinal
"""

_UPDATE = """
UPDATE recon_outcome SET match_state = %s, break_class = %s, object_kind = %s, object_id = %s, expected_amount = %s,
       expected_currency = %s, actual_amount = %s, actual_currency = %s, description = %s
WHERE line_id = %s
"""


def refund_failure_lines_decide(cursor: CursorWrapper, scope: RunScope) -> None:
    """An outcome for every open ``refund_failure`` line (see above). The refund is found by the line's own id,
    else by its PSP reference."""
    cursor.execute(_OPEN_REFUND_FAILURE_LINES)
    rows = cursor.fetchall()
    if not rows:
        return
    references = sorted({r for row in rows for r in (row[1], row[2]) if r})
    refunds = payment_selectors.refunds_by_psp_reference(psp_references=references)
    outcomes = [refund_failure_line_outcome(line_id=line_id, currency=currency, amount=amount or 0,
                                            refund=refunds.get(source or "") or refunds.get(psp or ""))
                for line_id, source, psp, currency, amount in rows]
    with connection.cursor() as writer:
        writer.executemany(_UPDATE, [(*o.row()[1:], o.line_id) for o in outcomes])


def refund_failure_line_outcome(*, line_id: int, currency: str, amount: int, refund: SettledObject | None) -> Outcome:
    """A ``refund_failure`` line (``amount``: positive, the money back) against the refund its reference finds."""
    if refund is None:
        return Outcome(line_id, MatchState.BREAK, BreakClass.MISSING_IN_BOOKS, actual_amount=amount,
                       actual_currency=currency, description="the PSP settled the failure of a refund our books "
                                                             "do not have")
    klass = money_difference(expected=refund.amount, expected_currency=refund.currency, actual=amount,
                             actual_currency=currency)
    if klass is None and refund.state != "failed":
        klass = BreakClass.REFUND_FAILED_AT_PSP
    description = {BreakClass.CURRENCY_MISMATCH: f"refund {refund.id} is in {refund.currency}",
                   BreakClass.AMOUNT_MISMATCH: f"refund {refund.id} is {refund.amount}",
                   BreakClass.REFUND_FAILED_AT_PSP: f"the PSP settled the failure of refund {refund.id}, which is "
                                                    f"{refund.state} in our books"}.get(klass, "")
    return Outcome(line_id, MatchState.MATCHED if klass is None else MatchState.BREAK, klass, "refund", refund.id,
                   refund.amount, refund.currency, amount, currency, description)
