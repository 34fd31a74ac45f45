"""The operators' console for payments, beyond Django's changelists: a payment's timeline, the search box
that also asks reconciliation, range filters and the state badge.

This sits above the apps, like the dashboard (``config.admin_site``): it reads payments, the ledger and the
wallets through ``payments.selectors`` and the settlement side through ``reconciliation.selectors``
(payments' own modules never import reconciliation).
"""
from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.html import format_html

from core.admin_base import STATE_COLOURS, state_badge  # noqa: F401 (used by the admins through here)
from core.money import format_money
from payments import selectors
from payments.models import Refund
from payments.selectors import TimelineRow
from reconciliation import selectors as reconciliation_selectors

# --- Confirmation rows of the actions (core.admin_base.action_with_reason) ---------------------------------

def _error(code: str, message: str) -> str:
    if not code and not message:
        return "-"
    return f"{code}: {message}" if code and message else (code or message)


def order_action_row(order) -> dict[str, object]:
    """A payment order as an action's confirmation page lists it."""
    return {"Order": order.pk, "Amount": format_money(order.amount, order.currency), "Seller": order.seller.name,
            "State": state_badge(order.state, order.get_state_display()), "Attempts": order.attempts,
            "Last error": _error(order.failure_code, order.failure_message),
            "Idempotency key": order.psp_idempotency_key}


def refund_action_row(refund) -> dict[str, object]:
    return {"Refund": refund.pk, "Order": refund.payment_order_id,
            "Amount": format_money(refund.amount, refund.currency), "Seller": refund.payment_order.seller.name,
            "State": state_badge(refund.state, refund.get_state_display()), "Attempts": refund.attempts,
            "Last error": refund.failure_code or "-"}


def webhook_action_row(event) -> dict[str, object]:
    return {"Event": event.pk, "Type": event.type, "About": event.object_id or "-",
            "Status": state_badge(event.status, event.get_status_display()), "Attempts": event.attempts,
            "Last error": (event.last_error or "-")[:300], "Received": event.received_at.strftime("%Y-%m-%d %H:%M:%S")}


def double_charge_action_row(row) -> dict[str, object]:
    return {"Extra charge": row.psp_reference, "Order": row.payment_order_id,
            "Amount": format_money(row.amount, row.currency), "Seller": row.payment_order.seller.name,
            "Kind": row.get_kind_display(), "State": state_badge(row.state, row.get_state_display()),
            "Detected by": row.detected_by}


# --- Range filters ------------------------------------------------------------------------------------

class RangeFilter(admin.ListFilter):
    """Two boxes (from, to) in the filter sidebar, sent as GET parameters with the rest of the changelist's."""

    template = "admin/payments/range_filter.html"
    parameter_from = parameter_to = ""
    placeholder_from = placeholder_to = ""

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        self.values = {}
        for name in (self.parameter_from, self.parameter_to):
            if name in params:
                value = params.pop(name)
                value = (value[-1] if isinstance(value, list) else value).strip()
                if value:
                    self.values[name] = value
        self.used_parameters = dict(self.values)

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str]:
        return [self.parameter_from, self.parameter_to]

    def choices(self, changelist):
        mine = set(self.expected_parameters())
        yield {
            "parameter_from": self.parameter_from, "parameter_to": self.parameter_to,
            "value_from": self.values.get(self.parameter_from, ""),
            "value_to": self.values.get(self.parameter_to, ""),
            "placeholder_from": self.placeholder_from, "placeholder_to": self.placeholder_to,
            "hidden": [(k, v) for k, v in changelist.params.items() if k not in mine and k not in ("p", "e")],
            "reset_url": changelist.get_query_string(remove=list(mine)),
        }

    def _bound(self, name, parse):
        raw = self.values.get(name)
        if raw is None:
            return None
        value = parse(raw)
        if value is None:
            raise IncorrectLookupParameters(f"{self.title}: {raw!r} is not understood")
        return value


def _decimal(raw: str) -> Decimal | None:
    try:
        value = Decimal(raw.replace(",", ""))
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _day_start(raw: str) -> datetime | None:
    try:
        day = parse_date(raw) if re.match(r"^\d{4}-\d{2}-\d{2}$", raw) else None
    except ValueError:  # well formed, no such day
        return None
    return timezone.make_aware(datetime.combine(day, time.min)) if day else None


