"""Operator console for payments: look and search; money and states are read-only."""
from datetime import UTC

from django.contrib import admin
from django.db.models import Count
from django.urls import path, reverse
from django.utils.html import format_html

from core.admin_base import (
    AmountColumn,
    ReadOnlyAdmin,
    ReadOnlyInline,
    TransitionInline,
    action_with_reason,
    json_table,
)
from payments import admin_console, selectors, services
from payments.exceptions import DoubleChargeRefundFailed, ReplayNotPossible
from payments.models import (
    PaymentEvent,
    PaymentEventTransition,
    PaymentOrder,
    PaymentOrderState,
    PaymentOrderTransition,
    Refund,
    RefundState,
    RefundTransition,
    Seller,
    SuspectedDoubleCharge,
    WebhookEvent,
)
from payments.psp.base import PSPError
from payments.services.double_charges import suspected_double_charge_dismiss, suspected_double_charge_refund
from payments.services.refunds import refund_refresh, refund_replay_dead_letter


@admin.register(Seller)
class SellerAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "external_reference", "client", "status", "created_at")
    search_fields = ("id", "name", "external_reference")
    list_filter = ("status", "client")
    readonly_fields = ("id", "client", "created_at")
    fields = ("id", "client", "name", "external_reference", "status", "created_at")

    def has_add_permission(self, request):
        return False  # sellers are onboarded through the API

    def has_delete_permission(self, request, obj=None):
        return False


class PaymentOrderInline(AmountColumn, ReadOnlyInline):
    model = PaymentOrder
    fields = ("id", "seller", "amount_display", "state", "psp_reference", "failure_code", "timeline")
    readonly_fields = fields
    show_change_link = True

    @admin.display(description="Timeline")
    def timeline(self, obj):
        return format_html('<a href="{}">timeline</a>', reverse("admin:payments_paymentorder_timeline", args=[obj.pk]))


class PaymentEventTransitionInline(TransitionInline):
    model = PaymentEventTransition


class _TimelineAdmin:
    """A changelist and change page that link each row to its timeline (``payments.admin_console``), and the
    one search box that finds a payment by anything an operator knows of it (``payments.selectors``)."""

    search_fields = ("id",)  # shows the box; get_search_results does the searching
    search_help_text = ("Our ids, pi_/ch_/re_ references, buyer reference or email, seller name, an amount "
                        "(49.99 or minor units), a settlement reference")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")

    def get_urls(self):
        name = f"payments_{self.model._meta.model_name}_timeline"
        return [path("<path:object_id>/timeline/", self.admin_site.admin_view(self.timeline_view), name=name),
                *super().get_urls()]

    @admin.display(description="Created (UTC)", ordering="created_at")
    def created(self, obj):
        return obj.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")

    @admin.display(description="Timeline")
    def timeline_link(self, obj):
        url = reverse(f"admin:payments_{self.model._meta.model_name}_timeline", args=[obj.pk])
        return format_html('<a href="{}">timeline</a>', url)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        psp_references, object_ids = admin_console.settlement_targets(term)
        return self.search(queryset, term, psp_references, object_ids), False  # EXISTS only: no duplicates


@admin.register(PaymentEvent)
class PaymentEventAdmin(_TimelineAdmin, ReadOnlyAdmin):
    """Read-only; the state is derived from the orders (payments/services/checkout_outcome.py)."""

    list_display = ("id", "created", "buyer_reference", "buyer_email", "order_count", "state_badge",
                    "completed", "timeline_link")
    list_filter = ("state", "client", admin_console.CreatedRangeFilter, "completed_at")
    readonly_fields = ("state", "completed_at", "failure_reason", "orders_succeeded", "orders_failed")
    inlines = [PaymentOrderInline, PaymentEventTransitionInline]

    def get_queryset(self, request):
        # distinct: a search or filter that joins the orders must not multiply the count.
        return super().get_queryset(request).annotate(order_total=Count("orders", distinct=True))

    @admin.display(description="Completed (UTC)", ordering="completed_at")
    def completed(self, obj):
        return obj.completed_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if obj.completed_at else "-"

    @admin.display(description="Orders", ordering="order_total")
    def order_count(self, obj):
        return obj.order_total

    @admin.display(description="State", ordering="state")
    def state_badge(self, obj):
        return admin_console.state_badge(obj.state, obj.get_state_display())

    def search(self, queryset, term, psp_references, object_ids):
        return selectors.payment_events_search(events=queryset, query=term, psp_references=psp_references,
                                               object_ids=object_ids)

    def timeline_view(self, request, object_id):
        return admin_console.event_timeline_view(self, request, object_id)


