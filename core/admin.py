from django.contrib import admin

from core.models import ApiClient, IdempotencyRecord


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "key_prefix", "is_active", "created_at")
    search_fields = ("id", "name", "key_prefix")
    list_filter = ("is_active",)
    readonly_fields = ("id", "key_prefix", "key_hash", "created_at")
    fields = ("id", "name", "key_prefix", "key_hash", "is_active", "created_at")

    def has_add_permission(self, request):
        return False  # keys are made by `manage.py create_api_key`, which shows the key once


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(admin.ModelAdmin):
    list_display = ("key", "client", "request_method", "request_path", "status", "response_status", "created_at")
    search_fields = ("key", "client__id", "client__name")
    list_filter = ("status", "response_status")
    # A stored response may hold a secret shown once (a webhook endpoint's signing secret): never displayed.
    exclude = ("response_body",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # Nobody, superusers included: deleting a record re-opens its key, so a retried
        # checkout would charge again. Records expire through idempotency_keys_expire only.
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions
