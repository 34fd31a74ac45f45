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
    #: A refund that succeeded and failed later (Stripe ``refund_failure``): the money back on our balance, positive.
    #: Charge-like on import, decided against its refund by ``matching.refund_failures``.
    REFUND_FAILURE = "refund_failure"
    CHARGEBACK = "chargeback"
    CHARGEBACK_REVERSAL = "chargeback_reversal"
    FEE = "fee"
    PAYOUT = "payout"
    ADJUSTMENT = "adjustment"
    DEPOSIT_CORRECTION = "deposit_correction"
    #: Money out (Stripe Connect): our transfer to a seller's connected account, negative on the platform's
    #: report (``transfer``), and its reversal back to us (``transfer_reversal``)...
    TRANSFER = "transfer"
    TRANSFER_REVERSAL = "transfer_reversal"
    #: ...and the connected account's payout to the seller's bank (a ``payout`` row of a connected account's
    #: report, negative) and its failure, the money back in the connected account (``payout_reversal``).
    SELLER_PAYOUT = "seller_payout"
    SELLER_PAYOUT_FAILURE = "seller_payout_failure"
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
#: The platform's transfers to connected accounts and their reversals (matched to our payouts' transfers).
TRANSFER_LINES = (RecordType.TRANSFER, RecordType.TRANSFER_REVERSAL)
#: The connected accounts' payouts to the sellers' banks and their failures (matched to our payouts).
SELLER_PAYOUT_LINES = (RecordType.SELLER_PAYOUT, RecordType.SELLER_PAYOUT_FAILURE)
#: Lines of money out: each is matched to one payout of ours (``matching.transfers``).
MONEY_OUT_LINES = (*TRANSFER_LINES, *SELLER_PAYOUT_LINES)
#: Lines without a PSP fee of their own: every other line's fee is booked (see ``importers.fees``).
NOT_FEE_BEARING = (*PAYOUT_LINES, *MONEY_OUT_LINES, RecordType.MALFORMED)
#: A dispute's lines: matched to disputes (``matching.chargebacks``); their fee (the dispute fee) is booked by the
#: dispute with its amount, not as a PSP fee of the batch.
DISPUTE_LINES = (RecordType.CHARGEBACK, RecordType.CHARGEBACK_REVERSAL)
#: Lines matching takes one by one (refunds, payouts, money out, bank and malformed lines); every other line is
#: a *charge-like* line, matched set-based to a payment order.
MATCHED_ONE_BY_ONE = (RecordType.REFUND, *NOT_FEE_BEARING)


def sql_list(types: Iterable[str]) -> str:
    """``types`` as the items of an SQL ``IN (...)`` list: ``'payout', 'bank_credit'``."""
    return ", ".join(f"'{str(t)}'" for t in types)
