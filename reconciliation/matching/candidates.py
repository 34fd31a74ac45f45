"""Step 1: the open charge-like lines, each with the payment order it finds (``recon_candidate``).

Charge-like lines are every line but refunds, payouts, bank and malformed lines
(``record_types.MATCHED_ONE_BY_ONE``). Each finds its order by PSP reference, else by merchant
reference, our order id. A candidate is *clean* when it is new and has no difference (``rules.CLEAN``).

By PSP reference, set-based: at most one order has a reference (payments' unique index,
``payment_order_one_per_psp_reference``), so the lines are first hash-joined to the orders a clean line
can settle (completed at most a timing window before the earliest of the run's batches closed:
``RunScope.candidates_since``, read by completion time, never every order), and only the lines that found
none there probe the orders' index, one by one (those with a difference, or no order: few). A line
found by the hash join has found its only order, so what is found is what a probe per line would find.

Usually only the lines that are not clean need a decision: a clean line is matched by
reference and only counted. That holds when no duplicate can hide among the clean ones (the
*lean* case), so a clean line is a candidate only when it may be one: its PSP reference is a
charge's of another line of the run's files (``recon_twin_ref``: read from the import when the run's one
file of charges had them found there, ``SettlementFile.twin_references``) or of a break decided again, or its
order was settled by a line of an earlier run. Duplicates are then looked for among the candidates, each
group of twins whole. A line found by merchant reference (its order may be another line's) ends
the lean case: every open charge-like line is then a candidate. In the lean case the clean lines that the
hash join finds and that are no candidates are left out first, by a hash anti-join (``_LEAN_SKIP``): only
the lines it leaves are built, their order probed by its reference.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.backends.utils import CursorWrapper

from reconciliation.models import MatchState, SettlementFile
from reconciliation.record_types import MATCHED_ONE_BY_ONE, RecordType, sql_list

from . import rules
from .aside import Aside
from .history import (
    NEW_LINES,
    ORDERS_SETTLED_BY_MATCH_ROW,
    open_lines,
    reopened_table_create,
    reopened_unchanged_select,
    settled_by_reference_collect,
    settled_by_reference_select,
)
from .scope import RunScope
from .tables import LINES, ORDERS
from .unchanged import skipped_count, skipped_none, skipped_table_create


@dataclass(frozen=True)
class Candidates:
    #: Charge-like lines in the run's files.
    new_lines: int
    #: Reopened lines left undecided (``unchanged``): breaks as they were.
    skipped: int = 0


def charge_candidates_collect(cursor: CursorWrapper, scope: RunScope) -> Candidates:
    """Fill ``recon_candidate``, leaving the clean lines out when that is safe, and the unchanged reopened lines
    (``recon_skipped``: see above)."""
    run_files = SettlementFile.objects.filter(pk__in=scope.files).only(
        "id", "counts_by_type", "unique_references", "twin_references")
    charge_like = [{kind: count for kind, count in f.counts_by_type.items() if kind not in MATCHED_ONE_BY_ONE}
                   for f in run_files]
    with_candidates = [f for f, counts in zip(run_files, charge_like, strict=True) if counts]
    new_lines = sum(sum(counts.values()) for counts in charge_like)
    # One file of charges whose import found its twins (or none): they need not be looked for in its lines.
    found = (None if len(with_candidates) > 1 else
             [] if not with_candidates or with_candidates[0].unique_references is True
             else with_candidates[0].twin_references)
    params = {**scope.params, "clean_before": _clean_before(scope, with_candidates)}
    # The reopened lines' candidates and the history's charges settled by reference are read meanwhile, each on a
    # connection of its own (``aside``): with the run's, three statements for the two cores of a small server, none
    # of them waiting for the others until the run's needs what they read.
    with (Aside(lambda reader: _reopened_select(reader, params), enabled=scope.reads_aside) as reopened,
          Aside(lambda reader: settled_by_reference_select(reader, params) if scope.reconciled_files else [],
                enabled=scope.reads_aside) as settled):
        reopened_table_create(cursor)  # read by the later steps too (refunds, payouts, money out)
        _twin_references_collect(cursor, scope, found=found)
        aside = _Aside(reopened=reopened, settled=settled)
        if _collect(cursor, scope, params, aside, lean=True):
            _collect(cursor, scope, params, aside, lean=False)
    return Candidates(new_lines=new_lines, skipped=skipped_count(cursor))


@dataclass(frozen=True)
class _Aside:
    """The reads on second connections: the reopened lines' candidate rows, the ids of the run's charges a
    reconciled file's charge settled by reference (``history``)."""

    reopened: Aside[tuple[list[tuple], list[int]]]
    settled: Aside[list[int]]


