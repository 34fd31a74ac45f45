"""What earlier runs decided, as the SQL of a run reads it: open lines, and charge lines that settled an order.

*Matched* has one meaning (``reconciliation.selectors.settlement_lines_with_match``): a line is
what its ``SettlementMatch`` row says, and a line without a row in a reconciled file was matched
by its PSP reference by the run that reconciled the file. For a charge that is:

- **matched by a match row**: a row ``state = 'matched'``, ``kind = 'payment_order'`` naming the order;
- **matched by reference**: no row, its file reconciled, the order's PSP reference its own.

Each statement below is that rule for one join, written so that PostgreSQL plans it well over a
million lines: the files reconciled before this run are passed as a list
(``%(reconciled_files)s``), so the planner sees how much history there is.
"""
from __future__ import annotations

from collections.abc import Iterable

from django.db.backends.utils import CursorWrapper

from reconciliation.models import MatchState
from reconciliation.record_types import MATCHED_ONE_BY_ONE, RecordType, sql_list

from .rules import order_fingerprint
from .tables import DECISIONS, LINES, MATCHES, ORDERS

#: SQL (a subquery, ``is_new`` added): the lines of the run's files (``is_new``: no run has decided them).
NEW_LINES = f"""SELECT line.*, true AS is_new FROM {LINES} line WHERE line.file_id = ANY(%(files)s)"""


def reopened_lines(*, reopened: MatchState) -> str:
    """SQL (a subquery, ``is_new`` false): the lines an earlier run left in the state ``reopened``, which this run
    decides again."""
    return f"""SELECT line.*, false AS is_new FROM {MATCHES} line_match
    CROSS JOIN LATERAL (  -- a probe by id per reopened line (OFFSET 0): never a scan of every line of the history
        SELECT * FROM {LINES} line WHERE line.id = line_match.line_id OFFSET 0
    ) line
    WHERE line_match.state = '{reopened.value}'"""


def open_lines(*, reopened: MatchState) -> str:
    """SQL (a subquery, ``is_new`` added): the lines of the run's files and those an earlier run left in the state
    ``reopened`` (``NEW_LINES``, ``reopened_lines``)."""
    return f"""(
    {NEW_LINES}
    UNION ALL
    {reopened_lines(reopened=reopened)}
)"""


#: SQL (a ``FROM`` list): the reopened lines' match rows (``line_match``), their decision records (``decision``) and,
#: for a line without one, the line, probed by id (``line``).
_REOPENED_RECORDED = f"""{MATCHES} line_match
LEFT JOIN {DECISIONS} decision ON decision.line_id = line_match.line_id
LEFT JOIN LATERAL (  -- a probe by id per reopened line without a decision record (OFFSET 0)
    SELECT line.record_type, line.psp_reference FROM {LINES} line
    WHERE decision.line_id IS NULL AND line.id = line_match.line_id OFFSET 0
) line ON true"""


def reopened_table_create(cursor: CursorWrapper) -> None:
    """``recon_reopened``: the lines an earlier run left a break (``reopened_lines``), their ids, record types and
    PSP references, read once by the candidates step, so that the steps that decide them again probe only those of
    their own record types (``open_lines_of``). The run writes no match row before its decisions are made
    (``recording``), so the set is the one each step would read itself. A line with a decision record
    (``LineDecision``) is not read: the record has its type and reference, the break it was left (``break_class``)
    and its duplicate key then (``decided_key``). ``unchanged`` is set by the candidates step
    (``reopened_unchanged_select``, read aside)."""
    cursor.execute("DROP TABLE IF EXISTS recon_reopened")
    cursor.execute(f"""
CREATE TEMP TABLE recon_reopened ON COMMIT DROP AS
SELECT line_match.line_id AS id, COALESCE(decision.record_type, line.record_type) AS record_type,
       COALESCE(decision.psp_reference, line.psp_reference) AS psp_reference,
       decision.break_class, decision.dup_key AS decided_key, false AS unchanged
FROM {_REOPENED_RECORDED}
WHERE line_match.state = '{MatchState.BREAK.value}'""")
    cursor.execute("ANALYZE recon_reopened")


