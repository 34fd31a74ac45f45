"""Matching settlement lines to our books, booking fees and payouts, classifying breaks.

Set-based: a few SQL statements over every open line (a parallel hash join on
``psp_reference``, then the merchant reference = payment order id for the few lines the
reference did not find), so a million lines cost a few statements, not a million queries.
A line is open when its file has not been reconciled yet, or when it is a break, an
unrelated bank line or a malformed line. Per run:

1. ``recon_cand`` (a temporary table) gets the open charge-like lines with the order each
   one finds, and whether it is *clean*: new, found by its PSP reference, no difference.
   When no duplicate can hide among them (see ``_build_candidates``) only the lines that are
   not clean are kept, and clean charges an earlier run settled already.
2. ``recon_eval`` (a temporary table) gets one row per line that needs a decision: its new
   match state, the object matched and, for a difference, exactly one break class. A clean
   line gets none: it is matched by reference and has no ``SettlementMatch`` row.
3. Refund lines are matched through ``payments.selectors.refunds_by_psp_reference``.
4. Payout rows are matched to bank lines (payout id, else amount + currency + date
   window); a clean match posts ``Dr assets:bank / Cr assets:psp_receivable`` once per payout.
5. ``SettlementMatch`` rows are inserted or changed, the files marked reconciled by this run,
   breaks upserted by ``key`` (a re-run adds nothing), breaks no longer observed auto-resolved
   with an audit row. Settlement lines themselves are never rewritten.
6. Succeeded orders past the cut-off with no settlement line: ``missing_in_settlement``.
7. Fees: ``Dr expenses:psp_fees / Cr assets:psp_receivable``, one posting per payout batch
   and currency (see ``_post_fees``).
"""
from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from ledger import accounts
from ledger.services import EntrySpec, ledger_transaction_post
from payments import selectors as payment_selectors
from reconciliation import selectors
from reconciliation.models import (
    Break,
    BreakClass,
    BreakResolution,
    MatchState,
    ReconciliationRun,
    SettlementFile,
    SettlementLine,
    SettlementMatch,
)
from reconciliation.services.importing import file_fee_totals

logger = logging.getLogger(__name__)

SYSTEM_ACTOR = "system:reconcile"
BANK_TYPES = ("bank_credit", "bank_debit")
# Types that move money at the PSP and that our books would have to know about.
BOOKED_TYPES = ("charge", "chargeback", "chargeback_reversal", "adjustment", "deposit_correction")
_BATCH = 5000

L = SettlementLine._meta.db_table
F = SettlementFile._meta.db_table
M = SettlementMatch._meta.db_table
B = Break._meta.db_table
BR = BreakResolution._meta.db_table
PO = payment_selectors.settleable_order_view()  # payments' read-only view of its orders


def _setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def payout_posting_key(payout_reference: str, currency: str) -> str:
    return f"settlement:payout:{payout_reference}:{currency}"


def fee_posting_key(sha256: str, payout_reference: str, currency: str) -> str:
    """One fee posting per payout batch, keyed like the payout's own posting, so a batch sent
    again in another file (another hash) is not charged twice; lines without a payout fall
    back to the file."""
    if payout_reference:
        return f"settlement:fees:{payout_reference}:{currency}"
    return f"settlement:{sha256}:fees:-:{currency}"


