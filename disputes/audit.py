"""Disputes' invariants, run by ``audit_money`` (``MONEY_AUDIT_EXTRA_CHECKS``): every dispute's money moved
once and agrees with its state."""
from __future__ import annotations

from ledger import accounts
from ledger import selectors as ledger_selectors
from wallet import selectors as wallet_selectors

from . import postings
from .models import Dispute, DisputeState

KEY_PREFIX = "dispute:"


def disputes_audit() -> list[str]:
    """One line per violated invariant. For each dispute: its ``withdrawn`` posting exactly once if it was
    booked (none if it is kept with a problem), ``reinstated`` exactly once if and only if it is won and was
    booked; each posting moving the seller's payable and wallet by the seller's share; no ``dispute:``
    posting of a dispute we do not have."""
    disputes = list(Dispute.objects.all())
    problems: list[str] = []
    expected: dict[str, tuple[str, dict[str, int]]] = {}  # posting key -> (seller, payable change per currency)
    for d in disputes:
        share = postings.seller_share(d)
        if d.booked:
            expected[postings.withdrawn_key(d.id)] = (d.seller_id, share)
        if d.booked and d.state == DisputeState.WON:
            expected[postings.reinstated_key(d.id)] = (d.seller_id, {c: -a for c, a in share.items()})
    keys = [k for d in disputes for k in (postings.withdrawn_key(d.id), postings.reinstated_key(d.id))]
    counts = ledger_selectors.postings_count_by_key(keys=keys)
    for d in disputes:
        for key in (postings.withdrawn_key(d.id), postings.reinstated_key(d.id)):
            want, got = int(key in expected), counts.get(key, 0)
            if got != want:
                problems.append(f"{d.state} dispute {d.id}{' (' + d.problem + ')' if d.problem else ''} has {got} "
                                f"{key.rsplit(':', 1)[1]} postings, not {want}")
        if (d.reinstated_at is not None) != (d.booked and d.state == DisputeState.WON):
            problems.append(f"{d.state} dispute {d.id} is marked reinstated={d.reinstated_at is not None}")
    payable = ledger_selectors.entries_by_key(keys=list(expected), code_prefix=accounts.SELLER_PAYABLE_PREFIX)
    by_dispute = {d.id: d for d in disputes}
    wallet_keys = []
    for key, (_seller, change) in expected.items():
        dispute = by_dispute[key.split(":")[1]]
        wallet_keys += [postings.wallet_key(key, currency, dispute) for currency in change]
    moved = wallet_selectors.movement_amounts_by_key(keys=wallet_keys)
    for key, (seller, change) in expected.items():
        if key not in counts:
            continue  # reported above
        dispute = by_dispute[key.split(":")[1]]
        want = sorted((accounts.seller_payable(seller), currency, amount) for currency, amount in change.items())
        if sorted(payable.get(key, [])) != want:
            problems.append(f"{key} moved {payable.get(key, [])} on the seller's payable, not {want}")
        for currency, amount in change.items():
            wkey = postings.wallet_key(key, currency, dispute)
            if moved.get(wkey) != (seller, -amount):
                problems.append(f"{wkey} moved the wallet by {moved.get(wkey)}, not {(seller, -amount)}")
    strays = [k for k in ledger_selectors.posting_keys_with_prefix(prefix=KEY_PREFIX) if k not in set(keys)]
    problems += [f"posting {key} belongs to no dispute of ours" for key in sorted(strays)]
    return problems
