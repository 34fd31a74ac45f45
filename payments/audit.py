"""The money invariants of MISSION.md, checked against the database."""
from __future__ import annotations

from django.conf import settings
from django.db import connection, transaction
from django.utils.module_loading import import_string

from ledger import accounts
from ledger import selectors as ledger_selectors
from payments import selectors as payment_selectors
from payments.services.postings import (
    CAPTURE_KEY_PREFIX,
    CAPTURE_KEY_SUFFIX,
    REFUND_FAILED_KEY_SUFFIX,
    REFUND_KEY_PREFIX,
    capture_posting_key,
    refund_failed_posting_key,
    refund_posting_key,
)
from wallet import selectors as wallet_selectors


def money_audit() -> list[str]:
    """Return one line per violated invariant; an empty list means the books are sound. Every check reads one
    snapshot (a REPEATABLE READ transaction of its own, unless called inside one), so the audit holds while
    money moves: each capture writes its ledger posting and its wallet credit in one transaction."""
    if connection.in_atomic_block:
        return _money_audit()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        return _money_audit()


def _money_audit() -> list[str]:
    violations: list[str] = []

    for currency, total in sorted(ledger_selectors.trial_balance().items()):
        if total != 0:
            violations.append(f"trial balance is {total} {currency}, not zero")
    for transaction_id, currency, total in ledger_selectors.unbalanced_transactions():
        violations.append(f"ledger transaction {transaction_id} does not balance in {currency}: {total}")

    payables = {
        (code.removeprefix(accounts.SELLER_PAYABLE_PREFIX), currency): -total
        for (code, currency), total in ledger_selectors.balances_by_account(
            code_prefix=accounts.SELLER_PAYABLE_PREFIX).items()
    }
    wallets = wallet_selectors.wallet_balances()
    recomputed = wallet_selectors.wallet_movement_sums()
    for owner, currency in sorted(set(payables) | set(wallets)):
        wallet = wallets.get((owner, currency), 0)
        payable = payables.get((owner, currency), 0)
        if wallet != payable:
            violations.append(f"wallet {owner} {currency} is {wallet} but its ledger payable is {payable}")
        if wallet != recomputed.get((owner, currency), 0):
            violations.append(f"wallet {owner} {currency} is {wallet} but its movements sum to "
                              f"{recomputed.get((owner, currency), 0)}")

    succeeded = payment_selectors.succeeded_order_ids()
    keys = [capture_posting_key(order_id) for order_id in succeeded]
    counts = ledger_selectors.postings_count_by_key(keys=keys)
    for order_id, key in zip(succeeded, keys, strict=True):
        if counts.get(key, 0) != 1:
            violations.append(f"succeeded order {order_id} has {counts.get(key, 0)} capture postings, not 1")
    posted = set(ledger_selectors.posting_keys_with_prefix(prefix=CAPTURE_KEY_PREFIX, suffix=CAPTURE_KEY_SUFFIX))
    for key in sorted(posted - set(keys)):
        violations.append(f"capture posting {key} belongs to no succeeded order")
    refunded = payment_selectors.succeeded_refund_ids()
    refund_keys = [refund_posting_key(refund_id) for refund_id in refunded]
    refund_counts = ledger_selectors.postings_count_by_key(keys=refund_keys)
    for refund_id, key in zip(refunded, refund_keys, strict=True):
        if refund_counts.get(key, 0) != 1:
            violations.append(f"succeeded refund {refund_id} has {refund_counts.get(key, 0)} postings, not 1")
    violations += _refund_failures_audit()
    for order_id, amount, refunded_amount in payment_selectors.orders_with_refunds_above_capture():
        violations.append(f"order {order_id} has {refunded_amount} refunded of {amount} captured")
    for check in settings.MONEY_AUDIT_EXTRA_CHECKS:  # other apps' invariants (payouts), named by setting
        violations += import_string(check)()
    return violations


def _refund_failures_audit() -> list[str]:
    """A refund that failed after it succeeded has its posting and exactly one reversal of it; no other refund
    has a reversal. (Its wallet credit is checked with every wallet against its payable above.)"""
    violations = []
    reversed_ids = payment_selectors.reversed_refund_ids()
    keys = [key for refund_id in reversed_ids for key in (refund_posting_key(refund_id),
                                                          refund_failed_posting_key(refund_id))]
    counts = ledger_selectors.postings_count_by_key(keys=keys)
    for refund_id in reversed_ids:
        posted = (counts.get(refund_posting_key(refund_id), 0), counts.get(refund_failed_posting_key(refund_id), 0))
        if posted != (1, 1):
            violations.append(f"refund {refund_id} failed after it succeeded has {posted[0]} postings and "
                              f"{posted[1]} reversals, not 1 and 1")
    expected = {refund_failed_posting_key(refund_id) for refund_id in reversed_ids}
    reversals = ledger_selectors.posting_keys_with_prefix(prefix=REFUND_KEY_PREFIX, suffix=REFUND_FAILED_KEY_SUFFIX)
    for key in sorted(set(reversals) - expected):
        violations.append(f"refund reversal {key} belongs to no refund that failed after it succeeded")
    return violations
