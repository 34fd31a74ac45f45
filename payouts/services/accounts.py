"""Payout accounts: a seller's connected account and bank account at the PSP.

The PSP is never called inside a database transaction (house rule 5): ``payout_account_connect``
calls it, ``payout_account_save`` records what it said.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.db import db_connection_release
from core.exceptions import Conflict
from core.models import ApiClient
from payments import selectors as payment_selectors
from payments.models import Seller
from payments.psp.base import PSPError, PSPPermanentError
from payouts.exceptions import BankAccountRefused, PSPUnavailable, SellerNotFound, SellerSuspended
from payouts.models import PayoutAccount, PayoutAccountChange
from payouts.psp import get_payout_provider
from payouts.psp.base import BankAccount, ConnectedAccountRequest, PSPBankAccountRefused

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PayoutAccountOpened:
    """What the PSP made for a seller: the connected account and the bank account to pay out to."""

    seller_id: str
    psp_account: str
    bank: BankAccount


def _token_key(bank_token: str) -> str:
    """Part of the PSP idempotency key: the same token for the same seller is the same request."""
    return hashlib.sha256(bank_token.encode()).hexdigest()[:20]


def payout_account_connect(*, client: ApiClient, seller_id: str, bank_token: str, country: str,
                           email: str = "") -> PayoutAccountOpened:
    """Give a seller a payout destination at the PSP: a connected account paying out to the bank
    account behind ``bank_token`` (made by the PSP's own form: no account number reaches us), or,
    when the seller has one, that bank account added to it as the default for its currency.

    Idempotent at the PSP: its key derives from the seller (or its account) and the token, so a
    request sent again gets the same account. Call outside any transaction; then ``payout_account_save``.
    """
    seller = payment_selectors.seller_get(client=client, seller_id=seller_id)
    if seller is None:
        raise SellerNotFound(param="seller")
    if seller.status != Seller.Status.ACTIVE:
        raise SellerSuspended(param="seller")
    existing = PayoutAccount.objects.filter(seller=seller).first()
    db_connection_release()
    psp = get_payout_provider()
    try:
        if existing is None:
            account = psp.create_connected_account(ConnectedAccountRequest(
                idempotency_key=f"payout_account:{seller.id}:{_token_key(bank_token)}", seller_id=seller.id,
                country=country, bank_token=bank_token, email=email))
            return PayoutAccountOpened(seller_id=seller.id, psp_account=account.psp_reference,
                                       bank=account.bank_account)
        bank = psp.add_bank_account(psp_account=existing.psp_account_id, bank_token=bank_token,
                                    idempotency_key=f"bank_account:{existing.psp_account_id}:{_token_key(bank_token)}")
        return PayoutAccountOpened(seller_id=seller.id, psp_account=existing.psp_account_id, bank=bank)
    except PSPBankAccountRefused as exc:
        raise BankAccountRefused(f"The PSP refused the bank account: {exc}", param="external_account") from exc
    except PSPPermanentError as exc:
        raise BankAccountRefused(f"The PSP refused the payout account: {exc}", code=exc.code or "psp_refused",
                                 param=None) from exc
    except PSPError as exc:
        logger.warning("event=payout_account_psp_error seller=%s error=%s", seller.id, exc)
        raise PSPUnavailable() from exc


@transaction.atomic
def payout_account_save(*, opened: PayoutAccountOpened, actor: str, reason: str = "") -> tuple[PayoutAccount, bool]:
    """Record what the PSP made. Returns ``(account, created)``; the same answer again changes nothing.
    A bank account replaced is an audit row with the old and new ids; it makes the account usable again."""
    bank = opened.bank
    fields = {"psp_bank_account_id": bank.psp_reference, "bank_last4": bank.last4[-4:],
              "bank_name": bank.bank_name[:100], "bank_country": bank.country[:2], "currency": bank.currency,
              "unusable_at": None, "unusable_reason": ""}  # another bank account: usable until it fails too
    account = PayoutAccount.objects.select_for_update().filter(seller_id=opened.seller_id).first()
    if account is None:
        try:
            with transaction.atomic():
                account = PayoutAccount.objects.create(seller_id=opened.seller_id, psp_account_id=opened.psp_account,
                                                       **fields)
        except IntegrityError:
            raise Conflict("Another request opened this seller's payout account at the same moment; send this "
                           "one again to replace its bank account.", code="payout_account_changed") from None
        PayoutAccountChange.objects.create(account=account, to_bank_account=bank.psp_reference,
                                           to_last4=bank.last4[-4:], actor=actor[:100],
                                           reason=(reason or "payout account opened")[:500])
        logger.info("event=payout_account_opened seller=%s account=%s", opened.seller_id, opened.psp_account)
        return account, True
    if account.psp_account_id != opened.psp_account:
        raise Conflict("Another request opened this seller's payout account at the same moment; send this one "
                       "again to replace its bank account.", code="payout_account_changed")
    if account.psp_bank_account_id == bank.psp_reference:
        return account, False
    PayoutAccountChange.objects.create(account=account, from_bank_account=account.psp_bank_account_id,
                                       to_bank_account=bank.psp_reference, to_last4=bank.last4[-4:],
                                       actor=actor[:100], reason=(reason or "bank account replaced")[:500])
    for name, value in fields.items():
        setattr(account, name, value)
    account.save(update_fields=[*fields, "updated_at"])
    logger.info("event=payout_account_bank_replaced seller=%s account=%s", opened.seller_id, opened.psp_account)
    return account, False


# Stripe's payout failure codes that say the bank account itself will not take money: sent again, the payout
# would fail again. Others (insufficient_funds, could_not_process...) may pass next time.
UNUSABLE_BANK_CODES = frozenset({"account_closed", "account_frozen", "bank_account_restricted", "no_account",
                                 "invalid_account_number", "bank_ownership_changed", "invalid_currency"})


def payout_account_mark_unusable(*, payout_id: str, account_id: str, psp_bank_account_id: str, code: str,
                                 actor: str) -> bool:
    """After a payout to ``psp_bank_account_id`` failed with ``code``: the account takes no payout until the
    seller gives another bank account (the run reports ``payout_account_unusable``; the money stays available).
    Only if it still pays to that bank account and the code says the account is unusable; an audit row.
    Call inside the failing payout's transaction. Returns whether it was marked now."""
    if code not in UNUSABLE_BANK_CODES:
        return False
    account = (PayoutAccount.objects.select_for_update()
               .filter(pk=account_id, psp_bank_account_id=psp_bank_account_id, unusable_at__isnull=True).first())
    if account is None:
        return False
    account.unusable_at = timezone.now()
    account.unusable_reason = f"payout {payout_id} failed: {code}"[:200]
    account.save(update_fields=["unusable_at", "unusable_reason", "updated_at"])
    PayoutAccountChange.objects.create(account=account, from_bank_account=psp_bank_account_id,
                                       to_bank_account=psp_bank_account_id, to_last4=account.bank_last4,
                                       actor=actor[:100], reason=f"unusable: {account.unusable_reason}"[:500])
    logger.warning("event=payout_account_unusable account=%s bank_account=%s code=%s", account.id,
                   psp_bank_account_id, code)
    return True
