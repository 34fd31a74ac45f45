"""Operator console for outbound webhooks: endpoints, events, deliveries with their attempt log, and
redelivery (asks a reason; needs ``notifications.redeliver_delivery``). Secrets are never shown."""
from django.contrib import admin

from core.admin_base import ReadOnlyAdmin, ReadOnlyInline, action_with_reason, json_table
from notifications import services
from notifications.models import Delivery, DeliveryAttempt, OutboundEvent, WebhookEndpoint


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdmin):
    list_display = ("id", "client", "url", "status", "consecutive_failures", "created_at")
    list_filter = ("status",)
    search_fields = ("id", "url", "client__id")
    exclude = ("secret",)


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ("attempted_at", "actor", "status_code", "error", "duration_ms", "response_body")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class DeliveryInline(ReadOnlyInline):
    model = Delivery
    fields = ("endpoint", "status", "attempts", "last_status_code", "next_attempt_at", "delivered_at")
    readonly_fields = fields
    show_change_link = True


@admin.register(OutboundEvent)
class OutboundEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "type", "client", "created_at")
    list_filter = ("type", "created_at")
    search_fields = ("id", "client__id")
    fields = ("id", "type", "client", "created_at", "data_table")
    inlines = [DeliveryInline]

    @admin.display(description="Data")
    def data_table(self, obj):
        return json_table(obj.data)


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ("id", "event", "endpoint", "status", "attempts", "last_status_code", "next_attempt_at",
                    "delivered_at")
    list_filter = ("status", "event__type", "created_at")
    search_fields = ("event__id", "endpoint__id", "endpoint__url")
    list_select_related = ("event", "endpoint")
    inlines = [DeliveryAttemptInline]
    actions = ["redeliver"]

    @admin.action(description="Deliver again (asks for a reason)", permissions=["redeliver"])
    def redeliver(self, request, queryset):
        def again(delivery, data):
            services.delivery_redeliver(delivery_id=delivery.pk, operator=request.user.get_username(),
                                        reason=data["reason"])
            return "queued"

        return action_with_reason(
            self, request, queryset.select_related("event", "endpoint"), action_name="redeliver",
            title="Deliver outbound webhooks again", apply=again,
            describe=lambda d: {"Delivery": d.pk, "Event": f"{d.event_id} {d.event.type}", "Endpoint": d.endpoint.url,
                                "Status": d.get_status_display(), "Attempts": d.attempts,
                                "Last answer": d.last_status_code or "-"},
            will=("Sends each delivery below to the merchant's endpoint again, now, with its attempts counted "
                  "afresh; the attempt log keeps every earlier try."),
            will_not="It moves no money and changes nothing in our books: the merchant receives the same event again.")

    def has_redeliver_permission(self, request):
        return request.user.has_perm("notifications.redeliver_delivery")
