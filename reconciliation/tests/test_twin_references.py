"""The twin references found on import (``SettlementFile.twin_references``) and matching's use of them."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.db.models import Count

from reconciliation.importers.arrow_blocks import TWINS_KEPT
from reconciliation.models import Break, SettlementFile, SettlementLine
from reconciliation.selectors import settlement_lines_with_match
from reconciliation.services import reconciliation_run, settlement_file_import

from .helpers import fee, order, row, stripe_report
from .test_fast_import_adyen import SAME_WIDTH, plain_rows, ref, report

pytestmark = pytest.mark.django_db


def twins_in_lines(settlement_file: SettlementFile) -> list[str]:
    """What matching looks for when the import did not find them: references several charge lines hold."""
    return sorted(SettlementLine.objects.filter(file=settlement_file, record_type="charge").exclude(psp_reference="")
                  .values("psp_reference").annotate(n=Count("id")).filter(n__gt=1)
                  .values_list("psp_reference", flat=True))


def test_adyen_import_finds_the_charges_twins_among_converted_and_odd_rows(tmp_path):
    refund = {"Type": "Refunded", "Gross Credit (GC)": "", "Gross Debit (GC)": "5.00", "Net Credit (NC)": "",
              "Net Debit (NC)": "5.00", "Commission (NC)": ""}
    rows = [*plain_rows(40), ref("t_twin"), *SAME_WIDTH, ref("t_twin"),
            ref("t_mixed"), ref("t_mixed", TimeZone="Europe/Amsterdam"),  # the second one is the row parser's
            ref("t_charged_refunded"), ref("t_charged_refunded", **refund),  # a refund is no twin of its charge
            ref("t_malformed"), ref("t_malformed", **{"Gross Credit (GC)": "1O.00"}),  # nor a malformed line
            *plain_rows(3)]  # p0000100..102 again
    result = settlement_file_import(path=report(tmp_path / "day.csv", rows), actor="test")
    assert result.file.unique_references is None  # odd rows: uniqueness is not checked
    assert result.file.twin_references == ["p0000100", "p0000101", "p0000102", "t_mixed", "t_twin"]
    assert result.file.twin_references == twins_in_lines(result.file)


def test_stripe_report_without_twins_has_none(tmp_path, now):
    result = settlement_file_import(path=stripe_report(tmp_path / "a.csv", [
        row("charge", gross=1000, fee=fee(1000), pi="pi_a", created=now),
        row("refund", gross=-300, pi="pi_a", source="re_1", created=now),
        row("charge", gross=1000, fee=fee(1000), pi="pi_b", created=now),
    ]), actor="test")
    assert result.file.unique_references is False and result.file.twin_references == []


def test_too_many_twins_are_left_to_matching(tmp_path, now, monkeypatch):
    from reconciliation.importers import arrow_blocks

    monkeypatch.setattr(arrow_blocks, "TWINS_KEPT", 1)
    rows = [row("charge", gross=1000, fee=fee(1000), pi=f"pi_{n % 2}", created=now) for n in range(4)]
    result = settlement_file_import(path=stripe_report(tmp_path / "a.csv", rows), actor="test")
    assert result.file.twin_references is None and TWINS_KEPT == 10_000


def _run_outcome(day) -> tuple[list, list]:
    run = reconciliation_run(day=day, actor="test")
    lines = sorted(settlement_lines_with_match().values_list("psp_reference", "ordinal", "match_state",
                                                             "matched_object_id"))
    breaks = sorted(Break.objects.values_list("break_class", "line__psp_reference", "line__ordinal", "state"))
    return [lines, breaks], run.stats


def test_matching_reads_the_twins_found_on_import_as_it_would_find_them(tmp_path, now):
    """The same run, once with the import's twins, once with matching looking for them in the lines."""
    before = now - timedelta(hours=1)
    for reference, amount in (("pi_ok", 1000), ("pi_dup", 500), ("pi_amount", 2000), ("pi_dup3", 700)):
        order(amount=amount, psp_reference=reference, completed_at=before)
    rows = [row("charge", gross=1000, fee=fee(1000), pi="pi_ok", created=before),
            row("charge", gross=500, fee=fee(500), pi="pi_dup", created=before),
            row("charge", gross=1900, fee=fee(1900), pi="pi_amount", created=before),
            row("charge", gross=500, fee=fee(500), pi="pi_dup", created=before),
            *[row("charge", gross=700, fee=fee(700), pi="pi_dup3", created=before)] * 3,
            row("charge", gross=0, fee=0, gross_text="1O", pi="pi_broken", created=before),  # malformed
            row("payout", gross=-9999, created=now, source="po_test")]
    settlement_file = settlement_file_import(path=stripe_report(tmp_path / "a.csv", rows), actor="test").file
    assert settlement_file.twin_references == ["pi_dup", "pi_dup3"]

    class Undo(Exception):
        pass

    with pytest.raises(Undo), transaction.atomic():
        SettlementFile.objects.filter(pk=settlement_file.pk).update(twin_references=None)
        looked_for, looked_for_stats = _run_outcome(now.date())
        raise Undo
    found, found_stats = _run_outcome(now.date())
    assert found == looked_for and found_stats == looked_for_stats
    assert sorted(b[:2] for b in found[1]) == [("amount_mismatch", "pi_amount"), ("duplicate", "pi_dup"),
                                               ("duplicate", "pi_dup3"), ("duplicate", "pi_dup3"),
                                               ("malformed_line", ""),
                                               ("payout_not_received", "po_test")]  # no bank statement here


def test_the_timing_limit_is_each_files_own_when_their_batches_close_apart(tmp_path, now):
    """Two reports closing two days apart in one run: a charge is clean by its own file's close (the lean
    candidates use one limit only when every file of charges closes at once)."""
    early_close = now - timedelta(days=2)
    late = order(amount=1000, psp_reference="pi_late", completed_at=now - timedelta(hours=30))
    on_time = order(amount=1000, psp_reference="pi_on_time", completed_at=early_close - timedelta(hours=2))
    settlement_file_import(path=stripe_report(tmp_path / "late.csv", [
        row("charge", gross=1000, fee=fee(1000), pi="pi_late", created=now - timedelta(hours=1)),
        row("payout", gross=-9999, created=now, source="po_late")]), actor="test")
    settlement_file_import(path=stripe_report(tmp_path / "early.csv", [
        row("charge", gross=1000, fee=fee(1000), pi="pi_on_time", created=early_close - timedelta(hours=1)),
        row("payout", gross=-9999, created=early_close, source="po_early")]), actor="test")
    reconciliation_run(day=now.date(), actor="test")
    lines = dict(settlement_lines_with_match().filter(record_type="charge")
                 .values_list("psp_reference", "matched_object_id"))
    assert lines == {"pi_late": late.id, "pi_on_time": on_time.id}
    assert sorted(Break.objects.filter(break_class="timing").values_list("line__psp_reference", flat=True)) == [
        "pi_late"]