def reconciliation_run(*, day: date, actor: str = SYSTEM_ACTOR) -> ReconciliationRun:
    """Match every open settlement line, book fees and payouts, classify breaks. Re-runnable.

    ``day`` is the business day: succeeded orders completed more than
    ``RECONCILIATION_MISSING_CUTOFF_HOURS`` before its end and still unsettled are breaks.
    """
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('reconciliation_run'))")
            # Bulk statements over a million lines: hash joins need memory; compiling them (JIT) costs more
            # than it saves. Fresh statistics of the few files, so that the history joins are planned right.
            cursor.execute("SET LOCAL work_mem = '256MB'")
            cursor.execute("SET LOCAL jit = off")
            cursor.execute("SET LOCAL parallel_tuple_cost = 0.01")  # let the big join run on every core
            cursor.execute("SET LOCAL default_statistics_target = 10")  # a run's ANALYZEs only need row counts
            cursor.execute(f"ANALYZE {F}")
        run = ReconciliationRun.objects.create(date=day, actor=actor[:100])
        end_of_day = datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC)
        params = {
            "run": run.pk,
            "now": timezone.now(),
            "actor": SYSTEM_ACTOR,
            "timing_window": timedelta(hours=_setting("RECONCILIATION_TIMING_WINDOW_HOURS", 24)),
            "missing_before": end_of_day - timedelta(hours=_setting("RECONCILIATION_MISSING_CUTOFF_HOURS", 48)),
            "missing_since": end_of_day - timedelta(days=_setting("RECONCILIATION_MISSING_LOOKBACK_DAYS", 30)),
        }
        with connection.cursor() as cursor:
            # The files this run reconciles: fixed now, so that a file committed meanwhile waits for the next run.
            cursor.execute(f"SELECT id, settled_at FROM {F} WHERE reconciled_at IS NULL ORDER BY id")
            rows = cursor.fetchall()
            files = params["files"] = [row[0] for row in rows]
            params["settled_at"] = [row[1] for row in rows]  # when each file's batch closed
            cursor.execute(f"SELECT id FROM {F} WHERE reconciled_at IS NOT NULL ORDER BY id")
            params["reconciled_files"] = [row[0] for row in cursor.fetchall()]
            cursor.execute("DROP TABLE IF EXISTS recon_eval, recon_cand")
            cursor.execute(_CREATE_EVAL)
            new_candidates = _build_candidates(cursor, params, files)
            cursor.execute(_CLASSIFY_LINES.format(F=F, L=L, SETTLED_BEFORE=_SETTLED_BEFORE), params)
            cursor.execute("SELECT count(*) FROM recon_eval WHERE candidate AND is_new")
            # The new lines not evaluated: matched by PSP reference, no break of any class.
            matched_by_reference = new_candidates - cursor.fetchone()[0]
            _classify_refunds(cursor, params)
            payouts = _match_payouts(cursor, params)
            cursor.execute(_MALFORMED.format(OPEN=_open("'malformed'")), params)
            cursor.execute("ANALYZE recon_eval")
            cursor.execute("SELECT count(*) FROM recon_eval")
            run.lines_evaluated = cursor.fetchone()[0] + matched_by_reference
            cursor.execute(_INSERT_MATCHES.format(M=M), params)
            cursor.execute(_UPSERT_MATCHES.format(M=M), params)
            # From here on, the run's lines matched by reference count as settled (they have no match row).
            cursor.execute(f"UPDATE {F} SET reconciled_at = %(now)s, reconciled_run_id = %(run)s"
                           " WHERE id = ANY(%(files)s)", params)
            cursor.execute(_UPSERT_LINE_BREAKS.format(L=L, F=F, B=B), params)
            cursor.execute(_AUDIT_NEW_AUTO_RESOLVED.format(B=B, BR=BR), params)
            cursor.execute(_CLEAR_STALE_LINE_BREAKS.format(B=B, BR=BR), params)
            settling = _settling_lines("o.id", "o.psp_reference")
            cursor.execute(_MISSING_IN_SETTLEMENT.format(B=B, PO=PO, SETTLING=settling), params)
            cursor.execute(_SETTLED_LATER.format(B=B, BR=BR, PO=PO, SETTLING=settling), params)
            fees = _post_fees(cursor, files)
            cursor.execute("SELECT match_state, count(*) FROM recon_eval GROUP BY 1 ORDER BY 1")
            lines = dict(cursor.fetchall())
            if matched_by_reference:
                lines["matched"] = lines.get("matched", 0) + matched_by_reference
            lines = dict(sorted(lines.items()))
        run.finished_at = timezone.now()
        run.stats = {"breaks": selectors.run_break_stats(run_id=run.pk), "lines": lines,
                     "fees_booked": fees, "payouts": payouts}
        run.save(update_fields=["lines_evaluated", "finished_at", "stats"])
    logger.info("event=reconciliation_run run_id=%s date=%s lines=%s actor=%s", run.pk, day,
                run.lines_evaluated, actor)
    return run


_CREATE_EVAL = """
CREATE TEMP TABLE recon_eval (
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
    is_new boolean,  -- true: the line has no match yet; NULL: not known
    candidate boolean NOT NULL DEFAULT false,  -- from recon_cand
    implicit boolean NOT NULL DEFAULT false  -- matched by PSP reference on first sight: no match row (a timing break)
) ON COMMIT DROP
"""

def _open(states: str) -> str:
    """The open lines: those of the run's files (``is_new``: the lines of a file no run has reconciled
    have no match yet), and lines matched before whose match state is one of ``states``."""
    return f"""(
    SELECT l.*, true AS is_new FROM {L} l WHERE l.file_id = ANY(%(files)s)
    UNION ALL
    SELECT l.*, false FROM {M} m JOIN {L} l ON l.id = m.line_id WHERE m.state IN ({states})
)"""


