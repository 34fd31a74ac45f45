"""Payments' postings: what a capture and a refund write to the ledger and the seller's wallet, the
platform's commission on them, and the keys they are posted under (``audit_money`` checks by these).
Each runs inside its caller's transaction, under the order's row lock."""
from __future__ import annotations

from django.conf import settings
from django.db.models import Q, Sum

from core.db import statement_parts_run
from ledger import accounts
from ledger.services import (
    EntrySpec,
    LedgerPosting,
    ledger_posting_prepare,
    ledger_transaction_post,
    ledger_transaction_reverse,
)
from payments.models import PaymentOrder, Refund, RefundState
from wallet import selectors as wallet_selectors
from wallet.services import WalletMove, wallet_credit, wallet_credit_prepare, wallet_debit

# A capture's key is payment_order:<id>:capture; a refund's, refund:<id>; its reversal (the refund failed after it
# succeeded), refund:<id>:failed.
CAPTURE_KEY_PREFIX, CAPTURE_KEY_SUFFIX = "payment_order:", ":capture"
REFUND_KEY_PREFIX, REFUND_FAILED_KEY_SUFFIX = "refund:", ":failed"


def commission_for(amount: int) -> int:
    """The platform's cut, in whole minor units, rounded down in the seller's favour."""
    return amount * settings.PLATFORM_COMMISSION_BPS // 10_000


def commission_reversed(*, commission: int, captured: int, refunded_before: int, amount: int) -> int:
    """The platform's cut given back by a refund of ``amount``, after ``refunded_before`` was refunded.

    Cumulative, so rounding never adds up: after refunds totalling R the platform has given back
    ``commission * R // captured`` in all. That never exceeds what it took, and a full refund
    (R = captured) gives back exactly all of it, the last refund taking the remainder. The seller
    is debited the rest, so it never gives back more than it was credited."""
    return (commission * (refunded_before + amount) // captured) - (commission * refunded_before // captured)


def capture_posting_key(payment_order_id: str) -> str:
    return f"{CAPTURE_KEY_PREFIX}{payment_order_id}{CAPTURE_KEY_SUFFIX}"


def refund_posting_key(refund_id: str) -> str:
    return f"{REFUND_KEY_PREFIX}{refund_id}"


def refund_failed_posting_key(refund_id: str) -> str:
    return f"{REFUND_KEY_PREFIX}{refund_id}{REFUND_FAILED_KEY_SUFFIX}"


def capture_parts(order: PaymentOrder, *, after: str = "") -> tuple[LedgerPosting, WalletMove]:
    """A capture's posting and wallet credit made ready (``capture_post``), for a statement of their own or
    another's: written under ``after`` (an SQL condition of that statement's, e.g. that the order's decision was
    written), the credit after the posting."""
    commission = commission_for(order.amount)
    seller_share = order.amount - commission
    entries = [
        EntrySpec(accounts.PSP_RECEIVABLE, order.currency, order.amount),
        EntrySpec(accounts.seller_payable(order.seller_id), order.currency, -seller_share),
    ]
    if commission:
        entries.append(EntrySpec(accounts.PLATFORM_COMMISSION, order.currency, -commission))
    posting = ledger_posting_prepare(idempotency_key=capture_posting_key(order.id),
                                     description=f"Capture of payment order {order.id}", reference=order.id,
                                     entries=entries, after=after)
    credit = wallet_credit_prepare(owner_id=order.seller_id, currency=order.currency, amount=seller_share,
                                   idempotency_key=capture_posting_key(order.id),
                                   reason=f"payment order {order.id} succeeded",
                                   after=f"{posting.written} AND {after}" if after else posting.written)
    return posting, credit


def capture_post(order: PaymentOrder) -> None:
    """A capture in the books: PSP receivable debited, the seller's payable and the platform's cut credited;
    the seller's wallet credited (held for payouts) under the same key. One statement (the ledger's posting,
    then the wallet's movement, whose row is locked last), three more the first time the seller is paid in
    a currency (its account and wallet opened, then it again). In the caller's transaction."""
    posting, credit = capture_parts(order)
    posted, _credited = statement_parts_run(posting, credit)
    posting.check(posted)


def capture_posted(order: PaymentOrder, parts: tuple[LedgerPosting, WalletMove], rows: list[tuple]) -> None:
    """After ``capture_parts`` ran in another statement (its columns ``rows``), in its transaction: what the
    parts left to write (``finish``) and, the first time the seller is paid in a currency (an account or the
    wallet not opened yet), those opened and ``capture_post``, which writes what was not written (by the keys)."""
    missing = False
    for part, row in zip(parts, rows, strict=True):
        part.finish(row)
        if part.missing(row):
            part.open_missing()
            missing = True
    if missing:
        capture_post(order)
        return
    parts[0].check(rows[0])


def refund_post(order: PaymentOrder, refund: Refund) -> None:
    """Reverse the capture in proportion: the seller gives back its share, the platform its cut.
    Runs under the order's lock, so the refunds of one order are reversed one at a time."""
    # Every refund reversed before counts (one that failed after it succeeded): its reversal gave back exactly what
    # it took, so the cumulative rounding still adds up to the commission over a full refund.
    refunded_before = (Refund.objects.filter(Q(state=RefundState.SUCCEEDED) | Q(reversed_at__isnull=False),
                                             payment_order=order)
                       .exclude(pk=refund.pk).aggregate(total=Sum("amount"))["total"] or 0)
    commission = commission_reversed(commission=commission_for(order.amount), captured=order.amount,
                                     refunded_before=refunded_before, amount=refund.amount)
    seller_share = refund.amount - commission
    entries = [EntrySpec(accounts.seller_payable(order.seller_id), refund.currency, seller_share),
               EntrySpec(accounts.PSP_RECEIVABLE, refund.currency, -refund.amount)]
    if commission:
        entries.append(EntrySpec(accounts.PLATFORM_COMMISSION, refund.currency, commission))
    ledger_transaction_post(idempotency_key=refund_posting_key(refund.id),
                            description=f"Refund {refund.id} of payment order {order.id}",
                            reference=refund.id, entries=entries)
    wallet_debit(owner_id=order.seller_id, currency=refund.currency, amount=seller_share,
                 idempotency_key=refund_posting_key(refund.id), reason=f"refund {refund.id} of {order.id}")


def refund_failed_post(order: PaymentOrder, refund: Refund) -> None:
    """The refund failed after it succeeded: the exact reverse of its posting (the PSP holds the money again; the
    seller's payable and the platform's cut are restored) and the seller's wallet credited back what the refund
    debited (not held: money given back), both under ``refund:<id>:failed``. In the caller's transaction."""
    key = refund_failed_posting_key(refund.id)
    ledger_transaction_reverse(original_key=refund_posting_key(refund.id), idempotency_key=key, reference=refund.id,
                               description=f"Refund {refund.id} of payment order {order.id} failed at the PSP")
    taken = wallet_selectors.movement_amounts_by_key(keys=[refund_posting_key(refund.id)])
    if refund_posting_key(refund.id) in taken:  # nothing, when the seller's share was 0
        wallet_credit(owner_id=order.seller_id, currency=refund.currency, held=False, idempotency_key=key,
                      amount=-taken[refund_posting_key(refund.id)][1], reason=f"refund {refund.id} failed at the PSP")
