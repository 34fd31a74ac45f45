"""The operators' admin site: Django's, with a dashboard of volumes and open work on its index."""
from datetime import timedelta

from django.contrib import admin
from django.utils import timezone

from core.admin_base import state_badge
from core.money import format_money
from payments import selectors as payment_selectors
from reconciliation import selectors as reconciliation_selectors


class OperatorsAdminSite(admin.AdminSite):
    site_header = "Marketplace payments — operators"
    site_title = "Marketplace payments"
    index_title = "Dashboard"
    index_template = "admin/dashboard_index.html"
    # The app list in a sidebar on every page takes 300 px from the lists; the dashboard and the breadcrumbs lead
    # everywhere (docs/operators-console.md).
    enable_nav_sidebar = False

    def owner_names(self, owner_ids) -> dict[str, str]:
        """``{owner id: name}`` for the ledger's and the wallets' pages, which know sellers only by id (those apps
        import no other): asked of payments here, above the apps."""
        return payment_selectors.seller_names(seller_ids=list(owner_ids))

    def owner_ids_named(self, name: str) -> list[str]:
        """Owner ids whose seller's name contains ``name``: the ledger's and the wallets' search boxes."""
        return payment_selectors.seller_ids_named(name=name) if name.strip() else []

    def index(self, request, extra_context=None):
        since = timezone.now() - timedelta(hours=24)
        volumes = [
            {**row, "amount_display": format_money(row["amount"] or 0, row["currency"]),
             "state_badge": state_badge(row["state"])}
            for row in payment_selectors.order_volumes_since(since=since)
        ]
        context = {
            "volumes": volumes,
            "attention": payment_selectors.attention_counts(),
            "open_breaks": sorted(reconciliation_selectors.open_break_counts().items()),
            **self._ledger_flags(),
            **(extra_context or {}),
        }
        return super().index(request, extra_context=context)

    @staticmethod
    def _ledger_flags() -> dict:
        as_of, flags = reconciliation_selectors.ledger_balance_flags()
        return {"ledger_flags_as_of": as_of,
                "ledger_flags": [{"flag": flag, "balance_display": format_money(flag.balance, flag.currency)}
                                 for flag in flags]}