_OPEN_BREAKS = _open("'break'")


def _build_candidates(cursor, params: dict, files: list[int]) -> int:
    """Fill ``recon_cand``; set ``params["check_twins"]``; return how many new candidate lines the files hold.

    Two open lines can settle the same reference, unless they all come from one file whose PSP
    references the import found unique (``unique_references``), none is found by merchant
    reference (its order's reference may be another line's) and no break is evaluated again.
    Then no duplicates are looked for among them, and only the lines that are not clean (and
    clean charges settled by an earlier run) are kept: the clean ones are matched by reference.
    """
    run_files = SettlementFile.objects.filter(pk__in=files).only("id", "counts_by_type", "unique_references")
    with_candidates = [f for f in run_files if set(f.counts_by_type) - _NOT_CANDIDATES]
    new_candidates = sum(count for f in with_candidates for kind, count in f.counts_by_type.items()
                         if kind not in _NOT_CANDIDATES)
    lean = (len(with_candidates) <= 1 and all(f.unique_references is True for f in with_candidates)
            and not SettlementMatch.objects.filter(state=MatchState.BREAK).exists())
    select = _CANDIDATE_SELECT.format(PO=PO, OPEN=_OPEN_BREAKS, KEEP="{KEEP}")
    for lean_attempt in ((True, False) if lean else (False,)):
        cursor.execute("DROP TABLE IF EXISTS recon_cand")
        keep = f"{_NOT_CLEAN} OR {_SETTLED_EXPLICITLY}" if lean_attempt else "true"
        cursor.execute(_CANDIDATES.format(SELECT=select.format(KEEP=keep)), params)
        if lean_attempt and params["reconciled_files"]:
            cursor.execute("DROP TABLE IF EXISTS recon_settled")
            cursor.execute(_SETTLED_BY_REFERENCE, params)
            if cursor.rowcount:  # the clean ones among them are kept too (the others are in already)
                cursor.execute(_MORE_CANDIDATES.format(SELECT=select.format(KEEP=_SETTLED_CLEAN)), params)
        cursor.execute("ANALYZE recon_cand")
        cursor.execute(_CANDIDATES_BY_MERCHANT_REFERENCE.format(L=L, PO=PO))
        if not lean_attempt or cursor.rowcount == 0:
            params["check_twins"] = not lean_attempt
            return new_candidates
    raise AssertionError("unreachable")


_NOT_CANDIDATES = {"refund", "payout", "bank_credit", "bank_debit", "malformed"}


def _settling_lines(order_id: str, order_psp_reference: str) -> str:
    """SQL: the matched charge lines of an order: those with a ``SettlementMatch`` naming it, and
    those matched by PSP reference in a reconciled file (no match row)."""
    return f"""
        SELECT e.id FROM {M} m JOIN {L} e ON e.id = m.line_id
        WHERE m.kind = 'payment_order' AND m.object_id = {order_id} AND m.state = 'matched' AND e.record_type = 'charge'
        UNION ALL
        SELECT e.id FROM {L} e JOIN {F} fe ON fe.id = e.file_id
        WHERE {order_psp_reference} <> '' AND e.psp_reference = {order_psp_reference} AND e.record_type = 'charge'
          AND fe.reconciled_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {M} x WHERE x.line_id = e.id)"""


# Candidate charge lines whose order a line matched by an earlier run settled already. The
# reconciled files are passed as a list, so that the planner sees how much history there is:
# none on the first night, and one index probe per candidate once there is.
_SETTLED_BEFORE = f"""
    SELECT c.id FROM recon_cand c
    JOIN {M} m ON m.kind = 'payment_order' AND m.object_id = c.order_id AND m.state = 'matched'
    JOIN {L} e ON e.id = m.line_id AND e.record_type = 'charge' AND e.id <> c.id
    WHERE c.record_type = 'charge'
    UNION
    SELECT c.id FROM recon_cand c
    JOIN {L} e ON e.psp_reference = c.order_psp_reference AND e.record_type = 'charge' AND e.id <> c.id
    WHERE c.record_type = 'charge' AND c.order_psp_reference <> '' AND e.file_id = ANY(%(reconciled_files)s)
      AND NOT EXISTS (SELECT 1 FROM {M} x WHERE x.line_id = e.id)
"""


