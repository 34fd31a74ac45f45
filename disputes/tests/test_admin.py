"""The operators' disputes queue: due dates (overdue flagged), amounts in major units, evidence notes with their
author, a kept dispute booked after a second look."""
from datetime import timedelta

import pytest
from django.utils import timezone

from disputes import services
from disputes.models import Dispute, DisputeNote

from .helpers import captured_order, report

pytestmark = pytest.mark.django_db


def test_the_queue_shows_due_dates_overdue_amounts_and_problems(admin_client):
    order = captured_order(10_000, psp_reference="pi_1")
    late, _ = services.dispute_report_apply(report=report("dp_late", psp_payment_reference="pi_1", amount=2_500,
                                                          due_by=timezone.now() - timedelta(days=1)), actor="t")
    services.dispute_report_apply(report=report("dp_kept", psp_payment_reference="pi_nobody"), actor="t")
    page = admin_client.get("/admin/disputes/dispute/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "dp_late" in body and "dp_kept" in body and "overdue" in body
    assert "25.00 USD" in body and "15.00 USD" in body  # amount and fee in major units
    assert "kept: no payment order of ours has this charge" in body
    assert order.id in body
    kept = admin_client.get("/admin/disputes/dispute/?queue=kept").content.decode()
    assert "dp_kept" in kept and "dp_late" not in kept
    detail = admin_client.get(f"/admin/disputes/dispute/{late.pk}/change/")
    assert detail.status_code == 200 and b"evidence notes" in detail.content.lower()


def test_an_evidence_note_is_kept_with_its_author(admin_client):
    captured_order(10_000, psp_reference="pi_1")
    dispute, _ = services.dispute_report_apply(report=report("dp_1", psp_payment_reference="pi_1"), actor="t")
    asked = admin_client.post("/admin/disputes/dispute/", {"action": "add_note", "_selected_action": [dispute.pk]})
    assert asked.status_code == 200 and b"Evidence note" in asked.content
    admin_client.post("/admin/disputes/dispute/", {"action": "add_note", "_selected_action": [dispute.pk],
                                                   "confirmed": "1", "reason": "tracking number 1Z999 sent"})
    note = DisputeNote.objects.get()
    assert (note.author, note.text) == ("operator:admin", "tracking number 1Z999 sent")


def test_a_kept_dispute_is_booked_after_a_second_look(admin_client):
    dispute, _ = services.dispute_report_apply(report=report("dp_1", psp_payment_reference="pi_later"), actor="t")
    not_yet = admin_client.post("/admin/disputes/dispute/", {
        "action": "book_again", "_selected_action": [dispute.pk], "confirmed": "1", "reason": "checked"}, follow=True)
    assert b"not booked" in not_yet.content and not Dispute.objects.get().booked
    captured_order(10_000, psp_reference="pi_later")
    admin_client.post("/admin/disputes/dispute/", {"action": "book_again", "_selected_action": [dispute.pk],
                                                   "confirmed": "1", "reason": "the order is ours after all"})
    booked = Dispute.objects.get()
    assert booked.booked and not booked.problem
    assert booked.notes.get().text == "booked after a second look: the order is ours after all"



def test_an_orders_timeline_shows_its_dispute_its_changes_and_notes(admin_client):
    """The order's and the checkout's timelines (payments' pages) show the dispute, given by the admin site: payments
    imports no dispute code."""
    order = captured_order(10_000, psp_reference="pi_1")
    dispute, _ = services.dispute_report_apply(report=report("dp_on_time", psp_payment_reference="pi_1",
                                                             amount=2_500), actor="webhook:evt_1")
    admin_client.post("/admin/disputes/dispute/", {"action": "add_note", "_selected_action": [dispute.pk],
                                                   "confirmed": "1", "reason": "receipt sent"})
    for url in (f"/admin/payments/paymentorder/{order.pk}/timeline/",
                f"/admin/payments/paymentevent/{order.payment_event_id}/timeline/"):
        page = admin_client.get(url)
        assert page.status_code == 200, url
        body = page.content.decode()
        assert "Dispute opened" in body and "dp_on_time" in body and "-25.00 USD" in body, url
        assert "receipt sent" in body and f"/admin/disputes/dispute/{dispute.pk}/change/" in body, url
