"""The reopened lines a run need not decide again: their break would be decided the same.

A charge-like line an earlier run left a break (its match row ``break``) is decided again by every run
(``history.reopened_lines``). Its decision (``rules.CHARGE_LINE_BREAK``, ``charges``) reads:

- the line itself (never rewritten) and its file's batch close (never changed);
- the order its PSP reference finds, else its merchant reference: its id, amount, currency, state, completion and
  reference (a refund, a late success, an order appearing: that order changes or another is found);
- the timing window (a setting);
- for a charge, its *twins*: the open charges with its duplicate key (``dup_key``: the order, else the reference),
  and the charge lines that settled its order before (``history.CANDIDATES_SETTLED_BEFORE``);
- whether the run is *lean* (no candidate found by merchant reference), which decides which new lines are
  candidates at all.

Each decision of a charge or unknown-type line whose order was not found by merchant reference records the order's
fingerprint (``rules.order_fingerprint``, with the timing window) and its duplicate key (``LineDecision``). Such a
line is left undecided (``recon_skipped``) when its fingerprint is the one the order its references find now gives
(``recon_reopened.unchanged``), and no line that could be its twin is decided: no candidate of the run (a new line,
or a reopened line decided again) has its duplicate key, and no reopened line decided again had it at its own last
decision. A charge line that settles its order (a match row ``matched``, or a clean line of a file reconciled
since) was a candidate with that key in the run that decided it (clean lines with a reopened charge's reference are
candidates: ``recon_twin_ref``), so that run decided the line too. Skipping is all or nothing: in a run that is
not lean, or while a reopened charge-like line has no decision record (those before migration 0017), every
reopened line is decided. An operator's resolution changes no input: the break stays resolved, seen again as it
would be. A line left undecided keeps its match row and its break, whose ``last_seen_run`` the run sets as it does
for a break decided again and seen again, so that every reader of it (run stats, the console, the admin) reads
the same.
"""
from __future__ import annotations

from django.db.backends.utils import CursorWrapper

from reconciliation.models import MatchState

from .tables import BREAKS, DECISIONS, LINES, line_break_key


def skipped_table_create(cursor: CursorWrapper, unchanged: list[int]) -> None:
    """``recon_skipped``: the ``unchanged`` reopened lines (``history.reopened_unchanged_select``) no candidate of the
    run may be a twin of (see above); made once every candidate but those lines is in ``recon_candidate``."""
    cursor.execute("DROP TABLE IF EXISTS recon_unchanged")
    cursor.execute("CREATE TEMP TABLE recon_unchanged ON COMMIT DROP AS SELECT unnest(%s::bigint[]) AS id",
                   [unchanged])
    cursor.execute("ANALYZE recon_unchanged")
    cursor.execute("UPDATE recon_reopened reopened SET unchanged = true FROM recon_unchanged unchanged"
                   " WHERE reopened.id = unchanged.id")  # a hash join (never a search of the list per line)
    cursor.execute("ANALYZE recon_reopened")  # how many are unchanged: the anti-joins below hashed
    cursor.execute("DROP TABLE IF EXISTS recon_skipped")
    cursor.execute("""
CREATE TEMP TABLE recon_skipped ON COMMIT DROP AS
SELECT reopened.id, reopened.break_class FROM recon_reopened reopened
WHERE reopened.unchanged
  AND (reopened.decided_key = '' OR (  -- no duplicate key: no twin
    NOT EXISTS (SELECT 1 FROM recon_candidate cand WHERE cand.dup_key COLLATE "C" = reopened.decided_key)
    AND NOT EXISTS (SELECT 1 FROM recon_reopened other
                    WHERE NOT other.unchanged AND other.decided_key = reopened.decided_key)))""")


def skipped_none(cursor: CursorWrapper) -> None:
    """Every reopened line decided after all (a run that is not lean)."""
    cursor.execute("TRUNCATE recon_skipped")


def skipped_count(cursor: CursorWrapper) -> int:
    cursor.execute("SELECT count(*) FROM recon_skipped")
    return cursor.fetchone()[0]


_SKIPPED_SEEN = f"""
UPDATE {BREAKS} brk SET last_seen_run_id = %(run)s FROM recon_skipped skipped
WHERE brk.key = {line_break_key("skipped.break_class", "skipped.id")}
"""

_DECISIONS_GONE = f"""
DELETE FROM {DECISIONS} decision USING recon_outcome outcome
WHERE outcome.from_candidates AND outcome.is_new IS NOT TRUE AND outcome.match_state <> '{MatchState.BREAK.value}'
  AND decision.line_id = outcome.line_id
"""

_DECISIONS_WRITE = f"""
INSERT INTO {DECISIONS} AS decision (line_id, record_type, psp_reference, merchant_reference, break_class, dup_key,
                                     order_fingerprint, run_id)
SELECT outcome.line_id, outcome.record_type, line.psp_reference, line.merchant_reference, outcome.break_class,
       COALESCE(outcome.dup_key, ''), COALESCE(outcome.fingerprint, ''), %(run)s
FROM recon_outcome outcome
CROSS JOIN LATERAL (  -- a probe by id per outcome (OFFSET 0)
    SELECT line.psp_reference, line.merchant_reference FROM {LINES} line WHERE line.id = outcome.line_id OFFSET 0
) line
WHERE outcome.from_candidates AND outcome.match_state = '{MatchState.BREAK.value}'
ON CONFLICT (line_id) DO UPDATE
SET break_class = EXCLUDED.break_class, dup_key = EXCLUDED.dup_key, order_fingerprint = EXCLUDED.order_fingerprint,
    run_id = EXCLUDED.run_id
"""


def decisions_write(cursor: CursorWrapper, params: dict) -> None:
    """The skipped lines' breaks seen again (``last_seen_run``); a decision record for every charge-like line the
    run left a break, none for one it no longer does."""
    cursor.execute(_SKIPPED_SEEN, params)
    cursor.execute(_DECISIONS_GONE, params)
    cursor.execute(_DECISIONS_WRITE, params)
