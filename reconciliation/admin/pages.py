"""What every reconciliation action page shares: the confirmation page (what the action will and will not do,
with its form), the friendly 403 page, the admin log entry, and links to the objects a break names."""
from __future__ import annotations

from dataclasses import dataclass, field

from django import forms
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Group
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from core.money import format_money
from reconciliation import selectors
from reconciliation.models import Break, Correction, SettlementLine


def actor_of(request: HttpRequest) -> str:
    return f"operator:{request.user.get_username()}"


def forbidden(request: HttpRequest, admin_site, *, permission: str, what: str, back: str = "") -> TemplateResponse:
    """A 403 that says which permission is missing and which groups hold it, instead of a blank page."""
    app_label, codename = permission.split(".")
    groups = list(Group.objects.filter(permissions__content_type__app_label=app_label,
                                       permissions__codename=codename).values_list("name", flat=True).distinct())
    context = {**admin_site.each_context(request), "title": "Not allowed", "permission": permission, "what": what,
               "groups": groups, "back": back}
    return TemplateResponse(request, "admin/reconciliation/forbidden.html", context, status=403)


@dataclass
class Subject:
    """One object an action page is about, as label/value rows."""

    title: str
    rows: list[tuple[str, object]] = field(default_factory=list)


def confirm(request: HttpRequest, modeladmin, *, title: str, subjects: list[Subject], will: list[str],
            will_not: list[str], form: forms.Form, submit: str, back: str, hidden: list[tuple[str, object]] = (),
            status: int = 200, notice: str = "") -> TemplateResponse:
    context = {**modeladmin.admin_site.each_context(request), "title": title, "subjects": subjects, "will": will,
               "will_not": will_not, "notice": notice, "form": form, "submit": submit, "back": back,
               "hidden": list(hidden),
               "opts": modeladmin.model._meta, "subject_title": modeladmin.model._meta.verbose_name_plural.capitalize()}
    return TemplateResponse(request, "admin/reconciliation/confirm.html", context, status=status)


def log_change(request: HttpRequest, obj, message: str) -> None:
    """The action in Django's admin log ("Recent actions", the object's history), beside our own audit rows."""
    LogEntry.objects.log_actions(user_id=request.user.pk, queryset=[obj], action_flag=CHANGE,
                                 change_message=message[:2000], single_object=True)


def admin_link(viewname: str, pk, text) -> str:
    try:
        return format_html('<a href="{}">{}</a>', reverse(viewname, args=[pk]), text)
    except NoReverseMatch:
        return str(text)


def object_link(brk: Break, *, kind: bool = True) -> str:
    """The break's object: a payment order or refund links to its admin page; a statement or payout is named."""
    if not brk.object_id:
        return "-"
    viewname = {"payment_order": "admin:payments_paymentorder_change",
                "refund": "admin:payments_refund_change"}.get(brk.object_kind)
    label = f"{brk.object_kind.replace('_', ' ')} {brk.object_id}".strip() if kind else brk.object_id
    return admin_link(viewname, brk.object_id, label) if viewname else label


def line_link(line: SettlementLine | None) -> str:
    if line is None:
        return "-"
    return admin_link("admin:reconciliation_settlementline_change", line.pk,
                      f"{line.file.name} line {line.line_number}")


def break_rows(brk: Break) -> list[tuple[str, object]]:
    difference = selectors.break_difference(brk=brk)
    return [
        ("Break", admin_link("admin:reconciliation_break_change", brk.pk, f"#{brk.pk} {brk.break_class}")),
        ("State", brk.state),
        ("What", brk.description),
        ("Our books", format_money(brk.expected_amount, brk.expected_currency)),
        ("PSP / bank", format_money(brk.actual_amount, brk.actual_currency)),
        ("Difference", format_money(*difference) if difference else "-"),
        ("Age", selectors.age_text(selectors.break_age(brk=brk))),
        ("Object", object_link(brk)),
        ("Settlement line", line_link(brk.line)),
        ("Owner", brk.owner.get_username() if brk.owner_id else "nobody"),
    ]


def correction_rows(correction: Correction) -> list[tuple[str, object]]:
    return [
        ("Correction", admin_link("admin:reconciliation_correction_change", correction.pk, f"#{correction.pk}")),
        ("State", correction.state),
        ("Adjustment", correction.adjustment),
        ("Amount", format_money(correction.amount, correction.currency)),
        ("Postings", legs_text(correction)),
        ("Proposed by", f"{correction.proposed_by} at {correction.proposed_at:%Y-%m-%d %H:%M:%S}"),
        ("Proposer's reason", correction.reason),
    ]


def legs_text(correction: Correction) -> str:
    return "; ".join(f"{code} {format_money(amount, currency)}" for code, currency, amount in correction.entries)
