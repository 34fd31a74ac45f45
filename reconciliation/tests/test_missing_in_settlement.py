"""``missing_in_settlement`` past the cut-off: the orders a charge line settled (by reference, by our order id, the
first of twins, a timing break, a break that cleared) are set aside, the others are breaks; and a run writes
nothing per clean line (no settled-order marks: ``reconciliation`` migration 0012)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection

from reconciliation.matching.scope import run_scope
from reconciliation.models import Break, ReconciliationRun, SettlementFile
from reconciliation.services import reconciliation_run, settlement_file_import

from .helpers import fee, order, row, stripe_report

pytestmark = pytest.mark.django_db


def missing() -> list[str]:
    return sorted(Break.objects.filter(break_class="missing_in_settlement").values_list("object_id", flat=True))


def test_past_the_cut_off_only_the_orders_no_line_settled_are_missing(tmp_path, now):
    before = now - timedelta(hours=2)
    order(amount=1000, psp_reference="pi_ok", completed_at=before)
    order(amount=700, psp_reference="pi_late", completed_at=now - timedelta(days=3))
    renamed = order(amount=400, psp_reference="pi_ours", completed_at=before)
    order(amount=500, psp_reference="pi_dup", completed_at=before)
    amount = order(amount=2000, psp_reference="pi_amount", completed_at=before)
    order(amount=900, psp_reference="pi_failed", completed_at=before, state="failed")
    forgotten = order(amount=300, psp_reference="pi_forgotten", completed_at=before)
    settlement_file_import(path=stripe_report(tmp_path / "day.csv", [
        row("charge", gross=1000, fee=fee(1000), pi="pi_ok", created=before),  # matched by reference
        row("charge", gross=700, fee=fee(700), pi="pi_late", created=before),  # timing: matched all the same
        row("charge", gross=400, fee=fee(400), pi="pi_renamed", order_id=renamed.id, created=before),  # by our id
        row("charge", gross=500, fee=fee(500), pi="pi_dup", created=before),  # the first twin settles it
        row("charge", gross=500, fee=fee(500), pi="pi_dup", created=before),  # the second is a duplicate
        row("charge", gross=1900, fee=fee(1900), pi="pi_amount", created=before),  # a break settles nothing
        row("charge", gross=900, fee=fee(900), pi="pi_failed", created=before),
        row("fee", gross=-50, created=before),
        row("payout", gross=-9999, created=now, source="po_test"),  # the batch closes now
    ]), actor="test")
    reconciliation_run(day=now.date(), actor="test")
    assert missing() == []  # the cut-off has not passed
    reconciliation_run(day=now.date() + timedelta(days=3), actor="test")
    assert missing() == sorted([amount.id, forgotten.id])
    reconciliation_run(day=now.date() + timedelta(days=4), actor="test")  # checked again: nothing new
    assert missing() == sorted([amount.id, forgotten.id])


def test_an_order_whose_line_was_reconciled_by_an_earlier_run_is_not_missing(tmp_path, now):
    """Orders past the cut-off: one settled by a line of a file an earlier run reconciled, one whose only line is
    a break, one no line has."""
    start = now.replace(hour=0, minute=0, second=0)
    completed = start - timedelta(days=3)
    order(amount=1000, psp_reference="pi_settled", completed_at=completed)
    broken = order(amount=2000, psp_reference="pi_broken", completed_at=completed)
    lost = order(amount=3000, psp_reference="pi_missing", completed_at=completed)
    settlement_file_import(path=stripe_report(tmp_path / "day.csv", [
        row("charge", gross=1000, fee=fee(1000), pi="pi_settled", created=completed),
        row("charge", gross=1999, fee=fee(1999), pi="pi_broken", created=completed),
    ]), actor="test")
    # The batch closed in the timing window: a run of the day the orders completed, before the cut-off.
    reconciliation_run(day=completed.date(), actor="test")
    assert missing() == []
    reconciliation_run(day=now.date(), actor="test")
    assert missing() == sorted([broken.id, lost.id])


def test_an_order_settled_by_a_line_outside_the_nearby_files_is_not_missing(tmp_path, now):
    """The orders new to the window are looked for set-based in the files whose batch closed from the window's
    start to a timing window past its end (``missing_nearby_files``); an order settled cleanly by a line of
    another file (here a batch that closed before the order completed) is found by its probe all the same."""
    start = now.replace(hour=0, minute=0, second=0)
    completed = start - timedelta(days=3)
    order(amount=1000, psp_reference="pi_nearby", completed_at=completed)
    order(amount=1500, psp_reference="pi_early", completed_at=completed + timedelta(hours=1))
    lost = order(amount=3000, psp_reference="pi_missing", completed_at=completed)
    settlement_file_import(path=stripe_report(tmp_path / "early.csv", [
        row("charge", gross=1500, fee=fee(1500), pi="pi_early", created=completed - timedelta(days=2)),
        row("payout", gross=-1, created=completed - timedelta(days=2), source="po_early"),
    ]), actor="test")
    settlement_file_import(path=stripe_report(tmp_path / "day.csv", [
        row("charge", gross=1000, fee=fee(1000), pi="pi_nearby", created=completed),
        row("payout", gross=-1, created=completed + timedelta(hours=12), source="po_day"),
    ]), actor="test")
    reconciliation_run(day=completed.date(), actor="test")
    assert missing() == []
    early, day = SettlementFile.objects.order_by("id")
    assert early.settled_at < completed < day.settled_at
    scope = run_scope(run=ReconciliationRun(pk=0), day=now.date())
    assert scope.missing_nearby_files == [day.pk]  # the early file is not among them: its line is probed
    reconciliation_run(day=now.date(), actor="test")
    assert missing() == [lost.id]


def test_a_break_decided_again_that_clears_settles_its_order(tmp_path, now):
    before = now - timedelta(hours=2)
    settlement_file_import(path=stripe_report(tmp_path / "day.csv", [
        row("charge", gross=600, fee=fee(600), pi="pi_later", created=before)]), actor="test")
    reconciliation_run(day=now.date(), actor="test")
    assert [b.break_class for b in Break.objects.all()] == ["missing_in_books"]
    order(amount=600, psp_reference="pi_later", completed_at=before)  # our order, known at last
    reconciliation_run(day=now.date(), actor="test")
    reconciliation_run(day=now.date() + timedelta(days=3), actor="test")
    assert missing() == []


def _rows_per_table() -> dict[str, int]:
    with connection.cursor() as cursor:
        tables = [t for t in connection.introspection.table_names(cursor) if t.startswith("reconciliation_")]
        counts = {}
        for table in tables:
            cursor.execute(f"SELECT count(*) FROM {table}")
            counts[table] = cursor.fetchone()[0]
    return counts


def test_a_clean_night_writes_no_row_per_line(tmp_path, now):
    """Lines matched by reference are only counted: no reconciliation table grows with them (the settled-order
    marks wrote one row each)."""
    before = now - timedelta(hours=2)
    clean = 30
    rows = []
    for n in range(clean):
        order(amount=1000 + n, psp_reference=f"pi_clean{n}", completed_at=before)
        rows.append(row("charge", gross=1000 + n, fee=fee(1000 + n), pi=f"pi_clean{n}", created=before))
    settlement_file_import(path=stripe_report(tmp_path / "day.csv", rows), actor="test")
    imported = _rows_per_table()
    run = reconciliation_run(day=now.date(), actor="test")
    assert run.stats["lines"] == {"matched": clean}
    grown = {table: count - imported[table] for table, count in _rows_per_table().items() if count != imported[table]}
    assert grown == {"reconciliation_reconciliationrun": 1}


def test_an_order_completed_as_the_window_starts_settled_by_a_batch_closing_then_is_not_missing(tmp_path, now):
    """A batch closing at the window's very start is no nearby file (it holds the orders before the window); an
    order of the window completed at that very instant and settled by it is found by its probe."""
    window_start = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1) - timedelta(days=30)
    order(amount=1000, psp_reference="pi_edge", completed_at=window_start)
    lost = order(amount=3000, psp_reference="pi_missing", completed_at=window_start + timedelta(hours=1))
    settlement_file_import(path=stripe_report(tmp_path / "edge.csv", [
        row("charge", gross=1000, fee=fee(1000), pi="pi_edge", created=window_start),
        row("payout", gross=-1, created=window_start, source="po_edge"),
    ]), actor="test")
    reconciliation_run(day=window_start.date(), actor="test")
    edge = SettlementFile.objects.get()
    assert edge.settled_at == window_start
    scope = run_scope(run=ReconciliationRun(pk=0), day=now.date())
    assert edge.pk not in scope.missing_nearby_files and scope.missing_checked_before == window_start
    reconciliation_run(day=now.date(), actor="test")
    assert missing() == [lost.id]
