"""Step 6: what the run decided, written down: match rows, the files reconciled, breaks and their audit.

Settlement lines themselves are never rewritten. Breaks are keyed (``<class>:line:<line id>``),
so a run decided again adds nothing: a break seen again only gets its ``last_seen_run``, and
a resolved one stays resolved.
"""
from __future__ import annotations

from django.db.backends.utils import CursorWrapper

from reconciliation.models import BreakState, Resolution

from . import rules
from .scope import RunScope
from .tables import BREAK_AUDIT, BREAKS, FILES, LINES, MATCHES, line_break_key

_INSERT_NEW_MATCHES = f"""
INSERT INTO {MATCHES} (line_id, state, kind, object_id, run_id)
SELECT outcome.line_id, outcome.match_state, outcome.object_kind, outcome.object_id, %(run)s
FROM recon_outcome outcome WHERE outcome.is_new AND NOT outcome.by_reference
"""

_UPSERT_MATCHES_DECIDED_AGAIN = f"""
INSERT INTO {MATCHES} AS line_match (line_id, state, kind, object_id, run_id)
SELECT outcome.line_id, outcome.match_state, outcome.object_kind, outcome.object_id, %(run)s
FROM recon_outcome outcome WHERE outcome.is_new IS NOT TRUE
ON CONFLICT (line_id) DO UPDATE
SET state = EXCLUDED.state, kind = EXCLUDED.kind, object_id = EXCLUDED.object_id, run_id = EXCLUDED.run_id
WHERE (line_match.state, line_match.kind, line_match.object_id)
      IS DISTINCT FROM (EXCLUDED.state, EXCLUDED.kind, EXCLUDED.object_id)
"""


def matches_write(cursor: CursorWrapper, scope: RunScope) -> None:
    """A match row per outcome: a new line's narrow row is inserted (none for a line matched by reference);
    a line decided again has its row changed only where the decision differs."""
    cursor.execute(_INSERT_NEW_MATCHES, scope.params)
    cursor.execute(_UPSERT_MATCHES_DECIDED_AGAIN, scope.params)


def files_mark_reconciled(cursor: CursorWrapper, scope: RunScope) -> None:
    """The run's files are reconciled by this run: from here on their lines matched by reference count as
    settled (they have no match row; see ``history``)."""
    cursor.execute(f"UPDATE {FILES} SET reconciled_at = %(now)s, reconciled_run_id = %(run)s"
                   " WHERE id = ANY(%(files)s)", scope.params)


_ON_SIGHT = f"outcome.break_class = '{rules.RESOLVED_ON_SIGHT}'"

_KEY = line_break_key("outcome.break_class", "outcome.line_id")

_UPSERT_LINE_BREAKS = f"""
WITH seen AS (  -- a break seen again: only its last_seen_run (no line read, nothing else of its row rebuilt)
    UPDATE {BREAKS} brk SET last_seen_run_id = %(run)s FROM recon_outcome outcome
    WHERE outcome.break_class IS NOT NULL AND brk.key = {_KEY}
    RETURNING brk.key
)
INSERT INTO {BREAKS} (key, break_class, state, run_id, last_seen_run_id, line_id, file_format, occurred_on,
                      expected_amount, expected_currency, actual_amount, actual_currency, object_kind, object_id,
                      psp_reference, description, resolution, reason, resolved_by, resolved_at, created_at)
SELECT {_KEY}, outcome.break_class,
       CASE WHEN {_ON_SIGHT} THEN '{BreakState.AUTO_RESOLVED}' ELSE '{BreakState.OPEN}' END,
       %(run)s, %(run)s, outcome.line_id, file.format, (line.occurred_at AT TIME ZONE 'UTC')::date,
       outcome.expected_amount, outcome.expected_currency, outcome.actual_amount, outcome.actual_currency,
       outcome.object_kind, outcome.object_id, line.psp_reference, outcome.description,
       CASE WHEN {_ON_SIGHT} THEN '{rules.RESOLVED_ON_SIGHT_RESOLUTION}' ELSE '' END,
       CASE WHEN {_ON_SIGHT} THEN '{rules.RESOLVED_ON_SIGHT_REASON}' ELSE '' END,
       CASE WHEN {_ON_SIGHT} THEN %(actor)s ELSE '' END,
       CASE WHEN {_ON_SIGHT} THEN %(now)s END,
       %(now)s
FROM recon_outcome outcome
CROSS JOIN LATERAL (  -- a probe per outcome (OFFSET 0), never a scan of every line
    SELECT line.occurred_at, line.psp_reference, line.file_id FROM {LINES} line WHERE line.id = outcome.line_id OFFSET 0
) line
JOIN {FILES} file ON file.id = line.file_id
WHERE outcome.break_class IS NOT NULL AND {_KEY} NOT IN (SELECT key FROM seen)  -- the new ones
ON CONFLICT (key) DO UPDATE SET last_seen_run_id = EXCLUDED.last_seen_run_id
"""

_AUDIT_RESOLVED_ON_SIGHT = f"""
INSERT INTO {BREAK_AUDIT} (brk_id, from_state, to_state, resolution, reason, actor, created_at)
SELECT brk.id, '{BreakState.OPEN}', '{BreakState.AUTO_RESOLVED}', brk.resolution, brk.reason, %(actor)s, %(now)s
FROM {BREAKS} brk WHERE brk.run_id = %(run)s AND brk.state = '{BreakState.AUTO_RESOLVED}'
  AND NOT EXISTS (SELECT 1 FROM {BREAK_AUDIT} audit WHERE audit.brk_id = brk.id)
"""

_CLEAR_BREAKS_NO_LONGER_OBSERVED = f"""
WITH cleared AS (
    UPDATE {BREAKS} brk SET state = '{BreakState.AUTO_RESOLVED}', resolution = '{Resolution.CLEARED}',
           resolved_by = %(actor)s, resolved_at = %(now)s, reason = {rules.CLEARED_REASON}
    FROM recon_outcome outcome
    WHERE brk.line_id = outcome.line_id AND brk.state = '{BreakState.OPEN}'
      AND brk.key <> COALESCE({_KEY}, '')
    RETURNING brk.id, brk.reason
)
INSERT INTO {BREAK_AUDIT} (brk_id, from_state, to_state, resolution, reason, actor, created_at)
SELECT id, '{BreakState.OPEN}', '{BreakState.AUTO_RESOLVED}', '{Resolution.CLEARED}', reason, %(actor)s, %(now)s
FROM cleared
"""


def line_breaks_write(cursor: CursorWrapper, scope: RunScope) -> None:
    """The breaks of the lines decided: new ones inserted (a timing break resolved on sight, with its audit row),
    breaks seen again marked so (an ``UPDATE`` of ``last_seen_run`` alone, found by key: their lines are not
    read again); an open break of a line decided again whose class the run no longer observes cleared, with its
    audit row."""
    cursor.execute(_UPSERT_LINE_BREAKS, scope.params)
    cursor.execute(_AUDIT_RESOLVED_ON_SIGHT, scope.params)
    cursor.execute(_CLEAR_BREAKS_NO_LONGER_OBSERVED, scope.params)
