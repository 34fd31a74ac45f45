"""Step 4: payout rows against the bank lines that received them (``rules.payout_line_outcomes``).

A payout finds a bank line free to match (of the run's files and not matched yet, left
``unrelated`` by an earlier run, or matched to this payout before) by its payout id, else by
amount, currency and a date window. Bank lines no payout claimed are not ours to explain:
they stay ``unrelated`` and are looked at again by the next run. What the bank received is
booked by ``booking``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.db.backends.utils import CursorWrapper

from reconciliation.models import MatchState
from reconciliation.record_types import BANK_LINES, RecordType, sql_list

from .booking import PayoutReceived
from .history import open_lines_of
from .outcomes import outcomes_add
from .rules import BankLine, PayoutLine, payout_line_outcomes
from .scope import RunScope
from .tables import LINES, MATCHES


@dataclass
class PayoutsMatched:
    #: Payout rows decided.
    count: int = 0
    #: Payouts the bank received in full, to book.
    received: list[PayoutReceived] = field(default_factory=list)


def payout_lines_decide(cursor: CursorWrapper, scope: RunScope) -> PayoutsMatched:
    """An outcome for every open payout row and the bank line it found; then the bank lines left over."""
    cursor.execute(f"""
SELECT line.id, line.payout_reference, line.currency, -line.net, line.occurred_at
FROM {open_lines_of([RecordType.PAYOUT])} line WHERE line.record_type = '{RecordType.PAYOUT}'
ORDER BY line.file_id, line.ordinal
""", scope.params)
    payouts = [PayoutLine(*row) for row in cursor.fetchall()]
    matched = PayoutsMatched(count=len(payouts))
    claimed: list[int] = []
    outcomes = []
    for payout in payouts:
        bank = _bank_line_for(cursor, scope, payout, claimed)
        payout_outcome, bank_outcome = payout_line_outcomes(payout=payout, bank=bank)
        outcomes += [payout_outcome] if bank is None else [bank_outcome, payout_outcome]
        if bank is not None:
            claimed.append(bank.line_id)
        if payout_outcome.match_state == MatchState.MATCHED:
            matched.received.append(PayoutReceived(payout.key, payout.currency, payout.amount))
    outcomes_add(outcomes)
    _unclaimed_bank_lines_decide(cursor, scope)
    return matched


_FREE_BANK_LINES = f"""
SELECT line.id, line.currency, line.net FROM {LINES} line LEFT JOIN {MATCHES} line_match ON line_match.line_id = line.id
WHERE line.record_type IN ({sql_list(BANK_LINES)})
  AND ((line_match.line_id IS NULL AND line.file_id = ANY(%(files)s)) OR line_match.state = '{MatchState.UNRELATED}'
       OR (line_match.kind = 'payout' AND line_match.object_id = %(payout_key)s))
  AND NOT (line.id = ANY(%(claimed)s))"""


def _bank_line_for(cursor: CursorWrapper, scope: RunScope, payout: PayoutLine, claimed: list[int]) -> BankLine | None:
    """The bank line that received ``payout``: by payout id, else by amount and currency booked from a day
    before the payout to ``payout_window`` after it. One no other payout of this run claimed."""
    params = {"files": scope.files, "payout_key": payout.key, "claimed": claimed, "reference": payout.reference}
    if payout.reference:
        cursor.execute(_FREE_BANK_LINES + " AND line.payout_reference = %(reference)s"
                       " ORDER BY line.file_id, line.ordinal LIMIT 1",
                       params)
        row = cursor.fetchone()
        if row is not None:
            return BankLine(*row)
    if payout.occurred_at is None:
        return None
    cursor.execute(
        _FREE_BANK_LINES + " AND line.currency = %(currency)s AND line.net = %(amount)s"
        " AND line.occurred_at >= %(earliest)s AND line.occurred_at <= %(latest)s"
        " AND (line.payout_reference = '' OR line.payout_reference = %(reference)s)"
        " ORDER BY line.occurred_at, line.file_id, line.ordinal LIMIT 1",
        {**params, "currency": payout.currency, "amount": payout.amount,
         "earliest": payout.occurred_at - timedelta(days=1), "latest": payout.occurred_at + scope.payout_window},
    )
    row = cursor.fetchone()
    return None if row is None else BankLine(*row)


def _unclaimed_bank_lines_decide(cursor: CursorWrapper, scope: RunScope) -> None:
    """The new bank lines no payout claimed: ``unrelated``."""
    cursor.execute(f"""
INSERT INTO recon_outcome (line_id, match_state, is_new)
SELECT line.id, '{MatchState.UNRELATED}', true FROM {LINES} line
WHERE line.file_id = ANY(%(files)s) AND line.record_type IN ({sql_list(BANK_LINES)})
  AND NOT EXISTS (SELECT 1 FROM recon_outcome outcome WHERE outcome.line_id = line.id)
""", scope.params)
