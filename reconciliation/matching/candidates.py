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
charge's of another line of the run's files (``recon_twin_ref``: not looked for when the run's one
file of charges was found free of them on import) or of a break decided again, or its order was
settled by a line of an earlier run. Duplicates are then looked for among the candidates, each
group of twins whole. A line found by merchant reference (its order may be another line's) ends
the lean case: every open charge-like line is then a candidate.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.db.backends.utils import CursorWrapper

from reconciliation.models import MatchState, SettlementFile
from reconciliation.record_types import MATCHED_ONE_BY_ONE, RecordType, sql_list

from . import rules
from .history import ORDERS_SETTLED_BY_MATCH_ROW, open_lines, settled_by_reference_collect
from .scope import RunScope
from .tables import LINES, MATCHES, ORDERS


@dataclass(frozen=True)
class Candidates:
    #: Charge-like lines in the run's files.
    new_lines: int


def charge_candidates_collect(cursor: CursorWrapper, scope: RunScope) -> Candidates:
    """Fill ``recon_candidate``, leaving the clean lines out when that is safe (see above)."""
    run_files = SettlementFile.objects.filter(pk__in=scope.files).only("id", "counts_by_type", "unique_references")
    charge_like = [{kind: count for kind, count in f.counts_by_type.items() if kind not in MATCHED_ONE_BY_ONE}
                   for f in run_files]
    with_candidates = [f for f, counts in zip(run_files, charge_like, strict=True) if counts]
    new_lines = sum(sum(counts.values()) for counts in charge_like)
    checked = len(with_candidates) <= 1 and all(f.unique_references is True for f in with_candidates)
    _twin_references_collect(cursor, scope, within_files=not checked)
    if _collect(cursor, scope, lean=True):
        _collect(cursor, scope, lean=False)
    return Candidates(new_lines=new_lines)


def _twin_references_collect(cursor: CursorWrapper, scope: RunScope, *, within_files: bool) -> None:
    """``recon_twin_ref``: the PSP references a clean line may share with another charge, so that it is a
    candidate: those of the charges of breaks decided again, and (``within_files``) those several charges
    of the run's files have. A set-based check over the run's lines (a hash aggregate), not the history."""
    within = f"""
UNION
SELECT line.psp_reference FROM {LINES} line
WHERE line.file_id = ANY(%(files)s) AND line.record_type = '{RecordType.CHARGE}' AND line.psp_reference <> ''
GROUP BY line.psp_reference HAVING count(*) > 1""" if within_files else ""
    cursor.execute("DROP TABLE IF EXISTS recon_twin_ref")
    cursor.execute(f"""
CREATE TEMP TABLE recon_twin_ref ON COMMIT DROP AS
SELECT line.psp_reference FROM {MATCHES} line_match JOIN {LINES} line ON line.id = line_match.line_id
WHERE line_match.state = '{MatchState.BREAK}' AND line.record_type = '{RecordType.CHARGE}'
  AND line.psp_reference <> ''{within}
""", scope.params)
    cursor.execute("ANALYZE recon_twin_ref")


def _collect(cursor: CursorWrapper, scope: RunScope, *, lean: bool) -> int:
    """``recon_candidate`` anew; returns how many candidates were found by merchant reference."""
    cursor.execute("DROP TABLE IF EXISTS recon_candidate")
    keep = f"NOT cand.clean OR {_SETTLED_BY_MATCH_ROW} OR {_MAY_BE_TWIN}" if lean else "true"
    cursor.execute(f"CREATE TEMP TABLE recon_candidate ON COMMIT DROP AS {_candidate_lines(keep=keep)}",
                   scope.params)
    if lean and scope.reconciled_files and settled_by_reference_collect(cursor, scope.params):
        # The clean charges among them are kept too (the others are in already).
        keep = (f"cand.clean AND cand.id IN (SELECT id FROM recon_settled) AND NOT {_SETTLED_BY_MATCH_ROW}"
                f" AND NOT {_MAY_BE_TWIN}")
        cursor.execute(f"INSERT INTO recon_candidate {_candidate_lines(keep=keep)}", scope.params)
    cursor.execute("ANALYZE recon_candidate")
    return _find_by_merchant_reference(cursor)


#: SQL (over ``cand``, a clean line: its order's PSP reference is its own): a line that may have a twin.
_MAY_BE_TWIN = "(cand.order_psp_reference IN (SELECT psp_reference FROM recon_twin_ref))"

#: SQL (over ``cand``): a charge whose order a charge line settled already, matched by a match row.
_SETTLED_BY_MATCH_ROW = f"(cand.record_type = '{RecordType.CHARGE}' AND cand.order_id IN {ORDERS_SETTLED_BY_MATCH_ROW})"


def _candidate_lines(*, keep: str) -> str:
    """SQL: the open charge-like lines (``history.open_lines``: a break is decided again) with the order their PSP
    reference finds, and the columns the rules read; those for which ``keep`` (over ``cand``) holds."""
    return f"""
SELECT * FROM (
SELECT line.id, line.record_type, line.currency, {rules.SETTLED_GROSS} AS actual, line.file_id, line.ordinal,
       line.is_new,
       payment_order.id AS order_id, payment_order.amount AS expected, payment_order.currency AS expected_currency,
       payment_order.state AS order_state, payment_order.completed_at,
       payment_order.psp_reference AS order_psp_reference,
       line.is_new AND (payment_order.id IS NOT NULL OR line.record_type = '{RecordType.FEE}') AS by_reference,
       COALESCE(payment_order.id, NULLIF(line.psp_reference, '')) AS dup_key,  -- what a duplicate settles twice
       {rules.CLEAN} AS clean
FROM {open_lines(reopened=MatchState.BREAK)} line
LEFT JOIN {ORDERS} near  -- a hash join: the orders a clean line can settle, read by completion time
    ON near.completed_at >= %(candidates_since)s AND near.psp_reference = line.psp_reference
       AND line.psp_reference <> ''  -- (near.psp_reference <> '' unsaid: no probe of the partial index here)
LEFT JOIN LATERAL (  -- the lines left: a probe of the orders' reference index each (OFFSET 0 keeps it one)
    SELECT * FROM {ORDERS} far
    WHERE near.id IS NULL AND line.psp_reference <> ''
      AND far.psp_reference = line.psp_reference AND far.psp_reference <> ''  -- the index is partial
    OFFSET 0
) far ON true
CROSS JOIN LATERAL (  -- the one order found, by either (at most one order per reference)
    SELECT {_ORDER_COLUMNS}
) payment_order
WHERE line.record_type NOT IN ({sql_list(MATCHED_ONE_BY_ONE)})
) cand WHERE {keep}
"""


#: The orders' columns the candidates read, from the order the hash join or the probe found.
_ORDER_COLUMNS = ", ".join(f"COALESCE(near.{column}, far.{column}) AS {column}"
                           for column in ("id", "amount", "currency", "state", "completed_at", "psp_reference"))


def _find_by_merchant_reference(cursor: CursorWrapper) -> int:
    """The candidates their PSP reference found no order for try their merchant reference (our order id).
    Returns how many found one."""
    cursor.execute(f"""
UPDATE recon_candidate cand
SET order_id = payment_order.id, expected = payment_order.amount, expected_currency = payment_order.currency,
    order_state = payment_order.state, completed_at = payment_order.completed_at,
    order_psp_reference = payment_order.psp_reference, dup_key = payment_order.id
FROM {LINES} line JOIN {ORDERS} payment_order ON payment_order.id = line.merchant_reference
WHERE cand.order_id IS NULL AND line.id = cand.id AND line.merchant_reference <> ''
""")
    return cursor.rowcount