# Every open line of a PSP report except refunds, payouts and bank lines, with the payment
# order its PSP reference finds: a temporary table, written by a parallel hash join (the
# biggest step of a run); then the few lines the PSP reference did not find try their
# merchant reference (our order id).
_CANDIDATES = """
CREATE TEMP TABLE recon_cand ON COMMIT DROP AS {SELECT}
"""
_MORE_CANDIDATES = "INSERT INTO recon_cand {SELECT}"
_CANDIDATE_SELECT = """
SELECT * FROM (
SELECT l.id, l.record_type, l.currency, COALESCE(l.gross, l.net + COALESCE(l.fee, 0)) AS actual, l.file_id,
       l.is_new, p1.id AS order_id, p1.amount AS expected, p1.currency AS expected_currency,
       p1.state AS order_state, p1.completed_at, p1.psp_reference AS order_psp_reference,
       l.is_new AND (p1.id IS NOT NULL OR l.record_type = 'fee') AS by_reference,
       COALESCE(p1.id, NULLIF(l.psp_reference, '')) AS dup_key,  -- what a duplicate settles twice
       -- No difference, unless it turns out to be a duplicate (see the classification):
       l.is_new AND (l.record_type = 'fee' OR (
           l.record_type = 'charge' AND p1.state = 'succeeded' AND l.currency = p1.currency
           AND COALESCE(l.gross, l.net + COALESCE(l.fee, 0)) = p1.amount
           AND (p1.completed_at < (%(settled_at)s::timestamptz[])[array_position(%(files)s::bigint[], l.file_id)]
                - %(timing_window)s) IS NOT TRUE)) IS TRUE AS clean
FROM {OPEN} l
LEFT JOIN {PO} p1 ON l.psp_reference <> '' AND p1.psp_reference = l.psp_reference
WHERE l.record_type NOT IN ('refund', 'payout', 'bank_credit', 'bank_debit', 'malformed')
) c WHERE {KEEP}
"""
# Which candidates to keep when duplicates need not be looked for among them: the lines that are
# not clean, and clean charges whose order a line of an earlier run settled already.
_NOT_CLEAN = "NOT c.clean"
_SETTLED_EXPLICITLY = f"""(c.record_type = 'charge' AND c.order_id IN (
    SELECT m.object_id FROM {M} m JOIN {L} e ON e.id = m.line_id
    WHERE m.kind = 'payment_order' AND m.state = 'matched' AND e.record_type = 'charge'))"""
# Charges of the run's files whose reference a charge line of a reconciled file has (a line
# without a match row there was matched by that reference): a join of the run's lines with the
# history's on their own, so that the candidate join above stays parallel. Usually none.
_SETTLED_BY_REFERENCE = f"""
CREATE TEMP TABLE recon_settled ON COMMIT DROP AS
SELECT DISTINCT l.id FROM {L} l JOIN {L} e ON e.psp_reference = l.psp_reference AND e.id <> l.id
WHERE l.file_id = ANY(%(files)s) AND l.record_type = 'charge' AND l.psp_reference <> ''
  AND e.file_id = ANY(%(reconciled_files)s) AND e.record_type = 'charge'
  AND NOT EXISTS (SELECT 1 FROM {M} x WHERE x.line_id = e.id)
"""
_SETTLED_CLEAN = f"c.clean AND c.id IN (SELECT id FROM recon_settled) AND NOT {_SETTLED_EXPLICITLY}"
_CANDIDATES_BY_MERCHANT_REFERENCE = """
UPDATE recon_cand c SET order_id = p.id, expected = p.amount, expected_currency = p.currency,
       order_state = p.state, completed_at = p.completed_at, order_psp_reference = p.psp_reference, dup_key = p.id
FROM {L} l JOIN {PO} p ON p.id = l.merchant_reference
WHERE c.order_id IS NULL AND l.id = c.id AND l.merchant_reference <> ''
"""

