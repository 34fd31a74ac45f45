"""The ledger in the admin: everything read-only. Corrections are new, reversing postings."""
from django.contrib import admin
from django.db.models import Sum

from core.admin_base import ReadOnlyAdmin
from core.money import format_money
from ledger.models import Account, Entry, LedgerTransaction


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ("code", "name", "kind", "balances")
    search_fields = ("code", "name")
    list_filter = ("kind",)

    @admin.display(description="Balance (debit +)")
    def balances(self, obj):
        rows = obj.entries.values_list("currency").annotate(total=Sum("amount")).order_by("currency")
        return ", ".join(format_money(total, currency) for currency, total in rows) or "—"


class EntryInline(admin.TabularInline):
    model = Entry
    fields = ("account", "currency", "debit", "credit")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="Debit")
    def debit(self, obj):
        return format_money(obj.amount, obj.currency) if obj.amount > 0 else ""

    @admin.display(description="Credit")
    def credit(self, obj):
        return format_money(-obj.amount, obj.currency) if obj.amount < 0 else ""


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(ReadOnlyAdmin):
    list_display = ("id", "description", "reference", "idempotency_key", "occurred_at")
    search_fields = ("idempotency_key", "reference", "description")
    list_filter = ("entries__currency", "occurred_at")
    inlines = [EntryInline]


@admin.register(Entry)
class EntryAdmin(ReadOnlyAdmin):
    list_display = ("id", "transaction", "account", "currency", "amount")
    search_fields = ("transaction__idempotency_key", "transaction__reference", "account__code")
    list_filter = ("currency", "account__kind")
    list_select_related = ("transaction", "account")
