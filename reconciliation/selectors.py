"""Reads of reconciliation: run summaries, the breaks queue, exports."""
from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count, Q, QuerySet

from reconciliation.models import Break, BreakClass, BreakState, ReconciliationRun


def breaks_of_runs(*, runs: QuerySet[ReconciliationRun]) -> QuerySet[Break]:
    """Breaks the runs found or saw again."""
    return (Break.objects.filter(Q(run__in=runs) | Q(last_seen_run__in=runs)).distinct()
            .select_related("line", "line__file").order_by("break_class", "id"))


def run_break_stats(*, run_id: int) -> dict[str, dict]:
    """Per class: breaks seen by the run, how many are new and open, amounts per currency.

    An amount is the PSP's figure (ours when the PSP has none); for ``amount_mismatch``
    it is the difference, PSP minus books.
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
        if klass == BreakClass.AMOUNT_MISMATCH and actual is not None and expected is not None:
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
