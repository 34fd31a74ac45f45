"""Money out: the platform's transfers to connected accounts and the connected accounts' payouts, against our
payouts (read through ``payouts.selectors``, never its tables).

With Stripe Connect a seller's payout is two movements at the PSP: our transfer from the platform's balance to
the seller's connected account (a ``transfer`` line of the platform's report, netted off the PSP's payout to
our bank; a ``transfer_reversal`` when we take it back), and the connected account's payout to the seller's
bank (a ``seller_payout`` line of the connected accounts' payouts report; ``seller_payout_failure`` when the
bank sent it back). Neither passes through our bank, so these reports are the PSP's word on them.

Each open line of those types (new, or left a break by an earlier run) is matched to the payout it names
(``kind = 'seller_payout'``, the payout's id): a transfer by its ``tr_...`` id, a seller payout by its
``po_...`` id, else by our payout id in the object's metadata (a reversal has only that). Breaks:

- ``missing_in_books``: no payout of ours has it; or a transfer reversal of a payout not failed in our books.
- ``currency_mismatch`` / ``amount_mismatch``: another currency or amount than the payout's (reversals: more
  reversed in all than was transferred).
- ``duplicate``: a second transfer or payout for one payout (another PSP object, or the same role matched
  already by another line).
- ``payout_failed_at_psp``: the report shows failed a payout our books do not have failed.

After the run's matches are written, ``paid_payouts_unsettled_find``: a payout paid (``completed_at``) within
the lookback and before the cut-off that has no matched transfer line or no matched seller-payout line is a
``missing_in_settlement`` break keyed by the payout (``object_kind = 'payout'``); cleared (``settled_later``)
once both are matched, or ``cleared`` when it is no longer observed (the payout no longer paid, or past the
lookback).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.db.backends.utils import CursorWrapper
from django.db.models import Count, OuterRef, QuerySet

from payouts import selectors as payout_selectors
from reconciliation.models import (
    SELLER_PAYOUT_MATCH,
    Break,
    BreakClass,
    BreakResolution,
    BreakState,
    MatchState,
    Resolution,
    SettlementMatch,
)
from reconciliation.record_types import MONEY_OUT_LINES, RecordType, sql_list

from .history import open_lines_of
from .outcomes import Outcome, outcomes_add
from .rules import money_difference
from .scope import SYSTEM_ACTOR, RunScope

#: ``SettlementMatch.kind`` of a money-out line; its ``object_id`` is our payout's id.
KIND = SELLER_PAYOUT_MATCH
#: The roles a payout has at most one matched line of (a reversal may come in parts).
ONE_PER_PAYOUT = (RecordType.TRANSFER, RecordType.SELLER_PAYOUT, RecordType.SELLER_PAYOUT_FAILURE)
#: The lines that take the money out of the balance they are reported on (negative: their amount is minus the net).
TAKEN_OUT = (RecordType.TRANSFER, RecordType.SELLER_PAYOUT)
#: The lines a paid payout needs matched, past the cut-off.
SETTLED_BY = (RecordType.TRANSFER, RecordType.SELLER_PAYOUT)
_WHAT = {RecordType.TRANSFER: "transfer", RecordType.TRANSFER_REVERSAL: "transfer reversal",
         RecordType.SELLER_PAYOUT: "payout", RecordType.SELLER_PAYOUT_FAILURE: "payout failure"}


@dataclass(frozen=True)
class MoneyOutLine:
    """A transfer or seller-payout line. ``amount``: what moved, positive (the line's net, sign turned for
    the lines that take money out of the balance they are reported on)."""

    line_id: int
    record_type: RecordType
    source_reference: str
    merchant_reference: str
    payout_reference: str
    currency: str
    amount: int

    @property
    def psp_object(self) -> str:
        """The PSP's object the line is: ``tr_...``, ``trr_...`` or ``po_...``."""
        return self.source_reference or self.payout_reference


_BATCH = 5000


def money_out_lines_decide(cursor: CursorWrapper, scope: RunScope) -> int:
    """An outcome for every open transfer and seller-payout line, in batches (each payout looked up by its names,
    with the lines matched to it before). Returns how many."""
    cursor.execute(f"""
SELECT line.id, line.record_type, line.source_reference, line.merchant_reference, line.payout_reference,
       line.currency, line.net
FROM {open_lines_of(MONEY_OUT_LINES)} line WHERE line.record_type IN ({sql_list(MONEY_OUT_LINES)})
ORDER BY line.file_id, line.ordinal""", scope.params)
    decided = 0
    matched_now: dict[str, list[tuple[str, str, int]]] = defaultdict(list)  # this run's matches, per payout
    while rows := cursor.fetchmany(_BATCH):
        lines = []
        for line_id, record_type, source, merchant, payout_ref, currency, net in rows:
            kind = RecordType(record_type)
            lines.append(MoneyOutLine(line_id, kind, source, merchant, payout_ref, currency,
                                      -(net or 0) if kind in TAKEN_OUT else (net or 0)))
        payouts = payout_selectors.payouts_for_settlement(
            psp_references=[r for line in lines for r in (line.source_reference, line.payout_reference)],
            payout_ids=[line.merchant_reference for line in lines])
        # Lines decided now have no matched row yet (new, or a break decided again): earlier runs' matches only.
        earlier = _matched_before(payout_ids={p.id for p in payouts.values()})
        outcomes = []
        for line in lines:
            payout = _payout_of(line, payouts)
            seen = earlier[payout.id] + matched_now[payout.id] if payout else []
            outcome = money_out_line_outcome(line=line, payout=payout, earlier=seen)
            if outcome.match_state == MatchState.MATCHED and payout is not None:
                matched_now[payout.id].append((line.record_type, line.psp_object, line.amount))
            outcomes.append(outcome)
        outcomes_add(outcomes)
        decided += len(lines)
    return decided


