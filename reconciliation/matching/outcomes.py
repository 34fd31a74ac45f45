"""A run's outcomes: ``recon_outcome``, one row per line the run decides.

A row holds the line's new match state, the object it was matched to and, for a difference,
exactly one break class with what our books and the PSP or bank say. A new line matched by
its PSP reference with no difference gets no row (it is only counted): it gets no
``SettlementMatch`` either (see ``history``). The steps fill the table; ``recording`` writes
match rows and breaks from it.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection
from django.db.backends.utils import CursorWrapper

from reconciliation.models import BreakClass, MatchState

_CREATE = """
CREATE TEMP TABLE recon_outcome (
    line_id bigint NOT NULL,
    match_state text NOT NULL,
    break_class text,
    object_kind text NOT NULL DEFAULT '',
    object_id text NOT NULL DEFAULT '',
    expected_amount bigint,
    expected_currency text NOT NULL DEFAULT '',
    actual_amount bigint,
    actual_currency text NOT NULL DEFAULT '',
    description text NOT NULL DEFAULT '',
    is_new boolean,  -- true: the line has no match row yet; NULL: not known
    from_candidates boolean NOT NULL DEFAULT false,  -- a charge-like line (``candidates``)
    by_reference boolean NOT NULL DEFAULT false,  -- new, matched by PSP reference: no match row, only its timing break
    record_type text,  -- the line's, for a charge-like line (``from_candidates``); NULL: not written
    dup_key text,  -- a charge-like line's (``candidates``)
    fingerprint text  -- the order it found (``rules.order_fingerprint``), when its break may be left undecided
) ON COMMIT DROP
"""

_ADD = """
INSERT INTO recon_outcome (line_id, match_state, break_class, object_kind, object_id, expected_amount,
                           expected_currency, actual_amount, actual_currency, description)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""


@dataclass(frozen=True)
class Outcome:
    """What a run decided for one line (a row of ``recon_outcome`` written from Python)."""

    line_id: int
    match_state: MatchState
    break_class: BreakClass | None = None
    object_kind: str = ""
    object_id: str = ""
    expected_amount: int | None = None
    expected_currency: str = ""
    actual_amount: int | None = None
    actual_currency: str = ""
    description: str = ""

    def row(self) -> tuple:
        return (self.line_id, str(self.match_state), None if self.break_class is None else str(self.break_class),
                self.object_kind, self.object_id or "", self.expected_amount, self.expected_currency,
                self.actual_amount, self.actual_currency, self.description)


def outcomes_table_create(cursor: CursorWrapper) -> None:
    """A fresh ``recon_outcome`` (a run inside a test's transaction may find the last run's)."""
    cursor.execute("DROP TABLE IF EXISTS recon_outcome")
    cursor.execute(_CREATE)


def outcomes_add(outcomes: Iterable[Outcome]) -> None:
    """Rows decided in Python (refunds, payouts); whether their line is new is not known here."""
    with connection.cursor() as writer:
        writer.executemany(_ADD, [outcome.row() for outcome in outcomes])


def outcomes_count(cursor: CursorWrapper) -> int:
    """How many lines have an outcome; first fresh statistics, for the statements that join the table."""
    cursor.execute("ANALYZE recon_outcome")
    cursor.execute("SELECT count(*) FROM recon_outcome")
    return cursor.fetchone()[0]


def new_candidates_decided(cursor: CursorWrapper) -> int:
    """How many new charge-like lines have an outcome: the others were matched by reference."""
    cursor.execute("SELECT count(*) FROM recon_outcome WHERE from_candidates AND is_new")
    return cursor.fetchone()[0]


def lines_by_state(cursor: CursorWrapper, *, matched_by_reference: int, skipped: int = 0) -> dict[str, int]:
    """Lines per new match state, the lines matched by reference (no outcome row) among the matched, the reopened
    lines left undecided (``unchanged``: breaks as they were) among the breaks."""
    cursor.execute("SELECT match_state, count(*) FROM recon_outcome GROUP BY 1 ORDER BY 1")
    lines = dict(cursor.fetchall())
    if matched_by_reference:
        lines[MatchState.MATCHED.value] = lines.get(MatchState.MATCHED.value, 0) + matched_by_reference
    if skipped:
        lines[MatchState.BREAK.value] = lines.get(MatchState.BREAK.value, 0) + skipped
    return dict(sorted(lines.items()))