class PaymentOrderTransitionInline(TransitionInline):
    model = PaymentOrderTransition


REPLAY_WILL = ("For each order below, asks the PSP first what became of it under its idempotency key: a payment "
               "the PSP already made is recorded (captured, posted to the ledger and the seller's wallet); "
               "otherwise the order is sent to the PSP again, under the same idempotency key.")
REPLAY_WILL_NOT = ("It cannot charge a buyer twice: the PSP answers a resend under the same key with the first "
                   "payment. A new key is used only when the PSP saved a failure against the old one and its search "
                   "shows no payment for the order. It never changes an amount, and does nothing to an order that "
                   "is no longer dead-lettered.")


def _not_dead_letter(order) -> str:
    if order.state == PaymentOrderState.DEAD_LETTER:
        return ""
    return f"it is {order.get_state_display()}: only dead-lettered orders are replayed"


@admin.register(PaymentOrder)
class PaymentOrderAdmin(AmountColumn, _TimelineAdmin, ReadOnlyAdmin):
    list_display = ("id", "amount_display", "state_badge", "psp_reference_cut", "calls", "failure_short",
                    "seller_name", "created", "timeline_link")
    list_filter = ("state", "currency", admin_console.AmountRangeFilter, admin_console.CreatedRangeFilter,
                   admin_console.FailureCodeFilter)
    list_select_related = ("seller",)
    inlines = [PaymentOrderTransitionInline]
    actions = ["replay_dead_letter"]

    @admin.action(description="Send dead-lettered orders back to the PSP (asks for a reason)",
                  permissions=["replay"])
    def replay_dead_letter(self, request, queryset):
        def replay(order, data):
            try:
                return services.payment_order_replay_dead_letter(
                    payment_order_id=order.pk, operator=request.user.get_username(), reason=data["reason"])
            except ReplayNotPossible as exc:
                return f"not replayed: {exc}"

        return action_with_reason(
            self, request, queryset.select_related("seller").order_by("created_at", "id"),
            action_name="replay_dead_letter", title="Replay dead-lettered payment orders", apply=replay,
            describe=admin_console.order_action_row, exclude=_not_dead_letter, will=REPLAY_WILL,
            will_not=REPLAY_WILL_NOT)

    def has_replay_permission(self, request):
        return request.user.has_perm("payments.replay_paymentorder")

    @admin.display(description="State", ordering="state")
    def state_badge(self, obj):
        return admin_console.state_badge(obj.state, obj.get_state_display())

    @admin.display(description="Failure", ordering="failure_code")
    def failure_short(self, obj):
        if not obj.failure_code:
            return "-"
        return format_html('<span title="{}">{}</span>', obj.failure_message, obj.failure_code)

    @admin.display(description="Seller", ordering="seller__name")
    def seller_name(self, obj):
        return format_html('<span title="{}">{}</span>', obj.seller.name, obj.seller.name)

    @admin.display(description="PSP reference", ordering="psp_reference")
    def psp_reference_cut(self, obj):
        return format_html('<span title="{}">{}</span>', obj.psp_reference, obj.psp_reference or "-")

    @admin.display(description="Calls", ordering="attempts")
    def calls(self, obj):
        """Calls made to the PSP (attempts)."""
        return obj.attempts

    def search(self, queryset, term, psp_references, object_ids):
        return selectors.payment_orders_search(orders=queryset, query=term, psp_references=psp_references,
                                               object_ids=object_ids)

    def timeline_view(self, request, object_id):
        return admin_console.order_timeline_view(self, request, object_id)


