"""The payout run: one payout per seller and currency whose available balance reaches ``PAYOUT_MINIMUM``,
and a report line for every seller holding money or owing it, saying what was done or why nothing was.

Set-based, a batch of sellers per transaction: their wallets locked (in id order) and what is available in
them read again under the lock, the payouts inserted (one per seller, currency and date: a unique constraint,
so a second run of the date, or two at once, adds none), their audit rows, one ledger posting per payout
under its own key (``payout:<id>:created``: ``Dr seller_payable / Cr payouts_in_transit``) and the wallet
debits under the same keys, each a statement for the whole batch; one message on commit sends the batch to
the PSP. A seller who owes (a refund or dispute after a payout) is netted off first: only what is available
net of the debt is paid out, and nothing while the net is at or below zero or under the minimum.
"""
from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core.ids import new_id
from ledger import accounts
from ledger.services import EntrySpec, PostingSpec, ledger_transactions_post
from payments.models import Seller
from payouts.models import PayoutRun, PayoutRunItem, PayoutState
from payouts.services.enqueue import enqueue_payouts
from payouts.services.execution import payout_posting_key
from wallet import selectors as wallet_selectors
from wallet.services import Debit, wallets_available_locked, wallets_debit

logger = logging.getLogger(__name__)
Outcome = PayoutRunItem.Outcome
_BATCH = 1000


def payout_minimum(currency: str) -> int:
    """The smallest payout, in ``currency``'s minor units (``PAYOUT_MINIMUMS`` per currency, else
    ``PAYOUT_MINIMUM``)."""
    return settings.PAYOUT_MINIMUMS.get(currency, settings.PAYOUT_MINIMUM)


def _by_balance(available: int, currency: str) -> str | None:
    """Why no payout is made of ``available``, or ``None``: one is."""
    if available < 0:  # a refund or dispute after a payout: what comes in next pays it back first
        return Outcome.NEGATIVE_BALANCE
    if available == 0:
        return Outcome.NOTHING_AVAILABLE
    if available < payout_minimum(currency):
        return Outcome.BELOW_MINIMUM
    return None


