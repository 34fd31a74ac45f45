"""Money out's invariants, run by ``audit_money`` (``MONEY_AUDIT_EXTRA_CHECKS``)."""
from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, time, timedelta

from django.utils import timezone

from ledger import accounts
from ledger import selectors as ledger_selectors
from payouts import selectors as payout_selectors
from payouts.models import NegativeBalanceWriteOff, Payout, PayoutState
from reconciliation import selectors as reconciliation_selectors
from reconciliation.record_types import RecordType
from wallet import selectors as wallet_selectors

OPEN = (PayoutState.PENDING, PayoutState.IN_TRANSIT, PayoutState.DEAD_LETTER)


def payouts_audit() -> list[str]:
    """One line per violated invariant of balances with holds and of payouts."""
    return held_credits_problems() + payout_posting_problems() + write_off_problems() + payout_settlement_problems()


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
    once if and only if it is paid or was paid before the bank sent it back (``returned_at``), and then
    ``bank_returned`` once; ``returned`` once if and only if it failed; and the payouts in transit account
    holds exactly the payouts still open."""
    rows = Payout.objects.values_list("id", "state", "amount", "currency", "seller_id", "returned_at")
    payouts = [row[:5] for row in rows]
    returned = {row[0] for row in rows if row[5] is not None}  # paid, then sent back by the bank
    expected: dict[str, tuple[str, int]] = {}  # key -> (seller, payable change), for the postings that must be
    problems = []
    keys = [f"payout:{pid}:{what}" for pid, *_ in payouts for what in ("created", "paid", "bank_returned", "returned")]
    counts = ledger_selectors.postings_count_by_key(keys=keys)
    for pid, state, amount, _currency, seller in payouts:
        back = pid in returned and state == PayoutState.FAILED
        wanted = {"created": 1, "paid": int(state == PayoutState.PAID or back), "bank_returned": int(back),
                  "returned": int(state == PayoutState.FAILED)}
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


#: What the PSP's reports show of one payout: its transfer, its payout to the bank and (once) that payout's failure.
_ONE_LINE_EACH = (RecordType.TRANSFER, RecordType.SELLER_PAYOUT, RecordType.SELLER_PAYOUT_FAILURE)


def payout_settlement_problems() -> list[str]:
    """Paid payouts = the PSP's settled lines, after reconcile: every payout paid on or before the last reconciled
    day has its transfer line and its payout line matched; no payout has two lines matched for one movement (a
    transfer, a payout, a failure) nor more reversed than it transferred; every matched line names a payout of
    ours and carries its amount. In batches: a few statements per 5,000 payouts."""
    problems = []
    for payout_ids in reconciliation_selectors.payout_ids_matched():
        payouts = payout_selectors.payout_amounts(payout_ids=payout_ids)
        matched = reconciliation_selectors.payout_lines_matched(payout_ids=payout_ids)
        for payout_id in payout_ids:
            problems += _matched_lines_problems(payout_id, payouts.get(payout_id), matched.get(payout_id, []))
    last_day = reconciliation_selectors.last_reconciled_day()
    if last_day is None:
        return problems
    end = datetime.combine(last_day + timedelta(days=1), time.min, tzinfo=UTC)
    unsettled = list(payout_selectors.payouts_paid_between(
        since=None, before=end, settled=reconciliation_selectors.payout_settled_subquery()))
    matched = reconciliation_selectors.payout_lines_matched(payout_ids=[p.id for p in unsettled])
    for payout in unsettled:
        kinds = {t for t, _, _ in matched.get(payout.id, [])}
        lacking = [t for t in (RecordType.TRANSFER, RecordType.SELLER_PAYOUT) if t not in kinds]
        problems.append(f"paid payout {payout.id} (paid on or before {last_day}, the last day reconciled) has no "
                        f"{' and no '.join(lacking)} line matched")
    return problems


def _matched_lines_problems(payout_id: str, payout: tuple[str, int] | None, lines: list[tuple[str, int, int]]
                            ) -> list[str]:
    if payout is None:
        return [f"settlement lines {[line for _, line, _ in lines]} are matched to payout {payout_id}, which does "
                f"not exist"]
    state, amount = payout
    problems = []
    for record_type, n in Counter(t for t, _, _ in lines).items():
        if n > 1 and record_type in _ONE_LINE_EACH:
            problems.append(f"payout {payout_id} has {n} {record_type} lines matched, not one")
    for record_type, line, moved in lines:
        if record_type in _ONE_LINE_EACH and moved != amount:
            problems.append(f"{record_type} line {line} of {moved} is matched to payout {payout_id} of {amount}")
    reversed_ = sum(moved for t, _, moved in lines if t == RecordType.TRANSFER_REVERSAL)
    if reversed_ > amount or (reversed_ and state != PayoutState.FAILED):
        problems.append(f"{state} payout {payout_id} of {amount} has {reversed_} of its transfer reversed")
    return problems