def _reopened_select(cursor: CursorWrapper, params: dict) -> tuple[list[tuple], list[int]]:
    """The candidates of the reopened lines to decide again (breaks; never clean: they are not new), each with the
    order its reference finds, probed: ``recon_candidate``'s rows; and the unchanged ones
    (``history.reopened_unchanged_select``). It reads lines by id (never rewritten) and orders (read once per line
    here as in the run's own statement: the run reads them again, later, where it decides)."""
    to_decide, unchanged = reopened_unchanged_select(cursor, params)
    cursor.execute(_candidate_lines(keep="true", orders=_PROBED_ORDER, lines=_REOPENED_BY_ID),
                   {**params, "reopened": to_decide})
    return cursor.fetchall(), unchanged


#: SQL (a subquery, ``is_new`` false): the reopened lines ``%(reopened)s``, each probed by id.
_REOPENED_BY_ID = f"""(
    SELECT line.*, false AS is_new FROM unnest(%(reopened)s::bigint[]) reopened (id)
    CROSS JOIN LATERAL (SELECT * FROM {LINES} line WHERE line.id = reopened.id OFFSET 0) line
)"""


def _clean_before(scope: RunScope, with_candidates: list[SettlementFile]) -> datetime | None:
    """The batch close less the timing window when every file with charge-like lines has the same close (then
    ``rules.CLEAN`` need not look up each line's file), else None."""
    closes = {scope.settled_at[scope.files.index(f.pk)] for f in with_candidates}
    close = closes.pop() if len(closes) == 1 else None
    return None if close is None else close - scope.timing_window


def _twin_references_collect(cursor: CursorWrapper, scope: RunScope, *, found: list[str] | None) -> None:
    """``recon_twin_ref``: the PSP references a clean line may share with another charge, so that it is a
    candidate: those of the charges of breaks decided again (``recon_reopened``), and those several charges of the
    run's files have: ``found`` on import (``SettlementFile.twin_references``), else a set-based check over the run's
    lines (a hash aggregate), not the history."""
    within = "" if found is not None else f"""
UNION
SELECT line.psp_reference FROM {LINES} line
WHERE line.file_id = ANY(%(files)s) AND line.record_type = '{RecordType.CHARGE}' AND line.psp_reference <> ''
GROUP BY line.psp_reference HAVING count(*) > 1"""
    cursor.execute("DROP TABLE IF EXISTS recon_twin_ref")
    cursor.execute(f"""
CREATE TEMP TABLE recon_twin_ref ON COMMIT DROP AS
SELECT line.psp_reference FROM recon_reopened line  -- read once, probed by id (``history``)
WHERE line.record_type = '{RecordType.CHARGE}' AND line.psp_reference <> ''{within}
""", scope.params)
    if found:
        cursor.execute("INSERT INTO recon_twin_ref (psp_reference) SELECT unnest(%s::text[])", [found])
    cursor.execute("ANALYZE recon_twin_ref")