@admin.register(PaymentOrderTransition)
class PaymentOrderTransitionAdmin(ReadOnlyAdmin):
    list_display = ("payment_order", "from_state", "to_state", "actor", "reason", "created_at")
    search_fields = ("payment_order__id", "actor", "reason")
    list_filter = ("to_state", "from_state", "created_at")


class RefundTransitionInline(TransitionInline):
    model = RefundTransition


@admin.register(Refund)
class RefundAdmin(AmountColumn, ReadOnlyAdmin):
    list_display = ("id", "payment_order", "amount_display", "state", "psp_reference", "attempts", "failure_code",
                    "created_at")
    search_fields = ("id", "payment_order__id", "psp_reference")
    list_filter = ("state", "currency", "created_at")
    inlines = [RefundTransitionInline]
    actions = ["replay_dead_letter", "ask_psp"]

    @admin.action(description="Ask the PSP whether succeeded refunds failed since (asks for a reason)",
                  permissions=["replay"])
    def ask_psp(self, request, queryset):
        def ask(refund, data):
            try:
                return refund_refresh(refund_id=refund.pk, actor=f"operator:{request.user.get_username()}")
            except PSPError as exc:
                return f"not asked: the PSP could not be reached ({exc})"

        return action_with_reason(
            self, request, queryset.select_related("payment_order__seller").order_by("created_at", "id"),
            action_name="ask_psp", title="Ask the PSP about succeeded refunds", apply=ask,
            describe=admin_console.refund_action_row,
            exclude=lambda refund: "" if refund.state == RefundState.SUCCEEDED else (
                f"it is {refund.get_state_display()}: only succeeded refunds are asked about"),
            will=("For each refund below, asks the PSP for it: one the buyer's bank sent back (failed after it "
                  "succeeded) is reversed as its webhook would: its posting reversed, the seller's wallet credited "
                  "back, its amount refundable again."),
            will_not="Any other answer changes nothing; a refund is never reversed twice (its reversal's key).")

    @admin.action(description="Send dead-lettered refunds back (asks the PSP first; asks for a reason)",
                  permissions=["replay"])
    def replay_dead_letter(self, request, queryset):
        def replay(refund, data):
            try:
                return refund_replay_dead_letter(refund_id=refund.pk, operator=request.user.get_username(),
                                                 reason=data["reason"])
            except PSPError as exc:
                return f"not replayed: the PSP could not be asked ({exc})"

        def not_dead_letter(refund):
            return "" if refund.state == RefundState.DEAD_LETTER else (
                f"it is {refund.get_state_display()}: only dead-lettered refunds are replayed")

        return action_with_reason(
            self, request, queryset.select_related("payment_order__seller").order_by("created_at", "id"),
            action_name="replay_dead_letter", title="Replay dead-lettered refunds", apply=replay,
            describe=admin_console.refund_action_row, exclude=not_dead_letter,
            will=("For each refund below, asks the PSP first what became of it: a refund the PSP made is recorded "
                  "(the reversal posted to the ledger and the seller's wallet); otherwise it is sent again under "
                  "its own idempotency key."),
            will_not=("It cannot refund twice (same idempotency key) and never changes an amount; the amount stays "
                      "reserved on the order until the PSP answers."))

    def has_replay_permission(self, request):
        return request.user.has_perm("payments.replay_refund")


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "type", "object_id", "status_badge", "deliveries", "attempts", "received_at", "processed_at")
    search_fields = ("id", "object_id", "type")
    list_filter = ("status", "type", "received_at")
    fields = ("id", "type", "object_id", "status", "deliveries", "attempts", "last_error", "received_at",
              "processed_at", "payload_table")
    actions = ["reprocess"]

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj):
        return admin_console.state_badge(obj.status, obj.get_status_display())

    @admin.display(description="Payload")
    def payload_table(self, obj):
        return json_table(obj.payload)

    @admin.action(description="Re-run processing of the selected events (asks for a reason)",
                  permissions=["reprocess"])
    def reprocess(self, request, queryset):
        actor = f"operator:{request.user.get_username()}"

        def rerun(event, data):
            return services.webhook_event_process(event_id=event.id, actor=actor)

        def done_already(event):
            if event.status in (WebhookEvent.Status.PROCESSED, WebhookEvent.Status.IGNORED):
                return f"already {event.get_status_display().lower()}: re-running would change nothing"
            return ""

        return action_with_reason(
            self, request, queryset.order_by("received_at", "id"), action_name="reprocess",
            title="Re-run processing of PSP webhook events", apply=rerun, describe=admin_console.webhook_action_row,
            exclude=done_already,
            will=("Applies each stored event below again, as if the PSP had just sent it: the same services the "
                  "webhook calls, which record what the PSP said about the order or refund."),
            will_not=("It does not call the PSP, and it never moves a decided order or refund nor posts money twice: "
                      "each posting has its idempotency key."))

    def has_reprocess_permission(self, request):
        # A custom permission (ensured and given to Payment operators by create_operator_groups):
        # the action is neither offered nor run without it.
        return request.user.has_perm("payments.reprocess_webhookevent")


