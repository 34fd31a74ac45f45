from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db import models
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join

from core.money import format_money

# Integer fields that hold money in minor units, by name; their currency is found by ``money_fields_of``.
_MONEY_NAMES = {"amount", "balance", "gross", "fee", "net"}


# Short state labels and their colour class: the long explanations stay in the badge's title.
STATE_COLOURS = {
    "succeeded": "ok", "partially_succeeded": "warn", "failed": "bad", "dead_letter": "bad", "unknown": "warn",
    "pending": "info", "processing": "info", "executing": "info", "requires_action": "warn", "not_started": "muted",
    "open": "bad", "resolved": "ok", "auto_resolved": "ok", "processed": "ok", "received": "info",
    "ignored": "muted",
}


def state_badge(value: str, label: str = "") -> str:
    return format_html('<span class="state-badge state-{}" title="{}">{}</span>', STATE_COLOURS.get(value, "muted"),
                       label or value, value.replace("_", " "))


def money_fields_of(model) -> dict[str, str]:
    """``{amount field: currency path}`` of a model: ``amount``/``balance``/``gross``/``fee``/``net``,
    ``*_amount`` and ``amount_*`` integer fields, paired with ``<prefix>_currency``, else ``currency``, else
    the ``currency`` of the first foreign key that has one (``WalletMovement.amount`` -> ``wallet.currency``)."""
    names = {f.name: f for f in model._meta.concrete_fields}
    found = {}
    for name, field in names.items():
        if not isinstance(field, models.IntegerField) or isinstance(field, models.AutoField):
            continue
        if not (name in _MONEY_NAMES or name.endswith("_amount") or name.startswith("amount_")):
            continue
        prefixed = name[: -len("amount")] + "currency" if name.endswith("_amount") else None
        if prefixed in names:
            found[name] = prefixed
        elif "currency" in names:
            found[name] = "currency"
        else:
            for fk in model._meta.concrete_fields:
                if fk.is_relation and any(f.name == "currency" for f in fk.related_model._meta.concrete_fields):
                    found[name] = f"{fk.name}.currency"
                    break
    return found


def _resolve(obj, path: str):
    for part in path.split("."):
        obj = getattr(obj, part, None) if obj is not None else None
    return obj


class MoneyAdminMixin:
    """Every money field of the model is shown through ``format_money`` (core/money.py), on the changelist
    (``list_display``) and the change page (its fields), never as raw minor units. ``money_fields`` on the
    admin overrides the detected ``{field: currency path}``."""

    money_fields: dict[str, str] | None = None

    def __init__(self, model, admin_site):
        super().__init__(model, admin_site)
        self._money = dict(self.money_fields if self.money_fields is not None else money_fields_of(model))
        for name, currency_path in self._money.items():
            field = model._meta.get_field(name)

            def display(obj, _name=name, _currency=currency_path):
                return format_money(getattr(obj, _name), _resolve(obj, _currency))

            display = admin.display(description=str(field.verbose_name).capitalize(), ordering=name)(display)
            setattr(self, self._money_display_name(name), display)

    @staticmethod
    def _money_display_name(name: str) -> str:
        return f"{name}_money"

    def _swap_money(self, names):
        swapped = [self._money_display_name(n) if isinstance(n, str) and n in self._money else n for n in names]
        return list(dict.fromkeys(swapped))  # order kept, each once

    def get_list_display(self, request):
        return self._swap_money(super().get_list_display(request))

    def get_readonly_fields(self, request, obj=None):
        readonly = self._swap_money(super().get_readonly_fields(request, obj))
        return [*readonly, *(self._money_display_name(n) for n in self._money
                             if self._money_display_name(n) not in readonly)]

    def get_fields(self, request, obj=None):
        return self._swap_money(super().get_fields(request, obj))

    def get_fieldsets(self, request, obj=None):
        return [(title, {**options, "fields": self._swap_money_nested(options.get("fields", ()))})
                for title, options in super().get_fieldsets(request, obj)]

    def _swap_money_nested(self, fields):
        return [tuple(self._swap_money(f)) if isinstance(f, (list, tuple)) else self._swap_money([f])[0]
                for f in fields]


class ReadOnlyAdmin(MoneyAdminMixin, admin.ModelAdmin):
    """Operators look, never edit: money moves only through services. Amounts are shown formatted
    (``MoneyAdminMixin``)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    """An inline of rows nobody adds, changes or deletes from here (audit rows, what a run made)."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class TransitionInline(ReadOnlyInline):
    """The audit rows of a stateful object (``core.models.TransitionAudit``): each state change, who and why."""

    fields = ("created_at", "from_state", "to_state", "actor", "reason")
    readonly_fields = fields


class AmountColumn:
    """``amount_display``: the row's ``amount`` in its ``currency``, formatted (and sorted by amount)."""

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj):
        return format_money(obj.amount, obj.currency)


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
                             help_text="Why — kept in the audit trail.")


