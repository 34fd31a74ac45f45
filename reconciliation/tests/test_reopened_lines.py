"""The lines an earlier run left a break are read once by a run (``recon_reopened``): the steps that decide lines of
a few record types (refunds, payouts, money out, disputes, refund failures) probe only the lines of theirs."""
from __future__ import annotations

import re
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
_LINE_READ = re.compile(r"on reconciliation_settlementline \w+ .*?(?:loops=(\d+)|\(never executed\))")


def _lines_probed(cursor, sql: str, params) -> int:
    """The most times one read of the lines runs in ``sql``'s plan, nested loops forced (as at scale): how many lines
    a probe per line reads."""
    cursor.execute("SAVEPOINT probes")
    for setting in ("enable_seqscan = off", "enable_hashjoin = off", "enable_mergejoin = off"):
        cursor.execute(f"SET LOCAL {setting}")
    cursor.execute("EXPLAIN (ANALYZE, COSTS off) " + sql, params)
    plan = "\n".join(row for (row,) in cursor.fetchall())
    cursor.execute("ROLLBACK TO SAVEPOINT probes")
    return max(int(loops or 0) for loops in _LINE_READ.findall(plan))


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
                probed[step] = _lines_probed(cursor, sql, params)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(watch):
        again = reconciliation_run(day=now.date(), actor="test")
    assert set(probed) == set(_STEPS)
    # Each read of the lines runs at most once: the step's own reopened line (refunds, payouts), its read of the run's
    # files, or not at all (no dispute); before, each step probed the 22 reopened lines (or every charge-like
    # outcome), whatever their type.
    assert max(probed.values()) <= 1, probed
    assert Break.objects.filter(last_seen_run=again, state="open").count() == 22  # the same breaks seen again
