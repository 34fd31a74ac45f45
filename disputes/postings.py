"""A dispute's money: what its opening and its win write to the ledger and the seller's wallet, and the keys
they are posted under (``audit_money`` checks by these). Each runs inside its caller's transaction, under the
dispute's row lock.

Opening (``dispute:<id>:withdrawn``): the PSP took the disputed amount and its fee from our balance, so
``assets:psp_receivable`` is credited by both; the seller's payable is debited by the amount, and by the fee
when the seller bears it (else ``expenses:dispute_fees``); the seller's wallet is debited the same, and may go
negative. Won (``dispute:<id>:reinstated``): the exact reverse, as a new posting and wallet credits (not held:
money given back). Lost: nothing more moves.
"""
from __future__ import annotations

from collections import defaultdict

from ledger import accounts
from ledger.services import EntrySpec, ledger_transaction_post, ledger_transaction_reverse
from wallet.services import wallet_credit, wallet_debit

from .models import Dispute, FeePayer


def withdrawn_key(dispute_id: str) -> str:
    return f"dispute:{dispute_id}:withdrawn"


def reinstated_key(dispute_id: str) -> str:
    return f"dispute:{dispute_id}:reinstated"


def wallet_key(posting_key: str, currency: str, dispute: Dispute) -> str:
    """One wallet movement per posting and currency: the posting's key for the dispute's currency, with the
    currency appended for a fee charged in another."""
    return posting_key if currency == dispute.currency else f"{posting_key}:{currency}"


def seller_share(dispute: Dispute) -> dict[str, int]:
    """What the seller gives up, per currency (positive): the amount, and the fee if it bears it."""
    share: dict[str, int] = defaultdict(int)
    share[dispute.currency] += dispute.amount
    if dispute.fee and dispute.fee_payer == FeePayer.SELLER:
        share[dispute.fee_currency] += dispute.fee
    return dict(share)


def withdrawn_entries(dispute: Dispute) -> list[EntrySpec]:
    totals: dict[tuple[str, str], int] = defaultdict(int)
    payable = accounts.seller_payable(dispute.seller_id)
    totals[(accounts.PSP_RECEIVABLE, dispute.currency)] -= dispute.amount
    totals[(payable, dispute.currency)] += dispute.amount
    if dispute.fee:
        totals[(accounts.PSP_RECEIVABLE, dispute.fee_currency)] -= dispute.fee
        bearer = payable if dispute.fee_payer == FeePayer.SELLER else accounts.DISPUTE_FEES
        totals[(bearer, dispute.fee_currency)] += dispute.fee
    return [EntrySpec(code, currency, amount) for (code, currency), amount in sorted(totals.items()) if amount]


def withdrawn_post(dispute: Dispute) -> None:
    """The dispute opened: its amount (and fee) out of our PSP balance and the seller's payable and wallet."""
    key = withdrawn_key(dispute.id)
    ledger_transaction_post(idempotency_key=key, reference=dispute.id, entries=withdrawn_entries(dispute),
                            description=f"Dispute {dispute.psp_dispute_id} on payment order {dispute.payment_order_id}")
    for currency, amount in seller_share(dispute).items():
        wallet_debit(owner_id=dispute.seller_id, currency=currency, amount=amount,
                     idempotency_key=wallet_key(key, currency, dispute),
                     reason=f"dispute {dispute.id} on {dispute.payment_order_id}")


def reinstated_post(dispute: Dispute) -> None:
    """The dispute won: the opening's exact reverse, and the seller's wallet credited back."""
    key = reinstated_key(dispute.id)
    ledger_transaction_reverse(original_key=withdrawn_key(dispute.id), idempotency_key=key,
                               description=f"Dispute {dispute.psp_dispute_id} won: its money back",
                               reference=dispute.id)
    for currency, amount in seller_share(dispute).items():
        wallet_credit(owner_id=dispute.seller_id, currency=currency, amount=amount, held=False,
                      idempotency_key=wallet_key(key, currency, dispute), reason=f"dispute {dispute.id} won")