def reopened_unchanged_select(cursor: CursorWrapper, params: dict) -> tuple[list[int], list[int]]:
    """The charge-like reopened lines to decide again, and the others: those whose record's fingerprint is the one the
    order their references find now gives (``unchanged``); none when some charge-like one has no record. It reads
    match rows and records (only runs write them, one at a time, and this run writes none before its decisions),
    lines by id (never rewritten) and orders (whenever read: a change after it is the next run's): the same on a
    second connection (``aside``)."""
    cursor.execute(f"""
SELECT line_match.line_id, decision.line_id IS NOT NULL, COALESCE(decision.record_type, line.record_type),
       (decision.order_fingerprint <> '' AND decision.order_fingerprint = {_NOW_FINGERPRINT}) IS TRUE
FROM {_REOPENED_RECORDED}
LEFT JOIN LATERAL (  -- the order its PSP reference finds now: a probe of the orders' reference index
    SELECT {_COLUMNS} FROM {ORDERS} probe
    WHERE decision.order_fingerprint <> '' AND decision.psp_reference <> ''
      AND probe.psp_reference = decision.psp_reference AND probe.psp_reference <> '' OFFSET 0
) by_psp ON true
LEFT JOIN LATERAL (  -- else its merchant reference (our order id)
    SELECT {_COLUMNS} FROM {ORDERS} probe
    WHERE by_psp.id IS NULL AND decision.order_fingerprint <> '' AND decision.merchant_reference <> ''
      AND probe.id = decision.merchant_reference OFFSET 0
) by_merchant ON true
WHERE line_match.state = '{MatchState.BREAK.value}'""", params)
    charge_like = [(line_id, decided, unchanged) for line_id, decided, record_type, unchanged in cursor.fetchall()
                   if record_type not in MATCHED_ONE_BY_ONE]
    skipping = all(decided for _, decided, _ in charge_like)
    return ([line_id for line_id, _, unchanged in charge_like if not (skipping and unchanged)],
            [line_id for line_id, _, unchanged in charge_like if skipping and unchanged])


_COLUMNS = "probe.id, probe.amount, probe.currency, probe.state, probe.completed_at, probe.psp_reference"
_NOW_FINGERPRINT = order_fingerprint(*(f"COALESCE(by_psp.{column}, by_merchant.{column})" for column in (
    "id", "amount", "currency", "state", "completed_at", "psp_reference")))


def open_lines_of(record_types: Iterable[str]) -> str:
    """SQL (a subquery, ``is_new`` added): the lines of the run's files and the lines decided again
    (``recon_reopened``) of one of ``record_types``: only those reopened lines are read, by id. (The caller still
    says which record types it reads: the run's lines are all of them.)"""
    return f"""(
    {NEW_LINES}
    UNION ALL
    SELECT line.*, false AS is_new FROM recon_reopened reopened
    CROSS JOIN LATERAL (SELECT * FROM {LINES} line WHERE line.id = reopened.id OFFSET 0) line  -- a probe by id
    WHERE reopened.record_type IN ({sql_list(record_types)})
)"""


#: SQL (an ``IN`` subquery): the orders a charge line settled, matched by a match row.
ORDERS_SETTLED_BY_MATCH_ROW = f"""(
    SELECT line_match.object_id FROM {MATCHES} line_match JOIN {LINES} earlier ON earlier.id = line_match.line_id
    WHERE line_match.kind = 'payment_order' AND line_match.state = 'matched'
      AND earlier.record_type = '{RecordType.CHARGE}')"""


