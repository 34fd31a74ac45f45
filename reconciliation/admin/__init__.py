"""Operator console for reconciliation: runs, the breaks queue and a break's workbench (``breaks.py``), the
corrections awaiting approval (``corrections.py``), files. Money is read-only and shown in major units.

Every action calls a service after a confirmation page that says what it will and will not do
(``pages.confirm``), is permission-checked (a 403 page naming the permission otherwise), asks a reason where
it changes anything and is written to Django's admin log: resolve, propose, assign and note on a break,
approve and reject on a correction, re-run on a run, the settlement upload. CSV exports through selectors.
"""
from __future__ import annotations

import csv
import tempfile
from pathlib import Path

from django.contrib import admin, messages
from django.contrib.admin.models import ADDITION, LogEntry
from django.db.models import F, Func, TextField
from django.http import HttpRequest, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from core.admin_base import ReadOnlyAdmin
from core.money import format_money
from reconciliation import selectors
from reconciliation.exceptions import ReconciliationError, SettlementImportError
from reconciliation.forms import ReasonForm, SettlementUploadForm
from reconciliation.models import (
    Break,
    MatchState,
    ReconciliationRun,
    SettlementFile,
    SettlementLine,
)
from reconciliation.services import reconciliation_run, settlement_file_import

from .breaks import BreakAdmin
from .corrections import CorrectionInline, legs_text  # noqa: F401 - re-exported
from .pages import Subject, admin_link, confirm, forbidden, log_change


def _actor(request: HttpRequest) -> str:
    return f"operator:{request.user.get_username()}"


def _table(header: tuple[str, ...], rows, money_columns: tuple[int, ...] = ()) -> str:
    """An HTML table of ``rows`` (cells already formatted), amounts right-aligned."""
    if not rows:
        return "-"
    head = format_html_join("", '<th scope="col">{}</th>', ((name,) for name in header))

    def cells(row) -> str:
        return format_html_join("", "{}", ((format_html('<td class="money">{}</td>' if i in money_columns
                                                        else "<td>{}</td>", cell),) for i, cell in enumerate(row)))

    body = format_html_join("", "<tr>{}</tr>", ((cells(row),) for row in rows))
    return format_html('<table class="recon-data"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>', head, body)


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
    readonly_fields = ("sha256", "name", "format", "size", "line_count", "malformed_count", "counts_display",
                       "statements_display", "fees_display", "settled_at", "imported_at", "imported_by")
    exclude = ("statements", "fees", "counts_by_type")  # JSON (amounts in minor units): shown as tables instead

    @admin.display(description="Lines per type")
    def counts_display(self, obj: SettlementFile) -> str:
        return _table(("record type", "lines"), [(kind, f"{count:,}") for kind, count in
                                                  sorted((obj.counts_by_type or {}).items())], (1,))

    @admin.display(description="Statements")
    def statements_display(self, obj: SettlementFile) -> str:
        return _table(("statement", "account", "opening", "closing"), [
            (s.get("statement_id") or "-", s.get("account") or "-",
             _money(s.get("opening_balance"), s.get("currency") or ""),
             _money(s.get("closing_balance"), s.get("currency") or "")) for s in obj.statements or ()], (2, 3))

    @admin.display(description="Fees")
    def fees_display(self, obj: SettlementFile) -> str:
        return _table(("payout", "fees", "lines"), [(payout or "-", _money(total, currency), f"{lines:,}")
                                                    for payout, currency, total, lines in obj.fees or ()], (1, 2))

    def has_add_permission(self, request, obj=None):
        return request.user.has_perm("reconciliation.add_settlementfile")

    def add_view(self, request, form_url="", extra_context=None):
        """The upload page: imports through ``settlement_file_import``, optionally reconciles."""
        if not self.has_add_permission(request):
            return forbidden(request, self.admin_site, permission="reconciliation.add_settlementfile",
                             what="import a settlement file",
                             back=reverse("admin:reconciliation_settlementfile_changelist"))
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
                    LogEntry.objects.log_actions(
                        user_id=request.user.pk, queryset=[result.file], action_flag=ADDITION, single_object=True,
                        change_message=f"Imported {result.file.name} ({result.file.format}): {result.lines} lines,"
                                       f" {result.malformed} malformed")
                    self.message_user(request, f"Imported {result.file.name}: {result.lines} lines, "
                                               f"{result.malformed} malformed.", messages.SUCCESS)
                else:
                    self.message_user(request, f"{result.file.name} was imported before; nothing changed.",
                                      messages.WARNING)
                if form.cleaned_data["reconcile"] and form.cleaned_data["date"]:
                    run = reconciliation_run(day=form.cleaned_data["date"], actor=_actor(request))
                    log_change(request, run, f"Reconciled {run.date} after importing {result.file.name}")
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


#: A file's lines in their order in it: ``(file, ordinal)``, not the id (the import draws ids in reference order).
_LINE_ORDER = Func(F("file_id"), F("ordinal"), function="ROW", output_field=TextField())


