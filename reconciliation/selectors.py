"""Reads of reconciliation: what a settlement line was matched to, run summaries, the breaks queue, exports."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.core.cache import cache
from django.db import models
from django.db.models import Case, Count, F, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.money import format_money
from ledger import accounts
from ledger import selectors as ledger_selectors
from payments import selectors as payment_selectors
from payouts import selectors as payout_selectors
from reconciliation.models import (
    SELLER_PAYOUT_MATCH,
    Break,
    BreakClass,
    BreakState,
    MatchState,
    ReconciliationRun,
    SettlementLine,
    SettlementMatch,
)
from reconciliation.record_types import RecordType


def settlement_lines_with_match(*, lines: QuerySet[SettlementLine] | None = None) -> QuerySet[SettlementLine]:
    """``lines`` (every line by default), each with what reconciliation made of it: ``match_state``,
    ``matched_kind`` and ``matched_object_id``. This is the one meaning of *matched*:

    - a line with a ``SettlementMatch`` is what that row says;
    - a line without one is ``malformed`` if it could not be read, ``pending`` while no run has
      reconciled its file, and otherwise **matched by PSP reference** by the run that reconciled
      its file (``SettlementFile.reconciled_run``): a charge to the payment order with its PSP
      reference, or a fee line (no object).

    Matching writes no row for that last, common case (see ``SettlementMatch``); its SQL reads the
    same meaning set-based (``reconciliation.matching.history``).
    """
    lines = SettlementLine.objects.all() if lines is None else lines
    by_reference = Q(match__isnull=True, file__reconciled_at__isnull=False)
    charge_by_reference = by_reference & Q(record_type=RecordType.CHARGE)
    order_by_reference = Subquery(  # NULL for an empty reference: no order is found by ''
        payment_selectors.settleable_orders().filter(psp_reference=OuterRef("psp_reference"))
        .exclude(psp_reference="").values("id")[:1])
    text = models.CharField()
    return lines.annotate(
        match_state=Coalesce(
            F("match__state"),
            Case(When(record_type=RecordType.MALFORMED, then=Value(MatchState.MALFORMED.value)),
                 When(by_reference, then=Value(MatchState.MATCHED.value)),
                 default=Value(MatchState.PENDING.value)),
            output_field=text,
        ),
        matched_kind=Coalesce(
            F("match__kind"),
            Case(When(charge_by_reference, then=Value("payment_order")), default=Value(""), output_field=text),
            output_field=text,
        ),
        matched_object_id=Coalesce(
            F("match__object_id"),
            Case(When(charge_by_reference, then=order_by_reference), default=Value(""), output_field=text),
            Value(""),
            output_field=text,
        ),
    )


def breaks_of_runs(*, runs: QuerySet[ReconciliationRun]) -> QuerySet[Break]:
    """Breaks the runs found or saw again."""
    return (Break.objects.filter(Q(run__in=runs) | Q(last_seen_run__in=runs)).distinct()
            .select_related("line", "line__file").order_by("break_class", "id"))


#: Classes whose amount is the difference, the PSP's or bank's figure minus ours.
_DIFFERENCES = (BreakClass.AMOUNT_MISMATCH, BreakClass.BANK_BALANCE_MISMATCH)


def run_break_stats(*, run_id: int) -> dict[str, dict]:
    """Per class: breaks seen by the run, how many are new and open, amounts per currency.

    An amount is the PSP's figure (ours when the PSP has none); for ``amount_mismatch``
    and ``bank_balance_mismatch`` it is the difference, PSP or bank minus books.
    """
    stats: dict[str, dict] = {}
    rows = (Break.objects.filter(Q(run_id=run_id) | Q(last_seen_run_id=run_id))
            .values_list("break_class", "state", "run_id", "expected_amount", "expected_currency",
                         "actual_amount", "actual_currency"))
    for klass, state, first_run, expected, expected_currency, actual, actual_currency in rows.iterator(2000):
        entry = stats.setdefault(klass, {"count": 0, "new": 0, "open": 0, "amounts": {}})
        entry["count"] += 1
        entry["new"] += first_run == run_id
        entry["open"] += state == BreakState.OPEN
        if klass in _DIFFERENCES and actual is not None and expected is not None:
            amount, currency = actual - expected, actual_currency or expected_currency
        elif actual is not None:
            amount, currency = actual, actual_currency
        else:
            amount, currency = expected or 0, expected_currency
        if currency:
            entry["amounts"][currency] = entry["amounts"].get(currency, 0) + amount
    return dict(sorted(stats.items()))


def open_break_counts() -> dict[str, int]:
    rows = Break.objects.filter(state=BreakState.OPEN).values_list("break_class").annotate(n=Count("id"))
    return dict(rows)


EXPORT_COLUMNS = ("id", "break_class", "state", "object_kind", "object_id", "psp_reference", "file", "line_number",
                  "expected_amount", "expected_currency", "actual_amount", "actual_currency", "description",
                  "resolution", "reason", "resolved_by", "resolved_at", "created_at")


def break_export_rows(*, breaks: QuerySet[Break]) -> Iterator[list]:
    """CSV rows (header first) for a queryset of breaks; amounts in minor units."""
    yield list(EXPORT_COLUMNS)
    for brk in breaks.select_related("line", "line__file").iterator(2000):
        yield [brk.pk, brk.break_class, brk.state, brk.object_kind, brk.object_id, brk.psp_reference,
               brk.line.file.name if brk.line else "", brk.line.line_number if brk.line else "",
               brk.expected_amount, brk.expected_currency, brk.actual_amount, brk.actual_currency, brk.description,
               brk.resolution, brk.reason, brk.resolved_by, brk.resolved_at.isoformat() if brk.resolved_at else "",
               brk.created_at.isoformat()]


def settlement_records_of(*, object_ids: list[str], psp_references: list[str]
                          ) -> tuple[list[SettlementLine], list[Break]]:
    """What the settlement side holds about some of our objects (a payment order and its refunds): the lines
    carrying one of ``psp_references`` or matched to one of ``object_ids`` (each read through
    ``settlement_lines_with_match``, with its file), and every break about those objects or lines, oldest
    first. For the operators' timeline of a payment; three statements, each on an index."""
    psp_references = [r for r in psp_references if r]
    line_ids = set(SettlementLine.objects.filter(psp_reference__in=psp_references).values_list("pk", flat=True))
    line_ids |= set(SettlementMatch.objects.filter(object_id__in=object_ids).values_list("line_id", flat=True))
    lines = list(settlement_lines_with_match(lines=SettlementLine.objects.filter(pk__in=line_ids))
                 .select_related("file").order_by("file_id", "ordinal"))
    breaks = list(Break.objects.filter(Q(object_id__in=object_ids) | Q(line_id__in=line_ids))
                  .order_by("created_at", "pk"))
    return lines, breaks


