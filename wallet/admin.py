from django.contrib import admin

from core.admin_base import ReadOnlyAdmin
from core.money import format_money
from wallet.models import Wallet, WalletMovement


@admin.register(Wallet)
class WalletAdmin(ReadOnlyAdmin):
    list_display = ("owner_id", "currency", "balance_display", "updated_at")
    search_fields = ("owner_id",)
    list_filter = ("currency",)

    @admin.display(description="Balance", ordering="balance")
    def balance_display(self, obj):
        return format_money(obj.balance, obj.currency)


@admin.register(WalletMovement)
class WalletMovementAdmin(ReadOnlyAdmin):
    list_display = ("id", "wallet", "amount", "reason", "idempotency_key", "created_at")
    search_fields = ("wallet__owner_id", "idempotency_key", "reason")
    list_filter = ("wallet__currency", "created_at")
    list_select_related = ("wallet",)