def _payout_of(line: MoneyOutLine, payouts: dict[str, payout_selectors.SettledPayout]
               ) -> payout_selectors.SettledPayout | None:
    """The payout the line names: by the PSP's object (not a reversal's: we never learn its id), else by our id."""
    if line.record_type != RecordType.TRANSFER_REVERSAL:
        for name in (line.source_reference, line.payout_reference):
            if name and name in payouts:
                return payouts[name]
    return payouts.get(line.merchant_reference) if line.merchant_reference else None


def _matched_before(*, payout_ids: set[str]) -> dict[str, list[tuple[str, str, int]]]:
    """Per payout, ``(record type, PSP object, amount)`` of the lines earlier runs matched to it."""
    matched: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    rows = (SettlementMatch.objects.filter(kind=KIND, state=MatchState.MATCHED, object_id__in=sorted(payout_ids))
            .values_list("object_id", "line__record_type", "line__source_reference", "line__payout_reference",
                         "line__net"))
    for payout_id, record_type, source, payout_ref, net in rows:
        matched[payout_id].append((record_type, source or payout_ref, -(net or 0) if record_type in TAKEN_OUT
                                   else (net or 0)))
    return matched


def money_out_line_outcome(*, line: MoneyOutLine, payout: payout_selectors.SettledPayout | None,
                           earlier: list[tuple[str, str, int]]) -> Outcome:
    """The rule for one money-out line against the payout it names (``earlier``: the lines matched to that
    payout already, ``(record type, PSP object, amount)``). The first rule that holds decides."""
    what = _WHAT[line.record_type]
    actual = {"actual_amount": line.amount, "actual_currency": line.currency}

    def brk(klass: BreakClass, description: str) -> Outcome:
        expected = {} if payout is None else {"expected_amount": payout.amount, "expected_currency": payout.currency}
        return Outcome(line.line_id, MatchState.BREAK, klass, KIND, payout.id if payout else "",
                       description=description, **expected, **actual)

    if payout is None:
        return brk(BreakClass.MISSING_IN_BOOKS,
                   f"the PSP reports a {what} ({line.psp_object or 'no id'}) no payout of ours has")
    ours = {RecordType.TRANSFER: payout.psp_transfer_id, RecordType.SELLER_PAYOUT: payout.psp_payout_id,
            RecordType.SELLER_PAYOUT_FAILURE: payout.psp_payout_id}.get(line.record_type, "")
    if ours and line.psp_object and line.psp_object != ours:
        return brk(BreakClass.DUPLICATE, f"payout {payout.id} was sent as {ours}: {what} {line.psp_object} is a "
                                         f"second one")
    if line.record_type in ONE_PER_PAYOUT and any(kind == line.record_type for kind, _, _ in earlier):
        return brk(BreakClass.DUPLICATE, f"the {what} of payout {payout.id} is reported more than once")
    if line.record_type == RecordType.TRANSFER_REVERSAL and any(
            kind == line.record_type and obj == line.psp_object for kind, obj, _ in earlier):
        return brk(BreakClass.DUPLICATE, f"transfer reversal {line.psp_object} is reported more than once")
    klass = money_difference(expected=payout.amount, expected_currency=payout.currency, actual=line.amount,
                             actual_currency=line.currency)
    if line.record_type == RecordType.TRANSFER_REVERSAL and klass == BreakClass.AMOUNT_MISMATCH:
        reversed_before = sum(amount for kind, _, amount in earlier if kind == line.record_type)
        klass = None if 0 < line.amount <= payout.amount - reversed_before else klass
    if klass is not None:
        return brk(klass, f"{what} {line.psp_object} of {line.amount} {line.currency}, payout {payout.id} is "
                          f"{payout.amount} {payout.currency}")
    if line.record_type == RecordType.SELLER_PAYOUT_FAILURE and payout.state != "failed":
        return brk(BreakClass.PAYOUT_FAILED_AT_PSP,
                   f"the PSP reports payout {payout.id} ({line.psp_object}) failed; it is {payout.state} in our books")
    if line.record_type == RecordType.TRANSFER_REVERSAL and payout.state != "failed":
        return brk(BreakClass.MISSING_IN_BOOKS,
                   f"the PSP reversed the transfer of payout {payout.id}, which is {payout.state} in our books")
    return Outcome(line.line_id, MatchState.MATCHED, None, KIND, payout.id, payout.amount, payout.currency,
                   **actual)


