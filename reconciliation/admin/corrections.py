"""The approvals list: corrections proposed on a break by one operator, approved (posted) or rejected by
another with ``approve_correction``, each decision on a confirmation page asking for a reason and written to the
admin log. Proposing is on the break (``breaks.BreakAdmin``)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import Http404, HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from core.admin_base import ReadOnlyAdmin, TransitionInline
from reconciliation.exceptions import ReconciliationError
from reconciliation.forms import ReasonForm
from reconciliation.models import Correction, CorrectionTransition
from reconciliation.services import ADJUSTMENTS, correction_approve, correction_reject

from .pages import Subject, actor_of, break_rows, confirm, correction_rows, forbidden, legs_text, log_change


@dataclass(frozen=True)
class Decision:
    """Approving or rejecting a correction: its service, its page's words, what it will and will not do."""

    service: Callable[..., Correction]
    title: str
    submit: str
    done: str
    will: Callable[[Correction], list[str]]
    will_not: Callable[[Correction], list[str]]


DECISIONS = {
    "approve": Decision(
        correction_approve, "Approve and post the correction", "Approve and post", "approved and posted",
        lambda c: [f"Post these legs to the ledger, once, under the key correction:{c.pk}: {legs_text(c)}.",
                   f"Resolve break #{c.brk_id} as {ADJUSTMENTS[c.adjustment].resolution.label}, in the same"
                   " transaction, with your name and reason in its audit trail."],
        lambda c: ["Let the operator who proposed it approve it (maker-checker: another operator must).",
                   "Post twice: a retried or repeated approval finds the posting already made.",
                   "Change the legs: what was proposed is exactly what is posted.",
                   "Move any seller's wallet or call the PSP."]),
    "reject": Decision(
        correction_reject, "Reject the correction", "Reject", "rejected",
        lambda c: ["Mark the correction rejected, with your name and reason.",
                   f"Leave break #{c.brk_id} open, for another proposal or a resolution."],
        lambda c: ["Post anything to the ledger.", "Resolve the break."]),
}


class CorrectionInline(admin.TabularInline):
    model = Correction
    fields = ("correction_link", "state", "adjustment", "legs", "proposed_by", "proposed_at", "decided_by",
              "decided_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "corrections (posted once another operator approves)"

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="Correction")
    def correction_link(self, obj: Correction) -> str:
        return format_html('<a href="{}">#{}</a>', reverse("admin:reconciliation_correction_change", args=[obj.pk]),
                           obj.pk)

    @admin.display(description="Postings")
    def legs(self, obj: Correction) -> str:
        return legs_text(obj)


class CorrectionTransitionInline(TransitionInline):
    model = CorrectionTransition


