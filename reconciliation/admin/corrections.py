"""The approvals list: corrections proposed on a break by one operator, approved (posted) or rejected by
another with ``approve_correction``, each decision asking for a reason. Proposing is an action on the break
(``BreakAdmin.propose_correction``)."""
from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from core.admin_base import ReadOnlyAdmin, action_with_reason
from core.money import format_money
from reconciliation.exceptions import ReconciliationError
from reconciliation.models import Correction, CorrectionTransition
from reconciliation.services import correction_approve, correction_reject


def _actor(request: HttpRequest) -> str:
    return f"operator:{request.user.get_username()}"


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


def legs_text(correction: Correction) -> str:
    return "; ".join(f"{code} {format_money(amount, currency)}" for code, currency, amount in correction.entries)


class CorrectionTransitionInline(admin.TabularInline):
    model = CorrectionTransition
    fields = ("created_at", "from_state", "to_state", "actor", "reason")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


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

    list_display = ("id", "break_link", "state", "adjustment", "amount", "legs", "proposed_by", "proposed_at",
                    "decided_by", "decided_at")
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

    def has_approve_correction_permission(self, request) -> bool:
        return request.user.has_perm("reconciliation.approve_correction")

    def _decide(self, request, queryset, *, service, action_name: str, title: str, done: str):
        def decide(correction, data):
            try:
                service(correction_id=correction.pk, reason=data["reason"], actor=_actor(request))
            except ReconciliationError as exc:
                return f"not {done} ({exc})"
            return done

        return action_with_reason(self, request, queryset.order_by("pk"), action_name=action_name, title=title,
                                  apply=decide)

    @admin.action(description="Approve the selected corrections: post them (asks for a reason)",
                  permissions=["approve_correction"])
    def approve_corrections(self, request, queryset):
        return self._decide(request, queryset, service=correction_approve, action_name="approve_corrections",
                            title="Approve corrections", done="approved and posted")

    @admin.action(description="Reject the selected corrections: nothing is posted (asks for a reason)",
                  permissions=["approve_correction"])
    def reject_corrections(self, request, queryset):
        return self._decide(request, queryset, service=correction_reject, action_name="reject_corrections",
                            title="Reject corrections", done="rejected")
