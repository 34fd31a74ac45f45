"""An Adyen settlement details report read by Arrow gives exactly the lines the row-by-row parser gives."""
from __future__ import annotations

import importlib.util
from datetime import datetime
from pathlib import Path

import pytest

from psp_sandbox.settlement import camt053, major
from reconciliation.importers import CopyChunk, adyen_arrow, arrow_columns, iter_copy_chunks
from reconciliation.models import SettlementLine
from reconciliation.services import settlement_file_import
from reconciliation.tests.helpers import copy_rows, fast_and_slow_read_the_same, plain_report_checks_references

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT.parent / "shared" / "samples" / "adyen"
COLUMNS = (
    "Company Account", "Merchant Account", "Psp Reference", "Merchant Reference", "Payment Method", "Creation Date",
    "TimeZone", "Type", "Modification Reference", "Gross Currency", "Gross Debit (GC)", "Gross Credit (GC)",
    "Exchange Rate", "Net Currency", "Net Debit (NC)", "Net Credit (NC)", "Commission (NC)", "Markup (NC)",
    "Scheme Fees (NC)", "Interchange (NC)", "Payment Method Variant", "Modification Merchant Reference",
    "Batch Number", "Reserved4", "Reserved5", "Reserved6", "Reserved7", "Reserved8", "Reserved9", "Reserved10")


def line(**values: str) -> str:
    base = {"Company Account": "Co", "Merchant Account": "CoCOM", "Psp Reference": "8815", "Creation Date":
            "2026-01-15 10:00:00", "TimeZone": "UTC", "Type": "Settled", "Gross Currency": "USD",
            "Gross Credit (GC)": "12.34", "Exchange Rate": "1", "Net Currency": "USD", "Net Credit (NC)": "11.68",
            "Commission (NC)": "0.66", "Batch Number": "7"}
    merged = {**base, **{name.replace("_", " "): value for name, value in values.items()}}
    return ",".join(merged.get(column, "") for column in COLUMNS)


def ref(name: str, **values: str) -> str:
    return line(**{"Psp Reference": name}, **values)