def _not_open(row) -> str:
    return "" if row.state == SuspectedDoubleCharge.State.OPEN else f"already {row.get_state_display().lower()}"


@admin.register(SuspectedDoubleCharge)
class SuspectedDoubleChargeAdmin(AmountColumn, ReadOnlyAdmin):
    list_display = ("psp_reference", "payment_order", "kind", "amount_display", "state", "detected_by", "detected_at",
                    "resolved_by", "refund_psp_reference")
    list_filter = ("state", "kind", "currency")
    search_fields = ("psp_reference", "payment_order__id", "refund_psp_reference")
    actions = ["refund_extra_charge", "dismiss"]

    @admin.action(description="Refund the extra charge in full at the PSP (asks for a reason)", permissions=["refund"])
    def refund_extra_charge(self, request, queryset):
        def refund(row, data):
            try:
                return suspected_double_charge_refund(suspected_id=row.pk, operator=request.user.get_username(),
                                                      reason=data["reason"])
            except (DoubleChargeRefundFailed, PSPError) as exc:
                return f"not refunded: {exc}"

        return action_with_reason(
            self, request, queryset.select_related("payment_order__seller"), action_name="refund_extra_charge",
            title="Refund suspected double charges", apply=refund, describe=admin_console.double_charge_action_row,
            exclude=_not_open,
            will=("Refunds each extra charge below in full at the PSP (the PaymentIntent shown, not the order's "
                  "own), under one idempotency key per charge, and closes it."),
            will_not=("It posts nothing to the ledger or wallets (the books never held this money) and does not "
                      "touch the order's own payment."))

    @admin.action(description="Dismiss: not a double charge (asks for a reason)", permissions=["refund"])
    def dismiss(self, request, queryset):
        def close(row, data):
            return suspected_double_charge_dismiss(suspected_id=row.pk, operator=request.user.get_username(),
                                                   reason=data["reason"])

        return action_with_reason(
            self, request, queryset.select_related("payment_order__seller"), action_name="dismiss",
            title="Dismiss suspected double charges", apply=close, describe=admin_console.double_charge_action_row,
            exclude=_not_open, will="Closes each suspicion below as not a double charge, with your reason.",
            will_not="It refunds nothing and posts nothing.")

    def has_refund_permission(self, request):
        return request.user.has_perm("payments.refund_suspecteddoublecharge")


@admin.register(RefundTransition)
class RefundTransitionAdmin(ReadOnlyAdmin):
    list_display = ("refund", "from_state", "to_state", "actor", "reason", "created_at")
    search_fields = ("refund__id", "refund__payment_order__id", "actor", "reason")
    list_filter = ("to_state", "created_at")
