"""The ledger in the admin: everything read-only. Corrections are new, reversing postings.

Seller accounts are named by the seller's name (the admin site's ``owner_names``: the ledger knows sellers only
by id); an account's page shows its balance per currency and its entries, a page at a time; a transaction's row
its amount, currency and accounts."""
from django.contrib import admin
from django.db.models import Prefetch, Q, Sum
from django.http import Http404
from django.shortcuts import redirect
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from core.admin_base import OwnerNamesMixin, ReadOnlyAdmin, page_of
from core.money import format_money
from ledger import accounts, selectors
from ledger.models import Account, Entry, LedgerTransaction


def seller_of(code: str) -> str:
    """The seller id a seller payable account is for, else ""."""
    return code.removeprefix(accounts.SELLER_PAYABLE_PREFIX) if code.startswith(accounts.SELLER_PAYABLE_PREFIX) else ""


def account_label(code: str, names: dict[str, str]) -> str:
    """``Payable to Alpha Books`` for a seller's account whose name is known, else the code."""
    seller = seller_of(code)
    if seller and names.get(seller):
        return f"Payable to {names[seller]}"
    return code


def _url(name: str, *args) -> str:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


@admin.register(Account)
class AccountAdmin(OwnerNamesMixin, ReadOnlyAdmin):
    list_display = ("display_name", "code_cut", "kind", "balances")
    search_fields = ("code", "name")
    search_help_text = "An account's code or name, or a seller's name"
    list_filter = ("kind",)
    fields = ("code", "name", "kind", "created_at")
    change_form_template = "admin/ledger/account/change_form.html"

    def owner_ids_of(self, obj):
        return [seller_of(obj.code)]

    def owner_search_q(self, owner_ids):
        return Q(code__in=[accounts.seller_payable(owner) for owner in owner_ids])

    def get_urls(self):
        return [path("of-seller/<str:seller_id>/", self.admin_site.admin_view(self.of_seller_view),
                     name="ledger_account_of_seller"), *super().get_urls()]

    def of_seller_view(self, request, seller_id: str):
        """A seller's payable account by seller id (the wallet's page links here: wallet imports no ledger)."""
        account = Account.objects.filter(code=accounts.seller_payable(seller_id)).first()
        if account is None or not self.has_view_permission(request, account):
            raise Http404(f"no ledger account for seller {seller_id}")
        return redirect("admin:ledger_account_change", account.pk)

    @admin.display(description="Account", ordering="code")
    def display_name(self, obj):
        if seller_of(obj.code):
            return account_label(obj.code, getattr(obj, "owner_names", {}))
        return obj.name

    @admin.display(description="Code", ordering="code")
    def code_cut(self, obj):
        return format_html('<span title="{}">{}</span>', obj.code, obj.code)

    @admin.display(description="Balance (debit +)")
    def balances(self, obj):
        rows = obj.entries.values_list("currency").annotate(total=Sum("amount")).order_by("currency")
        return ", ".join(format_money(total, currency) for currency, total in rows) or "—"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        account = self.get_object(request, object_id)
        context = {}
        if account is not None:
            self.owner_names_fill([account])
            seller = seller_of(account.code)
            page = page_of(request, selectors.account_entries(account_id=account.pk))
            context = {
                "account_title": account_label(account.code, account.owner_names) if seller else account.name,
                "seller_id": seller, "seller_name": self.owner_name(account, seller),
                "seller_url": _url("admin:payments_seller_change", seller) if seller else "",
                "wallets_url": (_url("admin:wallet_wallet_changelist") + f"?q={seller}") if seller else "",
                "balances": [format_money(total, currency)
                             for currency, total in selectors.account_balances_by_currency(account_id=account.pk)],
                "entries_page": page,
                "entry_rows": [(e, _url("admin:ledger_ledgertransaction_change", e.transaction_id),
                                format_money(e.amount, e.currency) if e.amount > 0 else "",
                                format_money(-e.amount, e.currency) if e.amount < 0 else "") for e in page],
            }
        return super().change_view(request, object_id, form_url, extra_context={**context, **(extra_context or {})})


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
class LedgerTransactionAdmin(OwnerNamesMixin, ReadOnlyAdmin):
    list_display = ("id", "occurred_at", "description", "amount", "accounts", "reference")
    search_fields = ("idempotency_key", "reference", "description")
    list_filter = ("entries__currency", "occurred_at")
    inlines = [EntryInline]

    def get_queryset(self, request):
        entries = Entry.objects.select_related("account").order_by("id")
        return super().get_queryset(request).prefetch_related(Prefetch("entries", queryset=entries))

    def owner_ids_of(self, obj):
        return [seller_of(e.account.code) for e in obj.entries.all()]

    @admin.display(description="Amount")
    def amount(self, obj):
        """The posting's size: its debits, per currency (a balanced posting's credits are the same)."""
        totals: dict[str, int] = {}
        for entry in obj.entries.all():
            if entry.amount > 0:
                totals[entry.currency] = totals.get(entry.currency, 0) + entry.amount
        return ", ".join(format_money(total, currency) for currency, total in sorted(totals.items())) or "—"

    @admin.display(description="Accounts (Dr / Cr)")
    def accounts(self, obj):
        names = getattr(obj, "owner_names", {})
        return format_html_join(
            mark_safe("<br>"), '<span class="entry-side">{}</span> {}',
            (("Dr" if e.amount > 0 else "Cr", account_label(e.account.code, names)) for e in obj.entries.all()))


@admin.register(Entry)
class EntryAdmin(ReadOnlyAdmin):
    list_display = ("id", "transaction", "account", "currency", "amount")
    search_fields = ("transaction__idempotency_key", "transaction__reference", "account__code")
    list_filter = ("currency", "account__kind")
    list_select_related = ("transaction", "account")
