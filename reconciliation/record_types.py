"""The types of a settlement line, and the named sets of them that importing and matching use.

Each set is spelled here once. Python reads them as they are, SQL through ``sql_list``
(``record_type IN ({sql_list(BANK_LINES)})``), and the partial indexes of ``models.py`` are
built from them. No Django here: the parsers run without it.
"""
from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class RecordType(StrEnum):
    """``SettlementLine.record_type``: a record's normalized type, or ``malformed`` for a line that
    could not be read."""

    CHARGE = "charge"
    REFUND = "refund"
    CHARGEBACK = "chargeback"
    CHARGEBACK_REVERSAL = "chargeback_reversal"
    FEE = "fee"
    PAYOUT = "payout"
    ADJUSTMENT = "adjustment"
    DEPOSIT_CORRECTION = "deposit_correction"
    BANK_CREDIT = "bank_credit"
    BANK_DEBIT = "bank_debit"
    UNKNOWN = "unknown"
    MALFORMED = "malformed"


#: Every type a parser gives a ``SettlementRecord`` (all but ``malformed``).
RECORD_TYPES = frozenset(t for t in RecordType if t is not RecordType.MALFORMED)

#: Lines of a bank statement.
BANK_LINES = (RecordType.BANK_CREDIT, RecordType.BANK_DEBIT)
#: Lines that carry a payout id: the PSP's payout rows and the bank lines that received them.
PAYOUT_LINES = (RecordType.PAYOUT, *BANK_LINES)
#: Lines without a PSP fee of their own: every other line's fee is booked (see ``importers.fees``).
NOT_FEE_BEARING = (*PAYOUT_LINES, RecordType.MALFORMED)
#: A dispute's lines: matched to disputes (``matching.chargebacks``); their fee (the dispute fee) is booked by the
#: dispute with its amount, not as a PSP fee of the batch.
DISPUTE_LINES = (RecordType.CHARGEBACK, RecordType.CHARGEBACK_REVERSAL)
#: Lines matching takes one by one (refunds, payouts, bank and malformed lines); every other line is
#: a *charge-like* line, matched set-based to a payment order.
MATCHED_ONE_BY_ONE = (RecordType.REFUND, *NOT_FEE_BEARING)


def sql_list(types: Iterable[str]) -> str:
    """``types`` as the items of an SQL ``IN (...)`` list: ``'payout', 'bank_credit'``."""
    return ", ".join(f"'{str(t)}'" for t in types)
