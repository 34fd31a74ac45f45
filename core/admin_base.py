from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """Operators look, never edit: money moves only through services."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
