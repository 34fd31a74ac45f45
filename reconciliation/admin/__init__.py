"""Operator console for reconciliation: runs, the breaks queue, files. Money is read-only.

Actions call services: ``break_resolve`` (asks for a resolution and a reason first),
``correction_propose`` on a break and ``correction_approve``/``correction_reject`` on the corrections
awaiting approval (each with its own permission and a reason), ``settlement_file_import`` (the upload
page), CSV exports through selectors.
"""
from __future__ import annotations

import csv
import tempfile
from pathlib import Path

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from core.admin_base import ReadOnlyAdmin, action_with_reason
from core.money import InexactAmount, UnknownCurrency, format_money, to_minor_units
from reconciliation import selectors
from reconciliation.exceptions import BreakResolutionError, ReconciliationError, SettlementImportError
from reconciliation.forms import BreakResolveForm, CorrectionProposeForm, SettlementUploadForm
from reconciliation.models import (
    Break,
    BreakResolution,
    MatchState,
    ReconciliationRun,
    SettlementFile,
    SettlementLine,
)
from reconciliation.services import break_resolve, correction_propose, reconciliation_run, settlement_file_import

from .corrections import CorrectionInline, legs_text


def _actor(request: HttpRequest) -> str:
    return f"operator:{request.user.get_username()}"


def _money(amount: int | None, currency: str) -> str:
    return format_money(amount, currency)


class _Echo:
    def write(self, value: str) -> str:
        return value


# OWASP "CSV injection": a cell starting with one of these is read as a formula by spreadsheets.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe_cell(value):
    """A text cell a spreadsheet would run as a formula (``=HYPERLINK(...)``, ``@SUM(...)``, ``-2+3``)
    gets a leading ``'``, so it is shown as the text it is.

    Only text is neutralised: numbers are written as numbers. Each amount is exported twice
    (``_with_formatted_amounts``): as an integer in minor units (``-300``), a number a spreadsheet can add
    up, and beside it as ``format_money`` text (``-3.00 USD``), the way the admin shows it; that text is a
    cell like any other, so a negative one is written ``'-3.00 USD``.
    """
    if isinstance(value, str) and value.startswith(_FORMULA_PREFIXES):
        return "'" + value
    return value


def _with_formatted_amounts(rows):
    """After each ``<x>_amount, <x>_currency`` column pair, a ``<x>_formatted`` column: ``format_money``."""
    rows = iter(rows)
    header = list(next(rows))
    pairs = [(header.index(name), header.index(name[: -len("amount")] + "currency"))
             for name in header if name.endswith("_amount") and name[: -len("amount")] + "currency" in header]
    inserts = sorted(((currency_at + 1, amount_at, currency_at) for amount_at, currency_at in pairs), reverse=True)

    def widen(row, formatted):
        row = list(row)
        for at, amount_at, currency_at in inserts:
            row.insert(at, formatted(row, amount_at, currency_at))
        return row

    yield widen(header, lambda row, a, c: header[a][: -len("amount")] + "formatted")
    for row in rows:
        yield widen(row, lambda row, a, c: "" if row[a] in (None, "") else format_money(row[a], row[c]))


