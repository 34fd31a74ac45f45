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
from .aside import Aside
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

#: SQL (a CTE): the nearby files' charge lines without a match row: read once, then hashed.
_NEARBY = f"""nearby AS MATERIALIZED (
    SELECT nearby.psp_reference FROM {LINES} nearby
    WHERE nearby.file_id = ANY(%(missing_nearby_files)s) AND nearby.record_type = '{RecordType.CHARGE}'
      AND NOT EXISTS (SELECT 1 FROM {MATCHES} other WHERE other.line_id = nearby.id)
)"""

#: SQL (over ``payment_order``): no charge line of the nearby files without a match row has its PSP reference. A hash
#: anti-join (merge joins off: no text sorts; from a CTE, never a probe of the lines' reference index per order,
#: which the planner chose at ten nights).
_NOT_NEARBY = """NOT EXISTS (SELECT 1 FROM nearby
    WHERE nearby.psp_reference = payment_order.psp_reference AND payment_order.psp_reference <> '')"""

#: SQL: the orders new to the window, read by completion time.
_NEW_TO_THE_WINDOW = f"""SELECT payment_order.* FROM {ORDERS} payment_order
    WHERE payment_order.completed_at >= %(missing_checked_before)s
      AND payment_order.completed_at < %(missing_before)s"""

#: SQL: the orders with a break the upsert probes (by id: scattered over the lookback).
_WITH_A_BREAK = f"""SELECT payment_order.* FROM {BREAKS} brk
    CROSS JOIN LATERAL (  -- a probe by id (OFFSET 0), never a hash of every order
        SELECT * FROM {ORDERS} payment_order WHERE payment_order.id = brk.object_id OFFSET 0
    ) payment_order
    WHERE brk.break_class = '{BreakClass.MISSING_IN_SETTLEMENT}' AND brk.object_kind = 'payment_order'
      AND brk.state <> '{BreakState.AUTO_RESOLVED}'  -- cleared: its order settled, and a settled order stays so
      AND {_SEEN_BY_THE_LAST_RUN} IS NOT TRUE  -- those are seen again below, without a probe
      AND (payment_order.completed_at >= %(missing_checked_before)s
           AND payment_order.completed_at < %(missing_before)s) IS NOT TRUE  -- not twice"""

#: SQL (the whole upsert, ``{orders}`` the orders to look at, as ``payment_order``): those the settling rule finds no
#: line for are breaks, probed one by one by the whole rule.
_UPSERT = f"""
INSERT INTO {BREAKS} (key, break_class, state, run_id, last_seen_run_id, line_id, file_format, occurred_on,
                      expected_amount, expected_currency, actual_amount, actual_currency, object_kind, object_id,
                      psp_reference, description, resolution, reason, resolved_by, resolved_at, created_at)
{{with_nearby}}
SELECT '{BreakClass.MISSING_IN_SETTLEMENT}:object:' || payment_order.id, '{BreakClass.MISSING_IN_SETTLEMENT}',
       '{BreakState.OPEN}', %(run)s, %(run)s, NULL, '', (payment_order.completed_at AT TIME ZONE 'UTC')::date,
       payment_order.amount, payment_order.currency, NULL, '', 'payment_order', payment_order.id,
       payment_order.psp_reference, {rules.MISSING_IN_SETTLEMENT_DESCRIPTION}, '', '', '', NULL, %(now)s
FROM (
SELECT payment_order.* FROM ({{orders}}
) payment_order
WHERE {rules.MISSING_IN_SETTLEMENT_WINDOW}{{not_nearby}}
OFFSET 0  -- so that the probes below are not pushed under the anti-join, run for every order
) payment_order
WHERE NOT EXISTS ({_SETTLING})  -- then the few orders left, probed one by one by the whole rule
ON CONFLICT (key) DO UPDATE SET last_seen_run_id = EXCLUDED.last_seen_run_id
"""

#: The upsert on the run's connection alone: set-based first, the orders new to the window no line of the nearby
#: files settled by reference, and those with a break.
_UPSERT_MISSING = _UPSERT.format(with_nearby=f"WITH {_NEARBY}", not_nearby=f" AND {_NOT_NEARBY}",
                                 orders=f"{_NEW_TO_THE_WINDOW}\n    UNION ALL\n    {_WITH_A_BREAK}")

