"""The breaks queue and a break's page, a workbench: what the break is, its difference and age, the candidate
settlement lines and payment orders, its notes and owner, and its actions (resolve, propose a correction,
assign, note), each on a confirmation page saying what it will and will not do, permission-checked, asking a
reason where it changes anything and written to Django's admin log. Money moves only through a correction
(``services.corrections``): proposed here, posted when another operator approves it."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import Http404, HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse

from core.admin_base import ReadOnlyAdmin
from core.money import InexactAmount, UnknownCurrency, format_money, to_minor_units
from reconciliation import selectors
from reconciliation.exceptions import ReconciliationError
from reconciliation.forms import BreakAssignForm, BreakNoteForm, BreakResolveForm, CorrectionProposeForm
from reconciliation.models import Break, BreakResolution, BreakState, CorrectionState
from reconciliation.services import (
    CORRECTABLE_CLASSES,
    break_assign,
    break_note_add,
    break_resolve,
    correction_propose,
)

from .corrections import CorrectionInline
from .pages import (
    Subject,
    actor_of,
    admin_link,
    break_rows,
    confirm,
    forbidden,
    legs_text,
    line_link,
    log_change,
    object_link,
)


@dataclass(frozen=True)
class Work:
    """One action on a break: its page, permission, form, and what it will and will not do."""

    title: str
    permission: str
    form_class: type[forms.Form]
    submit: str
    will: Callable[[Break], list[str]]
    will_not: Callable[[Break], list[str]]
    apply: Callable[[Break, dict, HttpRequest], tuple[object, str]]  # -> (object logged, message)
    open_only: bool = True


def _difference_text(brk: Break) -> str:
    difference = selectors.break_difference(brk=brk)
    return format_money(abs(difference[0]), difference[1]) if difference else "the amount you give"


def _resolve(brk: Break, data: dict, request: HttpRequest) -> tuple[object, str]:
    brk = break_resolve(break_id=brk.pk, resolution=data["resolution"], reason=data["reason"],
                        actor=actor_of(request))
    return brk, f"Resolved as {brk.get_resolution_display()}: {data['reason']}"


def _propose(brk: Break, data: dict, request: HttpRequest) -> tuple[object, str]:
    currency = data["currency"].strip() or brk.actual_currency or brk.expected_currency
    amount = to_minor_units(data["amount"], currency) if data["amount"].strip() else None
    correction = correction_propose(break_id=brk.pk, adjustment=data["adjustment"], amount=amount, currency=currency,
                                    reason=data["reason"], actor=actor_of(request))
    return correction, (f"Proposed correction #{correction.pk} on break #{brk.pk} ({legs_text(correction)}),"
                        f" awaiting approval: {data['reason']}")


def _assign(brk: Break, data: dict, request: HttpRequest) -> tuple[object, str]:
    brk = break_assign(break_id=brk.pk, owner_username=data["owner"] or None, reason=data["reason"],
                       actor=actor_of(request))
    return brk, f"Owner: {data['owner'] or 'nobody'}: {data['reason']}"


def _note(brk: Break, data: dict, request: HttpRequest) -> tuple[object, str]:
    note = break_note_add(break_id=brk.pk, text=data["text"], actor=actor_of(request))
    return brk, f"Note #{note.pk}: {data['text']}"


WORK: dict[str, Work] = {
    "resolve": Work(
        "Resolve the break", "reconciliation.resolve_break", BreakResolveForm, "Resolve",
        lambda brk: [f"Close break #{brk.pk} as resolved with the resolution you choose; your name and reason go"
                     " to its audit trail."],
        lambda brk: ["Post anything to the ledger or move a wallet: when the books must change, propose a"
                     " correction instead.",
                     "Write off a break that holds an amount (a write-off is posted, by a correction).",
                     "Resolve a break with a correction awaiting approval, or one already resolved.",
                     "Change the settlement line or the payment order."],
        _resolve),
    "propose": Work(
        "Propose a correction", "reconciliation.propose_correction", CorrectionProposeForm, "Propose",
        lambda brk: [f"Record an adjusting posting of {_difference_text(brk)} (one of the allowed adjustments) for"
                     " a second operator, a Finance approver, to approve.",
                     "Once approved, the posting is made through the ledger under the correction's own key and the"
                     " break is resolved, in one transaction."],
        lambda brk: ["Post anything now: nothing reaches the ledger until a different operator approves.",
                     "Let you approve it yourself.",
                     "Allow a second proposal on this break while this one awaits a decision."],
        _propose),
    "assign": Work(
        "Assign the break", "reconciliation.work_break", BreakAssignForm, "Assign",
        lambda brk: ["Make the operator you choose the break's owner (or nobody); the change and your reason are"
                     " written to its notes."],
        lambda brk: ["Resolve the break, post anything or move money.", "Notify the new owner."],
        _assign),
    "note": Work(
        "Add a note", "reconciliation.work_break", BreakNoteForm, "Add the note",
        lambda brk: ["Append your note, with your name and the time, to the break's notes."],
        lambda brk: ["Edit or delete an earlier note: notes are append-only (PostgreSQL refuses it).",
                     "Change the break's state, owner or money."],
        _note, open_only=False),
}


class BreakResolutionInline(admin.TabularInline):
    model = BreakResolution
    fields = ("created_at", "from_state", "to_state", "resolution", "actor", "reason")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class OwnerFilter(admin.SimpleListFilter):
    title = "owner"
    parameter_name = "owner"

    def lookups(self, request, model_admin):
        return [("me", "me"), ("nobody", "nobody")]

    def queryset(self, request, queryset):
        if self.value() == "me":
            return queryset.filter(owner=request.user)
        if self.value() == "nobody":
            return queryset.filter(owner__isnull=True)
        return queryset


class BreakAdmin(ReadOnlyAdmin):
    # Fits beside the navigation and the filters at 1440 px: the id is in the class's link, the date in the age.
    list_display = ("class_display", "state", "difference_display", "age_display", "owner", "object_link",
                    "line_link")
    list_display_links = ("class_display",)
    list_filter = ("break_class", "state", OwnerFilter, "file_format", "occurred_on", "created_at", "last_seen_run")
    search_fields = ("psp_reference", "object_id", "description", "key")
    date_hierarchy = "created_at"
    # The workbench (its template) shows the class, state, figures, object, line, age and owner above these.
    fields = ("key", "run", "last_seen_run", "file_format", "psp_reference", "source_line", "resolution", "reason",
              "resolved_by", "resolved_at", "created_at")
    readonly_fields = fields
    inlines = [BreakResolutionInline, CorrectionInline]
    actions = ["resolve_breaks", "propose_correction", "export_csv"]
    list_select_related = ("line", "line__file", "owner")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("line", "line__file", "owner")
    change_form_template = "admin/reconciliation/break/change_form.html"

    # -- the queue ------------------------------------------------------------------------------------------
    @admin.display(description="Break", ordering="break_class")
    def class_display(self, obj: Break) -> str:
        return f"#{obj.pk} {obj.break_class.replace('_', ' ')}"

    @admin.display(description="Difference / amount")
    def difference_display(self, obj: Break) -> str:
        """PSP or bank minus our books when both exist in one currency; else the one figure there is."""
        difference = selectors.break_difference(brk=obj)
        if difference:
            return format_money(*difference)
        if obj.actual_amount is not None:
            return format_money(obj.actual_amount, obj.actual_currency)
        return format_money(obj.expected_amount, obj.expected_currency)

    @admin.display(description="Age", ordering="created_at")
    def age_display(self, obj: Break) -> str:
        return selectors.age_text(selectors.break_age(brk=obj))

    @admin.display(description="Object", ordering="object_id")
    def object_link(self, obj: Break) -> str:
        return object_link(obj, kind=False)

    @admin.display(description="Line")
    def line_link(self, obj: Break) -> str:
        return line_link(obj.line)

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
                f" payout {line.payout_reference or '-'}, gross {format_money(line.gross, line.currency)},"
                f" fee {format_money(line.fee, line.currency)}, net {format_money(line.net, line.currency)},"
                f" at {line.occurred_at or '-'}")

    # -- the workbench --------------------------------------------------------------------------------------
    def get_urls(self):
        return [path("<path:object_id>/work/<str:action>/", self.admin_site.admin_view(self.work_view),
                     name="reconciliation_break_work"), *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        brk = self.get_object(request, unquote(object_id))  # None for an id that is no break's
        if brk is not None and self.has_view_permission(request, brk):
            extra_context = {**(extra_context or {}), "workbench": self._workbench(request, brk)}
        return super().change_view(request, object_id, form_url, extra_context)

    def _workbench(self, request: HttpRequest, brk: Break) -> dict:
        difference = selectors.break_difference(brk=brk)
        pending = brk.corrections.filter(state=CorrectionState.PROPOSED).first()
        return {
            "break_class": brk.get_break_class_display(), "state": brk.state,
            "resolution": brk.get_resolution_display() if brk.resolution else "", "description": brk.description,
            "ours": format_money(brk.expected_amount, brk.expected_currency),
            "theirs": format_money(brk.actual_amount, brk.actual_currency),
            "difference": format_money(*difference) if difference else "-",
            "age": selectors.age_text(selectors.break_age(brk=brk)), "found_at": brk.created_at,
            "occurred_on": brk.occurred_on, "object_link": object_link(brk), "line_link": line_link(brk.line),
            "owner": brk.owner.get_username() if brk.owner_id else "",
            "lines": [{"line": c.obj, "why": c.why, "link": line_link(c.obj),
                       "gross": format_money(c.obj.gross, c.obj.currency),
                       "net": format_money(c.obj.net, c.obj.currency)}
                      for c in selectors.break_candidate_lines(brk=brk)],
            "orders": [{"order": c.obj, "why": c.why,
                        "link": admin_link("admin:payments_paymentorder_change", c.obj.pk, c.obj.pk),
                        "amount": format_money(c.obj.amount, c.obj.currency)}
                       for c in selectors.break_candidate_orders(brk=brk)],
            "notes": list(brk.notes.all()),
            "pending": pending, "pending_legs": legs_text(pending) if pending else "",
            "buttons": self._buttons(request, brk, pending),
        }

    def _buttons(self, request: HttpRequest, brk: Break, pending) -> list[tuple[str, str]]:
        def url(action: str, query: str = "") -> str:
            return reverse("admin:reconciliation_break_work", args=[brk.pk, action]) + query

        user, is_open = request.user, brk.state == BreakState.OPEN
        buttons = []
        if is_open and pending is None and user.has_perm("reconciliation.propose_correction") \
                and brk.break_class in CORRECTABLE_CLASSES:
            buttons.append(("Propose a correction (write-off or adjustment)", url("propose")))
        if is_open and pending is None and user.has_perm("reconciliation.resolve_break"):
            buttons.append(("Resolve without posting", url("resolve")))
        if pending is not None and user.has_perm("reconciliation.approve_correction") \
                and pending.proposed_by != actor_of(request):
            for decision, label in (("approve", "Approve and post"), ("reject", "Reject")):
                buttons.append((f"{label} correction #{pending.pk}",
                                reverse("admin:reconciliation_correction_decide", args=[pending.pk, decision])))
        if user.has_perm("reconciliation.work_break"):
            if is_open and brk.owner_id != user.pk:
                buttons.append(("Assign to me", url("assign", f"?owner={user.get_username()}")))
            if is_open:
                buttons.append(("Assign to someone", url("assign")))
            buttons.append(("Add a note", url("note")))
        return buttons

    def work_view(self, request: HttpRequest, object_id: str, action: str):
        work = WORK.get(action)
        if work is None:
            raise Http404(f"no action {action!r}")
        brk = get_object_or_404(Break.objects.select_related("line", "line__file", "owner"), pk=object_id)
        back = reverse("admin:reconciliation_break_change", args=[brk.pk])
        if not self.has_view_permission(request, brk) or not request.user.has_perm(work.permission):
            return forbidden(request, self.admin_site, permission=work.permission, what=work.title.lower(),
                             back=back)
        initial = {"owner": request.GET.get("owner", "")} if action == "assign" else {}
        form = work.form_class(request.POST or None, initial=initial)
        status = 200
        if request.method == "POST":
            if form.is_valid():
                try:
                    logged, message = work.apply(brk, form.cleaned_data, request)
                except (ReconciliationError, InexactAmount, UnknownCurrency) as exc:
                    form.add_error(None, str(exc))
                else:
                    log_change(request, logged, message)
                    self.message_user(request, message, messages.SUCCESS)
                    return HttpResponseRedirect(back)
            status = 400
        notice = f"Break #{brk.pk} is {brk.state}: this action will be refused." \
            if work.open_only and brk.state != BreakState.OPEN else ""
        subjects = [Subject(f"Break #{brk.pk}", break_rows(brk))]
        return confirm(request, self, title=work.title, subjects=subjects, will=work.will(brk),
                       will_not=work.will_not(brk), form=form, submit=work.submit, back=back, status=status,
                       notice=notice)

    # -- bulk actions on the queue ----------------------------------------------------------------------------
    def has_resolve_permission(self, request) -> bool:
        return request.user.has_perm("reconciliation.resolve_break")

    def has_propose_correction_permission(self, request) -> bool:
        return request.user.has_perm("reconciliation.propose_correction")

    def _bulk(self, request, queryset, action_name: str):
        """The changelist action as the single-break page does it, for each selected break: one confirmation
        page (the breaks, what it will and will not do, the form), then the service per break, each success
        written to the admin log."""
        work = WORK[action_name]
        breaks = list(queryset.select_related("line", "line__file", "owner").order_by("pk"))
        form = work.form_class(request.POST if request.POST.get("confirmed") else None)
        if request.POST.get("confirmed") and form.is_valid():
            outcomes = []
            for brk in breaks:
                try:
                    logged, message = work.apply(brk, form.cleaned_data, request)
                except (ReconciliationError, InexactAmount, UnknownCurrency) as exc:
                    outcomes.append(f"{brk}: not done ({exc})")
                    continue
                log_change(request, logged, message)
                outcomes.append(f"{brk}: {message}")
            self.message_user(request, "; ".join(outcomes), messages.SUCCESS)
            return None
        action = {"resolve": "resolve_breaks", "propose": "propose_correction"}[action_name]
        hidden = [("action", action), ("confirmed", "1"), *(("_selected_action", brk.pk) for brk in breaks)]
        will = [f"For each of the {len(breaks)} breaks below: " + line for line in work.will(breaks[0])] \
            if breaks else []
        return confirm(request, self, title=f"{work.title}: {len(breaks)} selected", will=will,
                       will_not=work.will_not(breaks[0]) if breaks else [],
                       subjects=[Subject(f"Break #{brk.pk}", break_rows(brk)) for brk in breaks], form=form,
                       submit=work.submit, back=reverse("admin:reconciliation_break_changelist"), hidden=hidden)

    @admin.action(description="Resolve the selected breaks (asks for a reason)", permissions=["resolve"])
    def resolve_breaks(self, request, queryset):
        return self._bulk(request, queryset, "resolve")

    @admin.action(description="Propose a correction: an adjusting posting, once another operator approves",
                  permissions=["propose_correction"])
    def propose_correction(self, request, queryset):
        return self._bulk(request, queryset, "propose")

    @admin.action(description="Export the selected breaks (CSV)")
    def export_csv(self, request, queryset):
        from . import _csv_response

        return _csv_response(selectors.break_export_rows(breaks=queryset), "breaks.csv")