def _collect(cursor: CursorWrapper, scope: RunScope, params: dict, aside: _Aside, *, lean: bool) -> int:
    """``recon_candidate`` anew; returns how many candidates were found by merchant reference. ``aside``: the
    reopened lines' candidates (those ``unchanged`` may not skip) and the charges of the run's files a reconciled
    file's charge settled by reference, read on second connections (or on the run's when not enabled). The
    statement that is not lean reads every open line itself, and decides every reopened line."""
    cursor.execute("DROP TABLE IF EXISTS recon_candidate")
    if lean:  # the clean lines the hash join finds and ``keep`` drops are left out first (an anti-join)
        keep = f"NOT cand.clean OR {_SETTLED_BY_MATCH_ROW} OR {_MAY_BE_TWIN}"
        lines = _candidate_lines(keep=keep, orders=_PROBED_ORDER, skip=_LEAN_SKIP, lines=f"({NEW_LINES})")
    else:
        lines = _candidate_lines(keep="true")
    cursor.execute(f"CREATE TEMP TABLE recon_candidate ON COMMIT DROP AS {lines}", params)
    reopened, unchanged = aside.reopened.result(cursor) if lean else ([], [])
    settled = aside.settled.result(cursor) if lean else []
    if reopened:  # a reopened line is never clean: the lean ``keep`` holds for every one
        with cursor.cursor.copy("COPY recon_candidate FROM STDIN") as copy:
            for row in reopened:
                copy.write_row(row)
    if settled_by_reference_collect(cursor, settled):
        # The clean charges among them are kept too (the others are in already).
        keep = (f"cand.clean AND cand.id IN (SELECT id FROM recon_settled) AND NOT {_SETTLED_BY_MATCH_ROW}"
                f" AND NOT {_MAY_BE_TWIN}")
        cursor.execute(f"INSERT INTO recon_candidate {_candidate_lines(keep=keep)}", params)
    if lean:  # the unchanged reopened lines that may have a twin among the candidates are decided too
        skipped_table_create(cursor, unchanged)
        cursor.execute(f"""INSERT INTO recon_candidate {_candidate_lines(keep="true", orders=_PROBED_ORDER,
                                                                         lines=_REOPENED_BY_ID)}""",
                       {**params, "reopened": _unchanged_decided(cursor)})
    else:
        skipped_none(cursor)
    cursor.execute("ANALYZE recon_candidate")
    return _find_by_merchant_reference(cursor)


def _unchanged_decided(cursor: CursorWrapper) -> list[int]:
    """The unchanged reopened lines decided all the same (a twin may be among the candidates)."""
    cursor.execute(f"""SELECT id FROM recon_reopened WHERE unchanged AND record_type NOT IN
    ({sql_list(MATCHED_ONE_BY_ONE)}) AND id NOT IN (SELECT id FROM recon_skipped)""")
    return [line_id for (line_id,) in cursor.fetchall()]


def _may_be_twin(order_psp_reference: str) -> str:
    """SQL: a clean line (its order's PSP reference, given, is its own) that may have a twin."""
    return f"({order_psp_reference} IN (SELECT psp_reference FROM recon_twin_ref))"


def _settled_by_match_row(record_type: str, order_id: str) -> str:
    """SQL: a charge (its record type and order id given) whose order a charge line settled, by a match row."""
    return f"({record_type} = '{RecordType.CHARGE}' AND {order_id} IN {ORDERS_SETTLED_BY_MATCH_ROW})"


_MAY_BE_TWIN = _may_be_twin("cand.order_psp_reference")
_SETTLED_BY_MATCH_ROW = _settled_by_match_row("cand.record_type", "cand.order_id")


def _candidate_lines(*, keep: str, orders: str | None = None, skip: str = "", lines: str | None = None) -> str:
    """SQL: the open charge-like lines (``lines``, by default ``history.open_lines``: a break is decided again) with
    the order their PSP reference finds (``orders``, joined as ``payment_order``: by default ``_HASHED_ORDER``), and
    the columns the rules read; those for which ``skip`` (SQL conditions over ``line``, ``AND`` first) and ``keep``
    (over ``cand``) hold."""
    return f"""
SELECT * FROM (
SELECT line.id, line.record_type, line.currency, {rules.SETTLED_GROSS} AS actual, line.file_id, line.ordinal,
       line.is_new,
       payment_order.id AS order_id, payment_order.amount AS expected, payment_order.currency AS expected_currency,
       payment_order.state AS order_state, payment_order.completed_at,
       payment_order.psp_reference AS order_psp_reference,
       line.is_new AND (payment_order.id IS NOT NULL OR line.record_type = '{RecordType.FEE}') AS by_reference,
       COALESCE(payment_order.id, NULLIF(line.psp_reference, '')) AS dup_key,  -- what a duplicate settles twice
       false AS by_merchant,  -- its order found by merchant reference (``_find_by_merchant_reference``)
       {rules.CLEAN} AS clean
FROM {lines or open_lines(reopened=MatchState.BREAK)} line
{orders or _HASHED_ORDER}
WHERE line.record_type NOT IN ({sql_list(MATCHED_ONE_BY_ONE)}){skip}
) cand WHERE {keep}
"""


