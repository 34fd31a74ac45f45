"""The lines an earlier run left a break are read once by a run (``recon_reopened``): the steps that decide lines of
a few record types (refunds, payouts, money out, disputes, refund failures) read only the lines of theirs."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection

from reconciliation.models import Break
from reconciliation.services import reconciliation_run, settlement_file_import

from .helpers import fee, row, stripe_report

pytestmark = pytest.mark.django_db

#: The statements of those steps, by what each reads.
_STEPS = {"refunds": "line.record_type = 'refund'", "payouts": "line.record_type = 'payout'",
          "money out": "'transfer'", "disputes": "'chargeback'", "refund failures": "'refund_failure'"}


def _lines_read(cursor, sql: str, params) -> int:
    """How many settlement lines ``sql`` reads (returned or filtered out), nested loops forced as at scale."""
    cursor.execute("SAVEPOINT probes")
    for setting in ("enable_seqscan = off", "enable_hashjoin = off", "enable_mergejoin = off"):
        cursor.execute(f"SET LOCAL {setting}")
    cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
    (plan,), = cursor.fetchall()
    cursor.execute("ROLLBACK TO SAVEPOINT probes")

    def read(node: dict) -> int:
        own = 0
        if node.get("Relation Name") == "reconciliation_settlementline":
            own = (node["Actual Rows"] + node.get("Rows Removed by Filter", 0)) * node["Actual Loops"]
        return own + sum(read(child) for child in node.get("Plans", []))

    return read(plan[0]["Plan"])


def test_a_step_of_a_few_record_types_reads_only_the_reopened_lines_of_its_own(tmp_path, now):
    before = now - timedelta(hours=1)
    nobody = [row("charge", gross=100 + n, fee=fee(100 + n), pi=f"pi_nobody_{n}", created=before) for n in range(20)]
    settlement_file_import(path=stripe_report(tmp_path / "day.csv", [
        *nobody,  # twenty missing_in_books breaks, decided again by the next run
        row("refund", gross=-300, pi="pi_nobody_0", source="re_unknown", created=before),  # a refund break too
        row("payout", gross=-9999, created=now, source="po_test"),  # payout_not_received
    ]), actor="test")
    reconciliation_run(day=now.date(), actor="test")
    assert Break.objects.filter(state="open").count() == 22
    probed = {}

    def watch(execute, sql, params, many, context):
        step = next((name for name, text in _STEPS.items() if text in sql and sql.lstrip().startswith("SELECT")),
                    None)
        if step is not None and not many:
            with context["connection"].connection.cursor() as cursor:
                probed[step] = _lines_read(cursor, sql, params)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(watch):
        again = reconciliation_run(day=now.date(), actor="test")
    assert set(probed) == set(_STEPS)
    # Each step reads its own reopened line (refunds, payouts) or none (the run's files are reconciled: no new line);
    # before, each read the 22 reopened lines (or every charge-like outcome's line), whatever their type.
    assert probed == {"refunds": 1, "payouts": 1, "money out": 0, "disputes": 0, "refund failures": 0}
    assert Break.objects.filter(last_seen_run=again, state="open").count() == 22  # the same breaks seen again