# Every kind of row the fast path must either convert exactly or leave to the row-by-row parser.
SAME_WIDTH = [
    ref("t_iso", **{"Creation Date": "2026-01-15T10:00:00"}),
    ref(" t_pad ", Type=" settled ", **{"Net Currency": " usd ", "Gross Credit (GC)": " 12.34 "}),
    ref("t_pst", TimeZone="PST"), ref("t_cest", TimeZone="cest"), ref("t_ist", TimeZone="IST"),
    ref("t_iana", TimeZone="Europe/Amsterdam"), ref("t_offset", TimeZone="+01:00"),
    ref("t_zone_bad", TimeZone="Mars/Base"),  # malformed
    ref("t_notz", TimeZone=""), ref("t_notime", **{"Creation Date": ""}),
    ref("t_feb30", **{"Creation Date": "2026-02-30 10:00:00"}),  # malformed
    ref("t_leap", **{"Creation Date": "2026-01-15 23:59:60"}),  # malformed
    ref("t_date", **{"Creation Date": "2026-01-15"}),
    ref("t_frac", **{"Creation Date": "2026-01-15 10:00:00.250"}),
    ref("t_year0", **{"Creation Date": "0000-01-15 10:00:00"}),  # malformed
    # Valid where written, out of range in UTC: a malformed line, not an OverflowError that fails the file.
    ref("t_y9999_pst", TimeZone="PST", **{"Creation Date": "9999-12-31 23:30:00"}),  # malformed
    ref("t_y1_cet", TimeZone="CET", **{"Creation Date": "0001-01-01 00:30:00"}),  # malformed
    ref("t_y9999_utc", **{"Creation Date": "9999-12-31 23:30:00"}),
    ref("t_yen", **{"Gross Currency": "JPY", "Net Currency": "JPY", "Gross Credit (GC)": "1234",
                    "Net Credit (NC)": "1168", "Commission (NC)": "66"}),
    ref("t_yen_cents", **{"Gross Currency": "JPY", "Net Currency": "JPY", "Gross Credit (GC)": "12.34"}),  # bad
    ref("t_bhd", **{"Gross Currency": "BHD", "Net Currency": "BHD", "Gross Credit (GC)": "1.234",
                    "Net Credit (NC)": "1.168", "Commission (NC)": "0.066"}),
    ref("t_1dp", **{"Gross Credit (GC)": "12.3", "Net Credit (NC)": "11.7", "Commission (NC)": "0.6"}),
    ref("t_bad", **{"Gross Credit (GC)": "1O.00"}),  # malformed
    ref("t_bad_fee", **{"Markup (NC)": "0.1.2"}),  # malformed
    ref("t_plus", **{"Net Credit (NC)": "+1.00"}), ref("t_dot", **{"Net Credit (NC)": "1."}),
    ref("t_lead", **{"Commission (NC)": ".50"}), ref("t_exp", **{"Net Credit (NC)": "1e3"}),
    ref("t_arabic", **{"Net Credit (NC)": "١٢.٣٤"}),
    ref("t_big", **{"Gross Credit (GC)": "123456789012345.00", "Net Credit (NC)": "123456789012344.34"}),
    ref("t_nonet", **{"Net Credit (NC)": ""}),  # malformed
    ref("t_both", **{"Net Debit (NC)": "1.00", "Net Credit (NC)": "3.50"}),
    ref("t_nocur", **{"Net Currency": ""}), ref("t_xxx", **{"Net Currency": "XXX"}),  # malformed
    ref("t_fx", **{"Gross Currency": "EUR", "Gross Credit (GC)": "10.00", "Exchange Rate": "1.1"}),
    ref("t_fx_jpy", **{"Gross Currency": "JPY", "Gross Credit (GC)": "1500"}),
    ref("t_nogrosscur", **{"Gross Currency": ""}), ref("t_badgrosscur", **{"Gross Currency": "ZZZ"}),  # malformed
    ref("t_nogross", **{"Gross Currency": "", "Gross Credit (GC)": ""}),
    ref("t_nofee", **{"Commission (NC)": ""}),
    ref("t_fees", **{"Markup (NC)": "0.10", "Scheme Fees (NC)": "0.02", "Interchange (NC)": "-0.01"}),
    ref("t_unknown", Type="BenchUnknown"), ref("t_notype", Type=""), ref("t_blanktype", Type="   "),
    ref("t_refund", Type="Refunded", **{"Gross Credit (GC)": "", "Gross Debit (GC)": "5.00",
                                        "Net Credit (NC)": "", "Net Debit (NC)": "5.00", "Commission (NC)": ""}),
    ref("t_cb", Type="Chargeback", **{"Modification Reference": "cb_1", "Net Credit (NC)": "",
                                      "Net Debit (NC)": "14.34", "Commission (NC)": "2.00"}),
    ref("t_cb2", Type="SecondChargeback", **{"Modification Reference": "cb_2"}),
    ref("t_cbr", Type="ChargebackReversed", **{"Modification Reference": "cb_3"}),
    ref("t_mod", Type="Settled", **{"Modification Reference": "mod_1"}),
    ref("", Type="Fee", **{"Gross Credit (GC)": "", "Net Credit (NC)": "", "Net Debit (NC)": "1.80",
                           "Commission (NC)": ""}),
    ref("", Type="MerchantPayout", **{"Gross Credit (GC)": "", "Net Credit (NC)": "", "Net Debit (NC)": "99.00",
                                      "Commission (NC)": "", "Creation Date": "2026-01-16 00:00:00"}),
    ref("", Type="DepositCorrection", **{"Net Credit (NC)": "3.00", "Gross Credit (GC)": ""}),
    ref("t_cafe", **{"Merchant Reference": "Café  du  coin"}),  # not ASCII
    ref("t_ctrl", **{"Merchant Reference": "ord\x0b1"}),  # a control character the row parser strips
    ref("t_edge", **{"Merchant Reference": "ord_e\x1f"}),  # stripped by the row parser, not by Arrow's trim
    ref("t_nbsp", **{"Merchant Reference": "\u00a0ord_n\u2003", "Batch Number": "7\x1c"}),
    ref("t_eszett", TimeZone="E\ufb05", Type="Settl\u212a"),  # upper "EST", lower "settlk": the row parser's
    ref("t_kelvin", Type="Chargebac\u212a", **{"Net Currency": "\u212aRW", "Net Credit (NC)": "1168",
                                              "Commission (NC)": "66"}),
    ref("t_unused", **{"Company Account": "Café", "Payment Method": "vi\x0bsa "}),  # in columns no one reads
    ref("t_quoted", **{"Company Account": '"Co"', "Merchant Reference": '"ord_q"'}),  # split by csv.reader
    ref("t_badquote", **{"Merchant Reference": 'a"b"c'}),
    ",".join(["", "", "", "", ""] + [""] * (len(COLUMNS) - 5)),  # only separators: no row
]
OTHER_ROWS = [
    "",  # a blank line: no row
    ",".join(["x"] * 3),  # too short: malformed
    ref("t_long") + ",extra",  # a value past the header: malformed
    ref("t_trailing") + ",,",  # empty values past the header: fine
    ref("t_payout_text", **{"Modification Reference": '"TX1XT batch 7, CoCOM batch 7, CoCOM"'}),
]
MALFORMED = 18


