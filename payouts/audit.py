"""Money out's invariants, run by ``audit_money`` (``MONEY_AUDIT_EXTRA_CHECKS``)."""
from __future__ import annotations

from collections import defaultdict

from django.utils import timezone

from ledger import accounts
from ledger import selectors as ledger_selectors
from payouts.models import NegativeBalanceWriteOff, Payout, PayoutState
from wallet import selectors as wallet_selectors

OPEN = (PayoutState.PENDING, PayoutState.IN_TRANSIT, PayoutState.DEAD_LETTER)


def payouts_audit() -> list[str]:
    """One line per violated invariant of balances with holds and of payouts."""
    return held_credits_problems() + payout_posting_problems() + write_off_problems()


def held_credits_problems() -> list[str]:
    """The pending and reserved buckets are made of held wallet credits: each one still held must be the
    ledger posting of the same key crediting that seller's payable with that amount (a capture), so that
    the buckets split the ledger's payable and not money of their own."""
    held = wallet_selectors.wallet_held_movements(as_of=timezone.now())
    posted = ledger_selectors.entries_by_key(keys=[key for _, _, key, _ in held],
                                             code_prefix=accounts.SELLER_PAYABLE_PREFIX)
    problems = []
    for owner, currency, key, amount in held:
        expected = [(accounts.seller_payable(owner), currency, -amount)]
        if posted.get(key, []) != expected:
            found = ", ".join(f"{code} {-total} {cur}" for code, cur, total in posted.get(key, [])) or "none"
            problems.append(f"held wallet credit {key} of {owner} ({amount} {currency}) is not its ledger "
                            f"payable's credit (ledger: {found})")
    return problems


def payout_posting_problems() -> list[str]:
    """Every payout's money moved once: its ``created`` posting (and wallet debit) exactly once; ``paid``
    once if and only if it is paid; ``returned`` once if and only if it failed; and the payouts in transit
    account holds exactly the payouts still open."""
    payouts = list(Payout.objects.values_list("id", "state", "amount", "currency", "seller_id"))
    expected: dict[str, tuple[str, int]] = {}  # key -> (seller, payable change), for the postings that must be
    problems = []
    keys = [f"payout:{pid}:{what}" for pid, *_ in payouts for what in ("created", "paid", "returned")]
    counts = ledger_selectors.postings_count_by_key(keys=keys)
    for pid, state, amount, _currency, seller in payouts:
        wanted = {"created": 1, "paid": int(state == PayoutState.PAID), "returned": int(state == PayoutState.FAILED)}
        for what, n in wanted.items():
            got = counts.get(f"payout:{pid}:{what}", 0)
            if got != n:
                problems.append(f"{state} payout {pid} has {got} {what} postings, not {n}")
        expected[f"payout:{pid}:created"] = (seller, amount)
        if state == PayoutState.FAILED:
            expected[f"payout:{pid}:returned"] = (seller, -amount)
    payable = ledger_selectors.entries_by_key(keys=list(expected), code_prefix=accounts.SELLER_PAYABLE_PREFIX)
    moved = wallet_selectors.movement_amounts_by_key(keys=list(expected))
    for key, (seller, change) in expected.items():
        if key in payable and payable[key] != [(accounts.seller_payable(seller), payable[key][0][1], change)]:
            problems.append(f"{key} moved {payable[key]} on the seller's payable, not {change}")
        if moved.get(key) != (seller, -change):
            problems.append(f"{key} moved the wallet by {moved.get(key)}, not {(seller, -change)}")
    in_transit: dict[str, int] = defaultdict(int)
    for _pid, state, amount, currency, _seller in payouts:
        if state in OPEN:
            in_transit[currency] += amount
    booked = {cur: -total for (code, cur), total in ledger_selectors.balances_by_account(
        code_prefix=accounts.PAYOUTS_IN_TRANSIT).items() if code == accounts.PAYOUTS_IN_TRANSIT}
    for currency in sorted(set(in_transit) | set(booked)):
        if in_transit.get(currency, 0) != booked.get(currency, 0):
            problems.append(f"payouts in transit are {in_transit.get(currency, 0)} {currency} but the ledger's "
                            f"account holds {booked.get(currency, 0)}")
    return problems


def write_off_problems() -> list[str]:
    """Every negative balance written off moved its money once: its ledger posting (the seller's payable
    credited by its amount) and its wallet credit, under its key."""
    write_offs = list(NegativeBalanceWriteOff.objects.values_list("idempotency_key", "seller_id", "currency",
                                                                  "amount"))
    keys = [key for key, *_ in write_offs]
    counts = ledger_selectors.postings_count_by_key(keys=keys)
    payable = ledger_selectors.entries_by_key(keys=keys, code_prefix=accounts.SELLER_PAYABLE_PREFIX)
    moved = wallet_selectors.movement_amounts_by_key(keys=keys)
    problems = []
    for key, seller, currency, amount in write_offs:
        if counts.get(key, 0) != 1:
            problems.append(f"write-off {key} has {counts.get(key, 0)} postings, not 1")
        elif payable.get(key) != [(accounts.seller_payable(seller), currency, -amount)]:
            problems.append(f"write-off {key} moved {payable.get(key)} on the seller's payable, not {-amount}")
        if moved.get(key) != (seller, amount):
            problems.append(f"write-off {key} moved the wallet by {moved.get(key)}, not {(seller, amount)}")
    return problems
