"""``missing_in_settlement`` breaks the last run saw unsettled (``RunScope.missing_seen_by``): seen again without
probing their orders or the history; only a line this run decides can settle them, by reference or by a match row."""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection

from payments.models import PaymentOrder
from reconciliation.matching.scope import RunScope
from reconciliation.models import Break, SettlementMatch
from reconciliation.services import reconciliation_run, settlement_file_import

from .helpers import fee, order, row, stripe_report

pytestmark = pytest.mark.django_db


def missing() -> list[tuple[str, str, int, int]]:
    """(order, state, first run, last run) of each ``missing_in_settlement`` break."""
    return sorted(Break.objects.filter(break_class="missing_in_settlement")
                  .values_list("object_id", "state", "run_id", "last_seen_run_id"))


def _order_table_scans() -> int:
    """Scans of the orders' table so far in this transaction (each probe of a nested loop is one)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(seq_scan, 0) + COALESCE(idx_scan, 0) FROM pg_stat_xact_user_tables"
                       " WHERE relid = %s::regclass", [PaymentOrder._meta.db_table])
        return cursor.fetchone()[0]


def test_breaks_seen_by_the_last_run_are_seen_again_without_probing_their_orders(now):
    """Twenty breaks, seen again by the next run: no probe of their orders by id, one each, as before."""
    completed = now.replace(hour=0, minute=0, second=0) - timedelta(days=3)
    for n in range(20):
        order(amount=800 + n, psp_reference=f"pi_lost_{n}", completed_at=completed)
    first = reconciliation_run(day=now.date(), actor="test")
    scans = _order_table_scans()
    second = reconciliation_run(day=now.date(), actor="test")
    assert {state_runs[1:] for state_runs in missing()} == {("open", first.pk, second.pk)}
    assert _order_table_scans() - scans < 20


def test_a_break_seen_by_the_last_run_is_cleared_by_a_clean_line_of_this_run(tmp_path, now):
    """Settled by reference (no match row) by a line of the run's file: cleared; the other seen again."""
    completed = now.replace(hour=0, minute=0, second=0) - timedelta(days=3)
    late = order(amount=800, psp_reference="pi_late", completed_at=completed)
    lost = order(amount=900, psp_reference="pi_lost", completed_at=completed)
    first = reconciliation_run(day=now.date(), actor="test")
    settlement_file_import(path=stripe_report(tmp_path / "late.csv", [  # the batch closed in the timing window
        row("charge", gross=800, fee=fee(800), pi="pi_late", created=completed),
        row("payout", gross=-(800 - fee(800)), created=completed + timedelta(hours=1), source="po_late"),
    ]), actor="test")
    second = reconciliation_run(day=now.date(), actor="test")
    assert missing() == sorted([(str(late.id), "auto_resolved", first.pk, second.pk),
                                (str(lost.id), "open", first.pk, second.pk)])
    cleared = Break.objects.get(object_id=late.id)
    assert cleared.resolution == "settled_later" and cleared.reason.startswith("settled by line ")


def test_a_break_seen_by_the_last_run_is_cleared_by_a_match_row_of_this_run(tmp_path, now):
    """Settled by a match row this run wrote: a line that found the order by our id (its PSP reference another)."""
    completed = now.replace(hour=0, minute=0, second=0) - timedelta(days=3)
    renamed = order(amount=800, psp_reference="pi_ours", completed_at=completed)
    first = reconciliation_run(day=now.date(), actor="test")
    settlement_file_import(path=stripe_report(tmp_path / "late.csv", [
        row("charge", gross=800, fee=fee(800), pi="pi_renamed", order_id=renamed.id, created=completed),
        row("payout", gross=-(800 - fee(800)), created=completed + timedelta(hours=1), source="po_late"),
    ]), actor="test")
    second = reconciliation_run(day=now.date(), actor="test")
    assert missing() == [(str(renamed.id), "auto_resolved", first.pk, second.pk)]
    assert SettlementMatch.objects.get(object_id=renamed.id).run_id == second.pk


def test_a_run_whose_cut_off_moved_back_probes_the_breaks(now):
    """The last run's window ended later than this run's: a break it saw may be past this run's cut-off, not seen
    again (its order probed, as every break's is when the last run cannot vouch for it)."""
    start = now.replace(hour=0, minute=0, second=0)
    early = order(amount=800, psp_reference="pi_early", completed_at=start - timedelta(days=3))
    later = order(amount=900, psp_reference="pi_later", completed_at=start - timedelta(hours=12))
    first = reconciliation_run(day=now.date() + timedelta(days=1), actor="test")  # the cut-off: the start of today
    assert missing() == sorted([(str(early.id), "open", first.pk, first.pk),
                                (str(later.id), "open", first.pk, first.pk)])
    second = reconciliation_run(day=now.date(), actor="test")  # the cut-off: the start of yesterday
    assert missing() == sorted([(str(early.id), "open", first.pk, second.pk),
                                (str(later.id), "open", first.pk, first.pk)])


def test_a_cleared_break_is_not_probed_again(tmp_path, now):
    """A break cleared by a late line: its order settled, and a settled order stays so; no run probes it again."""
    completed = now.replace(hour=0, minute=0, second=0) - timedelta(days=3)
    rows = []
    for n in range(20):
        order(amount=800 + n, psp_reference=f"pi_late_{n}", completed_at=completed)
        rows.append(row("charge", gross=800 + n, fee=fee(800 + n), pi=f"pi_late_{n}", created=completed))
    first = reconciliation_run(day=now.date(), actor="test")
    settlement_file_import(path=stripe_report(tmp_path / "late.csv", [
        *rows, row("payout", gross=-1, created=completed + timedelta(hours=1), source="po_late")]), actor="test")
    second = reconciliation_run(day=now.date(), actor="test")
    scans = _order_table_scans()
    reconciliation_run(day=now.date(), actor="test")
    assert {state_runs[1:] for state_runs in missing()} == {("auto_resolved", first.pk, second.pk)}
    assert _order_table_scans() - scans < 20


def test_the_days_the_window_holds_whole():
    """A break is seen again without a probe only when its order's completion day is wholly in the window: the
    window's own first day when it starts at midnight (as ``run_scope`` makes it), else the next."""
    midnight = datetime(2026, 1, 10, tzinfo=UTC)
    scope = RunScope(run_id=1, now=midnight, files=[], settled_at=[], reconciled_files=[],
                     timing_window=timedelta(hours=24), missing_before=midnight, missing_since=midnight,
                     missing_checked_before=midnight, payout_window=timedelta(days=5), missing_nearby_files=[])
    assert scope.missing_days_from == date(2026, 1, 10)
    assert replace(scope, missing_since=midnight + timedelta(hours=10)).missing_days_from == date(2026, 1, 11)
    assert replace(scope, missing_since=midnight - timedelta(microseconds=1)).missing_days_from == date(2026, 1, 10)
