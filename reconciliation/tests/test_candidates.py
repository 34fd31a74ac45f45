"""The candidates step finds each line's order by PSP reference set-based (a hash join to the orders completed
since the earliest batch close less the timing window), and the lines left by a probe each: the same orders
either way (one order per reference, payments' unique index)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection

from reconciliation.models import Break
from reconciliation.selectors import settlement_lines_with_match
from reconciliation.services import reconciliation_run, settlement_file_import

from .helpers import fee, order, row, stripe_report

pytestmark = pytest.mark.django_db


def test_lines_find_their_order_in_the_range_and_before_it_and_none_when_there_is_none(tmp_path, now):
    recent = order(amount=1000, psp_reference="pi_recent", completed_at=now - timedelta(hours=2))  # the hash
    late = order(amount=700, psp_reference="pi_late", completed_at=now - timedelta(days=3))  # a probe: timing
    after = order(amount=600, psp_reference="pi_after", completed_at=now + timedelta(hours=1))  # the hash
    order(amount=900, psp_reference="pi_other_day", completed_at=now - timedelta(days=9))  # no line has it
    settlement_file_import(path=stripe_report(tmp_path / "day.csv", [
        row("charge", gross=1000, fee=fee(1000), pi="pi_recent", created=now - timedelta(hours=2)),
        row("charge", gross=700, fee=fee(700), pi="pi_late", created=now - timedelta(days=3)),
        row("charge", gross=600, fee=fee(600), pi="pi_after", created=now),
        row("charge", gross=1234, fee=fee(1234), pi="pi_nobody", created=now),  # a probe, finding nothing
        row("payout", gross=-(1000 + 700 + 600 + 1234 - fee(1000) - fee(700) - fee(600) - fee(1234)), created=now,
            source="po_test"),
    ]), actor="test")
    reconciliation_run(day=now.date(), actor="test")
    lines = {line.psp_reference: line for line in settlement_lines_with_match().filter(record_type="charge")}
    assert {ref: (line.match_state, line.matched_object_id) for ref, line in lines.items()} == {
        "pi_recent": ("matched", recent.id), "pi_late": ("matched", late.id), "pi_after": ("matched", after.id),
        "pi_nobody": ("break", "")}
    breaks = Break.objects.filter(line__record_type="charge").values_list("break_class", "state", "line__psp_reference")
    assert sorted(breaks) == [("missing_in_books", "open", "pi_nobody"), ("timing", "auto_resolved", "pi_late")]


def test_the_breaks_references_are_read_by_a_probe_per_break_whatever_the_planner_prefers(tmp_path, now):
    """The breaks' lines (``recon_reopened``, which ``recon_twin_ref`` reads): each break's line probed by id, never
    a scan of every line of the history (with parallel query on, the planner chose a parallel hash of every line at
    ten nights: 2.2 s against 0.2 s)."""
    before = now - timedelta(hours=1)
    settlement_file_import(path=stripe_report(tmp_path / "a.csv", [
        row("charge", gross=100, fee=fee(100), pi="pi_nobody", created=before)]), actor="test")
    reconciliation_run(day=now.date(), actor="test")  # a missing_in_books break: decided again by the next run
    sent = []

    def watch(execute, sql, params, many, context):
        if "CREATE TEMP TABLE recon_reopened" in sql:
            sent.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(watch):
        reconciliation_run(day=now.date(), actor="test")
    (sql, params), = sent
    with connection.cursor() as cursor:  # a plain join would be a hash join over a scan of the lines here
        for setting in ("enable_nestloop = off", "enable_seqscan = off", "parallel_setup_cost = 0",
                        "parallel_tuple_cost = 0", "min_parallel_table_scan_size = 0"):
            cursor.execute(f"SET LOCAL {setting}")
        cursor.execute("EXPLAIN " + sql.split(" AS", 1)[1], params)
        plan = "\n".join(row for (row,) in cursor.fetchall())
    assert "Index Cond: (id = line_match.line_id)" in plan  # a probe by the break's line id
