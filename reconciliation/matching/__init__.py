"""Reconciliation as named steps: settlement lines matched to our books, breaks classified, fees and payouts booked.

Set-based: a few SQL statements over every open line, so a million lines cost a few
statements, not a million queries. ``reconciliation_run`` (``run``) takes the steps in order,
in one transaction:

1. ``candidates``: the open charge-like lines, each with the payment order it finds
   (by PSP reference, else our order id), into ``recon_candidate``;
2. ``charges``: those that need a decision decided by the break rules (``rules``);
3. ``refunds``: refund lines against our refunds;
4. ``payouts``: payout rows against the bank lines that received them;
5. ``malformed``: lines that could not be read;
6. ``recording``: match rows, the files marked reconciled, breaks upserted by key and
   auto-resolved with an audit row;
7. ``missing``: succeeded orders no line settled by the cut-off;
8. ``booking``: fees and payouts posted to the ledger;
9. ``balance``: the bank statements' closing balance against ``assets:bank``.

Steps 1 to 5 write their decisions to ``recon_outcome`` (``outcomes``); ``history`` holds the
SQL meaning of *matched* that they share with ``selectors.settlement_lines_with_match``. Reads of what
was committed before the run (the reopened lines' candidates, the history's charges settled by reference,
the missing step's nearby anti-join) go to second connections beside the run's own statements (``aside``); the
reopened break lines are read once on the run's (``history.reopened_table_create``), and those whose inputs are
unchanged since their last decision are not decided again (``unchanged``: a ``LineDecision`` per such line).
"""
from .booking import fee_posting_key, payout_posting_key, settlement_book
from .run import reconciliation_run
from .scope import SYSTEM_ACTOR

__all__ = ["SYSTEM_ACTOR", "fee_posting_key", "payout_posting_key", "reconciliation_run", "settlement_book"]
