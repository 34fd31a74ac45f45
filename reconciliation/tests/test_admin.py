"""The operator console: the breaks queue, resolving with a reason, CSV export, the upload page, run pages."""
from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from reconciliation.models import Break, BreakResolution, ReconciliationRun, SettlementFile
from reconciliation.services import reconciliation_run, settlement_file_import

from .helpers import order, row, stripe_report
from .test_importers import SAMPLES, needs_samples

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    user = get_user_model().objects.create_superuser("alice", "alice@example.com", "pw-alice-123")
    client.force_login(user)
    return client


@pytest.fixture
def run_with_breaks(tmp_path):
    now = timezone.now()
    order(amount=2000, psp_reference="pi_amount", completed_at=now - timedelta(hours=1))
    path = stripe_report(tmp_path / "day.csv", [
        row("charge", gross=1900, fee=85, pi="pi_amount", created=now - timedelta(hours=1)),
        row("charge", gross=100, fee=33, pi="pi_nobody", created=now - timedelta(hours=1)),
    ])
    settlement_file_import(path=path, actor="test")
    return reconciliation_run(day=now.date(), actor="test")


def test_breaks_queue_filters_and_run_detail(operator, run_with_breaks):
    url = reverse("admin:reconciliation_break_changelist")
    for query in ("", "?break_class=amount_mismatch", "?state__exact=open", "?file_format=stripe",
                  f"?last_seen_run__id__exact={run_with_breaks.pk}"):
        response = operator.get(url + query)
        assert response.status_code == 200, query
    assert b"amount_mismatch" in operator.get(url + "?break_class=amount_mismatch").content
    detail = operator.get(reverse("admin:reconciliation_reconciliationrun_change", args=[run_with_breaks.pk]))
    assert detail.status_code == 200
    assert b"missing_in_books" in detail.content and b"-1.00 USD" in detail.content
    brk = Break.objects.get(break_class="amount_mismatch")
    page = operator.get(reverse("admin:reconciliation_break_change", args=[brk.pk]))
    assert page.status_code == 200 and b"19.00 USD" in page.content
    assert b'name="expected_amount"' not in page.content  # read-only


def test_resolve_action_asks_for_a_reason_then_calls_the_service(operator, run_with_breaks):
    brk = Break.objects.get(break_class="amount_mismatch")
    url = reverse("admin:reconciliation_break_changelist")
    form_page = operator.post(url, {"action": "resolve_breaks", "_selected_action": [brk.pk]})
    assert form_page.status_code == 200 and b'name="reason"' in form_page.content
    brk.refresh_from_db()
    assert brk.state == "open"

    no_reason = operator.post(url, {"action": "resolve_breaks", "_selected_action": [brk.pk], "confirmed": "1",
                                    "resolution": "psp_corrected", "reason": ""})
    assert no_reason.status_code == 200
    brk.refresh_from_db()
    assert brk.state == "open"

    done = operator.post(url, {"action": "resolve_breaks", "_selected_action": [brk.pk], "confirmed": "1",
                               "resolution": "psp_corrected", "reason": "PSP will credit the difference"})
    assert done.status_code == 302
    brk.refresh_from_db()
    assert (brk.state, brk.resolution, brk.resolved_by) == ("resolved", "psp_corrected", "operator:alice")
    audit = BreakResolution.objects.get(brk=brk)
    assert (audit.actor, audit.reason, audit.to_state) == ("operator:alice", "PSP will credit the difference",
                                                           "resolved")


def test_resolve_needs_the_permission(client, run_with_breaks):
    user = get_user_model().objects.create_user("bob", password="pw-bob-12345", is_staff=True)
    from django.contrib.auth.models import Permission

    user.user_permissions.add(Permission.objects.get(codename="view_break"))
    client.force_login(user)
    brk = Break.objects.get(break_class="amount_mismatch")
    response = client.post(reverse("admin:reconciliation_break_changelist"),
                           {"action": "resolve_breaks", "_selected_action": [brk.pk], "confirmed": "1",
                            "resolution": "no_action", "reason": "x"})
    assert response.status_code in (200, 302)
    brk.refresh_from_db()
    assert brk.state == "open"


def test_csv_export_of_a_run(operator, run_with_breaks):
    response = operator.post(reverse("admin:reconciliation_reconciliationrun_changelist"),
                             {"action": "export_breaks", "_selected_action": [run_with_breaks.pk]})
    assert response.status_code == 200 and response["Content-Type"] == "text/csv"
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["id", "break_class", "state"]
    assert sorted(r[1] for r in rows[1:]) == ["amount_mismatch", "missing_in_books"]


@needs_samples
def test_upload_page_imports_through_the_service_and_reconciles(operator):
    url = reverse("admin:reconciliation_settlementfile_add")
    assert operator.get(url).status_code == 200
    content = (SAMPLES / "adyen/settlement_detail_report_refund.csv").read_bytes()
    upload = SimpleUploadedFile("adyen_refund.csv", content, content_type="text/csv")
    response = operator.post(url, {"file": upload, "format": "auto", "reconcile": "on",
                                   "date": timezone.now().date().isoformat()})
    assert response.status_code == 302
    file = SettlementFile.objects.get()
    assert (file.name, file.format, file.line_count, file.imported_by) == ("adyen_refund.csv", "adyen", 3,
                                                                          "operator:alice")
    assert ReconciliationRun.objects.count() == 1
    again = operator.post(url, {"file": SimpleUploadedFile("again.csv", content), "format": "auto"})
    assert again.status_code == 302 and SettlementFile.objects.count() == 1

    bad = operator.post(url, {"file": SimpleUploadedFile("notes.txt", b"hello\n"), "format": "auto"})
    assert bad.status_code == 200 and b"not a Stripe or Adyen" in bad.content