def _csv_response(rows, filename: str) -> StreamingHttpResponse:
    """Every CSV export goes through here, so every cell is neutralised (``csv_safe_cell``)."""
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse((writer.writerow([csv_safe_cell(cell) for cell in row])
                                      for row in _with_formatted_amounts(rows)),
                                     content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@admin.register(SettlementFile)
class SettlementFileAdmin(ReadOnlyAdmin):
    list_display = ("id", "name", "format", "size", "line_count", "malformed_count", "settled_at", "imported_at",
                    "imported_by")
    list_filter = ("format", "imported_at")
    search_fields = ("name", "sha256")
    readonly_fields = ("sha256", "name", "format", "size", "line_count", "malformed_count", "counts_by_type",
                       "statements_display", "fees_display", "settled_at", "imported_at", "imported_by")
    exclude = ("statements", "fees")  # JSON in minor units: shown formatted by the two displays above

    @admin.display(description="Statements")
    def statements_display(self, obj: SettlementFile) -> str:
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((s.get("statement_id") or "-", s.get("account") or "-",
              _money(s.get("opening_balance"), s.get("currency") or ""),
              _money(s.get("closing_balance"), s.get("currency") or "")) for s in obj.statements or ()),
        )
        if not obj.statements:
            return "-"
        return format_html("<table><tr><th>statement</th><th>account</th><th>opening</th><th>closing</th></tr>{}"
                           "</table>", rows)

    @admin.display(description="Fees")
    def fees_display(self, obj: SettlementFile) -> str:
        if not obj.fees:
            return "-"
        return "; ".join(f"{payout or '-'}: {_money(total, currency)} ({lines} lines)"
                         for payout, currency, total, lines in obj.fees)

    def has_add_permission(self, request, obj=None):
        return request.user.has_perm("reconciliation.add_settlementfile")

    def add_view(self, request, form_url="", extra_context=None):
        """The upload page: imports through ``settlement_file_import``, optionally reconciles."""
        if not self.has_add_permission(request):
            return HttpResponse(status=403)
        form = SettlementUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            with tempfile.TemporaryDirectory() as directory:
                path = Path(directory) / "upload"
                with open(path, "wb") as handle:
                    for chunk in upload.chunks():
                        handle.write(chunk)
                try:
                    result = settlement_file_import(path=path, fmt=form.cleaned_data["format"],
                                                    name=Path(upload.name).name, actor=_actor(request))
                except SettlementImportError as exc:
                    form.add_error("file", str(exc))
                    result = None
            if result is not None:
                if result.created:
                    self.message_user(request, f"Imported {result.file.name}: {result.lines} lines, "
                                               f"{result.malformed} malformed.", messages.SUCCESS)
                else:
                    self.message_user(request, f"{result.file.name} was imported before; nothing changed.",
                                      messages.WARNING)
                if form.cleaned_data["reconcile"] and form.cleaned_data["date"]:
                    run = reconciliation_run(day=form.cleaned_data["date"], actor=_actor(request))
                    return HttpResponseRedirect(reverse("admin:reconciliation_reconciliationrun_change",
                                                        args=[run.pk]))
                return HttpResponseRedirect(reverse("admin:reconciliation_settlementfile_change",
                                                    args=[result.file.pk]))
        context = {**self.admin_site.each_context(request), "title": "Import a settlement file", "form": form,
                   "opts": self.model._meta}
        return TemplateResponse(request, "admin/reconciliation/settlementfile/upload.html", context)


class MatchStateFilter(admin.SimpleListFilter):
    """``match_state`` as ``selectors.settlement_lines_with_match`` reads it."""

    title = "match state"
    parameter_name = "match_state"

    def lookups(self, request, model_admin):
        return MatchState.choices

    def queryset(self, request, queryset):
        return queryset.filter(match_state=self.value()) if self.value() else queryset


@admin.register(SettlementLine)
class SettlementLineAdmin(ReadOnlyAdmin):
    list_display = ("id", "file", "line_number", "record_type", "psp_reference", "merchant_reference", "net_display",
                    "match_state_display", "matched_object_display")
    list_filter = ("record_type", MatchStateFilter, "file__format")
    search_fields = ("psp_reference", "merchant_reference", "payout_reference", "match__object_id")
    list_select_related = ("file",)
    show_full_result_count = False

    def get_queryset(self, request):
        return selectors.settlement_lines_with_match(lines=super().get_queryset(request))

    @admin.display(description="Match state", ordering="match_state")
    def match_state_display(self, obj: SettlementLine) -> str:
        return obj.match_state

    @admin.display(description="Matched object", ordering="matched_object_id")
    def matched_object_display(self, obj: SettlementLine) -> str:
        return obj.matched_object_id

    @admin.display(description="Net")
    def net_display(self, obj: SettlementLine) -> str:
        return _money(obj.net, obj.currency)


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "date", "started_at", "finished_at", "lines_evaluated", "breaks_summary", "actor")
    list_filter = ("date",)
    readonly_fields = ("date", "started_at", "finished_at", "actor", "lines_evaluated", "summary", "stats_display")
    exclude = ("stats",)  # JSON in minor units: shown formatted by summary and stats_display

    @admin.display(description="Stats")
    def stats_display(self, obj: ReconciliationRun) -> str:
        """``stats`` without its minor units: lines per match state, fees booked and payouts per currency."""
        stats = obj.stats or {}
        lines = ", ".join(f"{state} {count}" for state, count in (stats.get("lines") or {}).items()) or "-"
        fees = ", ".join(_money(a, c) for c, a in (stats.get("fees_booked") or {}).items()) or "-"
        payouts = stats.get("payouts") or {}
        matched = ", ".join(_money(a, c) for c, a in (payouts.get("matched_amounts") or {}).items()) or "-"
        return (f"lines: {lines}; fees booked: {fees}; payouts: {payouts.get('count', 0)},"
                f" matched to the bank: {matched}")
    actions = ["export_breaks"]

    @admin.display(description="Breaks")
    def breaks_summary(self, obj: ReconciliationRun) -> str:
        breaks = obj.stats.get("breaks", {})
        return ", ".join(f"{klass} {entry['count']}" for klass, entry in breaks.items()) or "none"

    @admin.display(description="Per class")
    def summary(self, obj: ReconciliationRun) -> str:
        breaks = obj.stats.get("breaks", {})
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((klass, e["count"], e["new"], e["open"],
              ", ".join(_money(a, c) for c, a in e["amounts"].items()) or "-") for klass, e in breaks.items()),
        )
        link = reverse("admin:reconciliation_break_changelist") + f"?last_seen_run__id__exact={obj.pk}"
        return format_html('<table><tr><th>class</th><th>breaks</th><th>new</th><th>open</th><th>amounts</th></tr>'
                           '{}</table><p><a href="{}">Open this run\'s breaks</a></p>', rows, link)

    @admin.action(description="Export the breaks of the selected runs (CSV)")
    def export_breaks(self, request, queryset):
        return _csv_response(selectors.break_export_rows(breaks=selectors.breaks_of_runs(runs=queryset)), "breaks.csv")


