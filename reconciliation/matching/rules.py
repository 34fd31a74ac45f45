"""The break rules: when a line or an order is a break, of which one class, and what the break says.

Every class and where it is decided:

======================== ================================================================
``unknown_record_type``  a charge-like line whose type the parser did not know
``missing_in_books``     a charge-like line no succeeded order of ours explains; a refund
                         line no refund of ours has
``duplicate``            a charge settling an order another charge line settles (in the run,
                         or matched by an earlier run)
``currency_mismatch``    a charge, refund or payout in another currency than ours
``amount_mismatch``      the same currency, another amount
``timing``               a charge settled in a batch closed more than the timing window after
                         its order completed: resolved on sight, the line stays matched
``payout_not_received``  a payout no bank line has received (yet)
``payout_failed_at_psp`` a seller's payout the PSP reports failed, not failed in our books
                         (money out's classes and rules: ``transfers``)
``refund_failed_at_psp`` a refund the PSP settled the failure of (``refund_failure``), succeeded in our books
                         (``refund_failures``)
``malformed_line``       a line the parser could not read
``missing_in_settlement`` a succeeded order no charge line settled by the cut-off
======================== ================================================================

Charge-like lines are decided set-based, so their rules are SQL over ``recon_candidate``
(``CHARGE_LINE_BREAK``, ``CHARGE_LINE_DESCRIPTION``, and ``CLEAN``, which must agree with
them); refunds and payouts are few and decided in Python (``refund_line_outcome``,
``payout_line_outcomes``). Breaks that clear themselves say why here too.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from payments.selectors import SettledObject
from reconciliation.models import BreakClass, MatchState, Resolution
from reconciliation.record_types import RecordType

from .outcomes import Outcome
from .tables import LINES

CHARGE, FEE, UNKNOWN = RecordType.CHARGE, RecordType.FEE, RecordType.UNKNOWN

# --- charge-like lines (SQL) -------------------------------------------------------------

#: SQL: what the PSP settled for a line of ``line``, gross: its gross, else its net plus its fee.
SETTLED_GROSS = "COALESCE(line.gross, line.net + COALESCE(line.fee, 0))"

#: SQL (over an open ``line`` and the ``payment_order`` its PSP reference finds): the line is new and
#: has no difference: a fee line, or a charge of a succeeded order in its currency and amount, settled
#: within the timing window. Such a line is matched by reference, unless it turns out to be a duplicate.
#: The batch's close (``settled_at``) is the line's file's, looked up in the run's lists; ``%(clean_before)s``, when
#: not null, is that close less the timing window for every file holding charges (one value per line saved).
CLEAN = f"""line.is_new AND (line.record_type = '{FEE}' OR (
           line.record_type = '{CHARGE}' AND payment_order.state = 'succeeded'
           AND line.currency = payment_order.currency AND {SETTLED_GROSS} = payment_order.amount
           AND (payment_order.completed_at
                < COALESCE(%(clean_before)s::timestamptz,
                           (%(settled_at)s::timestamptz[])[array_position(%(files)s::bigint[], line.file_id)]
                           - %(timing_window)s)) IS NOT TRUE)) IS TRUE"""

#: SQL (over ``cand``, a candidate; ``twin.first_line``, ``[file_id, ordinal]`` of the first line settling its
#: reference, in line order, when several do; ``settled_before``, set when another line settled its order before;
#: ``file``, its file): the break class of a charge-like line, NULL for none. The first rule that holds decides.
CHARGE_LINE_BREAK = f"""CASE
        WHEN cand.record_type = '{UNKNOWN}' THEN '{BreakClass.UNKNOWN_RECORD_TYPE}'
        WHEN cand.record_type = '{FEE}' THEN NULL
        WHEN cand.record_type <> '{CHARGE}' THEN '{BreakClass.MISSING_IN_BOOKS}'
        WHEN twin.first_line IS NOT NULL AND twin.first_line <> ARRAY[cand.file_id, cand.ordinal]
             THEN '{BreakClass.DUPLICATE}'
        WHEN settled_before.id IS NOT NULL THEN '{BreakClass.DUPLICATE}'
        WHEN cand.order_id IS NULL OR cand.order_state <> 'succeeded' THEN '{BreakClass.MISSING_IN_BOOKS}'
        WHEN cand.currency <> cand.expected_currency THEN '{BreakClass.CURRENCY_MISMATCH}'
        WHEN cand.actual <> cand.expected THEN '{BreakClass.AMOUNT_MISMATCH}'
        WHEN cand.completed_at < file.settled_at - %(timing_window)s THEN '{BreakClass.TIMING}'
    END"""

#: The record types whose break a run need not decide again while what it read is unchanged (``unchanged``): their
#: rules read the line (never rewritten), the order found and the timing window, and, for a charge, its twins.
UNCHANGED_SKIPPABLE = (CHARGE, UNKNOWN)


def order_fingerprint(order_id: str, amount: str, currency: str, state: str, completed_at: str,
                      psp_reference: str) -> str:
    """SQL: what the charge rules read of the order a line found (the SQL expressions given; NULLs: no order), with
    the timing window: a reopened line whose fingerprint is the one of its last decision decides the same."""
    return (f"md5(ROW({order_id}, {amount}, {currency}, {state}, extract(epoch FROM {completed_at}), "
            f"{psp_reference}, %(timing_window)s::interval)::text)")


_RAW_TYPE = f"(SELECT line.raw_type FROM {LINES} line WHERE line.id = classified.id)"

#: SQL (over ``classified``: a candidate with its ``break_class`` and its file's ``settled_at``): what
#: the break says.
CHARGE_LINE_DESCRIPTION = f"""CASE break_class
               WHEN '{BreakClass.UNKNOWN_RECORD_TYPE}' THEN 'record type '
                    || quote_literal({_RAW_TYPE}) || ' is not understood'
               WHEN '{BreakClass.MISSING_IN_BOOKS}' THEN CASE
                   WHEN record_type <> '{CHARGE}' THEN 'the PSP settled a ' || record_type || ' ('
                        || {_RAW_TYPE} || ') our books do not have'
                   WHEN order_id IS NULL THEN 'the PSP settled a charge no payment order of ours knows'
                   ELSE 'the PSP settled order ' || order_id || ', which is ' || order_state || ' in our books' END
               WHEN '{BreakClass.DUPLICATE}' THEN 'reference ' || dup_key || ' is settled more than once'
               WHEN '{BreakClass.CURRENCY_MISMATCH}' THEN 'settled in ' || upper(currency) || ', order ' || order_id
                    || ' is in ' || upper(expected_currency)
               WHEN '{BreakClass.AMOUNT_MISMATCH}' THEN 'settled gross ' || actual || ', order ' || order_id
                    || ' is ' || expected || ' (minor units)'
               WHEN '{BreakClass.TIMING}' THEN 'order ' || order_id || ' completed ' || completed_at
                    || ', settled in the batch closed ' || settled_at
               ELSE '' END"""

#: SQL (over ``break_class``): a timing break leaves its line matched; any other break does not.
MATCH_STATE_OF_BREAK = (f"CASE WHEN break_class IS NULL OR break_class = '{BreakClass.TIMING}'"
                        f" THEN '{MatchState.MATCHED}' ELSE '{MatchState.BREAK}' END")

# --- breaks resolved by reconciliation itself ---------------------------------------------

#: A break of this class is resolved as soon as it is found: the money arrived, a batch late.
RESOLVED_ON_SIGHT = BreakClass.TIMING
RESOLVED_ON_SIGHT_RESOLUTION = Resolution.SETTLED_LATER
RESOLVED_ON_SIGHT_REASON = "settled in a later batch than expected; the money arrived"

#: SQL: why an open break of a line decided again, whose class the run no longer observes, is cleared.
CLEARED_REASON = "'no longer observed by reconciliation run ' || %(run)s"
#: SQL (``settling``: the first line that settled the order): why a ``missing_in_settlement`` break clears.
SETTLED_LATER_REASON = "'settled by line ' || settling.line_id || ', seen by reconciliation run ' || %(run)s"

# --- other lines and orders (SQL) ---------------------------------------------------------

#: SQL (over ``line``): what a ``malformed_line`` break says.
MALFORMED_LINE_DESCRIPTION = "'line ' || line.line_number || ': ' || line.error"
#: SQL (over ``payment_order``, a succeeded order in the window): the orders that are
#: ``missing_in_settlement`` when no charge line settled them, and what the break says.
MISSING_IN_SETTLEMENT_WINDOW = ("payment_order.state = 'succeeded' AND payment_order.completed_at < %(missing_before)s"
                                " AND payment_order.completed_at >= %(missing_since)s")
MISSING_IN_SETTLEMENT_DESCRIPTION = ("'order ' || payment_order.id || ' succeeded ' || payment_order.completed_at"
                                     " || ' and no PSP settlement has it'")


# --- refund and payout lines (Python) -----------------------------------------------------


def money_difference(*, expected: int, expected_currency: str, actual: int, actual_currency: str) -> BreakClass | None:
    """The break between our figure and theirs: the currency first, then the amount; ``None`` when they agree."""
    if expected_currency != actual_currency:
        return BreakClass.CURRENCY_MISMATCH
    if expected != actual:
        return BreakClass.AMOUNT_MISMATCH
    return None


def refund_line_outcome(*, line_id: int, currency: str, amount: int, refund: SettledObject | None) -> Outcome:
    """A refund line (``amount``: positive, as our refunds are) against the refund its reference finds."""
    if refund is None:
        return Outcome(line_id, MatchState.BREAK, BreakClass.MISSING_IN_BOOKS, actual_amount=amount,
                       actual_currency=currency, description="the PSP settled a refund our books do not have")
    klass = money_difference(expected=refund.amount, expected_currency=refund.currency, actual=amount,
                             actual_currency=currency)
    description = {BreakClass.CURRENCY_MISMATCH: f"refund {refund.id} is in {refund.currency}",
                   BreakClass.AMOUNT_MISMATCH: f"refund {refund.id} is {refund.amount}"}.get(klass, "")
    return Outcome(line_id, MatchState.MATCHED if klass is None else MatchState.BREAK, klass, "refund", refund.id,
                   refund.amount, refund.currency, amount, currency, description)


@dataclass(frozen=True)
class PayoutLine:
    """A payout row of a PSP report: ``amount`` is what the bank should receive (positive)."""

    line_id: int
    reference: str
    currency: str
    amount: int
    occurred_at: datetime | None

    @property
    def key(self) -> str:
        """What the payout is known by: its id, else its line."""
        return self.reference or f"line:{self.line_id}"


@dataclass(frozen=True)
class BankLine:
    line_id: int
    currency: str
    amount: int


def payout_line_outcomes(*, payout: PayoutLine, bank: BankLine | None) -> tuple[Outcome, Outcome | None]:
    """A payout against the bank line that received it: the payout's outcome, and the bank line's (matched to
    the payout whatever the payout's own outcome)."""
    if bank is None:
        return Outcome(payout.line_id, MatchState.BREAK, BreakClass.PAYOUT_NOT_RECEIVED, "payout", payout.reference,
                       payout.amount, payout.currency,
                       description=f"payout {payout.reference or '(no id)'} has no matching bank credit yet"), None
    received = Outcome(bank.line_id, MatchState.MATCHED, None, "payout", payout.key)
    klass = money_difference(expected=payout.amount, expected_currency=payout.currency, actual=bank.amount,
                             actual_currency=bank.currency)
    if klass is None:
        return Outcome(payout.line_id, MatchState.MATCHED, None, "bank_line", str(bank.line_id), payout.amount,
                       payout.currency, bank.amount, bank.currency), received
    description = {
        BreakClass.CURRENCY_MISMATCH:
            f"payout {payout.reference} is in {payout.currency}, the bank's in {bank.currency}",
        BreakClass.AMOUNT_MISMATCH: f"payout {payout.reference} is {payout.amount}, the bank received {bank.amount}",
    }[klass]
    return Outcome(payout.line_id, MatchState.BREAK, klass, "payout", payout.reference, payout.amount,
                   payout.currency, bank.amount, bank.currency, description), received