#: The orders' columns the candidates read.
_COLUMNS = ("id", "amount", "currency", "state", "completed_at", "psp_reference")

#: SQL (a join of ``line``): the order its PSP reference finds, as ``payment_order``. Hash-joined among the orders a
#: clean line can settle (read by completion time), else probed (at most one order per reference).
_HASHED_ORDER = f"""
LEFT JOIN {ORDERS} near  -- a hash join: the orders a clean line can settle, read by completion time
    ON near.completed_at >= %(candidates_since)s AND near.psp_reference = line.psp_reference
       AND line.psp_reference <> ''  -- (near.psp_reference <> '' unsaid: no probe of the partial index here)
LEFT JOIN LATERAL (  -- the lines left: a probe of the orders' reference index each (OFFSET 0 keeps it one)
    SELECT * FROM {ORDERS} far
    WHERE near.id IS NULL AND line.psp_reference <> ''
      AND far.psp_reference = line.psp_reference AND far.psp_reference <> ''  -- the index is partial
    OFFSET 0
) far ON true
CROSS JOIN LATERAL (  -- the one order found, by either
    SELECT {", ".join(f"COALESCE(near.{column}, far.{column}) AS {column}" for column in _COLUMNS)}
) payment_order"""

#: SQL (a join of ``line``): the same order, probed for each line (for the few lines ``_LEAN_SKIP`` leaves).
_PROBED_ORDER = f"""
LEFT JOIN LATERAL (  -- a probe of the orders' reference index (OFFSET 0 keeps it one)
    SELECT {", ".join(_COLUMNS)} FROM {ORDERS} probe
    WHERE line.psp_reference <> '' AND probe.psp_reference = line.psp_reference AND probe.psp_reference <> ''
    OFFSET 0
) payment_order ON true"""

#: SQL (conditions over ``line``): not a line the lean ``keep`` drops that the hash join of ``_HASHED_ORDER`` finds
#: its order (``rules.CLEAN``, not settled by a match row, no twin). A hash anti-join over the orders a clean line can
#: settle: only the lines it leaves (breaks, twins: few) are built into candidates; ``keep`` still decides them.
_LEAN_SKIP = f"""
  AND NOT EXISTS (
    SELECT 1 FROM {ORDERS} payment_order
    WHERE line.is_new AND line.psp_reference <> '' AND payment_order.completed_at >= %(candidates_since)s
      AND payment_order.psp_reference = line.psp_reference AND {rules.CLEAN}
      AND NOT {_settled_by_match_row("line.record_type", "payment_order.id")}
      AND NOT {_may_be_twin("payment_order.psp_reference")})"""


def _find_by_merchant_reference(cursor: CursorWrapper) -> int:
    """The candidates their PSP reference found no order for try their merchant reference (our order id).
    Returns how many found one."""
    cursor.execute(f"""
UPDATE recon_candidate cand
SET order_id = payment_order.id, expected = payment_order.amount, expected_currency = payment_order.currency,
    order_state = payment_order.state, completed_at = payment_order.completed_at,
    order_psp_reference = payment_order.psp_reference, dup_key = payment_order.id, by_merchant = true
FROM {LINES} line JOIN {ORDERS} payment_order ON payment_order.id = line.merchant_reference
WHERE cand.order_id IS NULL AND line.id = cand.id AND line.merchant_reference <> ''
""")
    return cursor.rowcount