class BreakResolutionInline(admin.TabularInline):
    model = BreakResolution
    fields = ("created_at", "from_state", "to_state", "resolution", "actor", "reason")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Break)
class BreakAdmin(ReadOnlyAdmin):
    list_display = ("id", "break_class", "state", "psp_reference", "object_id", "expected_display", "actual_display",
                    "file_format", "occurred_on", "created_at")
    list_filter = ("break_class", "state", "file_format", "occurred_on", "created_at", "last_seen_run")
    search_fields = ("psp_reference", "object_id", "description", "key")
    date_hierarchy = "created_at"
    readonly_fields = ("key", "break_class", "state", "run", "last_seen_run", "line", "file_format", "occurred_on",
                       "expected_amount_money", "actual_amount_money", "object_kind", "object_id", "psp_reference",
                       "description", "source_line", "resolution", "reason", "resolved_by", "resolved_at",
                       "created_at")
    inlines = [BreakResolutionInline, CorrectionInline]
    actions = ["resolve_breaks", "propose_correction", "export_csv"]
    list_select_related = ("line", "line__file")

    @admin.display(description="Our books")
    def expected_display(self, obj: Break) -> str:
        return _money(obj.expected_amount, obj.expected_currency)

    @admin.display(description="PSP / bank")
    def actual_display(self, obj: Break) -> str:
        return _money(obj.actual_amount, obj.actual_currency)

    @admin.display(description="Settlement line")
    def source_line(self, obj: Break) -> str:
        """The raw text of a malformed line; the fields read from any other."""
        line = obj.line
        if line is None:
            return "-"
        if line.source_line:
            return line.source_line
        return (f"{line.file.name} line {line.line_number}: {line.record_type} ({line.raw_type}),"
                f" PSP ref {line.psp_reference or '-'}, merchant ref {line.merchant_reference or '-'},"
                f" payout {line.payout_reference or '-'}, gross {_money(line.gross, line.currency)},"
                f" fee {_money(line.fee, line.currency)}, net {_money(line.net, line.currency)},"
                f" at {line.occurred_at or '-'}")

    def has_resolve_permission(self, request) -> bool:
        return request.user.has_perm("reconciliation.resolve_break")

    @admin.action(description="Resolve the selected breaks (asks for a reason)", permissions=["resolve"])
    def resolve_breaks(self, request, queryset):
        def resolve(brk, data):
            try:
                break_resolve(break_id=brk.pk, resolution=data["resolution"], reason=data["reason"],
                              actor=_actor(request))
            except BreakResolutionError as exc:
                return f"not resolved ({exc})"
            return "resolved"

        return action_with_reason(self, request, queryset.order_by("pk"), action_name="resolve_breaks",
                                  title="Resolve breaks", apply=resolve, form_class=BreakResolveForm)

    def has_propose_correction_permission(self, request) -> bool:
        return request.user.has_perm("reconciliation.propose_correction")

    @admin.action(description="Propose a correction: an adjusting posting, once another operator approves",
                  permissions=["propose_correction"])
    def propose_correction(self, request, queryset):
        def propose(brk, data):
            currency = data["currency"].strip() or brk.actual_currency or brk.expected_currency
            try:
                amount = to_minor_units(data["amount"], currency) if data["amount"].strip() else None
                correction = correction_propose(break_id=brk.pk, adjustment=data["adjustment"], amount=amount,
                                                currency=currency, reason=data["reason"], actor=_actor(request))
            except (ReconciliationError, InexactAmount, UnknownCurrency) as exc:
                return f"not proposed ({exc})"
            return f"correction #{correction.pk} proposed ({legs_text(correction)}), awaiting approval"

        return action_with_reason(self, request, queryset.order_by("pk"), action_name="propose_correction",
                                  title="Propose a correction", apply=propose, form_class=CorrectionProposeForm)

    @admin.action(description="Export the selected breaks (CSV)")
    def export_csv(self, request, queryset):
        return _csv_response(selectors.break_export_rows(breaks=queryset), "breaks.csv")
