"""Maker-checker from the admin, as operators use it: logged in as the groups ``create_operator_groups`` makes."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse

from core.tests.helpers import operator_client
from ledger import selectors as ledger_selectors
from reconciliation.models import Break, Correction

from .test_corrections import amount_break  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db

BREAKS = reverse("admin:reconciliation_break_changelist")
CORRECTIONS = reverse("admin:reconciliation_correction_changelist")


def perms(group: str) -> set[str]:
    return set(Group.objects.get(name=group).permissions.values_list("codename", flat=True))


def test_the_groups_split_proposing_from_approving():
    call_command("create_operator_groups")
    assert {"propose_correction", "resolve_break"} <= perms("Finance operators")
    assert "approve_correction" not in perms("Finance operators")
    assert {"approve_correction", "work_break"} <= perms("Finance approvers")  # approvers may add notes
    assert not {"propose_correction", "resolve_break"} & perms("Finance approvers")


def test_one_operator_proposes_another_approves(amount_break):  # noqa: F811
    alice, bob = operator_client("alice", "Finance operators"), operator_client("bob", "Finance approvers")
    assert b"propose_correction" in alice.get(BREAKS).content
    assert b"propose_correction" not in bob.get(BREAKS).content

    form = alice.post(BREAKS, {"action": "propose_correction", "_selected_action": [amount_break.pk]})
    assert form.status_code == 200 and b'name="adjustment"' in form.content and b'name="reason"' in form.content
    assert not Correction.objects.exists()
    alice.post(BREAKS, {"action": "propose_correction", "_selected_action": [amount_break.pk], "confirmed": "1",
                        "adjustment": "write_off_psp_receivable", "amount": "", "currency": "",
                        "reason": "PSP short-paid 1.00"})
    correction = Correction.objects.get()
    assert (correction.state, correction.amount, correction.proposed_by) == ("proposed", 100, "operator:alice")
    page = alice.get(reverse("admin:reconciliation_break_change", args=[amount_break.pk]))
    assert b"-1.00 USD" in page.content and b"proposed" in page.content

    listing = alice.get(CORRECTIONS)  # the approvals list: proposed by default
    assert listing.status_code == 200 and b"operator:alice" in listing.content
    assert b"approve_corrections" not in listing.content
    alice.post(CORRECTIONS, {"action": "approve_corrections", "_selected_action": [correction.pk], "confirmed": "1",
                             "reason": "self"})
    assert Correction.objects.get().state == "proposed"
    key = f"correction:{correction.pk}"
    assert ledger_selectors.postings_count_by_key(keys=[key]) == {}

    assert b"approve_corrections" in bob.get(CORRECTIONS).content
    asked = bob.post(CORRECTIONS, {"action": "approve_corrections", "_selected_action": [correction.pk]})
    assert asked.status_code == 200 and b'name="reason"' in asked.content
    done = bob.post(CORRECTIONS, {"action": "approve_corrections", "_selected_action": [correction.pk],
                                  "confirmed": "1", "reason": "matches the PSP's report"})
    assert done.status_code == 302
    again = bob.post(CORRECTIONS + "?state=all", {"action": "approve_corrections", "_selected_action": [correction.pk],
                                                  "confirmed": "1", "reason": "twice"}, follow=True)
    assert b"not approved and posted" in again.content
    assert ledger_selectors.postings_count_by_key(keys=[key]) == {key: 1}
    assert Break.objects.get(pk=amount_break.pk).resolution == "written_off"
    detail = bob.get(reverse("admin:reconciliation_correction_change", args=[correction.pk]))
    assert b"operator:bob" in detail.content and b"matches the PSP&#x27;s report" in detail.content


def test_a_superuser_who_proposed_is_refused_too(amount_break, admin_client):  # noqa: F811
    admin_client.post(BREAKS, {"action": "propose_correction", "_selected_action": [amount_break.pk],
                               "confirmed": "1", "adjustment": "write_off_psp_receivable", "amount": "0.50",
                               "currency": "usd", "reason": "half of it"})
    correction = Correction.objects.get()
    assert correction.amount == 50
    response = admin_client.post(CORRECTIONS, {"action": "approve_corrections", "_selected_action": [correction.pk],
                                               "confirmed": "1", "reason": "mine"}, follow=True)
    assert b"another operator approves it" in response.content
    assert Correction.objects.get().state == "proposed"
    rejected = admin_client.post(CORRECTIONS, {"action": "reject_corrections", "_selected_action": [correction.pk],
                                               "confirmed": "1", "reason": "withdrawn"}, follow=True)
    assert b"rejected" in rejected.content and Correction.objects.get().state == "rejected"
