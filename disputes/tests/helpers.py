"""Shared steps of the dispute tests: a captured order with its capture posted, and reports of a dispute."""
from __future__ import annotations

from disputes.models import DisputeSource, DisputeState
from disputes.psp import DisputeReport
from ledger import accounts
from ledger import selectors as ledger_selectors
from payments.models import PaymentOrderState
from payments.services.postings import capture_post
from payments.tests.factories import PaymentOrderFactory
from wallet import selectors as wallet_selectors


def captured_order(amount: int = 10_000, currency: str = "usd", psp_reference: str = "pi_test_1", **kwargs):
    order = PaymentOrderFactory(state=PaymentOrderState.SUCCEEDED, amount=amount, currency=currency,
                                psp_reference=psp_reference, attempts=1, **kwargs)
    capture_post(order)
    return order


def report(psp_dispute_id: str = "dp_1", *, amount: int = 10_000, currency: str = "usd",
           state: DisputeState = DisputeState.NEEDS_RESPONSE, source: DisputeSource = DisputeSource.WEBHOOK,
           psp_payment_reference: str = "pi_test_1", fee: int = 1500, **kwargs) -> DisputeReport:
    return DisputeReport(psp_dispute_id=psp_dispute_id, amount=amount, currency=currency, state=state,
                         source=source, psp_payment_reference=psp_payment_reference, fee=fee,
                         fee_currency=currency if fee else "", psp_status=str(state), **kwargs)


def payable(seller_id: str, currency: str = "usd") -> int:
    """What we owe the seller per the ledger (credit balance, positive)."""
    return -ledger_selectors.account_balance(code=accounts.seller_payable(seller_id), currency=currency)


def receivable(currency: str = "usd") -> int:
    return ledger_selectors.account_balance(code=accounts.PSP_RECEIVABLE, currency=currency)


def wallet(seller_id: str, currency: str = "usd") -> int:
    return wallet_selectors.wallet_balance(owner_id=seller_id, currency=currency)
