"""Line order is ``(file, ordinal)``, not the id: the import may draw a file's ids in another order (by PSP
reference), so the first of twins and the walks over payout and bank lines must not read the ids."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection

from reconciliation.models import Break, SettlementFile, SettlementLine
from reconciliation.services import reconciliation_run, settlement_file_import

from .helpers import bank_statement, row, stripe_report
from .test_breaks import _credit_without_reference
from .test_breaks import day_report as _day_report

pytestmark = pytest.mark.django_db
day_report = _day_report  # the fixture, shared


def _ids_reversed(settlement_file: SettlementFile) -> None:
    """The file's line ids made to run against their ordinals (the first line gets the highest id), within the
    range of ids the file has."""
    table = SettlementLine._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT min(id) FROM {table} WHERE file_id = %s", [settlement_file.pk])
        (lowest,) = cursor.fetchone()
        cursor.execute(f"UPDATE {table} SET id = -id WHERE file_id = %s", [settlement_file.pk])
        cursor.execute(f"""
            UPDATE {table} line SET id = ranked.id
            FROM (SELECT id AS old, %s + row_number() OVER (ORDER BY ordinal DESC) - 1 AS id
                  FROM {table} WHERE file_id = %s) ranked
            WHERE line.id = ranked.old""", [lowest, settlement_file.pk])
    ordered = list(SettlementLine.objects.filter(file=settlement_file).order_by("ordinal").values_list("id", flat=True))
    assert len(ordered) > 1 and ordered == sorted(ordered, reverse=True)


def test_the_first_of_twins_is_the_first_in_line_order(day_report, now):
    path, objects = day_report
    _ids_reversed(settlement_file_import(path=path, actor="test").file)
    reconciliation_run(day=now.date(), actor="test")
    duplicate = Break.objects.get(break_class="duplicate")
    assert duplicate.line.line_number == 7 and duplicate.object_id == objects["dup"].id  # the second pi_dup line


@pytest.mark.parametrize("reversed_file", ["report", "bank"])
def test_payouts_claim_bank_lines_in_line_order(tmp_path, now, reversed_file):
    report = settlement_file_import(path=stripe_report(tmp_path / "s.csv", [
        row("payout", gross=-5000, created=now, source="po_first", payout="po_first"),
        row("payout", gross=-5000, created=now, source="po_second", payout="po_second"),
    ]), actor="test").file
    path = bank_statement(tmp_path / "bank.xml", now + timedelta(days=1), [])
    credits = _credit_without_reference(5000, now) + _credit_without_reference(5000, now).replace("NOREF1", "NOREF2")
    path.write_text(path.read_text().replace("</Stmt>", credits + "</Stmt>", 1))
    bank = settlement_file_import(path=path, actor="test").file
    _ids_reversed(report if reversed_file == "report" else bank)
    reconciliation_run(day=now.date(), actor="test")
    claimed = {line.match.object_id: line.ordinal
               for line in SettlementLine.objects.filter(file=bank).select_related("match")}
    assert claimed == {"po_first": 1, "po_second": 2}  # each payout, in line order, the first bank line left


def test_the_import_inserts_in_reference_order_and_ordinals_keep_the_files(tmp_path, now, settings):
    settings.RECONCILIATION_IMPORT_SORTED_ABOVE_BYTES = -1  # staged and sorted whatever the index's size
    references = ["pi_c", "pi_a", "pi_b"]
    imported = settlement_file_import(path=stripe_report(tmp_path / "s.csv", [
        row("charge", gross=100, pi=reference, created=now) for reference in references]), actor="test").file
    lines = SettlementLine.objects.filter(file=imported)
    assert list(lines.order_by("ordinal").values_list("psp_reference", "line_number")) == [
        ("pi_c", 2), ("pi_a", 3), ("pi_b", 4)]
    assert list(lines.order_by("id").values_list("psp_reference", flat=True)) == sorted(references)


@pytest.mark.parametrize("above", [None, 10**12])  # unset: shared_buffers, far above the tests' index
def test_the_import_copies_directly_while_the_reference_index_is_small(tmp_path, now, settings, above):
    settings.RECONCILIATION_IMPORT_SORTED_ABOVE_BYTES = above
    references = ["pi_c", "pi_a", "pi_b"]
    imported = settlement_file_import(path=stripe_report(tmp_path / "s.csv", [
        row("charge", gross=100, pi=reference, created=now) for reference in references]), actor="test").file
    lines = SettlementLine.objects.filter(file=imported)
    assert list(lines.order_by("id").values_list("psp_reference", flat=True)) == references  # the file's order
    assert list(lines.order_by("id").values_list("ordinal", flat=True)) == sorted(
        lines.values_list("ordinal", flat=True))
