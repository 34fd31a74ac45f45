"""Operator forms of the reconciliation admin."""
from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone

from reconciliation.importers import FORMATS
from reconciliation.services import ADJUSTMENTS, OPERATOR_RESOLUTIONS


class BreakResolveForm(forms.Form):
    resolution = forms.ChoiceField(choices=[(r.value, r.label) for r in OPERATOR_RESOLUTIONS])
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
                             help_text="Why: kept in the audit trail with your name.")


class CorrectionProposeForm(forms.Form):
    """A correction proposed on a break: posted only once another operator approves it."""

    adjustment = forms.ChoiceField(choices=[(code, a.label) for code, a in ADJUSTMENTS.items()])
    amount = forms.CharField(required=False, max_length=32,
                             help_text="In major units (12.34); blank: the break's difference.")
    currency = forms.CharField(required=False, max_length=3, help_text="Blank: the break's currency.")
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
                             help_text="Why: kept in the audit trail with your name.")


class SettlementUploadForm(forms.Form):
    file = forms.FileField(help_text="Stripe or Adyen settlement CSV, camt.053 XML or MT940 statement.")
    format = forms.ChoiceField(choices=[("auto", "detect"), *((f, f) for f in FORMATS)], initial="auto")
    reconcile = forms.BooleanField(required=False, initial=True, help_text="Run reconciliation after the import.")
    date = forms.DateField(required=False, initial=timezone.now().date,
                           help_text="Business day for the reconciliation (YYYY-MM-DD).")


class BreakAssignForm(forms.Form):
    """Give a break to an operator (an active staff user), or to nobody."""

    owner = forms.ChoiceField(required=False, help_text="Blank: nobody.")
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
                             help_text="Why: kept in the break's notes with your name.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        operators = get_user_model().objects.filter(is_active=True, is_staff=True).order_by("username")
        self.fields["owner"].choices = [("", "nobody"), *((u.get_username(), u.get_username()) for u in operators)]


class BreakNoteForm(forms.Form):
    text = forms.CharField(label="Note", max_length=5000, widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
                           help_text="Kept for good with your name: notes are never edited or deleted.")


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
                             help_text="Why: kept in the audit trail with your name.")
