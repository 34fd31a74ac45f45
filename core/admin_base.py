from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse


class ReadOnlyAdmin(admin.ModelAdmin):
    """Operators look, never edit: money moves only through services."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
                             help_text="Why — kept in the audit trail.")


def action_with_reason(modeladmin, request, queryset, *, action_name: str, title: str,
                       apply: Callable[[object, dict], str],
                       form_class: type[forms.Form] = ReasonForm) -> TemplateResponse | None:
    """An admin action that first asks for a reason (and whatever else ``form_class`` asks),
    then calls ``apply(obj, cleaned_data)`` per object and reports what each call said."""
    if request.POST.get("confirmed"):
        form = form_class(request.POST)
        if form.is_valid():
            outcomes = [f"{obj}: {apply(obj, form.cleaned_data)}" for obj in queryset]
            modeladmin.message_user(request, "; ".join(outcomes), messages.SUCCESS)
            return None
    else:
        form = form_class()
    context = {**modeladmin.admin_site.each_context(request), "title": title, "queryset": queryset,
               "opts": modeladmin.model._meta, "form": form, "action_name": action_name}
    return TemplateResponse(request, "admin/action_with_reason.html", context)