def report(path: Path, rows: list[str]) -> Path:
    path.write_text(",".join(COLUMNS) + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def plain_rows(count: int) -> list[str]:
    return [ref(f"p{n:07d}", **{"Merchant Reference": f"ord_{n}", "Gross Credit (GC)": f"{n // 100}.{n % 100:02d}",
                                "Net Credit (NC)": f"{n // 100 - 1}.{n % 100:02d}", "Commission (NC)": "1.00",
                                "Creation Date": f"2026-01-15 {n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}",
                                "TimeZone": ("CET", "UTC", "PST")[n % 3]})
            for n in range(100, 100 + count)]


def read(path: Path, *, fast: bool) -> tuple[list[tuple], tuple, list, int]:
    """``helpers.copy_rows`` of an Adyen report, times compared as written."""
    return copy_rows(path, "adyen", fast=fast)


def test_odd_rows_read_the_same_by_both_parsers(tmp_path, monkeypatch):
    # Small blocks: blocks with a row of another width row by row, the others through Arrow, in one file.
    monkeypatch.setattr(adyen_arrow, "BLOCK_BYTES", 4096)
    rows = plain_rows(3000)
    for position, odd in enumerate([*SAME_WIDTH, *OTHER_ROWS]):
        rows.insert(10 + position * 50, odd)
    path = report(tmp_path / "odd.csv", rows)
    assert adyen_arrow.is_plain(path)
    fast, fast_totals, fast_checks, by_arrow = read(path, fast=True)
    slow, slow_totals, slow_checks, none = read(path, fast=False)
    assert by_arrow >= 20 and none == 0
    assert fast == slow  # the same text: times written as the row parser writes them
    assert fast_totals == slow_totals
    assert [row[1] for row in fast] == [str(n) for n in range(1, len(fast) + 1)]  # ordinals in file order
    assert fast_checks == [] and slow_checks == []
    by_reference = {row[5]: row for row in fast}
    assert by_reference["t_yen"][10:13] == ("1234", "66", "1168")
    assert by_reference["t_bhd"][10:13] == ("1234", "66", "1168")
    assert by_reference["t_1dp"][10:13] == ("1230", "60", "1170")
    assert by_reference["t_fx"][10:13] == ("1234", "66", "1168")  # another gross currency: net + fee
    assert by_reference["t_fees"][11] == "77"
    assert by_reference["t_nofee"][11] == "\\N" and by_reference["t_nogross"][10] == "\\N"
    assert by_reference["t_pst"][13] == "2026-01-15T18:00:00+00:00"
    assert by_reference["t_cb"][3:7] == ("chargeback", "Chargeback", "t_cb", "cb_1")
    assert by_reference["t_mod"][6] == ""
    assert sum(1 for row in fast if row[3] == "malformed") == MALFORMED


def test_blocks_with_odd_rows_convert_the_rest_and_read_the_same(tmp_path, monkeypatch):
    # Odd rows of the header's width in every block: the block's other rows still go through Arrow, the odd
    # ones through the row parser, in their place.
    monkeypatch.setattr(adyen_arrow, "BLOCK_BYTES", 4096)
    odd_rows = [odd for odd in SAME_WIDTH if odd.replace(",", "").strip()]  # a blank line: the block row by row
    rows = plain_rows(1500)
    for position in range(len(rows) // 10, 0, -1):  # one every 10 rows, a few in each 4 KB block
        rows.insert(position * 10, odd_rows[position % len(odd_rows)])
    rows.append(rows[100])  # a twin: the first line stays first
    path = report(tmp_path / "mixed.csv", rows)
    fast, fast_checks, _ = fast_and_slow_read_the_same(path, "adyen")
    assert {"t_yen", "t_cafe", "t_pst", "t_quoted", "t_iana"} <= {row[5] for row in fast}
    assert fast_checks == []  # odd rows: uniqueness left to matching


def test_plain_report_goes_through_arrow_and_checks_references(tmp_path, monkeypatch):
    monkeypatch.setattr(adyen_arrow, "BLOCK_BYTES", 4096)
    plain_report_checks_references(tmp_path, report, plain_rows, read)


def _bench_files():
    spec = importlib.util.spec_from_file_location("_reconcile_files", ROOT / "bench" / "_reconcile_files.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_report_reads_the_same(tmp_path, monkeypatch):
    monkeypatch.setattr(adyen_arrow, "BLOCK_BYTES", 1 << 16)
    files = _bench_files()
    files.write_adyen_night(tmp_path, 0, 20000, 100, None, camt053, major)  # 1% of lines made differences
    path = files.night_files(tmp_path, 0)[0]
    fast, fast_totals, _, by_arrow = read(path, fast=True)
    slow, slow_totals, _, _ = read(path, fast=False)
    assert fast == slow and fast_totals == slow_totals
    chunks = sum(1 for item in iter_copy_chunks(path, "adyen", 7, fast=True) if isinstance(item, CopyChunk))
    assert by_arrow == chunks > 20
    assert fast_totals[1]["malformed"] == 25 and fast_totals[1]["unknown"] == 25 and fast_totals[1]["payout"] == 1


@pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"no sample files at {SAMPLES}")
@pytest.mark.parametrize("name", sorted(p.name for p in SAMPLES.glob("*.csv")) if SAMPLES.is_dir() else [])
def test_real_reports_read_the_same(tmp_path, monkeypatch, name):
    # Real reports quote a payout's description: those rows go to the row parser, the others through Arrow.
    monkeypatch.setattr(adyen_arrow, "BLOCK_BYTES", 1024)
    path = SAMPLES / name
    fast, fast_totals, _, by_arrow = read(path, fast=True)
    assert (fast, fast_totals) == read(path, fast=False)[:2]
    assert fast and by_arrow >= 1
    # The sample's rows among plain ones, a few to a block.
    header, *rows = path.read_text(encoding="utf-8-sig").splitlines()
    mixed = tmp_path / name
    mixed.write_text("\n".join([header, *(row for row in rows for _ in range(3))]) + "\n", encoding="utf-8")
    fast, fast_totals, _, _ = read(mixed, fast=True)
    assert (fast, fast_totals) == read(mixed, fast=False)[:2]


def test_service_stores_what_the_parsers_read(tmp_path):
    path = report(tmp_path / "day.csv", [*plain_rows(50), *SAME_WIDTH])
    result = settlement_file_import(path=path, actor="test")
    assert result.lines == 50 + len(SAME_WIDTH) - 1
    stored = SettlementLine.objects.filter(file=result.file)
    first = stored.get(psp_reference="p0000100")
    assert (first.line_number, first.ordinal, first.gross, first.fee, first.net, first.merchant_reference,
            first.payout_reference, first.occurred_at) == (
        2, 1, 100, 100, 0, "ord_100", "7", datetime.fromisoformat("2026-01-15 00:01:40+00:00"))
    assert stored.get(psp_reference="t_pst").occurred_at == datetime.fromisoformat("2026-01-15 18:00:00+00:00")
    bad = stored.get(line_number=52 + SAME_WIDTH.index(ref("t_bad", **{"Gross Credit (GC)": "1O.00"})))
    assert bad.record_type == "malformed" and "1O.00" in bad.source_line and "Gross Credit" in bad.error
    assert result.file.unique_references is None  # odd rows: not checked


def test_quoted_value_over_two_lines_is_read_row_by_row(tmp_path):
    # Arrow splits lines; a quoted value going on past its line makes the whole file the row parser's.
    rows = [*plain_rows(20), ref("t_two_lines", **{"Merchant Reference": '"first'}), 'second",x',
            *plain_rows(2)]
    path = report(tmp_path / "two.csv", rows)
    result = settlement_file_import(path=path, actor="test")
    slow, _, _, _ = read(path, fast=False)
    assert result.lines == len(slow) == 23
    stored = list(SettlementLine.objects.filter(file=result.file).order_by("ordinal")
                  .values_list("line_number", "record_type"))
    assert stored == [(int(row[2]), row[3]) for row in slow]


def test_fees_summed_by_group_by_past_a_few_payouts(tmp_path, monkeypatch):
    # A block of many (payout, currency) pairs sums its fees by group_by instead of a mask per pair.
    monkeypatch.setattr(adyen_arrow, "BLOCK_BYTES", 4096)
    rows = [ref(f"g{n}", **{"Batch Number": str(n % 5), "Net Currency": ("USD", "EUR", "GBP")[n % 3],
                             "Gross Currency": ("USD", "EUR", "GBP")[n % 3]}) for n in range(300)]
    path = report(tmp_path / "batches.csv", rows)
    slow = read(path, fast=False)[:2]
    for few in (0, 100):
        monkeypatch.setattr(arrow_columns, "_FEW_GROUPS", few)
        fast, fast_totals, _, by_arrow = read(path, fast=True)
        assert (fast, fast_totals) == slow and by_arrow > 5
    assert len(slow[1][2]) == 15


def test_report_with_a_byte_order_mark_and_columns_reordered(tmp_path, monkeypatch):
    # Columns are read by name: a merchant's own order, an extra column, and a UTF-8 BOM before the header.
    monkeypatch.setattr(adyen_arrow, "BLOCK_BYTES", 4096)
    order = [*reversed(COLUMNS), "Booking Date"]
    rows = [",".join([*reversed(row.split(",")), "2026-01-16"]) for row in plain_rows(300)]
    path = tmp_path / "bom.csv"
    path.write_text(",".join(order) + "\n" + "\n".join(rows) + "\n", encoding="utf-8-sig")
    fast, fast_totals, checks, by_arrow = read(path, fast=True)
    assert (fast, fast_totals) == read(path, fast=False)[:2]
    assert len(fast) == 300 and by_arrow > 5 and checks == [True]
    assert fast[0][5:11] == ("p0000100", "", "ord_100", "7", "usd", "100")