# -- paid payouts the PSP's reports do not have --------------------------------------------------------------
def paid_payouts_unsettled_find(scope: RunScope) -> int:
    """``missing_in_settlement`` breaks for the paid payouts past the cut-off without a matched transfer line and
    seller-payout line; clear those now settled or no longer paid. Runs after the run's matches are written.
    Returns how many are open."""
    open_keys = set()
    batch: list[payout_selectors.SettledPayout] = []
    for payout in payout_selectors.payouts_paid_between(since=scope.missing_since, before=scope.missing_before,
                                                        settled=payout_settled()):
        batch.append(payout)
        if len(batch) >= 5000:
            open_keys |= _missing_write(scope, batch)
            batch = []
    open_keys |= _missing_write(scope, batch)
    _missing_clear(scope, still_missing=open_keys)
    return len(open_keys)


def payout_settled() -> QuerySet:
    """A subquery correlated on the outer payout's ``pk``: a row when its transfer line and its payout line are
    both matched (``payouts.selectors.payouts_paid_between(settled=...)`` leaves those out)."""
    return (SettlementMatch.objects.filter(kind=KIND, state=MatchState.MATCHED, object_id=OuterRef("pk"),
                                           line__record_type__in=SETTLED_BY)
            .values("object_id").annotate(roles=Count("line__record_type", distinct=True))
            .filter(roles=len(SETTLED_BY)))


def _missing_key(payout_id: str) -> str:
    return f"{BreakClass.MISSING_IN_SETTLEMENT}:object:{payout_id}"


def _settled_roles(payout_ids: list[str]) -> dict[str, set[str]]:
    roles: dict[str, set[str]] = defaultdict(set)
    for payout_id, record_type in SettlementMatch.objects.filter(
            kind=KIND, state=MatchState.MATCHED, object_id__in=payout_ids).values_list("object_id",
                                                                                        "line__record_type"):
        roles[payout_id].add(record_type)
    return roles


def _missing_write(scope: RunScope, payouts: list[payout_selectors.SettledPayout]) -> set[str]:
    """The breaks of ``payouts`` (paid, not both lines matched): new ones inserted together, those seen before
    marked seen by this run. Returns their keys."""
    if not payouts:
        return set()
    roles = _settled_roles([p.id for p in payouts])
    found: dict[str, Break] = {}
    for payout in payouts:
        lacking = [_WHAT[t] for t in SETTLED_BY if t not in roles.get(payout.id, set())]
        description = (f"payout {payout.id} was paid {payout.completed_at:%Y-%m-%d %H:%M} UTC and the PSP's reports "
                       f"have no {' and no '.join(lacking)} of it")
        found[_missing_key(payout.id)] = Break(
            key=_missing_key(payout.id), break_class=BreakClass.MISSING_IN_SETTLEMENT, state=BreakState.OPEN,
            run_id=scope.run_id, last_seen_run_id=scope.run_id, occurred_on=payout.completed_at.date(),
            expected_amount=payout.amount, expected_currency=payout.currency, object_kind="payout",
            object_id=payout.id, psp_reference=payout.psp_payout_id, description=description)
    seen = set(Break.objects.filter(key__in=list(found)).values_list("key", flat=True))
    Break.objects.filter(key__in=sorted(seen)).update(last_seen_run_id=scope.run_id)
    Break.objects.bulk_create([brk for key, brk in found.items() if key not in seen])
    return set(found)


def _missing_clear(scope: RunScope, *, still_missing: set[str]) -> None:
    """Open payout breaks of this kind no longer observed: settled later (both lines matched), else cleared."""
    candidates = list(Break.objects.filter(break_class=BreakClass.MISSING_IN_SETTLEMENT, object_kind="payout",
                                           state=BreakState.OPEN).exclude(key__in=sorted(still_missing)))
    if not candidates:
        return
    roles = _settled_roles([b.object_id for b in candidates])
    for brk in candidates:
        settled = all(t in roles.get(brk.object_id, set()) for t in SETTLED_BY)
        resolution = Resolution.SETTLED_LATER if settled else Resolution.CLEARED
        reason = (f"its transfer and payout lines were matched, seen by reconciliation run {scope.run_id}" if settled
                  else f"no longer observed by reconciliation run {scope.run_id}")
        Break.objects.filter(pk=brk.pk, state=BreakState.OPEN).update(
            state=BreakState.AUTO_RESOLVED, resolution=resolution, reason=reason, resolved_by=SYSTEM_ACTOR,
            resolved_at=scope.now, last_seen_run_id=scope.run_id)
        BreakResolution.objects.create(brk=brk, from_state=BreakState.OPEN, to_state=BreakState.AUTO_RESOLVED,
                                       resolution=resolution, reason=reason, actor=SYSTEM_ACTOR)