def action_with_reason(modeladmin, request, queryset, *, action_name: str, title: str,
                       apply: Callable[[object, dict], str],
                       form_class: type[forms.Form] = ReasonForm,
                       describe: Callable[[object], dict[str, object]] | None = None,
                       exclude: Callable[[object], str] | None = None,
                       will: str = "", will_not: str = "") -> TemplateResponse | None:
    """An admin action that first shows a confirmation page and asks for a reason (and whatever else
    ``form_class`` asks), then calls ``apply(obj, cleaned_data)`` per object and reports what each call said.

    The page lists each selected object as a row (``describe(obj)``: ``{column: value}``, e.g. amount, seller,
    last error, attempts) and says what the action ``will`` and ``will_not`` do. ``exclude(obj)`` answers why an
    object cannot be acted on ("" when it can): such objects are listed apart with that reason, never dropped
    silently, and are not acted on. Each object acted on gets a Django admin log entry (``LogEntry``: "Recent
    actions") with the action, its outcome and the reason."""
    objects = list(queryset)
    excluded = [(obj, why) for obj in objects if exclude and (why := exclude(obj))]
    skipped = {obj.pk for obj, _ in excluded}
    chosen = [obj for obj in objects if obj.pk not in skipped]
    if request.POST.get("confirmed"):
        form = form_class(request.POST)
        if form.is_valid():
            outcomes = []
            for obj in chosen:
                outcome = apply(obj, form.cleaned_data)
                outcomes.append(f"{obj}: {outcome}")
                reason = form.cleaned_data.get("reason", "")
                modeladmin.log_change(request, obj, f"{title}: {outcome}. Reason: {reason}"[:2000])
            if excluded:
                outcomes.append(f"not acted on: {', '.join(f'{obj} ({why})' for obj, why in excluded)}")
            level = messages.SUCCESS if chosen else messages.WARNING
            modeladmin.message_user(request, "; ".join(outcomes) or "Nothing to do.", level)
            return None
    else:
        form = form_class()
    describe = describe or (lambda obj: {str(modeladmin.model._meta.verbose_name).capitalize(): obj})
    described = [describe(obj) for obj in chosen]
    columns = list(described[0]) if described else []
    context = {**modeladmin.admin_site.each_context(request), "title": title, "queryset": chosen,
               "opts": modeladmin.model._meta, "form": form, "action_name": action_name,
               "columns": columns, "rows": [[row.get(c, "") for c in columns] for row in described],
               "excluded": excluded, "selected_count": len(objects), "will": will, "will_not": will_not}
    return TemplateResponse(request, "admin/action_with_reason.html", context)


class OwnerNamesMixin:
    """Lists and pages that name a seller (an owner) known only by id: ``owner_ids_of(obj)`` says which ids an
    object mentions; the admin site's ``owner_names`` (``config.admin_site``) names them, once per page, into
    ``obj.owner_names``."""

    def owner_ids_of(self, obj) -> list[str]:
        return []

    def owner_names_fill(self, objects) -> None:
        objects = list(objects)
        ids = {owner for obj in objects for owner in self.owner_ids_of(obj) if owner}
        names_of = getattr(self.admin_site, "owner_names", None)
        names = names_of(ids) if ids and names_of else {}
        for obj in objects:
            obj.owner_names = names

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        self.owner_names_fill(changelist.result_list)
        return changelist

    def owner_search_q(self, owner_ids: list[str]) -> models.Q | None:
        """What the search box also finds for sellers named like the term (``None``: nothing more)."""
        return None

    def get_search_results(self, request, queryset, search_term):
        found, duplicates = super().get_search_results(request, queryset, search_term)
        named_like = getattr(self.admin_site, "owner_ids_named", None)
        ids = named_like(search_term) if named_like and search_term.strip() else []
        extra = self.owner_search_q(ids) if ids else None
        if extra is not None:
            found = found | queryset.filter(extra)
        return found, duplicates

    @staticmethod
    def owner_name(obj, owner_id: str) -> str:
        return getattr(obj, "owner_names", {}).get(owner_id, "")


def page_of(request, queryset, *, per_page: int = 50, param: str = "page"):
    """One page of ``queryset`` for a detail page's own table (``?page=N``; out of range: the last page)."""
    return Paginator(queryset, per_page).get_page(request.GET.get(param))


def json_table(value, *, _depth: int = 0) -> str:
    """JSON as nested tables an operator can read (keys in a column, values beside them), never a raw blob."""
    if isinstance(value, dict):
        if not value:
            return "—"
        rows = format_html_join("", '<tr><th scope="row">{}</th><td>{}</td></tr>',
                                ((key, json_table(item, _depth=_depth + 1)) for key, item in value.items()))
        return format_html('<table class="json-table">{}</table>', rows)
    if isinstance(value, list):
        if not value:
            return "—"
        rows = format_html_join("", '<tr><th scope="row">{}</th><td>{}</td></tr>',
                                ((n, json_table(item, _depth=_depth + 1)) for n, item in enumerate(value)))
        return format_html('<table class="json-table">{}</table>', rows)
    if value is None:
        return "null"
    return format_html("{}", value)
