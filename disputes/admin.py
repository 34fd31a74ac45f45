"""Operator console for disputes: the queue (evidence due soonest first, overdue flagged, those kept with a
problem), each dispute's audit rows and evidence notes, and its outcome. Money and states are read-only (the PSP
decides them); operators add notes and give a kept dispute a second look, each with their name."""
from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from core.admin_base import ReadOnlyAdmin, ReadOnlyInline, TransitionInline, action_with_reason

from . import services
from .exceptions import DisputeNotBookable, DisputeOrderUndecided
from .models import Dispute, DisputeNote, DisputeState, DisputeTransition


class DisputeTransitionInline(TransitionInline):
    model = DisputeTransition


class DisputeNoteInline(ReadOnlyInline):
    model = DisputeNote
    fields = ("created_at", "author", "text")
    readonly_fields = fields
    verbose_name_plural = "evidence notes"


class NoteForm(forms.Form):
    """The action's form: the note is the audit trail itself (each note a row with its author)."""

    reason = forms.CharField(label="Evidence note", max_length=5000,
                             widget=forms.Textarea(attrs={"rows": 5, "cols": 70}),
                             help_text="What was sent to the bank, what is missing, what the seller said.")


class QueueFilter(admin.SimpleListFilter):
    title = "queue"
    parameter_name = "queue"

    def lookups(self, request, model_admin):
        return [("open", "open (evidence or decision pending)"), ("overdue", "evidence overdue"),
                ("kept", "kept with a problem (nothing booked)")]

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.filter(state__in=[DisputeState.NEEDS_RESPONSE, DisputeState.UNDER_REVIEW])
        if self.value() == "overdue":
            return queryset.filter(state=DisputeState.NEEDS_RESPONSE, due_by__lt=timezone.now())
        if self.value() == "kept":
            return queryset.exclude(problem="")
        return queryset


@admin.register(Dispute)
class DisputeAdmin(ReadOnlyAdmin):
    money_fields = {"amount": "currency", "fee": "fee_currency"}
    list_display = ("id", "psp_dispute_id", "state", "due", "amount", "fee", "fee_payer", "seller", "order_link",
                    "problem", "source", "reason", "outcome")
    list_filter = (QueueFilter, "state", "problem", "source", "currency", "fee_payer")
    search_fields = ("id", "psp_dispute_id", "psp_charge_id", "psp_payment_reference", "payment_order__id",
                     "seller__id")
    list_select_related = ("seller",)
    ordering = ("due_by", "created_at")
    inlines = [DisputeNoteInline, DisputeTransitionInline]
    actions = ["add_note", "book_again"]
    fieldsets = [
        (None, {"fields": ("id", "psp_dispute_id", "state", "psp_status", "reason", "due", "outcome")}),
        ("Money", {"fields": ("amount", "fee", "fee_payer", "withdrawn_at", "reinstated_at", "closed_at")}),
        ("Charge", {"fields": ("order_link", "seller", "psp_payment_reference", "psp_charge_id", "source")}),
        ("Kept for an operator", {"fields": ("problem", "problem_detail")}),
    ]

    @admin.display(description="Evidence due", ordering="due_by")
    def due(self, obj):
        if obj.due_by is None:
            return "-"
        when = obj.due_by.strftime("%Y-%m-%d %H:%M")
        if obj.overdue:
            return format_html('<strong style="color:#ba2121">{} overdue</strong>', when)
        return when

    @admin.display(description="Order")
    def order_link(self, obj):
        if not obj.payment_order_id:
            return "-"
        return format_html('<a href="{}">{}</a>',
                           reverse("admin:payments_paymentorder_change", args=[obj.payment_order_id]),
                           obj.payment_order_id)

    @admin.display(description="Outcome")
    def outcome(self, obj):
        if obj.problem:
            return f"kept: {obj.get_problem_display()}; nothing booked"
        if obj.state == DisputeState.WON:
            return "won: amount and fee given back"
        if obj.state == DisputeState.LOST:
            return "lost: the buyer keeps the money"
        return "pending"

    @admin.action(description="Add an evidence note to the selected disputes", permissions=["note"])
    def add_note(self, request, queryset):
        author = f"operator:{request.user.get_username()}"

        def note(dispute, data):
            services.dispute_note_add(dispute_id=dispute.pk, author=author, text=data["reason"])
            return "note added"

        return action_with_reason(self, request, queryset, action_name="add_note", title="Add an evidence note",
                                  apply=note, form_class=NoteForm)

    @admin.action(description="Book the selected kept disputes after a second look (asks for a reason)",
                  permissions=["book"])
    def book_again(self, request, queryset):
        actor = f"operator:{request.user.get_username()}"

        def book(dispute, data):
            try:
                booked = services.dispute_book_retry(dispute_id=dispute.pk, actor=actor, reason=data["reason"])
            except (DisputeNotBookable, DisputeOrderUndecided) as exc:
                return f"not booked: {exc.message}"
            return "booked" if booked.booked else "nothing to book"

        return action_with_reason(self, request, queryset.exclude(problem=""), action_name="book_again",
                                  title="Book kept disputes", apply=book)

    def has_note_permission(self, request):
        return request.user.has_perm("disputes.add_disputenote")

    def has_book_permission(self, request):
        return request.user.has_perm("disputes.book_dispute")
