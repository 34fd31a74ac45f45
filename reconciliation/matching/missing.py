"""Step 7: succeeded orders no settlement line has: ``missing_in_settlement``, until a line settles them.

An order completed within the lookback and before the cut-off (``RunScope.missing_since`` and
``missing_before``) with no charge line settling it (``history.charge_lines_settling``) is a
break, keyed by the order; once a line settles it, the open break is auto-resolved
``settled_later`` with an audit row.

Bounded by the night, not the history: an order an earlier run checked (``RunScope.missing_checked_before``)
and found settled stays settled, so only the orders completed since (read by ``completed_at``), and those with
a break (each read by id), are looked at, not the whole lookback's orders every night. They are first set aside
set-based, by a hash anti-join against the charge lines of the files whose batch closed when a clean line of
theirs could (``RunScope.missing_nearby_files``); only the few left (the missing ones, nearly all) are probed
one by one by the whole settling rule, the lines' reference index first. A line found there settles its order
under the rule too, so what is found is the rule's, whatever the files: the files only decide how few probes.

A break the last run saw unsettled, its order still in the window, is not probed at all (``_SEEN_BY_THE_LAST_RUN``):
only a line this run decides can have settled it since, so it is seen again unless one of those has its order's
reference or a match row of this run names it (``_SEEN_AGAIN``); the clears then find the few that one settled. A
break already cleared is never looked at again: its order was settled, and stays so.
"""
from __future__ import annotations

from django.db.backends.utils import CursorWrapper

from reconciliation.models import BreakClass, BreakState, Resolution
from reconciliation.record_types import RecordType

from . import rules
from .history import charge_lines_settling
from .scope import RunScope
from .tables import BREAK_AUDIT, BREAKS, LINES, MATCHES, ORDERS

_SETTLING = charge_lines_settling(order_id="payment_order.id", order_psp_reference="payment_order.psp_reference")

#: SQL (over ``brk``, a ``missing_in_settlement`` break not cleared): the last run saw it unsettled (it wrote its
#: ``last_seen_run``), and its order is still in the window (``RunScope.missing_seen_by``: the window's end has not
#: moved back; ``occurred_on``, the order's completion day, is one the window holds whole: ``missing_days_from``).
#: A succeeded order never changes, and only a run writes match rows or marks files reconciled, so such an order can
#: only be settled now by a line this run decides: no probe of the order, nor of the history (``_SEEN_AGAIN``).
_SEEN_BY_THE_LAST_RUN = """(brk.last_seen_run_id = %(missing_seen_by)s AND brk.occurred_on >= %(missing_days_from)s)"""

_UPSERT_MISSING = f"""
INSERT INTO {BREAKS} (key, break_class, state, run_id, last_seen_run_id, line_id, file_format, occurred_on,
                      expected_amount, expected_currency, actual_amount, actual_currency, object_kind, object_id,
                      psp_reference, description, resolution, reason, resolved_by, resolved_at, created_at)
WITH nearby AS MATERIALIZED (  -- the nearby files' charge lines without a match row: read once, then hashed
    SELECT nearby.psp_reference FROM {LINES} nearby
    WHERE nearby.file_id = ANY(%(missing_nearby_files)s) AND nearby.record_type = '{RecordType.CHARGE}'
      AND NOT EXISTS (SELECT 1 FROM {MATCHES} other WHERE other.line_id = nearby.id)
)
SELECT '{BreakClass.MISSING_IN_SETTLEMENT}:object:' || payment_order.id, '{BreakClass.MISSING_IN_SETTLEMENT}',
       '{BreakState.OPEN}', %(run)s, %(run)s, NULL, '', (payment_order.completed_at AT TIME ZONE 'UTC')::date,
       payment_order.amount, payment_order.currency, NULL, '', 'payment_order', payment_order.id,
       payment_order.psp_reference, {rules.MISSING_IN_SETTLEMENT_DESCRIPTION}, '', '', '', NULL, %(now)s
FROM (  -- set-based first: the orders no line of the nearby files settled by reference
SELECT payment_order.* FROM (  -- the orders new to the window, read by completion time, and those with a break
    SELECT new.* FROM {ORDERS} new
    WHERE new.completed_at >= %(missing_checked_before)s AND new.completed_at < %(missing_before)s
    UNION ALL
    SELECT payment_order.* FROM {BREAKS} brk
    CROSS JOIN LATERAL (  -- a probe by id (OFFSET 0), never a hash of every order
        SELECT * FROM {ORDERS} payment_order WHERE payment_order.id = brk.object_id OFFSET 0
    ) payment_order
    WHERE brk.break_class = '{BreakClass.MISSING_IN_SETTLEMENT}' AND brk.object_kind = 'payment_order'
      AND brk.state <> '{BreakState.AUTO_RESOLVED}'  -- cleared: its order settled, and a settled order stays so
      AND {_SEEN_BY_THE_LAST_RUN} IS NOT TRUE  -- those are seen again below, without a probe
      AND (payment_order.completed_at >= %(missing_checked_before)s
           AND payment_order.completed_at < %(missing_before)s) IS NOT TRUE  -- not twice
) payment_order
WHERE {rules.MISSING_IN_SETTLEMENT_WINDOW} AND NOT EXISTS (  -- a hash anti-join (merge joins off: no text sorts;
    -- from a CTE, never a probe of the lines' reference index per order, which the planner chose at ten nights)
    SELECT 1 FROM nearby WHERE nearby.psp_reference = payment_order.psp_reference AND payment_order.psp_reference <> '')
OFFSET 0  -- so that the probes below are not pushed under the anti-join, run for every order
) payment_order
WHERE NOT EXISTS ({_SETTLING})  -- then the few orders left, probed one by one by the whole rule
ON CONFLICT (key) DO UPDATE SET last_seen_run_id = EXCLUDED.last_seen_run_id
"""