# The candidates classified at once. A new line matched by PSP reference without a difference
# (a charge, or a fee line) is only counted: it gets no match row (see ``SettlementMatch``);
# with a timing break it is evaluated as ``implicit``, for its break. The statement returns how
# many new lines their PSP reference found.
_CLASSIFY_LINES = """
WITH twins AS (  -- one reference settled more than once among the open lines: the first one counts
    SELECT dup_key, min(id) AS first_id FROM recon_cand
    WHERE %(check_twins)s AND record_type = 'charge' AND dup_key IS NOT NULL GROUP BY dup_key HAVING count(*) > 1
),
settled_before AS (  -- ... or already settled by a line an earlier run matched
    {SETTLED_BEFORE}
),
classified AS (  -- the lines that are not clean, and duplicates
    SELECT c.*, f.settled_at, CASE
        WHEN c.record_type = 'unknown' THEN 'unknown_record_type'
        WHEN c.record_type = 'fee' THEN NULL
        WHEN c.record_type <> 'charge' THEN 'missing_in_books'
        WHEN t.first_id IS NOT NULL AND t.first_id <> c.id THEN 'duplicate'
        WHEN s.id IS NOT NULL THEN 'duplicate'
        WHEN c.order_id IS NULL OR c.order_state <> 'succeeded' THEN 'missing_in_books'
        WHEN c.currency <> c.expected_currency THEN 'currency_mismatch'
        WHEN c.actual <> c.expected THEN 'amount_mismatch'
        WHEN c.completed_at < f.settled_at - %(timing_window)s THEN 'timing'
    END AS break_class
    FROM recon_cand c
    LEFT JOIN twins t ON t.dup_key = c.dup_key
    LEFT JOIN settled_before s ON s.id = c.id
    JOIN {F} f ON f.id = c.file_id
    WHERE NOT c.clean OR t.first_id IS NOT NULL OR s.id IS NOT NULL
),
evaluated AS (
    INSERT INTO recon_eval (line_id, match_state, break_class, object_kind, object_id, expected_amount,
                            expected_currency, actual_amount, actual_currency, description, is_new, candidate,
                            implicit)
    SELECT id,
           CASE WHEN break_class IS NULL OR break_class = 'timing' THEN 'matched' ELSE 'break' END,
           break_class,
           CASE WHEN order_id IS NULL THEN '' ELSE 'payment_order' END,
           COALESCE(order_id, ''),
           expected, COALESCE(expected_currency, ''), actual, currency,
           CASE break_class
               WHEN 'unknown_record_type' THEN 'record type '
                    || quote_literal((SELECT l.raw_type FROM {L} l WHERE l.id = classified.id)) || ' is not understood'
               WHEN 'missing_in_books' THEN CASE
                   WHEN record_type <> 'charge' THEN 'the PSP settled a ' || record_type || ' ('
                        || (SELECT l.raw_type FROM {L} l WHERE l.id = classified.id) || ') our books do not have'
                   WHEN order_id IS NULL THEN 'the PSP settled a charge no payment order of ours knows'
                   ELSE 'the PSP settled order ' || order_id || ', which is ' || order_state || ' in our books' END
               WHEN 'duplicate' THEN 'reference ' || dup_key || ' is settled more than once'
               WHEN 'currency_mismatch' THEN 'settled in ' || upper(currency) || ', order ' || order_id
                    || ' is in ' || upper(expected_currency)
               WHEN 'amount_mismatch' THEN 'settled gross ' || actual || ', order ' || order_id || ' is '
                    || expected || ' (minor units)'
               WHEN 'timing' THEN 'order ' || order_id || ' completed ' || completed_at
                    || ', settled in the batch closed ' || settled_at
               ELSE '' END,
           is_new,
           true,
           by_reference AND break_class IS NOT DISTINCT FROM 'timing'
    FROM classified
    WHERE NOT by_reference OR break_class IS NOT NULL
)
SELECT 1
"""

