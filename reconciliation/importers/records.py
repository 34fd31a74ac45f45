"""The items the settlement-file parsers yield.

Money is always an ``int`` in the currency's minor unit next to a lowercase ISO 4217
code (see ``core.money``); parsers never use ``float``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

#: Every normalized ``SettlementRecord.record_type``.
RECORD_TYPES = frozenset(
    {
        "charge",
        "refund",
        "chargeback",
        "chargeback_reversal",
        "fee",
        "payout",
        "adjustment",
        "deposit_correction",
        "bank_credit",
        "bank_debit",
        "unknown",
    }
)


@dataclass(frozen=True, slots=True)
class SettlementRecord:
    """One money movement read from a settlement report or a bank statement.

    ``line_number`` is 1-based: the physical line the row starts on for CSV (the
    header counts), the ``Ntry`` ordinal in the file for camt.053 (every record of a
    batch entry shares its entry's ordinal) and the transaction ordinal in the file
    for MT940.
    """

    line_number: int
    record_type: str
    raw_type: str
    currency: str
    gross: int | None
    fee: int | None
    net: int
    psp_reference: str | None
    merchant_reference: str | None
    payout_reference: str | None
    occurred_at: datetime | None
    source_line: str
    #: The row's own object id when the format has one (Stripe ``source_id``: ``re_...``
    #: for a refund, while ``psp_reference`` is its payment intent).
    source_reference: str | None = None


@dataclass(frozen=True, slots=True)
class MalformedRecord:
    """A line (or entry) that could not be read; the parser went on with the next."""

    line_number: int
    reason: str
    source_line: str


@dataclass(frozen=True, slots=True)
class FileHeader:
    """Statement-level facts, yielded before the statement's records."""

    format: str
    statement_id: str | None
    account: str | None
    currency: str | None
    opening_balance: int | None
    closing_balance: int | None