def settlement_reference_targets(*, reference: str, limit: int = 1000) -> tuple[list[str], list[str]]:
    """``(PSP references, object ids)`` that the settlement lines known by ``reference`` (their own object id
    such as a ``ch_``, their payout, their merchant reference or PSP reference) point to: what an operator's
    search for a settlement reference finds among payments. At most ``limit`` lines are read."""
    lines = (settlement_lines_with_match(lines=SettlementLine.objects.filter(
        Q(psp_reference=reference) | Q(source_reference=reference) | Q(payout_reference=reference)
        | Q(merchant_reference=reference)))
        .values_list("psp_reference", "merchant_reference", "matched_object_id")[:limit])
    psp_references, object_ids = set(), set()
    for psp_reference, merchant_reference, matched_object_id in lines:
        psp_references.add(psp_reference)
        object_ids.update((merchant_reference, matched_object_id))
    return sorted(r for r in psp_references if r), sorted(i for i in object_ids if i)


# -- money out (read by ``payouts.audit``) -----------------------------------------------------------------
def last_reconciled_day() -> date | None:
    """The latest business day a finished reconciliation run reconciled."""
    return (ReconciliationRun.objects.filter(finished_at__isnull=False).order_by("-date")
            .values_list("date", flat=True).first())


def payout_settled_subquery() -> QuerySet:
    """For ``payouts.selectors.payouts_paid_between(settled=...)``: a row when the outer payout's transfer line and
    payout line are both matched."""
    from reconciliation.matching.transfers import payout_settled

    return payout_settled()


def payout_ids_matched(*, batch: int = 5000) -> Iterator[list[str]]:
    """The ids of the payouts settlement lines are matched to (``matching.transfers``), in batches."""
    ids = (SettlementMatch.objects.filter(kind=SELLER_PAYOUT_MATCH, state=MatchState.MATCHED)
           .values_list("object_id", flat=True).distinct().order_by("object_id"))
    chunk: list[str] = []
    for payout_id in ids.iterator(chunk_size=batch):
        chunk.append(payout_id)
        if len(chunk) >= batch:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def payout_lines_matched(*, payout_ids: list[str]) -> dict[str, list[tuple[str, int, int]]]:
    """Per payout of ``payout_ids``, the settlement lines matched to it (``matching.transfers``): ``(record type,
    line id, amount moved, positive)``, in line order."""
    from reconciliation.matching.transfers import TAKEN_OUT

    matched: dict[str, list[tuple[str, int, int]]] = {}
    rows = (SettlementMatch.objects.filter(kind=SELLER_PAYOUT_MATCH, state=MatchState.MATCHED,
                                           object_id__in=payout_ids)
            .order_by("line__file_id", "line__ordinal")
            .values_list("object_id", "line__record_type", "line_id", "line__net"))
    for payout_id, record_type, line_id, net in rows:
        amount = -(net or 0) if record_type in TAKEN_OUT else (net or 0)
        matched.setdefault(payout_id, []).append((record_type, line_id, amount))
    return matched