_EVAL_INSERT = (
    "INSERT INTO recon_eval (line_id, match_state, break_class, object_kind, object_id, expected_amount,"
    " expected_currency, actual_amount, actual_currency, description) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)

_MALFORMED = """
INSERT INTO recon_eval (line_id, match_state, break_class, description, is_new)
SELECT l.id, 'malformed', 'malformed_line', 'line ' || l.line_number || ': ' || l.error, l.is_new
FROM {OPEN} l WHERE l.record_type = 'malformed'
  AND NOT EXISTS (SELECT 1 FROM recon_eval e WHERE e.line_id = l.id)
"""

# A line's first evaluation inserts its narrow match row; a later one changes it only if it differs.
_INSERT_MATCHES = """
INSERT INTO {M} (line_id, state, kind, object_id, run_id)
SELECT e.line_id, e.match_state, e.object_kind, e.object_id, %(run)s FROM recon_eval e WHERE e.is_new AND NOT e.implicit
"""
_UPSERT_MATCHES = """
INSERT INTO {M} AS m (line_id, state, kind, object_id, run_id)
SELECT e.line_id, e.match_state, e.object_kind, e.object_id, %(run)s FROM recon_eval e WHERE e.is_new IS NOT TRUE
ON CONFLICT (line_id) DO UPDATE
SET state = EXCLUDED.state, kind = EXCLUDED.kind, object_id = EXCLUDED.object_id, run_id = EXCLUDED.run_id
WHERE (m.state, m.kind, m.object_id) IS DISTINCT FROM (EXCLUDED.state, EXCLUDED.kind, EXCLUDED.object_id)
"""

# New breaks are inserted; a break seen again only gets its last_seen_run (resolved ones stay resolved).
_UPSERT_LINE_BREAKS = """
INSERT INTO {B} (key, break_class, state, run_id, last_seen_run_id, line_id, file_format, occurred_on,
                 expected_amount, expected_currency, actual_amount, actual_currency, object_kind, object_id,
                 psp_reference, description, resolution, reason, resolved_by, resolved_at, created_at)
SELECT e.break_class || ':line:' || e.line_id, e.break_class,
       CASE WHEN e.break_class = 'timing' THEN 'auto_resolved' ELSE 'open' END,
       %(run)s, %(run)s, e.line_id, f.format, (l.occurred_at AT TIME ZONE 'UTC')::date,
       e.expected_amount, e.expected_currency, e.actual_amount, e.actual_currency, e.object_kind, e.object_id,
       l.psp_reference, e.description,
       CASE WHEN e.break_class = 'timing' THEN 'settled_later' ELSE '' END,
       CASE WHEN e.break_class = 'timing' THEN 'settled in a later batch than expected; the money arrived'
            ELSE '' END,
       CASE WHEN e.break_class = 'timing' THEN %(actor)s ELSE '' END,
       CASE WHEN e.break_class = 'timing' THEN %(now)s END,
       %(now)s
FROM recon_eval e
JOIN {L} l ON l.id = e.line_id
JOIN {F} f ON f.id = l.file_id
WHERE e.break_class IS NOT NULL
ON CONFLICT (key) DO UPDATE SET last_seen_run_id = EXCLUDED.last_seen_run_id
"""

_AUDIT_NEW_AUTO_RESOLVED = """
INSERT INTO {BR} (brk_id, from_state, to_state, resolution, reason, actor, created_at)
SELECT b.id, 'open', 'auto_resolved', b.resolution, b.reason, %(actor)s, %(now)s
FROM {B} b WHERE b.run_id = %(run)s AND b.state = 'auto_resolved'
  AND NOT EXISTS (SELECT 1 FROM {BR} r WHERE r.brk_id = b.id)
"""

# An open break on a re-evaluated line whose class is no longer observed clears itself.
_CLEAR_STALE_LINE_BREAKS = """
WITH cleared AS (
    UPDATE {B} b SET state = 'auto_resolved', resolution = 'cleared', resolved_by = %(actor)s,
           resolved_at = %(now)s, reason = 'no longer observed by reconciliation run ' || %(run)s
    FROM recon_eval e
    WHERE b.line_id = e.line_id AND b.state = 'open'
      AND b.key <> COALESCE(e.break_class || ':line:' || e.line_id, '')
    RETURNING b.id, b.reason
)
INSERT INTO {BR} (brk_id, from_state, to_state, resolution, reason, actor, created_at)
SELECT id, 'open', 'auto_resolved', 'cleared', reason, %(actor)s, %(now)s FROM cleared
"""

_MISSING_IN_SETTLEMENT = """
INSERT INTO {B} (key, break_class, state, run_id, last_seen_run_id, line_id, file_format, occurred_on,
                 expected_amount, expected_currency, actual_amount, actual_currency, object_kind, object_id,
                 psp_reference, description, resolution, reason, resolved_by, resolved_at, created_at)
SELECT 'missing_in_settlement:object:' || o.id, 'missing_in_settlement', 'open', %(run)s, %(run)s, NULL, '',
       (o.completed_at AT TIME ZONE 'UTC')::date, o.amount, o.currency, NULL, '', 'payment_order', o.id,
       o.psp_reference, 'order ' || o.id || ' succeeded ' || o.completed_at || ' and no PSP settlement has it',
       '', '', '', NULL, %(now)s
FROM {PO} o
WHERE o.state = 'succeeded' AND o.completed_at < %(missing_before)s AND o.completed_at >= %(missing_since)s
  AND NOT EXISTS ({SETTLING})
ON CONFLICT (key) DO UPDATE SET last_seen_run_id = EXCLUDED.last_seen_run_id
"""

_SETTLED_LATER = """
WITH cleared AS (
    UPDATE {B} b SET state = 'auto_resolved', resolution = 'settled_later', resolved_by = %(actor)s,
           resolved_at = %(now)s, reason = 'settled by line ' || s.line_id || ', seen by reconciliation run '
           || %(run)s, last_seen_run_id = %(run)s
    FROM {PO} o CROSS JOIN LATERAL (SELECT min(id) AS line_id FROM ({SETTLING}) settling) s
    WHERE b.break_class = 'missing_in_settlement' AND b.state = 'open' AND o.id = b.object_id
      AND s.line_id IS NOT NULL
    RETURNING b.id, b.reason
)
INSERT INTO {BR} (brk_id, from_state, to_state, resolution, reason, actor, created_at)
SELECT id, 'open', 'auto_resolved', 'settled_later', reason, %(actor)s, %(now)s FROM cleared
"""


def _classify_refunds(cursor, params: dict) -> None:
    """Refund lines, matched through the payments selector (batched: refunds are few)."""
    cursor.execute(
        f"SELECT id, psp_reference, source_reference, currency, COALESCE(gross, net) FROM {_OPEN_BREAKS} l"
        " WHERE record_type = 'refund' ORDER BY id", params
    )
    while rows := cursor.fetchmany(_BATCH):
        references = sorted({r for row in rows for r in (row[1], row[2]) if r})
        refunds = payment_selectors.refunds_by_psp_reference(psp_references=references)
        values = []
        for line_id, psp_reference, source_reference, currency, amount in rows:
            refund = refunds.get(source_reference) or refunds.get(psp_reference)
            actual = -amount  # a refund row is negative, our refund amount positive
            if refund is None:
                values.append((line_id, "break", BreakClass.MISSING_IN_BOOKS.value, "", "", None, "", actual, currency,
                               "the PSP settled a refund our books do not have"))
                continue
            if refund.currency != currency:
                klass, text = BreakClass.CURRENCY_MISMATCH.value, f"refund {refund.id} is in {refund.currency}"
            elif refund.amount != actual:
                klass, text = BreakClass.AMOUNT_MISMATCH.value, f"refund {refund.id} is {refund.amount}"
            else:
                klass, text = None, ""
            values.append((line_id, "matched" if klass is None else "break", klass, "refund", refund.id,
                           refund.amount, refund.currency, actual, currency, text))
        with connection.cursor() as writer:
            writer.executemany(_EVAL_INSERT, values)


def _match_payouts(cursor, params: dict) -> dict:
    """Each open payout row against the bank: by payout id, else amount, currency and date window."""
    window = timedelta(days=_setting("RECONCILIATION_PAYOUT_WINDOW_DAYS", 5))
    cursor.execute(
        f"SELECT id, payout_reference, currency, -net, occurred_at FROM {_OPEN_BREAKS} l"
        " WHERE record_type = 'payout' ORDER BY id", params
    )
    payouts = cursor.fetchall()
    posted: dict[str, int] = {}
    claimed: set[int] = set()
    for line_id, reference, currency, amount, occurred_at in payouts:
        payout_key = reference or f"line:{line_id}"
        bank = _bank_line_for(cursor, params["files"], payout_key, reference, currency, amount, occurred_at, window,
                              claimed)
        if bank is None:
            _eval(cursor, line_id, "break", BreakClass.PAYOUT_NOT_RECEIVED, "payout", reference, amount, currency,
                  None, "", f"payout {reference or '(no id)'} has no matching bank credit yet")
            continue
        bank_id, bank_currency, bank_amount = bank
        claimed.add(bank_id)
        _eval(cursor, bank_id, "matched", None, "payout", payout_key, None, "", None, "", "")
        if bank_currency != currency:
            _eval(cursor, line_id, "break", BreakClass.CURRENCY_MISMATCH, "payout", reference, amount, currency,
                  bank_amount, bank_currency, f"payout {reference} is in {currency}, the bank's in {bank_currency}")
        elif bank_amount != amount:
            _eval(cursor, line_id, "break", BreakClass.AMOUNT_MISMATCH, "payout", reference, amount, currency,
                  bank_amount, bank_currency, f"payout {reference} is {amount}, the bank received {bank_amount}")
        else:
            _eval(cursor, line_id, "matched", None, "bank_line", str(bank_id), amount, currency, bank_amount,
                  bank_currency, "")
            if amount:
                _post_payout(payout_key, currency, amount)
                posted[currency] = posted.get(currency, 0) + amount
    # Bank lines no payout claimed are not ours to explain: kept 'unrelated', looked at again next run.
    cursor.execute(
        f"INSERT INTO recon_eval (line_id, match_state, is_new) SELECT l.id, 'unrelated', true FROM {L} l"
        " WHERE l.file_id = ANY(%(files)s) AND l.record_type IN ('bank_credit', 'bank_debit')"
        " AND NOT EXISTS (SELECT 1 FROM recon_eval e WHERE e.line_id = l.id)", params
    )
    return {"matched_amounts": posted, "count": len(payouts)}


def _bank_line_for(cursor, files: list[int], payout_key: str, reference: str, currency: str, amount: int,
                   occurred_at: datetime | None, window: timedelta, claimed: set[int]) -> tuple[int, str, int] | None:
    """A bank line free to match (or already matched to this payout by an earlier run)."""
    base = (f"SELECT l.id, l.currency, l.net FROM {L} l LEFT JOIN {M} m ON m.line_id = l.id"
            " WHERE l.record_type IN ('bank_credit', 'bank_debit')"
            " AND ((m.line_id IS NULL AND l.file_id = ANY(%s)) OR m.state = 'unrelated'"
            " OR (m.kind = 'payout' AND m.object_id = %s))"
            " AND NOT (l.id = ANY(%s))")
    if reference:
        cursor.execute(base + " AND l.payout_reference = %s ORDER BY l.id LIMIT 1",
                       [files, payout_key, list(claimed), reference])
        row = cursor.fetchone()
        if row is not None:
            return row
    if occurred_at is None:
        return None
    cursor.execute(
        base + " AND l.currency = %s AND l.net = %s AND l.occurred_at >= %s AND l.occurred_at <= %s"
        " AND (l.payout_reference = '' OR l.payout_reference = %s) ORDER BY l.occurred_at, l.id LIMIT 1",
        [files, payout_key, list(claimed), currency, amount, occurred_at - timedelta(days=1), occurred_at + window,
         reference],
    )
    return cursor.fetchone()


def _eval(cursor, line_id: int, state: str, klass: BreakClass | None, kind: str, object_id: str,
          expected: int | None, expected_currency: str, actual: int | None, actual_currency: str,
          description: str) -> None:
    cursor.execute(
        _EVAL_INSERT,
        [line_id, state, klass.value if klass else None, kind, object_id or "", expected, expected_currency, actual,
         actual_currency, description],
    )


def _post_payout(reference: str, currency: str, amount: int) -> None:
    """The PSP paid ``amount`` into our bank: Dr assets:bank / Cr assets:psp_receivable, once per payout."""
    ledger_transaction_post(
        idempotency_key=payout_posting_key(reference, currency),
        description=f"PSP payout {reference} received by the bank",
        reference=reference[:100],
        entries=[EntrySpec(accounts.BANK, currency, amount), EntrySpec(accounts.PSP_RECEIVABLE, currency, -amount)],
    )


def _post_fees(cursor, files: list[int]) -> dict[str, int]:
    """Book the PSP's fees of the files this run reconciles, once per (file, payout, currency).

    A line's fee is its ``fee`` column, and a fee row's own (negative) net. One posting per
    payout batch instead of one per line keeps the ledger at the grain of the money that
    moves (a million-line report is one posting, not a million); each line keeps its fee.
    The totals are computed on import (``SettlementFile.fees``); files imported before that
    have them summed from their lines here.
    """
    rows = []
    for settlement_file in SettlementFile.objects.filter(pk__in=files).order_by("sha256"):
        if settlement_file.fees is not None:
            rows += [(settlement_file.sha256, *fee) for fee in settlement_file.fees]
            continue
        rows += [(settlement_file.sha256, *fee) for fee in file_fee_totals(cursor, settlement_file.pk)]
    booked: dict[str, int] = {}
    for sha, payout_reference, currency, total, count in sorted(rows, key=lambda row: row[:3]):
        total = int(total or 0)
        if total == 0:
            continue
        _, created = ledger_transaction_post(
            idempotency_key=fee_posting_key(sha, payout_reference, currency),
            description=f"PSP fees of {count} settlement lines, payout {payout_reference or '-'}",
            reference=(payout_reference or sha[:16])[:100],
            entries=[EntrySpec(accounts.PSP_FEES, currency, total),
                     EntrySpec(accounts.PSP_RECEIVABLE, currency, -total)],
        )
        if created:
            booked[currency] = booked.get(currency, 0) + total
    return booked
