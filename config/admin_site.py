"""The operators' admin site: Django's, with a dashboard of volumes and open work on its index."""
from datetime import timedelta

from django.contrib import admin
from django.utils import timezone

from core.admin_base import state_badge
from core.money import format_money
from disputes import selectors as dispute_selectors
from payments import selectors as payment_selectors
from payments.selectors import TimelineRow
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

    def order_timeline_rows(self, payment_order_ids) -> list[TimelineRow]:
        """What apps above payments know of these orders, as timeline rows: their disputes (opened, each state
        change with its actor, evidence notes). Asked here, above the apps: payments imports no dispute code."""
        rows = []
        for dispute in dispute_selectors.disputes_of_orders(payment_order_ids=list(payment_order_ids)):
            link = ("disputes.dispute", dispute.pk)
            fee = format_money(dispute.fee, dispute.fee_currency or dispute.currency)
            detail = (f"{dispute.psp_dispute_id} · {dispute.reason or 'no reason given'} · fee {fee} "
                      f"({dispute.fee_payer}) · evidence due {dispute.due_by or '-'}"
                      + (f" · kept: {dispute.problem_detail}" if dispute.problem else ""))
            rows.append(TimelineRow(at=dispute.created_at, kind="dispute", title=f"Dispute opened ({dispute.source})",
                                    subject=dispute.payment_order_id, detail=detail, amount=-dispute.amount,
                                    currency=dispute.currency, link=link))
            rows += [TimelineRow(at=t.created_at, kind="dispute", title=f"Dispute {t.from_state or 'new'} → "
                                 f"{t.to_state}", subject=dispute.payment_order_id, actor=t.actor, detail=t.reason,
                                 link=link) for t in dispute.transitions.all()]
            rows += [TimelineRow(at=n.created_at, kind="dispute", title="Dispute evidence note",
                                 subject=dispute.payment_order_id, actor=n.author, detail=n.text, link=link)
                     for n in dispute.notes.all()]
        return rows

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