class AmountRangeFilter(RangeFilter):
    """Amount between two figures in major units of each order's currency (``10`` = 10.00 USD, 10 JPY)."""

    title = "amount (major units)"
    parameter_from, parameter_to = "amount_from", "amount_to"
    placeholder_from, placeholder_to = "from, e.g. 10", "to, e.g. 49.99"

    def queryset(self, request, queryset):
        return selectors.payment_orders_in_amount_range(orders=queryset, low=self._bound(self.parameter_from, _decimal),
                                                        high=self._bound(self.parameter_to, _decimal))


class CreatedRangeFilter(RangeFilter):
    """Created between two days, both included (YYYY-MM-DD, the site's time zone)."""

    title = "created between"
    parameter_from, parameter_to = "created_from", "created_to"
    placeholder_from, placeholder_to = "from YYYY-MM-DD", "to YYYY-MM-DD"
    field = "created_at"

    def queryset(self, request, queryset):
        low, high = self._bound(self.parameter_from, _day_start), self._bound(self.parameter_to, _day_start)
        if low is not None:
            queryset = queryset.filter(**{f"{self.field}__gte": low})
        if high is not None:
            queryset = queryset.filter(**{f"{self.field}__lt": high + timedelta(days=1)})
        return queryset


class FailureCodeFilter(admin.SimpleListFilter):
    """The failure codes orders carry, and "none" (Django's own filter would offer the blank code as an empty,
    nameless link)."""

    title = "failure code"
    parameter_name = "failure_code"

    def lookups(self, request, model_admin):
        codes = selectors.payment_order_failure_codes()
        return [("-", "no failure"), *((code, code) for code in codes)]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(failure_code="" if value == "-" else value)


# --- Search ------------------------------------------------------------------------------------------

# Object ids a PSP's settlement report carries that payments does not store: Stripe's charge (``ch_``), payment
# (``py_``), payout (``po_``), balance transaction (``txn_``) and transfer (``tr_``). Only such a term is looked
# up among the settlement lines (their source, payout and merchant references are not indexed).
SETTLEMENT_PREFIXES = ("ch_", "py_", "po_", "txn_", "tr_")


def settlement_targets(term: str) -> tuple[list[str], list[str]]:
    """What a settlement reference typed in the search box points to, asked of reconciliation:
    ``(PSP references, object ids)``; nothing for any other term, which payments finds itself."""
    term = term.strip()
    if not term.startswith(SETTLEMENT_PREFIXES) or " " in term:
        return [], []
    return reconciliation_selectors.settlement_reference_targets(reference=term)


# --- Timelines ---------------------------------------------------------------------------------------

def _admin_url(link: tuple[str, str] | None) -> str:
    if not link:
        return ""
    label, target = link
    app_label, model_name = label.split(".")
    try:
        if target.startswith("?"):
            return reverse(f"admin:{app_label}_{model_name}_changelist") + target
        return reverse(f"admin:{app_label}_{model_name}_change", args=[target])
    except NoReverseMatch:
        return ""


def settlement_rows(*, object_ids: list[str], psp_references: list[str]) -> list[TimelineRow]:
    """The settlement lines that settled these objects and every break about them, as timeline rows."""
    lines, breaks = reconciliation_selectors.settlement_records_of(object_ids=object_ids,
                                                                   psp_references=psp_references)
    rows = []
    for line in lines:
        matched = f"{line.match_state} to {line.matched_object_id}" if line.matched_object_id else line.match_state
        rows.append(TimelineRow(
            at=line.occurred_at or line.file.imported_at, kind="settlement",
            title=f"Settlement line: {line.record_type}, {matched}", subject=line.matched_object_id,
            amount=line.gross, currency=line.currency,
            detail=(f"{line.file.name} line {line.line_number} · {line.psp_reference or '-'} · fee "
                    f"{format_money(line.fee, line.currency)} · net {format_money(line.net, line.currency)}"
                    + (f" · payout {line.payout_reference}" if line.payout_reference else "")),
            link=("reconciliation.settlementline", str(line.pk))))
    for brk in breaks:
        detail = (f"{brk.description} · our books {format_money(brk.expected_amount, brk.expected_currency)}"
                  f" · PSP/bank {format_money(brk.actual_amount, brk.actual_currency)}")
        if brk.resolution:
            detail += f" · {brk.resolution} by {brk.resolved_by}: {brk.reason}"
        rows.append(TimelineRow(at=brk.created_at, kind="break", title=f"Break: {brk.break_class} ({brk.state})",
                                subject=brk.object_id, detail=detail, link=("reconciliation.break", str(brk.pk))))
    return rows