def payouts_run(*, payout_date: date, actor: str, reason: str = "", seller_ids: list[str] | None = None,
                progress: Callable[[int, int], None] | None = None, batch_size: int = _BATCH) -> PayoutRun:
    """Pay out every seller's (or the given sellers') available balance, one payout per seller, currency
    and ``payout_date``: running the same date again, or twice at once, makes no second payout. Each batch
    of sellers is one transaction; the payouts are sent to the PSP on its commit."""
    run = PayoutRun.objects.create(payout_date=payout_date, actor=actor[:100], reason=reason[:500])
    wallets = wallet_selectors.wallets_available(as_of=timezone.now(), owner_ids=seller_ids)
    counts: Counter[str] = Counter()
    for start in range(0, len(wallets), batch_size):
        batch = wallets[start:start + batch_size]
        counts.update(_run_batch(run=run, batch=batch, payout_date=payout_date, actor=actor))
        if progress:
            progress(start + len(batch), len(wallets))
    run.payouts_created = counts[Outcome.CREATED]
    run.skipped = sum(counts.values()) - run.payouts_created
    run.finished_at = timezone.now()
    run.save(update_fields=["payouts_created", "skipped", "finished_at"])
    logger.info("event=payouts_run run=%s date=%s %s", run.id, payout_date,
                " ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    return run


@dataclass(frozen=True)
class _NewPayout:
    id: str
    seller_id: str
    account_id: str
    currency: str
    amount: int


@transaction.atomic
def _run_batch(*, run: PayoutRun, batch: list[tuple[str, str, int]], payout_date: date, actor: str
               ) -> Counter[str]:
    owners = list({owner for owner, _, _ in batch})
    payout_accounts, suspended, unusable = {}, set(), set()
    with connection.cursor() as cur:  # the sellers' payout accounts and whether they may be paid, one statement
        cur.execute(_ACCOUNTS_SQL, [json.dumps(owners)])
        for seller, account, currency, status, account_unusable in cur.fetchall():
            payout_accounts[seller] = (account, currency)
            if status != Seller.Status.ACTIVE:
                suspended.add(seller)
            if account_unusable:
                unusable.add(seller)
    report: dict[tuple[str, str], tuple[str, int]] = {}  # (seller, currency) -> (outcome, available)
    candidates = []
    for owner, currency, available in batch:
        account = payout_accounts.get(owner)
        if account is None:
            outcome = Outcome.NO_PAYOUT_ACCOUNT
        elif owner in suspended:
            outcome = Outcome.SELLER_SUSPENDED
        elif owner in unusable:
            outcome = Outcome.PAYOUT_ACCOUNT_UNUSABLE
        elif account[1] != currency:
            outcome = Outcome.CURRENCY_NOT_SUPPORTED
        else:
            outcome = _by_balance(available, currency)
        report[owner, currency] = (outcome, available)
        if outcome is None:
            candidates.append((owner, currency))

    # Looked at again under the wallets' locks: a refund or a concurrent run cannot change them now.
    locked = wallets_available_locked(wallets=candidates, as_of=timezone.now())
    payouts = []
    for owner, currency in candidates:
        available = locked.get((owner, currency), 0)
        outcome = _by_balance(available, currency)
        report[owner, currency] = (outcome, available)
        if outcome is None:
            payouts.append(_NewPayout(id=new_id("pyt"), seller_id=owner, account_id=payout_accounts[owner][0],
                                      currency=currency, amount=available))
    created = _payouts_insert(payouts, payout_date=payout_date, actor=actor)
    made = [p for p in payouts if p.id in created]
    for payout in payouts:
        report[payout.seller_id, payout.currency] = (
            Outcome.CREATED if payout.id in created else Outcome.ALREADY_PAID_OUT, payout.amount)
    _payouts_book(made)
    enqueue_payouts([p.id for p in made])

    by_key = {(p.seller_id, p.currency): p.id for p in made}
    with connection.cursor() as cur:
        cur.execute(_RUN_ITEMS_SQL, {"run": run.id, "items": json.dumps([
            {"s": owner, "c": currency, "a": available, "o": outcome, "p": by_key.get((owner, currency))}
            for (owner, currency), (outcome, available) in report.items()])})
    return Counter(outcome for outcome, _ in report.values())


# The run's tables, a batch per statement; its rows are one JSON parameter (a client-side bound array is
# quoted element by element in Python). The payouts' accounts give their PSP ids; a seller, currency and date
# paid out already keeps its payout (the unique constraint) and gets no audit row.
_PAYOUTS_INSERT_SQL = """
WITH payout AS (
    INSERT INTO payouts_payout (id, seller_id, account_id, psp_account_id, psp_bank_account_id, amount, currency,
                                payout_date, state, psp_transfer_id, psp_payout_id, failure_code, failure_message,
                                attempts, psp_key_generation, next_action_at, created_at, updated_at)
    SELECT x.id, a.seller_id, a.id, a.psp_account_id, a.psp_bank_account_id, x.amount, x.currency, %(day)s,
           %(state)s, '', '', '', '', 0, 0, now() + make_interval(secs => %(lease)s), now(), now()
    FROM ROWS FROM (jsonb_to_recordset(%(payouts)s::jsonb) AS (id text, account text, amount bigint,
                                                                currency text))
         WITH ORDINALITY AS x(id, account, amount, currency, n)
    JOIN payouts_payoutaccount a ON a.id = x.account
    ORDER BY x.n
    ON CONFLICT (seller_id, currency, payout_date) DO NOTHING
    RETURNING id
), audit AS (
    INSERT INTO payouts_payouttransition (payout_id, from_state, to_state, actor, reason, created_at)
    SELECT id, '', %(state)s, %(actor)s, %(reason)s, now() FROM payout
)
SELECT array(SELECT id FROM payout)
"""
_ACCOUNTS_SQL = """
SELECT a.seller_id, a.id, a.currency, s.status, a.unusable_at IS NOT NULL
FROM payouts_payoutaccount a JOIN payments_seller s ON s.id = a.seller_id
WHERE a.seller_id IN (SELECT jsonb_array_elements_text(%s::jsonb))"""
_RUN_ITEMS_SQL = """
INSERT INTO payouts_payoutrunitem (run_id, seller_id, currency, available_amount, outcome, payout_id)
SELECT %(run)s, x.s, x.c, x.a, x.o, x.p
FROM ROWS FROM (jsonb_to_recordset(%(items)s::jsonb) AS (s text, c text, a bigint, o text, p text))
     WITH ORDINALITY AS x(s, c, a, o, p, n)
ORDER BY x.n
"""


def _payouts_insert(payouts: list[_NewPayout], *, payout_date: date, actor: str) -> set[str]:
    """Insert what it can of ``payouts`` with their audit rows. Returns the ids inserted."""
    if not payouts:
        return set()
    with connection.cursor() as cur:
        cur.execute(_PAYOUTS_INSERT_SQL, {
            "day": payout_date, "state": PayoutState.PENDING.value, "lease": float(settings.PAYMENT_STALL_SECONDS),
            "actor": actor[:100], "reason": f"payout run of {payout_date}",
            "payouts": json.dumps([{"id": p.id, "account": p.account_id, "amount": p.amount, "currency": p.currency}
                                   for p in payouts])})
        return set(cur.fetchone()[0])


def _payouts_book(payouts: list[_NewPayout]) -> None:
    """The new payouts' money: each its own ledger posting and wallet debit, under ``payout:<id>:created``,
    out of the seller's payable into payouts in transit."""
    if not payouts:
        return
    posted = ledger_transactions_post(postings=[PostingSpec(
        idempotency_key=payout_posting_key(p.id, "created"), reference=p.id,
        description=f"Payout {p.id} to seller {p.seller_id}",
        entries=[EntrySpec(accounts.seller_payable(p.seller_id), p.currency, p.amount),
                 EntrySpec(accounts.PAYOUTS_IN_TRANSIT, p.currency, -p.amount)]) for p in payouts])
    if len(posted) != len(payouts):  # new payouts, new keys: never expected
        raise RuntimeError(f"{len(posted)} of {len(payouts)} payouts' ledger postings made")
    debited = wallets_debit(debits=[Debit(owner_id=p.seller_id, currency=p.currency, amount=p.amount,
                                          idempotency_key=payout_posting_key(p.id, "created"),
                                          reason=f"payout {p.id}") for p in payouts])
    if debited != len(payouts):  # new payouts, new keys: never expected
        raise RuntimeError(f"{debited} of {len(payouts)} payouts' wallet debits made")