# -- the break workbench -------------------------------------------------------------------------------

#: How far from a break's date a line or an order of the same amount is shown as a candidate.
NEAR_DAYS = 3

def break_difference(*, brk: Break) -> tuple[int, str] | None:
    """``(PSP or bank minus our books, currency)`` when both figures exist in one currency, else ``None``."""
    if brk.expected_amount is None or brk.actual_amount is None:
        return None
    if (brk.expected_currency or "").lower() != (brk.actual_currency or "").lower():
        return None
    return brk.actual_amount - brk.expected_amount, brk.actual_currency.lower()


def break_age(*, brk: Break, now: datetime | None = None) -> timedelta:
    """How long the break has been open (until its resolution once resolved), from when a run found it."""
    end = brk.resolved_at or now or timezone.now()
    return max(end - brk.created_at, timedelta(0))


def age_text(age: timedelta) -> str:
    """``3 d 4 h``, ``5 h 12 min``, ``40 min``: an age as operators read it."""
    minutes = int(age.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def _break_day(brk: Break) -> date:
    if brk.occurred_on:
        return brk.occurred_on
    if brk.line_id and brk.line.occurred_at:
        return brk.line.occurred_at.date()
    return timezone.localtime(brk.created_at).date()


def _window(brk: Break) -> tuple[datetime, datetime]:
    day = _break_day(brk)
    zone = timezone.get_current_timezone()
    return (datetime.combine(day - timedelta(days=NEAR_DAYS), time.min, zone),
            datetime.combine(day + timedelta(days=NEAR_DAYS + 1), time.min, zone))


def _break_amounts(brk: Break) -> set[tuple[int, str]]:
    """The amounts a candidate may carry: the break's two figures, or its difference for a bank balance."""
    if brk.break_class == BreakClass.BANK_BALANCE_MISMATCH:
        difference = break_difference(brk=brk)
        return {(abs(difference[0]), difference[1])} if difference and difference[0] else set()
    return {(abs(amount), currency.lower()) for amount, currency in (
        (brk.expected_amount, brk.expected_currency), (brk.actual_amount, brk.actual_currency))
        if amount and currency}


@dataclass(frozen=True)
class Candidate:
    """A settlement line or a payment order that may explain a break, and why it is shown."""

    obj: SettlementLine | payment_selectors.SettleableOrder
    why: str


def break_candidate_lines(*, brk: Break, limit: int = 20) -> list[Candidate]:
    """Settlement lines that may be the other side of ``brk``: those with its PSP reference, those a run matched
    to its payment order, and the lines left unexplained (a break or an unrelated bank line) of the same amount
    and currency within ``NEAR_DAYS`` of its date. Each statement is on an index (a matched line is explained
    already: scanning every line of the week for an amount would cost seconds a page at a million lines a
    night). Each read through ``settlement_lines_with_match``."""
    reasons: dict[int, str] = {}

    def found(queryset, why: str) -> None:
        for pk in queryset.exclude(pk=brk.line_id or 0).order_by().values_list("pk", flat=True)[:limit]:
            reasons.setdefault(pk, why)

    if brk.psp_reference:
        found(SettlementLine.objects.filter(psp_reference=brk.psp_reference), "same PSP reference")
    if brk.object_kind == "payment_order" and brk.object_id:
        found(SettlementLine.objects.filter(pk__in=SettlementMatch.objects.filter(
            kind="payment_order", object_id=brk.object_id).values("line_id")), f"matched to {brk.object_id}")
    amounts = _break_amounts(brk)
    if amounts:
        start, end = _window(brk)
        same_amount = Q(pk__in=[])
        for amount, currency in amounts:
            same_amount |= Q(currency__in=[currency, currency.upper()]) & (
                Q(gross__in=[amount, -amount]) | Q(net__in=[amount, -amount]))
        found(SettlementLine.objects.filter(same_amount, match__state__in=[MatchState.BREAK, MatchState.UNRELATED],
                                            occurred_at__gte=start, occurred_at__lt=end),
              "unexplained, same amount and currency near the date")
    lines = settlement_lines_with_match(lines=SettlementLine.objects.filter(pk__in=list(reasons)[:limit]))
    lines = lines.select_related("file").order_by("occurred_at", "file_id", "ordinal")
    return [Candidate(line, reasons[line.pk]) for line in lines]


def break_candidate_orders(*, brk: Break, limit: int = 20) -> list[Candidate]:
    """Payment orders that may explain ``brk``: the one it names, the one its PSP reference (or its line's
    merchant reference) finds, and, of the same amount and currency, the orders whose outcome is open
    (no date: the janitor decides them within minutes), those that failed within ``NEAR_DAYS`` (the PSP may have
    captured one) and those that succeeded but no line settled (an open ``missing_in_settlement`` break) within
    ``NEAR_DAYS``. Every statement is on an index: orders that succeeded and settled are explained already."""
    orders = payment_selectors.settleable_orders()
    reasons: dict[str, str] = {}

    def found(queryset, why: str) -> None:
        for pk in queryset.order_by().values_list("pk", flat=True)[:limit]:
            reasons.setdefault(pk, why)

    if brk.object_kind == "payment_order" and brk.object_id:
        found(orders.filter(pk=brk.object_id), "the break's order")
    if brk.psp_reference:
        found(orders.filter(psp_reference=brk.psp_reference).exclude(psp_reference=""),  # the partial unique index
              "its PSP reference finds it")
    if brk.line_id and brk.line.merchant_reference:
        found(orders.filter(pk=brk.line.merchant_reference), "the line's merchant reference names it")
    amounts = _break_amounts(brk) if brk.break_class != BreakClass.BANK_BALANCE_MISMATCH else set()
    if amounts:
        start, end = _window(brk)
        same_amount = Q(pk__in=[])
        for amount, currency in amounts:
            same_amount |= Q(amount=amount, currency__in=[currency, currency.upper()])
        found(orders.filter(same_amount, state__in=payment_selectors.OPEN_ORDER_STATES),
              "same amount and currency, outcome still open")
        found(orders.filter(same_amount, state=payment_selectors.FAILED_ORDER_STATE, completed_at__gte=start,
                            completed_at__lt=end), "same amount and currency, failed near the date")
        unsettled = Q(pk__in=[])
        for amount, currency in amounts:
            unsettled |= Q(expected_amount=amount, expected_currency__in=[currency, currency.upper()])
        found(orders.filter(pk__in=Break.objects.filter(
            unsettled, state=BreakState.OPEN, break_class=BreakClass.MISSING_IN_SETTLEMENT,
            occurred_on__gte=start.date(), occurred_on__lt=end.date()).exclude(pk=brk.pk).values("object_id")),
            "same amount and currency, succeeded but not settled")
    return [Candidate(order, reasons[order.pk])
            for order in orders.filter(pk__in=list(reasons)[:limit]).order_by("completed_at", "pk")]


# -- the dashboard: ledger balances that should be a known figure after reconciliation ------------------

@dataclass(frozen=True)
class BalanceFlag:
    account: str
    currency: str
    balance: int  # debit positive, minor units
    should: str  # what it should be, in words or formatted
    why: str


#: How long the dashboard reuses the flags: each is a sum over every entry of its account (about 0.6 ms per
#: thousand entries of ``assets:psp_receivable``, one per capture, refund or fee), too much for every page view.
LEDGER_FLAGS_MAX_AGE = 60
_LEDGER_FLAGS_CACHE_KEY = "reconciliation:ledger_balance_flags"


def ledger_balance_flags(*, max_age: int = LEDGER_FLAGS_MAX_AGE) -> tuple[datetime, list[BalanceFlag]]:
    """``(as of, flags)``: ledger accounts whose balance is not what the rest of the system says it must be
    (docs/console-breaks.md), computed at most every ``max_age`` seconds (0: now):

    - ``assets:psp_receivable`` below zero: the books took more out of the PSP's balance (refunds, fees, payouts
      received, sellers' payouts) than captures put in, which no PSP allows: a posting is missing or doubled;
    - ``liabilities:payouts_in_transit`` unequal to the sellers' payouts still open (pending, in transit, dead
      letter), so not zero when nothing is in transit."""
    cached = cache.get(_LEDGER_FLAGS_CACHE_KEY) if max_age else None
    if cached is not None:
        return cached
    flags = [BalanceFlag(accounts.PSP_RECEIVABLE, currency, balance, "0 or more",
                         "more booked out of the PSP's balance than captured into it")
             for currency, balance in sorted(ledger_selectors.account_balances(code=accounts.PSP_RECEIVABLE).items())
             if balance < 0]
    open_payouts = payout_selectors.open_payout_totals()
    booked = ledger_selectors.account_balances(code=accounts.PAYOUTS_IN_TRANSIT)
    for currency in sorted(set(open_payouts) | set(booked)):
        expected = -open_payouts.get(currency, 0)
        if booked.get(currency, 0) != expected:
            flags.append(BalanceFlag(accounts.PAYOUTS_IN_TRANSIT, currency, booked.get(currency, 0),
                                     format_money(expected, currency),
                                     "unequal to the sellers' payouts still open (their total, as a credit)"))
    result = (timezone.now(), flags)
    if max_age:
        cache.set(_LEDGER_FLAGS_CACHE_KEY, result, max_age)
    return result