#: SQL (a read on a second connection, ``aside``): the ids of the orders new to the window that no charge line of
#: the nearby files without a match row has the reference of, as committed before the run wrote any.
_NEW_NOT_NEARBY = f"""
WITH {_NEARBY}
SELECT payment_order.id FROM ({_NEW_TO_THE_WINDOW}) payment_order WHERE {_NOT_NEARBY}
"""

#: The upsert after ``_NEW_NOT_NEARBY`` was read aside (``%(new_not_nearby)s``): to those orders it adds the ones a
#: charge line of the nearby files had the reference of until this run gave that line a match row (its new lines
#: decided, not matched by reference: ``recording._INSERT_NEW_MATCHES``), and the orders with a break.
_UPSERT_MISSING_READ_ASIDE = _UPSERT.format(with_nearby="", not_nearby="", orders=f"""
    SELECT payment_order.* FROM (
        SELECT unnest(%(new_not_nearby)s::text[]) AS id
        UNION
        SELECT probe.id FROM recon_outcome outcome
        CROSS JOIN LATERAL (SELECT * FROM {LINES} line WHERE line.id = outcome.line_id OFFSET 0) line
        CROSS JOIN LATERAL (  -- a probe of the orders' reference index (partial: not '') per line
            SELECT probe.id FROM {ORDERS} probe
            WHERE probe.psp_reference = line.psp_reference AND probe.psp_reference <> '' OFFSET 0
        ) probe
        WHERE outcome.is_new AND NOT outcome.by_reference AND line.psp_reference <> ''
          AND line.record_type = '{RecordType.CHARGE}' AND line.file_id = ANY(%(missing_nearby_files)s)
    ) found
    CROSS JOIN LATERAL (  -- a probe by id (OFFSET 0)
        SELECT * FROM {ORDERS} payment_order WHERE payment_order.id = found.id OFFSET 0
    ) payment_order
    WHERE payment_order.completed_at >= %(missing_checked_before)s AND payment_order.completed_at < %(missing_before)s
    UNION ALL
    {_WITH_A_BREAK}""")


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


def missing_new_not_nearby_select(cursor: CursorWrapper, params: dict) -> list[str]:
    """``_NEW_NOT_NEARBY``'s order ids, on a second connection (``aside``), while the run decides its lines.

    What it reads is what the run's upsert would read but for the run's own writes, which
    ``_UPSERT_MISSING_READ_ASIDE`` adds back: the nearby files (fixed at the run's start; their lines written by
    their imports, committed, never rewritten); match rows (written only by runs, one at a time: this run's are the
    only ones it does not see, and they only take lines away from ``nearby``); orders by completion time. A
    succeeded order never changes; an order committed after this read and before the upsert is left to the next run,
    as one committed after the upsert always was: a run counts as checked only the orders completed an hour before
    it started (``scope._UNSEEN_BEFORE_START``), and this read starts after the run did.
    """
    cursor.execute("SET LOCAL enable_mergejoin = off")  # as for the upsert below
    cursor.execute(_NEW_NOT_NEARBY, params)
    found = [order_id for (order_id,) in cursor.fetchall()]
    cursor.execute("RESET enable_mergejoin")
    return found


def missing_in_settlement_find(cursor: CursorWrapper, scope: RunScope, new_not_nearby: Aside[list[str]]) -> None:
    """Breaks for the succeeded orders still unsettled past the cut-off; clear those a line now settles.

    Runs after the run's files are marked reconciled, so their lines matched by reference count. The orders new to
    the window that no nearby line settled by reference were read on a second connection when ``new_not_nearby`` is
    enabled (``missing_new_not_nearby_select``). The breaks the last run saw are seen again by ``_SEEN_AGAIN``
    (after the upsert, which leaves them out). The clears probe only the open breaks neither saw again
    (``last_seen_run``): one they saw has just been found unsettled in the same run (at ten nights: ~1,250 probes a
    night instead of ~60,000)."""
    if new_not_nearby.enabled:
        cursor.execute(_UPSERT_MISSING_READ_ASIDE, {**scope.params, "new_not_nearby": new_not_nearby.result(cursor)})
    else:
        # A merge join would sort both sides by reference (text, in the database's collation: seconds at 1M); a
        # hash anti-join reads each side once and spills to disk if it must (a hashed NOT IN would not).
        cursor.execute("SET LOCAL enable_mergejoin = off")
        cursor.execute(_UPSERT_MISSING, scope.params)
        cursor.execute("RESET enable_mergejoin")
    if scope.missing_seen_by is not None:
        cursor.execute(_SEEN_AGAIN, scope.params)
    cursor.execute(_CLEAR_SETTLED_LATER, scope.params)