def _render(request: HttpRequest, modeladmin, *, obj, title: str, rows: list[TimelineRow], facts: list, orders=()):
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title, "opts": modeladmin.model._meta, "original": obj, "facts": facts, "orders": orders,
        "rows": [(row, _admin_url(row.link)) for row in rows],
        "change_url": reverse(f"admin:payments_{modeladmin.model._meta.model_name}_change", args=[obj.pk]),
    }
    return TemplateResponse(request, "admin/payments/timeline.html", context)


def _order_facts(order) -> list[tuple[str, str]]:
    return [
        ("Amount", format_money(order.amount, order.currency)),
        ("Refunded", format_money(order.amount_refunded, order.currency)),
        ("State", state_badge(order.state, order.get_state_display())),
        ("Seller", f"{order.seller.name} ({order.seller_id})"),
        ("PSP reference", order.psp_reference or "-"),
        ("PSP calls", f"{order.attempts} (idempotency key {order.psp_idempotency_key})"),
        ("Failure", f"{order.failure_code}: {order.failure_message}" if order.failure_code else "-"),
    ]


def _above_payments(modeladmin, payment_order_ids: list[str]) -> list[TimelineRow]:
    """The rows the admin site adds from apps payments does not know (disputes), when it offers them."""
    rows_of = getattr(modeladmin.admin_site, "order_timeline_rows", None)
    return list(rows_of(payment_order_ids)) if rows_of else []


def order_timeline_view(modeladmin, request: HttpRequest, object_id: str):
    order = modeladmin.get_object(request, object_id)
    if order is None:
        raise Http404(f"no payment order {object_id}")
    if not modeladmin.has_view_permission(request, order):
        raise PermissionDenied
    rows = selectors.payment_orders_timeline(payment_order_ids=[order.pk]) + _above_payments(modeladmin, [order.pk])
    refunds = list(Refund.objects.filter(payment_order=order).values_list("id", "psp_reference"))
    rows = selectors.timeline_sorted(rows + settlement_rows(
        object_ids=[order.pk, *(r[0] for r in refunds)],
        psp_references=[order.psp_reference, *(r[1] for r in refunds)]))
    facts = [("Checkout", format_html('<a href="{}">{}</a>', reverse("admin:payments_paymentevent_timeline",
                                                                     args=[order.payment_event_id]),
                                      order.payment_event_id)), *_order_facts(order)]
    return _render(request, modeladmin, obj=order, title=f"Payment order {order.pk}", rows=rows, facts=facts)


def event_timeline_view(modeladmin, request: HttpRequest, object_id: str):
    event = modeladmin.get_object(request, object_id)
    if event is None:
        raise Http404(f"no payment event {object_id}")
    if not modeladmin.has_view_permission(request, event):
        raise PermissionDenied
    _, rows = selectors.payment_event_timeline(payment_event_id=event.pk)
    orders = list(event.orders.select_related("seller").order_by("created_at", "id"))
    rows = rows + _above_payments(modeladmin, [o.pk for o in orders])
    refunds = list(Refund.objects.filter(payment_order__payment_event=event).values_list("id", "psp_reference"))
    rows = selectors.timeline_sorted(rows + settlement_rows(
        object_ids=[*(o.pk for o in orders), *(r[0] for r in refunds)],
        psp_references=[*(o.psp_reference for o in orders), *(r[1] for r in refunds)]))
    facts = [("Buyer", f"{event.buyer_reference} {event.buyer_email}".strip()),
             ("State", state_badge(event.state, event.get_state_display())),
             ("Orders", f"{len(orders)} ({event.orders_succeeded} succeeded, {event.orders_failed} failed)")]
    order_rows = [(o, format_money(o.amount, o.currency), state_badge(o.state, o.get_state_display()),
                   reverse("admin:payments_paymentorder_timeline", args=[o.pk])) for o in orders]
    return _render(request, modeladmin, obj=event, title=f"Checkout {event.pk}", rows=rows, facts=facts,
                   orders=order_rows)