@admin.register(SettlementLine)
class SettlementLineAdmin(ReadOnlyAdmin):
    # Fits beside the navigation and the filters at 1440 px; the merchant reference is searched, not shown.
    list_display = ("line_display", "record_type", "psp_reference", "net_display", "match_state_display",
                    "matched_object_display")
    list_display_links = ("line_display",)
    list_filter = ("record_type", MatchStateFilter, "file__format")
    search_fields = ("psp_reference", "merchant_reference", "payout_reference", "match__object_id")
    list_select_related = ("file",)
    show_full_result_count = False

    def get_queryset(self, request):
        return selectors.settlement_lines_with_match(lines=super().get_queryset(request))

    @admin.display(description="Match state", ordering="match_state")
    def match_state_display(self, obj: SettlementLine) -> str:
        return obj.match_state

    @admin.display(description="Line", ordering=_LINE_ORDER)
    def line_display(self, obj: SettlementLine) -> str:
        return f"{obj.file.name}:{obj.line_number}"

    @admin.display(description="Matched object", ordering="matched_object_id")
    def matched_object_display(self, obj: SettlementLine) -> str:
        if obj.matched_kind == "payment_order" and obj.matched_object_id:
            return admin_link("admin:payments_paymentorder_change", obj.matched_object_id, obj.matched_object_id)
        return obj.matched_object_id or "-"

    @admin.display(description="Net")
    def net_display(self, obj: SettlementLine) -> str:
        return _money(obj.net, obj.currency)


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "date", "started_at", "finished_at", "lines_evaluated", "breaks_summary", "actor")
    list_filter = ("date",)
    readonly_fields = ("date", "started_at", "finished_at", "actor", "lines_evaluated", "summary", "lines_display",
                       "booked_display")
    exclude = ("stats",)  # JSON in minor units: shown as tables by summary, lines_display and booked_display
    change_form_template = "admin/reconciliation/reconciliationrun/change_form.html"

    @admin.display(description="Lines")
    def lines_display(self, obj: ReconciliationRun) -> str:
        """Lines per match state."""
        return _table(("match state", "lines"), [(state, f"{count:,}") for state, count in
                                                  ((obj.stats or {}).get("lines") or {}).items()], (1,))

    @admin.display(description="Booked")
    def booked_display(self, obj: ReconciliationRun) -> str:
        """Fees booked and payouts matched to the bank, per currency, in major units."""
        stats = obj.stats or {}
        fees = stats.get("fees_booked") or {}
        payouts = stats.get("payouts") or {}
        matched = payouts.get("matched_amounts") or {}
        rows = [(currency.upper(), _money(fees.get(currency), currency) if currency in fees else "-",
                 _money(matched.get(currency), currency) if currency in matched else "-")
                for currency in sorted(set(fees) | set(matched))]
        table = _table(("currency", "PSP fees booked", "payouts matched to the bank"), rows, (1, 2))
        return format_html("{}<p>Payouts seen: {}</p>", table, f"{payouts.get('count', 0):,}")

    actions = ["export_breaks"]

    def get_urls(self):
        return [path("<path:object_id>/rerun/", self.admin_site.admin_view(self.rerun_view),
                     name="reconciliation_reconciliationrun_rerun"), *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        rerun = reverse("admin:reconciliation_reconciliationrun_rerun", args=[object_id]) \
            if request.user.has_perm("reconciliation.run_reconciliation") else ""
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "rerun_url": rerun})

    def rerun_view(self, request: HttpRequest, object_id: str):
        """Reconcile the run's day again, after a confirmation page and with a reason (admin log)."""
        run = get_object_or_404(ReconciliationRun, pk=object_id)
        back = reverse("admin:reconciliation_reconciliationrun_change", args=[run.pk])
        if not request.user.has_perm("reconciliation.run_reconciliation"):
            return forbidden(request, self.admin_site, permission="reconciliation.run_reconciliation",
                             what="re-run reconciliation", back=back)
        form = ReasonForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                new_run = reconciliation_run(day=run.date, actor=_actor(request))
            except ReconciliationError as exc:
                form.add_error(None, str(exc))
            else:
                log_change(request, new_run, f"Re-ran reconciliation of {run.date} (after run #{run.pk}):"
                                             f" {form.cleaned_data['reason']}")
                self.message_user(request, f"Reconciled {run.date} again: run #{new_run.pk}.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:reconciliation_reconciliationrun_change",
                                                    args=[new_run.pk]))
        subject = Subject(f"Run #{run.pk}", [("Day", run.date), ("Started", run.started_at),
                                             ("Lines evaluated", f"{run.lines_evaluated:,}"),
                                             ("Breaks", self.breaks_summary(run))])
        return confirm(request, self, title=f"Reconcile {run.date} again", subjects=[subject], form=form,
                       submit="Reconcile again", back=back, status=400 if request.method == "POST" else 200,
                       will=["Match again every settlement line still open, as a new run for the same day.",
                             "Record breaks by their key: a break seen again keeps its id, owner and notes; an open"
                             " one no longer observed is closed automatically.",
                             "Book PSP fees and payouts received, each once under its own key."],
                       will_not=["Import any file.", "Reopen or change a resolved break.",
                                 "Post anything twice: every posting has its idempotency key."])

    @admin.display(description="Breaks")
    def breaks_summary(self, obj: ReconciliationRun) -> str:
        breaks = obj.stats.get("breaks", {})
        return ", ".join(f"{klass} {entry['count']}" for klass, entry in breaks.items()) or "none"

    @admin.display(description="Per class")
    def summary(self, obj: ReconciliationRun) -> str:
        breaks = obj.stats.get("breaks", {})
        table = _table(("class", "breaks", "new", "open", "amounts"), [
            (klass, f"{e['count']:,}", f"{e['new']:,}", f"{e['open']:,}",
             ", ".join(_money(a, c) for c, a in e["amounts"].items()) or "-") for klass, e in breaks.items()],
            (1, 2, 3, 4))
        link = reverse("admin:reconciliation_break_changelist") + f"?last_seen_run__id__exact={obj.pk}"
        return format_html('{}<p><a href="{}">Open this run\'s breaks</a></p>', table, link)

    @admin.action(description="Export the breaks of the selected runs (CSV)")
    def export_breaks(self, request, queryset):
        return _csv_response(selectors.break_export_rows(breaks=selectors.breaks_of_runs(runs=queryset)), "breaks.csv")


admin.site.register(Break, BreakAdmin)
