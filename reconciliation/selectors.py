"""Reads of reconciliation: what a settlement line was matched to, run summaries, the breaks queue, exports."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from django.db import models
from django.db.models import Case, Count, F, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce

from payments import selectors as payment_selectors
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
                 .select_related("file").order_by("pk"))
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
            .order_by("line_id").values_list("object_id", "line__record_type", "line_id", "line__net"))
    for payout_id, record_type, line_id, net in rows:
        amount = -(net or 0) if record_type in TAKEN_OUT else (net or 0)
        matched.setdefault(payout_id, []).append((record_type, line_id, amount))
    return matched
