"""Step 6b: the orders the run's charge lines settled, written down once (``SettledOrder``), for
``missing_in_settlement`` to set them aside with one hash over its window instead of a probe per order.

A charge line settles its order when its run matched it (``history.charge_lines_settling``): a new line with
no outcome, matched by its PSP reference (``recon_charge_line`` holds the order that reference found), or a
line whose outcome is ``matched`` to a payment order (a timing break, an order found by merchant reference, a
break decided again that clears). Bounded by the run's lines: both come from the run's own tables. A line
is marked once: a new line by the run that reconciles its file, a break decided again when it clears (a matched
line is never decided again).
"""
from __future__ import annotations

from django.db.backends.utils import CursorWrapper

from reconciliation.models import MatchState
from reconciliation.record_types import RecordType

from .scope import RunScope
from .tables import SETTLED

_MARK = f"""
INSERT INTO {SETTLED} (line_id, order_id, completed_at)
SELECT line.id, line.order_id, line.completed_at FROM recon_charge_line line
WHERE line.is_new AND line.record_type = '{RecordType.CHARGE}' AND line.order_id IS NOT NULL
  AND line.completed_at IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM recon_outcome outcome WHERE outcome.line_id = line.id)
UNION ALL
SELECT cand.id, cand.order_id, cand.completed_at
FROM recon_outcome outcome JOIN recon_candidate cand ON cand.id = outcome.line_id
WHERE outcome.from_candidates AND outcome.match_state = '{MatchState.MATCHED}'
  AND outcome.object_kind = 'payment_order' AND cand.record_type = '{RecordType.CHARGE}'
  AND cand.order_id IS NOT NULL AND cand.completed_at IS NOT NULL
"""


def settled_orders_mark(cursor: CursorWrapper, scope: RunScope) -> int:
    """A ``SettledOrder`` row per charge line the run matched to an order; returns how many were written."""
    cursor.execute(_MARK, scope.params)
    return cursor.rowcount
