"""The payout run: one payout per seller and currency whose available balance reaches ``PAYOUT_MINIMUM``,
and a report line for every seller holding money, saying what was done or why nothing was."""
from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import date

from django.conf import settings
from django.utils import timezone

from payments.models import Seller
from payouts.models import PayoutAccount, PayoutRun, PayoutRunItem
from payouts.services.execution import payout_create
from wallet import selectors as wallet_selectors

logger = logging.getLogger(__name__)
Outcome = PayoutRunItem.Outcome
_BATCH = 1000


def payout_minimum(currency: str) -> int:
    """The smallest payout, in ``currency``'s minor units (``PAYOUT_MINIMUMS`` per currency, else
    ``PAYOUT_MINIMUM``)."""
    return settings.PAYOUT_MINIMUMS.get(currency, settings.PAYOUT_MINIMUM)


def payouts_run(*, payout_date: date, actor: str, reason: str = "", seller_ids: list[str] | None = None,
                progress: Callable[[int, int], None] | None = None) -> PayoutRun:
    """Pay out every seller's (or the given sellers') available balance, one payout per seller, currency
    and ``payout_date``: running the same date again, or twice at once, makes no second payout. Each
    payout is created with its money in its own transaction and sent to the PSP on commit."""
    run = PayoutRun.objects.create(payout_date=payout_date, actor=actor[:100], reason=reason[:500])
    wallets = wallet_selectors.wallets_available(as_of=timezone.now(), owner_ids=seller_ids)
    counts: Counter[str] = Counter()
    for start in range(0, len(wallets), _BATCH):
        batch = wallets[start:start + _BATCH]
        owners = {owner for owner, _, _ in batch}
        payout_accounts = {a.seller_id: a for a in PayoutAccount.objects.filter(seller_id__in=owners)}
        suspended = set(Seller.objects.filter(pk__in=owners).exclude(status=Seller.Status.ACTIVE)
                        .values_list("pk", flat=True))
        items = []
        for owner, currency, available in batch:
            account = payout_accounts.get(owner)
            payout = None
            if account is None:
                outcome = Outcome.NO_PAYOUT_ACCOUNT
            elif owner in suspended:
                outcome = Outcome.SELLER_SUSPENDED
            elif account.currency != currency:
                outcome = Outcome.CURRENCY_NOT_SUPPORTED
            elif available < 0:  # a refund or dispute after a payout: what comes in next pays it back first
                outcome = Outcome.NEGATIVE_BALANCE
            elif available == 0:
                outcome = Outcome.NOTHING_AVAILABLE
            elif available < payout_minimum(currency):
                outcome = Outcome.BELOW_MINIMUM
            else:  # looked at again under the wallet's lock
                outcome, payout, available = payout_create(account=account, currency=currency,
                                                           payout_date=payout_date, actor=actor,
                                                           minimum=payout_minimum(currency))
            counts[outcome] += 1
            items.append(PayoutRunItem(run=run, seller_id=owner, currency=currency, available_amount=available,
                                       outcome=outcome, payout=payout))
        PayoutRunItem.objects.bulk_create(items)
        if progress:
            progress(start + len(batch), len(wallets))
    run.payouts_created = counts[Outcome.CREATED]
    run.skipped = sum(counts.values()) - run.payouts_created
    run.finished_at = timezone.now()
    run.save(update_fields=["payouts_created", "skipped", "finished_at"])
    logger.info("event=payouts_run run=%s date=%s %s", run.id, payout_date,
                " ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    return run
