"""Step 2b: a dispute's lines (``record_types.DISPUTE_LINES``: chargebacks, second chargebacks, their reversals),
each against the dispute its own reference names (Stripe's ``du_``/``dp_`` source id, Adyen's modification
reference), after ``charges`` gave every one the ``missing_in_books`` outcome of a charge-like line nothing
explains. A line replaces that outcome here:

- a dispute we know, in the line's currency and amount (and fee, when both say one): **matched** to it, and
  what the line says is applied (a reversal wins it: its money comes back in this transaction);
- a dispute we do not know yet: **opened from the line** through ``disputes.services.dispute_report_apply``, the
  same service the webhooks use, so whichever source comes first books it and the other changes nothing;
  matched, unless the dispute is kept with a problem (an unknown charge, more than captured...): a break;
- another currency or amount: ``currency_mismatch`` / ``amount_mismatch``, and nothing is applied;
- a second chargeback of a dispute our books hold won, or a reversal of one they hold lost: ``missing_in_books``
  (an operator decides; nothing moves on its own);
- no dispute reference: stays ``missing_in_books``.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.db import connection
from django.db.backends.utils import CursorWrapper

from disputes import selectors as dispute_selectors
from disputes.exceptions import DisputeOrderUndecided, DisputeReportInvalid
from disputes.models import Dispute, DisputeProblem, DisputeSource, DisputeState
from disputes.psp import DisputeReport
from disputes.services import dispute_report_apply
from reconciliation.models import BreakClass, MatchState
from reconciliation.record_types import DISPUTE_LINES, RecordType, sql_list

from .outcomes import Outcome
from .rules import SETTLED_GROSS, money_difference
from .scope import RunScope
from .tables import LINES

_OPEN_DISPUTE_LINES = f"""
SELECT line.id, line.record_type, line.raw_type, line.source_reference, line.psp_reference, line.currency,
       {SETTLED_GROSS}, line.fee
FROM recon_outcome outcome JOIN {LINES} line ON line.id = outcome.line_id
WHERE outcome.from_candidates AND outcome.record_type IN ({sql_list(DISPUTE_LINES)})  -- only those lines read
ORDER BY line.file_id, line.ordinal
"""

_UPDATE = """
UPDATE recon_outcome SET match_state = %s, break_class = %s, object_kind = %s, object_id = %s, expected_amount = %s,
       expected_currency = %s, actual_amount = %s, actual_currency = %s, description = %s
WHERE line_id = %s
"""

#: A dispute kept with a problem: the break its line is.
_PROBLEM_BREAK = {DisputeProblem.CURRENCY_MISMATCH: BreakClass.CURRENCY_MISMATCH,
                  DisputeProblem.EXCEEDS_CAPTURED: BreakClass.AMOUNT_MISMATCH}


@dataclass(frozen=True)
class DisputeLine:
    line_id: int
    record_type: str
    raw_type: str
    dispute_reference: str
    payment_reference: str
    currency: str
    amount: int  # positive: what was taken (a chargeback) or given back (a reversal)
    fee: int  # the chargeback's fee, positive; 0 when the line has none

    @property
    def state(self) -> DisputeState:
        """What the line says of the dispute: a reversal won it, a second chargeback lost it, else it is open."""
        if self.record_type == RecordType.CHARGEBACK_REVERSAL:
            return DisputeState.WON
        return DisputeState.LOST if self.raw_type.lower() == "secondchargeback" else DisputeState.NEEDS_RESPONSE


def chargeback_lines_decide(cursor: CursorWrapper, scope: RunScope) -> None:
    """A dispute outcome for every open dispute line (see above)."""
    cursor.execute(_OPEN_DISPUTE_LINES)
    lines = [DisputeLine(line_id, record_type, raw_type or "", (source or "").strip(), (psp or "").strip(), currency,
                         abs(gross or 0), max(fee or 0, 0) if record_type == RecordType.CHARGEBACK else 0)
             for line_id, record_type, raw_type, source, psp, currency, gross, fee in cursor.fetchall()]
    if not lines:
        return
    known = dispute_selectors.disputes_by_psp_id(psp_dispute_ids=[line.dispute_reference for line in lines])
    actor = f"reconciliation:run {scope.run_id}"
    outcomes = [chargeback_line_outcome(line, known, actor) for line in lines]
    with connection.cursor() as writer:
        writer.executemany(_UPDATE, [(*o.row()[1:], o.line_id) for o in outcomes])


def _break(line: DisputeLine, klass: BreakClass, description: str, dispute: Dispute | None = None) -> Outcome:
    return Outcome(line.line_id, MatchState.BREAK, klass, "dispute" if dispute else "", dispute.id if dispute else "",
                   dispute.amount if dispute else None, dispute.currency if dispute else "", line.amount,
                   line.currency, description)


def _matched(line: DisputeLine, dispute: Dispute) -> Outcome:
    return Outcome(line.line_id, MatchState.MATCHED, None, "dispute", dispute.id, dispute.amount, dispute.currency,
                   line.amount, line.currency)


def _kept(line: DisputeLine, dispute: Dispute) -> Outcome:
    klass = _PROBLEM_BREAK.get(dispute.problem, BreakClass.MISSING_IN_BOOKS)
    return _break(line, klass, f"dispute {dispute.id} ({dispute.psp_dispute_id}) is kept for an operator, nothing "
                               f"booked: {dispute.problem_detail or dispute.problem}", dispute)


def chargeback_line_outcome(line: DisputeLine, known: dict[str, Dispute], actor: str) -> Outcome:
    """One dispute line's outcome; opens or moves its dispute when the line agrees with our books."""
    if not line.dispute_reference:
        return _break(line, BreakClass.MISSING_IN_BOOKS, f"a {line.raw_type} line without the dispute's reference")
    dispute = known.get(line.dispute_reference)
    if dispute is not None:
        if dispute.problem:
            return _kept(line, dispute)
        klass = money_difference(expected=dispute.amount, expected_currency=dispute.currency, actual=line.amount,
                                 actual_currency=line.currency)
        if klass is None and line.fee and dispute.fee and line.currency == dispute.fee_currency \
                and line.fee != dispute.fee:
            return _break(line, BreakClass.AMOUNT_MISMATCH, f"dispute {dispute.id} booked a fee of {dispute.fee}, "
                                                            f"the PSP settled {line.fee}", dispute)
        if klass is not None:
            return _break(line, klass, f"dispute {dispute.id} is {dispute.amount} {dispute.currency.upper()}",
                          dispute)
        if dispute.state in (DisputeState.WON, DisputeState.LOST) and line.state in (DisputeState.WON,
                                                                                     DisputeState.LOST) \
                and line.state != dispute.state:
            return _break(line, BreakClass.MISSING_IN_BOOKS, f"the PSP settled a {line.raw_type} of dispute "
                                                             f"{dispute.id}, which is {dispute.state} in our books",
                          dispute)
    try:
        dispute, _ = dispute_report_apply(actor=actor, report=DisputeReport(
            psp_dispute_id=line.dispute_reference[:100], amount=line.amount, currency=line.currency,
            state=line.state, source=DisputeSource.SETTLEMENT, psp_payment_reference=line.payment_reference[:100],
            fee=line.fee, fee_currency=line.currency if line.fee else "", psp_status=line.raw_type[:40]))
    except (DisputeReportInvalid, DisputeOrderUndecided) as exc:
        return _break(line, BreakClass.MISSING_IN_BOOKS, f"the {line.raw_type} cannot be booked: {exc.message}")
    known[line.dispute_reference] = dispute
    return _kept(line, dispute) if dispute.problem else _matched(line, dispute)
