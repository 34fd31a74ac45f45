"""``reconciliation_run``: match every open settlement line to our books, book fees and payouts, classify breaks,
check the bank's balance."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

from django.conf import settings
from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

from reconciliation import selectors
from reconciliation.models import ReconciliationRun

from .aside import Aside
from .balance import bank_balance_check
from .booking import settlement_book
from .candidates import Candidates, charge_candidates_collect
from .chargebacks import chargeback_lines_decide
from .charges import charge_lines_decide
from .malformed import malformed_lines_decide
from .missing import missing_in_settlement_find, missing_new_not_nearby_select
from .outcomes import lines_by_state, new_candidates_decided, outcomes_count, outcomes_table_create
from .payouts import PayoutsMatched, payout_lines_decide
from .recording import files_mark_reconciled, line_breaks_write, matches_write
from .refund_failures import refund_failure_lines_decide
from .refunds import refund_lines_decide
from .scope import SYSTEM_ACTOR, RunScope, run_scope, session_prepare
from .transfers import money_out_lines_decide, paid_payouts_unsettled_find
from .unchanged import decisions_write

logger = logging.getLogger(__name__)


def reconciliation_run(*, day: date, actor: str = SYSTEM_ACTOR) -> ReconciliationRun:
    """Decide every open settlement line, write down matches and breaks, book fees and payouts. Re-runnable.

    A line is open when its file has not been reconciled yet, or when an earlier run left it a
    break or malformed (unrelated bank lines wait for a payout to claim them). ``day`` is the
    business day: succeeded orders completed more than ``RECONCILIATION_MISSING_CUTOFF_HOURS``
    before its end and still unsettled are breaks; the closing balance of the run's bank statements is then
    compared with ``assets:bank``. One run at a time, in one transaction.
    """
    # A second connection sees only what is committed: not inside an outer transaction (``aside``).
    reads_aside = settings.RECONCILIATION_READS_ASIDE and not connection.in_atomic_block
    with transaction.atomic():
        session_prepare()
        run = ReconciliationRun.objects.create(date=day, actor=actor[:100])
        scope = run_scope(run=run, day=day, reads_aside=reads_aside)
        with connection.cursor() as cursor:
            outcomes_table_create(cursor)
            candidates = charge_candidates_collect(cursor, scope)
            # The orders new to the missing window no nearby line settles: read on a second connection meanwhile.
            with Aside(lambda reader: missing_new_not_nearby_select(reader, scope.params),
                       enabled=scope.reads_aside) as new_not_nearby:
                decided = _lines_decide_and_write(cursor, scope, run, candidates)
                missing_in_settlement_find(cursor, scope, new_not_nearby)
            money_out_unsettled = paid_payouts_unsettled_find(scope)
            booked = settlement_book(files=scope.files, payouts=decided.payouts.received)
            bank_balance_check(scope)
            lines = lines_by_state(cursor, matched_by_reference=decided.matched_by_reference,
                                   skipped=candidates.skipped)
        run.finished_at = timezone.now()
        run.stats = {"breaks": selectors.run_break_stats(run_id=run.pk), "lines": lines, "fees_booked": booked.fees,
                     "payouts": {"matched_amounts": booked.payouts, "count": decided.payouts.count},
                     "money_out": {"lines": decided.money_out, "paid_payouts_unsettled": money_out_unsettled},
                     "missing_window": scope.missing_window}
        run.save(update_fields=["lines_evaluated", "finished_at", "stats"])
    logger.info("event=reconciliation_run run_id=%s date=%s lines=%s actor=%s", run.pk, day,
                run.lines_evaluated, actor)
    return run


@dataclass(frozen=True)
class _Decided:
    matched_by_reference: int
    payouts: PayoutsMatched
    money_out: int


def _lines_decide_and_write(cursor: CursorWrapper, scope: RunScope, run: ReconciliationRun,
                            candidates: Candidates) -> _Decided:
    """Steps 2 to 6: every open line decided, its match row and break written, the run's files reconciled."""
    charge_lines_decide(cursor, scope)
    chargeback_lines_decide(cursor, scope)  # disputes' lines: matched to disputes, or opening them
    matched_by_reference = candidates.new_lines - new_candidates_decided(cursor)
    refund_lines_decide(cursor, scope)
    refund_failure_lines_decide(cursor, scope)  # charge-like on import; matched to the failed refund
    payouts = payout_lines_decide(cursor, scope)
    money_out = money_out_lines_decide(cursor, scope)
    malformed_lines_decide(cursor, scope)
    run.lines_evaluated = outcomes_count(cursor) + matched_by_reference + candidates.skipped
    matches_write(cursor, scope)
    files_mark_reconciled(cursor, scope)
    line_breaks_write(cursor, scope)
    decisions_write(cursor, scope.params)  # and the breaks of the reopened lines left undecided seen again
    return _Decided(matched_by_reference=matched_by_reference, payouts=payouts, money_out=money_out)