class CorrectionStateFilter(admin.SimpleListFilter):
    """The approvals list by default: the corrections still proposed."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [*Correction._meta.get_field("state").choices, ("all", "all")]

    def choices(self, changelist):
        value = self.value() or "proposed"
        for lookup, title in self.lookup_choices:
            yield {"selected": value == str(lookup), "query_string": changelist.get_query_string(
                {self.parameter_name: lookup}), "display": title}

    def queryset(self, request, queryset):
        value = self.value() or "proposed"
        return queryset if value == "all" else queryset.filter(state=value)


@admin.register(Correction)
class CorrectionAdmin(ReadOnlyAdmin):
    """The approvals list: corrections proposed by one operator, approved or rejected by another."""

    # Fits beside the navigation and the filters at 1440 px: the adjustment is read from its legs.
    list_display = ("id", "break_link", "state", "amount", "legs", "proposed", "decided")
    list_filter = (CorrectionStateFilter, "adjustment", "proposed_at")
    search_fields = ("proposed_by", "decided_by", "reason", "posting_key")
    list_select_related = ("brk",)
    readonly_fields = ("break_link", "state", "adjustment", "amount", "legs", "reason", "proposed_by", "proposed_at",
                       "decided_by", "decided_at", "decision_reason", "posting_key")
    exclude = ("brk", "entries", "currency")
    inlines = [CorrectionTransitionInline]
    actions = ["approve_corrections", "reject_corrections"]

    @admin.display(description="Break")
    def break_link(self, obj: Correction) -> str:
        return format_html('<a href="{}">{}</a>', reverse("admin:reconciliation_break_change", args=[obj.brk_id]),
                           obj.brk)

    @admin.display(description="Postings")
    def legs(self, obj: Correction) -> str:
        return legs_text(obj)

    @admin.display(description="Proposed", ordering="proposed_at")
    def proposed(self, obj: Correction) -> str:
        return f"{obj.proposed_by}, {obj.proposed_at:%Y-%m-%d %H:%M}"

    @admin.display(description="Decided", ordering="decided_at")
    def decided(self, obj: Correction) -> str:
        return f"{obj.decided_by}, {obj.decided_at:%Y-%m-%d %H:%M}" if obj.decided_at else "-"

    def has_approve_correction_permission(self, request) -> bool:
        return request.user.has_perm("reconciliation.approve_correction")

    def get_urls(self):
        return [path("<path:object_id>/decide/<str:decision>/", self.admin_site.admin_view(self.decide_view),
                     name="reconciliation_correction_decide"), *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        correction = self.get_object(request, unquote(object_id))  # None for an id that is no correction's
        decide = []
        if correction is not None and correction.state == "proposed" \
                and request.user.has_perm("reconciliation.approve_correction"):
            decide = [(DECISIONS[d].submit, reverse("admin:reconciliation_correction_decide", args=[correction.pk, d]))
                      for d in DECISIONS]
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "decide": decide})

    def _apply(self, request, correction: Correction, decision: str, reason: str) -> str:
        DECISIONS[decision].service(correction_id=correction.pk, reason=reason, actor=actor_of(request))
        message = f"Correction #{correction.pk} of break #{correction.brk_id} {DECISIONS[decision].done}: {reason}"
        log_change(request, correction, message)
        return message

    def decide_view(self, request: HttpRequest, object_id: str, decision: str):
        """One correction approved or rejected, from its page or the break's: a confirmation page first."""
        if decision not in DECISIONS:
            raise Http404(f"no decision {decision!r}")
        correction = get_object_or_404(Correction.objects.select_related("brk", "brk__line", "brk__line__file",
                                                                         "brk__owner"), pk=object_id)
        back = reverse("admin:reconciliation_break_change", args=[correction.brk_id])
        chosen = DECISIONS[decision]
        if not request.user.has_perm("reconciliation.approve_correction"):
            return forbidden(request, self.admin_site, permission="reconciliation.approve_correction",
                             what=chosen.title.lower(), back=back)
        form = ReasonForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                message = self._apply(request, correction, decision, form.cleaned_data["reason"])
            except ReconciliationError as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(request, message, messages.SUCCESS)
                return HttpResponseRedirect(back)
        notice = ("You proposed this correction: another operator must approve it."
                  if correction.proposed_by == actor_of(request) and decision == "approve" else "")
        subjects = [Subject(f"Correction #{correction.pk}", correction_rows(correction)),
                    Subject(f"Its break, #{correction.brk_id}", break_rows(correction.brk))]
        return confirm(request, self, title=chosen.title, subjects=subjects, will=chosen.will(correction),
                       will_not=chosen.will_not(correction), form=form, submit=chosen.submit, back=back, notice=notice,
                       status=400 if request.method == "POST" else 200)

    def _decide(self, request, queryset, decision: str):
        """The changelist action: one confirmation page for the selected corrections, then each decided."""
        corrections = list(queryset.select_related("brk", "brk__line", "brk__line__file", "brk__owner")
                           .order_by("pk"))
        chosen = DECISIONS[decision]
        form = ReasonForm(request.POST if request.POST.get("confirmed") else None)
        if request.POST.get("confirmed") and form.is_valid():
            outcomes = []
            for correction in corrections:
                try:
                    self._apply(request, correction, decision, form.cleaned_data["reason"])
                except ReconciliationError as exc:
                    outcomes.append(f"{correction}: not {chosen.done} ({exc})")
                else:
                    outcomes.append(f"{correction}: {chosen.done}")
            self.message_user(request, "; ".join(outcomes), messages.SUCCESS)
            return None
        action = f"{decision}_corrections"
        hidden = [("action", action), ("confirmed", "1"), *(("_selected_action", c.pk) for c in corrections)]
        subjects = [Subject(f"Correction #{c.pk}", correction_rows(c)) for c in corrections]
        return confirm(request, self, title=f"{chosen.title}: {len(corrections)} selected", subjects=subjects,
                       will=[line for c in corrections for line in chosen.will(c)],
                       will_not=chosen.will_not(corrections[0]) if corrections else [], form=form,
                       submit=chosen.submit,
                       back=reverse("admin:reconciliation_correction_changelist"), hidden=hidden)

    @admin.action(description="Approve the selected corrections: post them (asks for a reason)",
                  permissions=["approve_correction"])
    def approve_corrections(self, request, queryset):
        return self._decide(request, queryset, "approve")

    @admin.action(description="Reject the selected corrections: nothing is posted (asks for a reason)",
                  permissions=["approve_correction"])
    def reject_corrections(self, request, queryset):
        return self._decide(request, queryset, "reject")
