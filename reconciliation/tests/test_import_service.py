"""settlement_file_import against every real sample file, and its failure modes."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command

from reconciliation.exceptions import SettlementImportError
from reconciliation.models import SettlementFile, SettlementLine
from reconciliation.selectors import settlement_lines_with_match
from reconciliation.services import settlement_file_import

from .test_importers import EXPECTED, SAMPLES, needs_samples

pytestmark = pytest.mark.django_db


@needs_samples
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_sample_imports_once(name):
    fmt, types, n_records, n_headers = EXPECTED[name]
    result = settlement_file_import(path=SAMPLES / name, actor="test")
    assert result.created
    file = result.file
    assert (file.format, file.line_count, file.malformed_count) == (fmt, n_records, 0)
    assert set(file.counts_by_type) == types and "unknown" not in file.counts_by_type
    assert len(file.statements) == n_headers
    lines = SettlementLine.objects.filter(file=file)
    assert lines.count() == n_records
    assert not lines.filter(record_type__in=["malformed", "unknown"]).exists()
    assert all(isinstance(line.net, int) and line.currency for line in lines)

    again = settlement_file_import(path=SAMPLES / name, actor="test")
    assert not again.created and again.file.pk == file.pk
    assert (SettlementFile.objects.count(), SettlementLine.objects.count()) == (1, n_records)


@needs_samples
def test_stripe_sample_values_are_stored_exactly():
    file = settlement_file_import(path=SAMPLES / "stripe/payout_reconciliation_itemized.csv", actor="test").file
    charge = SettlementLine.objects.get(file=file, line_number=2)
    assert (charge.record_type, charge.currency, charge.gross, charge.fee, charge.net) == ("charge", "usd", 2500, 95,
                                                                                          2405)
    assert (charge.psp_reference, charge.source_reference, charge.payout_reference) == ("pi_123", "ch_123",
                                                                                        "po_test123")
    refund = SettlementLine.objects.get(file=file, line_number=3)
    assert (refund.record_type, refund.net, refund.source_reference) == ("refund", -1000, "re_123")
    assert file.settled_at is not None


@needs_samples
def test_malformed_line_is_stored_with_its_reason_and_the_rest_imports(tmp_path):
    lines = (SAMPLES / "stripe/payout_reconciliation_itemized.csv").read_text().splitlines(keepends=True)
    lines[3] = lines[3].replace(",USD,10,0,10,", ",USD,1O,0,10,")
    broken = tmp_path / "broken.csv"
    broken.write_text("".join(lines))
    file = settlement_file_import(path=broken, actor="test").file
    assert (file.line_count, file.malformed_count) == (7, 1)
    bad = settlement_lines_with_match().get(file=file, record_type="malformed")
    assert (bad.line_number, bad.error, bad.match_state) == (4, "column 'gross' is not an amount: '1O'", "malformed")
    assert bad.source_line.startswith("txn_003,")


@needs_samples
def test_unreadable_file_leaves_nothing(tmp_path):
    text = (SAMPLES / "stripe/payout_reconciliation_itemized.csv").read_text()
    path = tmp_path / "stripe.csv"
    path.write_text(text.replace(",net,reporting_category,", ",net_amount,category,", 1))
    with pytest.raises(SettlementImportError, match="missing required column"):
        settlement_file_import(path=path, fmt="stripe", actor="test")
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")
    with pytest.raises(SettlementImportError):
        settlement_file_import(path=notes, actor="test")
    assert not SettlementFile.objects.exists() and not SettlementLine.objects.exists()


@needs_samples
def test_import_settlement_command_prints_summary_and_is_idempotent(capsys):
    path = Path(SAMPLES / "adyen/settlement_detail_report_chargeback.csv")
    call_command("import_settlement", str(path), "--format", "auto", "--progress-every", "1")
    out, err = capsys.readouterr()
    assert "format adyen, 3 lines" in out and "0 malformed" in out
    assert "3 lines" in err  # progress on stderr
    call_command("import_settlement", str(path))
    assert "already imported" in capsys.readouterr().out
    assert SettlementLine.objects.count() == 3