_SEEN_AGAIN = f"""
UPDATE {BREAKS} brk SET last_seen_run_id = %(run)s
WHERE brk.break_class = '{BreakClass.MISSING_IN_SETTLEMENT}' AND brk.object_kind = 'payment_order'
  AND brk.state <> '{BreakState.AUTO_RESOLVED}' AND {_SEEN_BY_THE_LAST_RUN}
  AND NOT EXISTS (  -- a charge of this run's files, matched by reference (no match row): a probe of the lines'
    -- reference index per break (OFFSET 0 keeps it one), not a hash of the night's million lines (3x the CPU)
    SELECT 1 FROM {LINES} line
    WHERE brk.psp_reference <> '' AND line.psp_reference = brk.psp_reference AND line.file_id = ANY(%(files)s)
      AND line.record_type = '{RecordType.CHARGE}'
      AND NOT EXISTS (SELECT 1 FROM {MATCHES} other WHERE other.line_id = line.id) OFFSET 0)
  AND NOT EXISTS (  -- a charge this run matched to the order by a match row (new, or decided again)
    SELECT 1 FROM {MATCHES} line_match JOIN {LINES} line ON line.id = line_match.line_id
    WHERE line_match.kind = 'payment_order' AND line_match.object_id = brk.object_id
      AND line_match.state = 'matched' AND line_match.run_id = %(run)s AND line.record_type = '{RecordType.CHARGE}')
"""

_CLEAR_SETTLED_LATER = f"""
WITH cleared AS (
    UPDATE {BREAKS} brk SET state = '{BreakState.AUTO_RESOLVED}', resolution = '{Resolution.SETTLED_LATER}',
           resolved_by = %(actor)s, resolved_at = %(now)s, reason = {rules.SETTLED_LATER_REASON},
           last_seen_run_id = %(run)s
    FROM {ORDERS} payment_order
    CROSS JOIN LATERAL (  -- the first settling line, in line order
        SELECT settled.id AS line_id FROM ({_SETTLING}) settled ORDER BY settled.file_id, settled.ordinal LIMIT 1
    ) settling
    WHERE brk.break_class = '{BreakClass.MISSING_IN_SETTLEMENT}' AND brk.state = '{BreakState.OPEN}'
      AND brk.last_seen_run_id <> %(run)s  -- seen by the upsert above: its order found unsettled, not probed again
      AND payment_order.id = brk.object_id
    RETURNING brk.id, brk.reason
)
INSERT INTO {BREAK_AUDIT} (brk_id, from_state, to_state, resolution, reason, actor, created_at)
SELECT id, '{BreakState.OPEN}', '{BreakState.AUTO_RESOLVED}', '{Resolution.SETTLED_LATER}', reason, %(actor)s, %(now)s
FROM cleared
"""


def missing_in_settlement_find(cursor: CursorWrapper, scope: RunScope) -> None:
    """Breaks for the succeeded orders still unsettled past the cut-off; clear those a line now settles.

    Runs after the run's files are marked reconciled, so their lines matched by reference count. The breaks the last
    run saw are seen again by ``_SEEN_AGAIN`` (after the upsert, which leaves them out). The clears probe only the
    open breaks neither saw again (``last_seen_run``): one they saw has just been found unsettled in the same run
    (at ten nights: ~1,250 probes a night instead of ~60,000)."""
    # A merge join would sort both sides by reference (text, in the database's collation: seconds at 1M); a
    # hash anti-join reads each side once and spills to disk if it must (a hashed NOT IN would not).
    cursor.execute("SET LOCAL enable_mergejoin = off")
    cursor.execute(_UPSERT_MISSING, scope.params)
    cursor.execute("RESET enable_mergejoin")
    if scope.missing_seen_by is not None:
        cursor.execute(_SEEN_AGAIN, scope.params)
    cursor.execute(_CLEAR_SETTLED_LATER, scope.params)