def settled_by_reference_select(cursor: CursorWrapper, params: dict) -> list[int]:
    """The charges of the run's files whose PSP reference a charge of a reconciled file has, that charge matched by
    reference (usually none). A million probes of the lines' reference index at a night of a million lines.

    It reads only what was committed before the run: the lines of the run's files and of the files reconciled
    before it (``params``: lists fixed at the run's start; a file's lines are written by its import, committed with
    it, and never rewritten), and match rows, which only runs write, one at a time (the run's advisory lock), and
    this run writes none before it reads these ids. So the same ids on a second connection (``aside``), while the
    run's own connection builds its candidates.
    """
    cursor.execute(f"""
SELECT line.id FROM {LINES} line
WHERE line.file_id = ANY(%(files)s) AND line.record_type = '{RecordType.CHARGE}' AND line.psp_reference <> ''
  AND EXISTS (  -- a probe of the reference index per line (OFFSET 0 keeps it one), never a scan of the history
    SELECT 1 FROM {LINES} earlier
    WHERE earlier.psp_reference = line.psp_reference AND earlier.id <> line.id
      AND earlier.file_id = ANY(%(reconciled_files)s) AND earlier.record_type = '{RecordType.CHARGE}'
      AND NOT EXISTS (SELECT 1 FROM {MATCHES} other WHERE other.line_id = earlier.id) OFFSET 0)
""", params)
    return [line_id for (line_id,) in cursor.fetchall()]


def settled_by_reference_collect(cursor: CursorWrapper, line_ids: list[int]) -> int:
    """``recon_settled``: the lines ``settled_by_reference_select`` found (none: no table). Returns how many."""
    if not line_ids:
        return 0
    cursor.execute("DROP TABLE IF EXISTS recon_settled")
    cursor.execute("CREATE TEMP TABLE recon_settled ON COMMIT DROP AS SELECT unnest(%s::bigint[]) AS id",
                   [line_ids])
    return len(line_ids)


#: SQL (a CTE body over ``recon_candidate``): the candidate charges whose order another charge line
#: settled already, matched by a match row or by reference in a file reconciled before this run.
CANDIDATES_SETTLED_BEFORE = f"""
    SELECT cand.id FROM recon_candidate cand
    JOIN {MATCHES} line_match ON line_match.kind = 'payment_order' AND line_match.object_id = cand.order_id
                              AND line_match.state = 'matched'
    JOIN {LINES} earlier ON earlier.id = line_match.line_id AND earlier.record_type = '{RecordType.CHARGE}'
                         AND earlier.id <> cand.id
    WHERE cand.record_type = '{RecordType.CHARGE}'
    UNION
    SELECT cand.id FROM recon_candidate cand
    JOIN {LINES} earlier ON earlier.psp_reference = cand.order_psp_reference
                         AND earlier.record_type = '{RecordType.CHARGE}' AND earlier.id <> cand.id
    WHERE cand.record_type = '{RecordType.CHARGE}' AND cand.order_psp_reference <> ''
      AND earlier.file_id = ANY(%(reconciled_files)s)
      AND NOT EXISTS (SELECT 1 FROM {MATCHES} other WHERE other.line_id = earlier.id)
"""


def charge_lines_settling(*, order_id: str, order_psp_reference: str) -> str:
    """SQL (a subquery of ``id, file_id, ordinal``): the charge lines that settled the order whose id and PSP
    reference are the SQL expressions given, matched by reference in a reconciled file (``%(settled_files)s``: the
    files reconciled before this run and this run's, once it has marked them) or by a match row. By reference
    first: nearly every order is settled so, and ``EXISTS`` stops at the first line."""
    return f"""
        SELECT earlier.id, earlier.file_id, earlier.ordinal FROM {LINES} earlier
        WHERE {order_psp_reference} <> '' AND earlier.psp_reference = {order_psp_reference}
          AND earlier.record_type = '{RecordType.CHARGE}' AND earlier.file_id = ANY(%(settled_files)s)
          AND NOT EXISTS (SELECT 1 FROM {MATCHES} other WHERE other.line_id = earlier.id)
        UNION ALL
        SELECT earlier.id, earlier.file_id, earlier.ordinal FROM {MATCHES} line_match
        JOIN {LINES} earlier ON earlier.id = line_match.line_id
        WHERE line_match.kind = 'payment_order' AND line_match.object_id = {order_id}
          AND line_match.state = 'matched' AND earlier.record_type = '{RecordType.CHARGE}'"""
