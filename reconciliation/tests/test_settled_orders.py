"""The orders a run's charge lines settled, written down once (``SettledOrder``), and ``missing_in_settlement``
reading them first: the same breaks as the settling rule alone, with or without the marks."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection

from reconciliation.models import Break, SettledOrder, SettlementLine
from reconciliation.services import reconciliation_run, settlement_file_import

from .helpers import fee, order, row, stripe_report

pytestmark = pytest.mark.django_db


def marks() -> dict[str, str]:
    """Order id -> the PSP reference of the line that settled it."""
    lines = dict(SettlementLine.objects.values_list("id", "psp_reference"))
    return {mark.order_id: lines[mark.line_id] for mark in SettledOrder.objects.all()}


def test_a_run_marks_the_orders_its_charge_lines_settled_and_no_other(tmp_path, now):
    before = now - timedelta(hours=2)
    ok = order(amount=1000, psp_reference="pi_ok", completed_at=before)
    late = order(amount=700, psp_reference="pi_late", completed_at=now - timedelta(days=3))
    renamed = order(amount=400, psp_reference="pi_ours", completed_at=before)
    dup = order(amount=500, psp_reference="pi_dup", completed_at=before)
    order(amount=2000, psp_reference="pi_amount", completed_at=before)
    order(amount=900, psp_reference="pi_failed", completed_at=before, state="failed")
    settlement_file_import(path=stripe_report(tmp_path / "day.csv", [
        row("charge", gross=1000, fee=fee(1000), pi="pi_ok", created=before),  # matched by reference
        row("charge", gross=700, fee=fee(700), pi="pi_late", created=before),  # timing: matched all the same
        row("charge", gross=400, fee=fee(400), pi="pi_renamed", order_id=renamed.id, created=before),  # by our id
        row("charge", gross=500, fee=fee(500), pi="pi_dup", created=before),  # the first twin settles it
        row("charge", gross=500, fee=fee(500), pi="pi_dup", created=before),  # the second is a duplicate
        row("charge", gross=1900, fee=fee(1900), pi="pi_amount", created=before),  # a break settles nothing
        row("charge", gross=900, fee=fee(900), pi="pi_failed", created=before),
        row("charge", gross=1234, fee=fee(1234), pi="pi_nobody", created=before),
        row("fee", gross=-50, created=before),
        row("payout", gross=-9999, created=now, source="po_test"),  # the batch closes now
    ]), actor="test")
    reconciliation_run(day=now.date(), actor="test")
    assert sorted(Break.objects.exclude(break_class="payout_not_received").values_list("break_class", flat=True)) \
        == ["amount_mismatch", "duplicate", "missing_in_books", "missing_in_books", "timing"]
    assert marks() == {ok.id: "pi_ok", late.id: "pi_late", renamed.id: "pi_renamed", dup.id: "pi_dup"}
    first_twin = SettlementLine.objects.filter(psp_reference="pi_dup").order_by("id").first()
    assert SettledOrder.objects.get(order_id=dup.id).line_id == first_twin.id
    assert SettledOrder.objects.get(order_id=late.id).completed_at == late.completed_at
    reconciliation_run(day=now.date(), actor="test")  # decided again: nothing new, nothing twice
    assert SettledOrder.objects.count() == 4


def test_a_break_decided_again_that_clears_marks_its_order(tmp_path, now):
    before = now - timedelta(hours=2)
    settlement_file_import(path=stripe_report(tmp_path / "day.csv", [
        row("charge", gross=600, fee=fee(600), pi="pi_later", created=before)]), actor="test")
    reconciliation_run(day=now.date(), actor="test")
    assert [b.break_class for b in Break.objects.all()] == ["missing_in_books"]
    assert not SettledOrder.objects.exists()
    later = order(amount=600, psp_reference="pi_later", completed_at=before)  # our order, known at last
    reconciliation_run(day=now.date(), actor="test")
    assert marks() == {later.id: "pi_later"}


@pytest.mark.parametrize("forget_marks", [False, True], ids=["marked", "settled before the marks"])
def test_missing_in_settlement_is_the_same_with_or_without_the_marks(tmp_path, now, forget_marks):
    """Orders past the cut-off: one settled, one whose only line is a break, one no line has. Without its mark
    (an order settled before the table existed) the settled one is found settled by the rule itself."""
    start = now.replace(hour=0, minute=0, second=0)
    completed = start - timedelta(days=3)
    settled = order(amount=1000, psp_reference="pi_settled", completed_at=completed)
    broken = order(amount=2000, psp_reference="pi_broken", completed_at=completed)
    missing = order(amount=3000, psp_reference="pi_missing", completed_at=completed)
    settlement_file_import(path=stripe_report(tmp_path / "day.csv", [
        row("charge", gross=1000, fee=fee(1000), pi="pi_settled", created=completed),
        row("charge", gross=1999, fee=fee(1999), pi="pi_broken", created=completed),
    ]), actor="test")
    # The batch closed in the timing window: a run of the day the orders completed, before the cut-off.
    reconciliation_run(day=completed.date(), actor="test")
    assert marks() == {settled.id: "pi_settled"}
    if forget_marks:
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {SettledOrder._meta.db_table}")
    reconciliation_run(day=now.date(), actor="test")
    assert sorted(Break.objects.filter(break_class="missing_in_settlement").values_list("object_id", flat=True)) \
        == sorted([broken.id, missing.id])
