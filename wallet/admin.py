"""Sellers' wallets in the admin, read-only: a wallet's page shows its balance in major units with its currency,
its movements a page at a time, and links to the seller and the seller's ledger account (by URL name: wallet
imports no other app; the admin site's ``owner_names`` names the seller)."""
from django.contrib import admin
from django.db.models import Q
from django.urls import NoReverseMatch, reverse

from core.admin_base import OwnerNamesMixin, ReadOnlyAdmin, page_of
from core.money import format_money
from wallet import selectors
from wallet.models import Wallet, WalletMovement


def _url(name: str, *args) -> str:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


@admin.register(Wallet)
class WalletAdmin(OwnerNamesMixin, ReadOnlyAdmin):
    list_display = ("seller", "owner_id", "currency_code", "balance_display", "updated_at")
    search_fields = ("owner_id",)
    search_help_text = "A seller's id or name"
    list_filter = ("currency",)
    fields = ("owner_id", "currency", "balance_display", "updated_at")
    change_form_template = "admin/wallet/wallet/change_form.html"

    def get_queryset(self, request):
        return super().get_queryset(request).with_total()  # the row's balance and its slots'

    def owner_ids_of(self, obj):
        return [obj.owner_id]

    def owner_search_q(self, owner_ids):
        return Q(owner_id__in=owner_ids)

    @admin.display(description="Seller", ordering="owner_id")
    def seller(self, obj):
        return self.owner_name(obj, obj.owner_id) or obj.owner_id

    @admin.display(description="Currency", ordering="currency")
    def currency_code(self, obj):
        return obj.currency.upper()

    @admin.display(description="Balance", ordering="total")
    def balance_display(self, obj):
        return format_money(obj.total, obj.currency)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        wallet = self.get_object(request, object_id)
        context = {}
        if wallet is not None:
            self.owner_names_fill([wallet])
            page = page_of(request, selectors.wallet_movements_of(wallet_id=wallet.pk))
            context = {
                "wallet_balance": format_money(wallet.total, wallet.currency),
                "seller_name": self.owner_name(wallet, wallet.owner_id) or wallet.owner_id,
                "seller_url": _url("admin:payments_seller_change", wallet.owner_id),
                "ledger_account_url": _url("admin:ledger_account_of_seller", wallet.owner_id),
                "movements_page": page,
                "movement_rows": [(m, format_money(m.amount, wallet.currency),
                                   format_money(m.reserve_amount, wallet.currency) if m.reserve_amount else "")
                                  for m in page],
            }
        return super().change_view(request, object_id, form_url, extra_context={**context, **(extra_context or {})})


@admin.register(WalletMovement)
class WalletMovementAdmin(ReadOnlyAdmin):
    list_display = ("id", "wallet", "amount", "reason", "idempotency_key", "created_at")
    search_fields = ("wallet__owner_id", "idempotency_key", "reason")
    list_filter = ("wallet__currency", "created_at")
    list_select_related = ("wallet",)
