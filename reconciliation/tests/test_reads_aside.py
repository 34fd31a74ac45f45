"""A run's reads of committed data on a second connection (``matching.aside``), and on its own inside a transaction."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.backends.signals import connection_created

from reconciliation.models import Break
from reconciliation.services import reconciliation_run, settlement_file_import

from . import test_missing_in_settlement as serial_missing
from . import test_missing_incremental as serial_incremental
from .helpers import fee, order, row, stripe_report

pytestmark = pytest.mark.django_db(transaction=True)  # committed rows: what a second connection can see

#: A fragment of ``history.settled_by_reference_select``'s SQL, to tell on which connection it ran.
_SETTLED_BY_REFERENCE = "earlier.id <> line.id"


def _run_watching_its_connection(day) -> list[str]:
    """Run ``reconciliation_run``; returns the statements its own connection sent."""
    sent: list[str] = []

    def watch(execute, sql, params, many, context):
        sent.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(watch):
        reconciliation_run(day=day, actor="test")
    return sent


def _duplicate_across_files(tmp_path, now) -> tuple[list[str], list[str]]:
    """A charge reconciled by one run, then the same charge in another file: a duplicate. Each run's statements."""
    before = now - timedelta(hours=1)
    order(amount=100, psp_reference="pi_twice", completed_at=before)
    first = [row("charge", gross=100, fee=fee(100), pi="pi_twice", created=before)]
    settlement_file_import(path=stripe_report(tmp_path / "a.csv", first), actor="test")
    first_run = _run_watching_its_connection(now.date())
    second = [*first, row("fee", gross=-50, created=before)]  # other bytes, the same charge again
    settlement_file_import(path=stripe_report(tmp_path / "b.csv", second), actor="test")
    return first_run, _run_watching_its_connection(now.date())


def _backends() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return cursor.fetchone()[0]


def test_the_history_settled_by_reference_is_read_on_a_second_connection(tmp_path, now):
    backends = _backends()
    first_run, second_run = _duplicate_across_files(tmp_path, now)
    assert [(b.break_class, b.state, b.line.file.name) for b in Break.objects.all()] == [
        ("duplicate", "open", "b.csv")]
    assert not [sql for sql in first_run + second_run if _SETTLED_BY_REFERENCE in sql]  # not on the run's own
    assert _backends() == backends  # the second connection closed


def test_inside_an_outer_transaction_the_run_reads_on_its_own_connection(tmp_path, now):
    """A second connection would not see the files imported in the same, uncommitted, transaction."""
    with transaction.atomic():
        _, second_run = _duplicate_across_files(tmp_path, now)
        assert [b.break_class for b in Break.objects.all()] == ["duplicate"]
    assert [sql for sql in second_run if _SETTLED_BY_REFERENCE in sql]


def test_off_by_setting_every_read_is_the_runs_own(tmp_path, now, settings):
    settings.RECONCILIATION_READS_ASIDE = False
    _, second_run = _duplicate_across_files(tmp_path, now)
    assert [b.break_class for b in Break.objects.all()] == ["duplicate"]
    assert [sql for sql in second_run if _SETTLED_BY_REFERENCE in sql]



def test_without_a_second_connection_the_run_reads_on_its_own(tmp_path, now, monkeypatch):
    """A second connection that cannot be had (here the server's port wrong for new connections; in production a
    pool with none left) leaves the reads to the run's connection: the same breaks."""
    connection.ensure_connection()
    monkeypatch.setitem(connection.settings_dict, "PORT", "1")  # new connections only: the run's is open
    _, second_run = _duplicate_across_files(tmp_path, now)
    assert [b.break_class for b in Break.objects.all()] == ["duplicate"]
    assert [sql for sql in second_run if _SETTLED_BY_REFERENCE in sql]


def test_an_order_whose_only_line_this_run_finds_a_break_is_missing(tmp_path, now):
    """The run that decides a line is the run whose cut-off the order passed: the second connection read that line
    without a match row (nearby: the order set aside); this run's break gives it one, so its order is missing."""
    completed = now.replace(hour=0, minute=0, second=0) - timedelta(days=3)
    order(amount=1000, psp_reference="pi_settled", completed_at=completed)
    broken = order(amount=2000, psp_reference="pi_broken", completed_at=completed)
    lost = order(amount=3000, psp_reference="pi_missing", completed_at=completed)
    settlement_file_import(path=stripe_report(tmp_path / "day.csv", [
        row("charge", gross=1000, fee=fee(1000), pi="pi_settled", created=completed),
        row("charge", gross=1999, fee=fee(1999), pi="pi_broken", created=completed),  # amount_mismatch
        row("payout", gross=-1, created=completed + timedelta(hours=12), source="po_day"),
    ]), actor="test")
    sent = _run_watching_its_connection(now.date())
    assert sorted(Break.objects.filter(break_class="missing_in_settlement").values_list("object_id", flat=True)) == (
        sorted([broken.id, lost.id]))
    assert not [sql for sql in sent if "WITH nearby AS MATERIALIZED" in sql]  # read on the second connection


# The missing step's tests once more with committed rows, so that their runs read on a second connection.
test_aside_past_the_cut_off = serial_missing.test_past_the_cut_off_only_the_orders_no_line_settled_are_missing
test_aside_reconciled_earlier = serial_missing.test_an_order_whose_line_was_reconciled_by_an_earlier_run_is_not_missing
test_aside_outside_nearby = serial_missing.test_an_order_settled_by_a_line_outside_the_nearby_files_is_not_missing
test_aside_a_break_decided_again_clears = serial_missing.test_a_break_decided_again_that_clears_settles_its_order
test_aside_a_late_line_clears = serial_incremental.test_a_late_line_clears_the_break_once_and_the_others_are_seen_again
test_aside_out_of_the_window_cleared = serial_incremental.test_an_open_break_out_of_the_window_is_cleared_by_a_late_line


def test_the_reopened_lines_and_the_settled_by_reference_are_read_on_two_connections(tmp_path, now):
    """The candidates step's two reads go to a connection each (with the run's, three statements at once): neither on
    the run's, nor on the same one; the same breaks as on one."""
    order(amount=100, psp_reference="pi_nobody_known", completed_at=now - timedelta(hours=2))
    settlement_file_import(path=stripe_report(tmp_path / "c.csv", [  # a break the second run decides again
        row("charge", gross=1234, fee=fee(1234), pi="pi_nobody", created=now - timedelta(hours=1))]), actor="test")
    reconciliation_run(day=now.date(), actor="test")
    backends: dict[str, set[int]] = {"reopened": set(), "settled": set()}

    def watch(execute, sql, params, many, context):
        read = ("settled" if _SETTLED_BY_REFERENCE in sql else
                "reopened" if "false AS is_new" in sql and "payment_order" in sql else None)
        if read is not None:
            backends[read].add(context["connection"].connection.info.backend_pid)
        return execute(sql, params, many, context)

    def created(sender, connection, **kwargs):
        connection.execute_wrappers.append(watch)

    connection_created.connect(created)
    try:
        _, second_run = _duplicate_across_files(tmp_path, now)
    finally:
        connection_created.disconnect(created)
    assert sorted((b.break_class, b.state, b.line.file.name) for b in Break.objects.all()) == [
        ("duplicate", "open", "b.csv"), ("missing_in_books", "open", "c.csv")]
    run_backend = connection.connection.info.backend_pid
    assert len(backends["reopened"]) == 2 and len(backends["settled"]) == 2  # one each run (the first's: no history)
    assert not backends["reopened"] & backends["settled"] and run_backend not in backends["reopened"] | backends[
        "settled"]
