"""Booking what settlement moved: the PSP's fees, and the payouts our bank received. Through ledger's services.

- Fees: ``Dr expenses:psp_fees / Cr assets:psp_receivable``, one posting per payout batch and
  currency (the grain of the money that moves: a million-line report is one posting, not a
  million), from the totals the import summed up (``SettlementFile.fees``; the fee rule is
  ``importers.fees``). Booked even for lines in a break: the PSP took them.
- A payout received in full by the bank: ``Dr assets:bank / Cr assets:psp_receivable``, once per payout.

Both are keyed (``fee_posting_key``, ``payout_posting_key``), so a run booked again posts nothing new.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ledger import accounts
from ledger.services import EntrySpec, ledger_transaction_post
from reconciliation.models import SettlementFile


def payout_posting_key(payout_reference: str, currency: str) -> str:
    return f"settlement:payout:{payout_reference}:{currency}"


def fee_posting_key(sha256: str, payout_reference: str, currency: str) -> str:
    """One fee posting per payout batch, keyed like the payout's own posting, so a batch sent
    again in another file (another hash) is not charged twice; lines without a payout fall
    back to the file."""
    if payout_reference:
        return f"settlement:fees:{payout_reference}:{currency}"
    return f"settlement:{sha256}:fees:-:{currency}"


@dataclass(frozen=True)
class PayoutReceived:
    """A payout matched to the bank line that received all of it."""

    reference: str  # the payout's id, else ``line:<id>``
    currency: str
    amount: int


@dataclass
class Booked:
    #: Fees newly booked, per currency (minor units).
    fees: dict[str, int] = field(default_factory=dict)
    #: What the bank received of the payouts matched, per currency (minor units; booked now or before).
    payouts: dict[str, int] = field(default_factory=dict)


def settlement_book(*, files: list[int], payouts: list[PayoutReceived]) -> Booked:
    """Book the payouts received, then the fees of ``files``. Idempotent."""
    booked = Booked()
    for payout in payouts:
        if payout.amount:
            _payout_post(payout)
            booked.payouts[payout.currency] = booked.payouts.get(payout.currency, 0) + payout.amount
    for sha256, payout_reference, currency, total, lines in _fee_totals(files):
        if total and _fees_post(sha256, payout_reference, currency, total, lines):
            booked.fees[currency] = booked.fees.get(currency, 0) + total
    return booked


def _payout_post(payout: PayoutReceived) -> None:
    """The PSP paid ``amount`` into our bank: Dr assets:bank / Cr assets:psp_receivable."""
    ledger_transaction_post(
        idempotency_key=payout_posting_key(payout.reference, payout.currency),
        description=f"PSP payout {payout.reference} received by the bank",
        reference=payout.reference[:100],
        entries=[EntrySpec(accounts.BANK, payout.currency, payout.amount),
                 EntrySpec(accounts.PSP_RECEIVABLE, payout.currency, -payout.amount)],
    )


def _fee_totals(files: list[int]) -> list[tuple[str, str, str, int, int]]:
    """``(file sha256, payout reference, currency, fee total, lines)`` of ``files``, in that order."""
    rows = [(f.sha256, payout, currency, int(total or 0), lines)
            for f in SettlementFile.objects.filter(pk__in=files).only("sha256", "fees")
            for payout, currency, total, lines in f.fees]
    return sorted(rows, key=lambda row: row[:3])


def _fees_post(sha256: str, payout_reference: str, currency: str, total: int, lines: int) -> bool:
    """The PSP kept ``total`` as fees: Dr expenses:psp_fees / Cr assets:psp_receivable. True if posted now."""
    _, created = ledger_transaction_post(
        idempotency_key=fee_posting_key(sha256, payout_reference, currency),
        description=f"PSP fees of {lines} settlement lines, payout {payout_reference or '-'}",
        reference=(payout_reference or sha256[:16])[:100],
        entries=[EntrySpec(accounts.PSP_FEES, currency, total), EntrySpec(accounts.PSP_RECEIVABLE, currency, -total)],
    )
    return created
