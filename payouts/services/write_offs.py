"""Negative balances written off: what a seller owes the platform (a refund or a lost dispute after its money
was paid out, not netted off by what came in since) taken as the platform's loss.

``Dr expenses:seller_losses / Cr liabilities:seller_payable:<seller>`` back to zero and the wallet credited
(available at once, so the debt is gone), with the audit row, in one transaction under the wallet's lock;
once per negative episode: the key names the movement that took the balance below zero, so a second write-off
of the same episode (twice, at once, by the task and an operator) posts nothing.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ledger import accounts
from ledger.services import EntrySpec, ledger_transaction_post
from payouts.models import NegativeBalanceWriteOff
from wallet import selectors as wallet_selectors
from wallet.services import wallet_credit, wallet_negative_locked

logger = logging.getLogger(__name__)
WRITE_OFF_KEY_PREFIX = "write_off:"


def write_off_posting_key(*, seller_id: str, currency: str, episode_movement_id: int) -> str:
    """``write_off:<seller>:<currency>:<movement>``: the ledger's, the wallet's and the audit row's key."""
    return f"{WRITE_OFF_KEY_PREFIX}{seller_id}:{currency}:{episode_movement_id}"


@transaction.atomic
def negative_balance_write_off(*, seller_id: str, currency: str, actor: str, reason: str,
                               negative_before: datetime | None = None) -> NegativeBalanceWriteOff | None:
    """Write off the seller's negative balance in ``currency`` (only if it has been negative since before
    ``negative_before``, when given). Returns the write-off, or ``None`` when the balance is not below zero
    (nothing owed, or already written off)."""
    episode = wallet_negative_locked(owner_id=seller_id, currency=currency)
    if episode is None or (negative_before is not None and episode.since >= negative_before):
        return None
    key = write_off_posting_key(seller_id=seller_id, currency=episode.currency,
                                episode_movement_id=episode.movement_id)
    existing = NegativeBalanceWriteOff.objects.filter(idempotency_key=key).first()
    if existing is not None:  # its credit ended the episode: only a wallet out of step with it gets here
        logger.error("event=write_off_repeated key=%s owed=%s", key, episode.owed)
        return existing
    write_off = NegativeBalanceWriteOff.objects.create(
        seller_id=seller_id, currency=episode.currency, amount=episode.owed, negative_since=episode.since,
        episode_movement_id=episode.movement_id, idempotency_key=key, actor=actor[:100], reason=reason[:500])
    ledger_transaction_post(
        idempotency_key=key, reference=write_off.id,
        description=f"Negative balance of seller {seller_id} written off ({write_off.id}): {reason}"[:500],
        entries=[EntrySpec(accounts.SELLER_LOSSES, episode.currency, episode.owed),
                 EntrySpec(accounts.seller_payable(seller_id), episode.currency, -episode.owed)])
    wallet_credit(owner_id=seller_id, currency=episode.currency, amount=episode.owed, idempotency_key=key,
                  reason=f"negative balance written off ({write_off.id})", held=False)
    logger.warning("event=negative_balance_written_off write_off=%s seller=%s currency=%s amount=%s actor=%s",
                   write_off.id, seller_id, episode.currency, episode.owed, actor)
    return write_off


def negative_balances_write_off_due(*, now: datetime | None = None, actor: str = "task:write_off_negative_balances"
                                    ) -> list[NegativeBalanceWriteOff]:
    """Write off every balance negative for longer than ``NEGATIVE_BALANCE_WRITE_OFF_DAYS`` (nothing when
    unset), each in its own transaction. Idempotent: a balance written off is no longer negative."""
    days = settings.NEGATIVE_BALANCE_WRITE_OFF_DAYS
    if days is None:
        return []
    cutoff = (now or timezone.now()) - timedelta(days=days)
    written = []
    for owner, currency, _balance, _since in wallet_selectors.wallets_negative(since_before=cutoff):
        write_off = negative_balance_write_off(
            seller_id=owner, currency=currency, actor=actor, negative_before=cutoff,
            reason=f"negative for more than {days:g} days (NEGATIVE_BALANCE_WRITE_OFF_DAYS)")
        if write_off is not None:
            written.append(write_off)
    return written
