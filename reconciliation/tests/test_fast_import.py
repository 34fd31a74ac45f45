"""A plain Stripe report read by Arrow gives exactly the lines the row-by-row parser gives."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from psp_sandbox.settlement import COLUMNS
from reconciliation.exceptions import SettlementImportError
from reconciliation.importers import arrow_blocks, stripe_arrow
from reconciliation.models import SettlementFile, SettlementLine
from reconciliation.services import settlement_file_import
from reconciliation.tests.helpers import copy_rows, fast_and_slow_read_the_same, plain_report_checks_references

pytestmark = pytest.mark.django_db


def line(**values: str) -> str:
    base = {"reporting_category": "charge", "currency": "usd", "gross": "12.34", "fee": "0.66", "net": "11.68",
            "created": "2026-01-15 10:00:00", "automatic_payout_id": "po_1"}
    merged = {**base, **values}
    return ",".join(merged.get(column, "") for column in COLUMNS)


# Every kind of row the fast path must either convert exactly or leave to the row-by-row parser.
ODD_ROWS = [
    line(payment_intent_id="pi_t", created="2026-01-15T10:00:00"),  # ISO "T"
    line(payment_intent_id=" pi_pad ", currency=" USD ", gross=" 12.34 ", reporting_category=" charge "),
    line(payment_intent_id="pi_yen", currency="jpy", gross="1234", fee="66", net="1168"),  # exponent 0
    line(payment_intent_id="pi_3dp", currency="bhd", gross="1.234", fee="0.066", net="1.168"),  # exponent 3
    line(payment_intent_id="pi_1dp", gross="12.3", fee="0.6", net="11.7"),  # padded by the row parser
    line(payment_intent_id="pi_whole", gross="12", fee="1", net="11"),
    line(payment_intent_id="pi_bad", gross="1O.00"),  # malformed
    line(payment_intent_id="pi_nocat", reporting_category=""),  # malformed
    line(payment_intent_id="pi_nonet", net=""),  # malformed
    line(payment_intent_id="pi_xxx", currency="xxx"),  # malformed
    line(source_id="tr_1", reporting_category="transfer", gross="-5.00", fee="", net="-5.00"),  # unknown type
    line(reporting_category="network_cost", gross="-0.10", fee="", net="-0.10"),  # a fee line
    line(source_id="po_src", automatic_payout_id="", reporting_category="payout", gross="-99.00", fee="0.00",
         net="-99.00"),
    line(payment_intent_id="pi_nogross", gross="", fee=""),
    line(payment_intent_id="pi_tz", created="2026-01-15 10:00:00+01:00"),  # converted to UTC
    line(payment_intent_id="pi_feb30", created="2026-02-30 10:00:00"),  # malformed
    line(payment_intent_id="pi_leap", created="2026-01-15 23:59:60"),  # malformed
    line(payment_intent_id="pi_notime", created=""),
    "",  # a blank line: no row
    "," * (len(COLUMNS) - 1),  # only separators: no row
    ",".join(["x"] * 3),  # too short: malformed
    line(payment_intent_id="pi_long") + ",extra",  # a value past the header: malformed
    line(payment_intent_id="pi_trailing") + ",,",  # empty values past the header: fine
    line(payment_intent_id="pi_cafe", description="Café  du  coin"),  # not ASCII
    line(payment_intent_id="pi_big", gross="1234567890123456.00", fee="0.00", net="1234567890123456.00"),
    line(charge_id="ch_only", description="order ord_42"),
    line(payment_intent_id="pi_neg", gross="-0.05", fee="0.00", net="-0.05"),
    line(payment_intent_id="pi_plus", gross="+1.00"),
    line(payment_intent_id="pi_dot", gross="1.", fee=".50"),
    line(payment_intent_id="pi_exp", gross="1e3"),
    line(payment_intent_id="pi_date", created="2026-01-15"),
    line(payment_intent_id="pi_blankcat", reporting_category="   "),
    line(payment_intent_id="pi_arabic", gross="١٢.٣٤"),
]


def report(path: Path, rows: list[str]) -> Path:
    path.write_text(",".join(COLUMNS) + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def plain_rows(count: int) -> list[str]:
    return [line(payment_intent_id=f"pi_{n:06d}", source_id=f"ch_{n}", charge_id=f"ch_{n}",
                 **{"payment_metadata[payment_order_id]": f"ord_{n}"},
                 gross=f"{n // 100}.{n % 100:02d}", fee="0.30", net=f"{n // 100 - 1}.{n % 100:02d}",
                 created=f"2026-01-15 {n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}")
            for n in range(100, 100 + count)]


def read(path: Path, *, fast: bool) -> tuple[list[tuple], tuple, list, int]:
    """``helpers.copy_rows`` of a Stripe report, times compared as instants."""
    return copy_rows(path, "stripe", fast=fast, instants=True)


def test_odd_rows_read_the_same_by_both_parsers(tmp_path, monkeypatch):
    # Small blocks: plain blocks go through Arrow, blocks with an odd row row by row, in one file.
    monkeypatch.setattr(stripe_arrow, "BLOCK_BYTES", 4096)
    rows = plain_rows(2000)
    for position, odd in enumerate(ODD_ROWS):
        rows.insert(10 + position * 70, odd)
    path = report(tmp_path / "odd.csv", rows)
    assert stripe_arrow.is_plain(path)
    fast, fast_totals, fast_checks, by_arrow = read(path, fast=True)
    slow, slow_totals, slow_checks, none = read(path, fast=False)
    assert by_arrow >= 10 and none == 0
    assert fast == slow
    assert fast_totals == slow_totals
    assert [row[1] for row in fast] == [str(n) for n in range(1, len(fast) + 1)]  # ordinals in file order
    assert fast_checks == [] and slow_checks == []  # some blocks went row by row: uniqueness not checked
    by_reference = {row[5]: row for row in fast}
    assert by_reference["pi_yen"][10:13] == ("1234", "66", "1168")
    assert by_reference["pi_1dp"][10] == "1230"
    assert by_reference["pi_tz"][13] == datetime.fromisoformat("2026-01-15 09:00:00+00:00")
    assert by_reference["po_src"][8] == "po_src"
    assert sum(1 for row in fast if row[3] == "malformed") == 9


def test_blocks_with_odd_rows_convert_the_rest_and_read_the_same(tmp_path, monkeypatch):
    # An odd row in every block (as 1% of breaks puts one in each): the block's other rows still go through
    # Arrow, the odd ones through the row parser, in their place; rows of another width or blank lines excepted.
    monkeypatch.setattr(stripe_arrow, "BLOCK_BYTES", 4096)
    same_width = [odd for odd in ODD_ROWS if len(odd.split(",")) == len(COLUMNS)
                  and odd.replace(",", "").strip()]
    rows = plain_rows(1500)
    for position in range(len(rows) // 12, 0, -1):  # one every 12 rows, a few in each 4 KB block
        rows.insert(position * 12, same_width[position % len(same_width)])
    rows.append(rows[100])  # a twin: the first line stays first
    path = report(tmp_path / "mixed.csv", rows)
    fast, fast_checks, slow_checks = fast_and_slow_read_the_same(path, "stripe", instants=True)
    assert [row[1] for row in fast] == [str(n) for n in range(1, len(fast) + 1)]
    assert {"pi_yen", "pi_cafe", "pi_tz", "pi_1dp"} <= {row[5] for row in fast}
    assert fast_checks == [] and slow_checks == []  # odd rows: uniqueness left to matching


def test_plain_report_goes_through_arrow_and_checks_references(tmp_path, monkeypatch):
    monkeypatch.setattr(stripe_arrow, "BLOCK_BYTES", 4096)
    plain_report_checks_references(tmp_path, report, plain_rows, read)


def test_service_stores_what_the_parsers_read(tmp_path):
    path = report(tmp_path / "day.csv", [*plain_rows(50), *ODD_ROWS])
    result = settlement_file_import(path=path, actor="test")
    assert result.lines == 50 + len(ODD_ROWS) - 2 and result.malformed == 9
    stored = SettlementLine.objects.filter(file=result.file)
    charge = stored.get(psp_reference="pi_000100")
    assert (charge.line_number, charge.ordinal, charge.gross, charge.fee, charge.net, charge.merchant_reference,
            charge.source_line) == (2, 1, 100, 30, 0, "ord_100", "")
    assert stored.get(psp_reference="pi_tz").occurred_at == datetime.fromisoformat("2026-01-15 09:00:00+00:00")
    bad = stored.get(line_number=52 + ODD_ROWS.index(line(payment_intent_id="pi_bad", gross="1O.00")))
    assert bad.record_type == "malformed" and "1O.00" in bad.source_line and "gross" in bad.error
    assert result.file.unique_references is None  # odd rows: not checked


def test_file_arrow_cannot_read_is_read_row_by_row(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes((",".join(COLUMNS) + "\n" + line(payment_intent_id="pi_1", description="caf\xe9") + "\n")
                     .encode("latin-1"))
    assert stripe_arrow.is_plain(path)
    with pytest.raises(SettlementImportError, match="not UTF-8"):
        settlement_file_import(path=path, actor="test")
    assert not SettlementFile.objects.exists() and not SettlementLine.objects.exists()


def test_references_past_the_limit_are_not_checked(tmp_path, monkeypatch):
    monkeypatch.setattr(stripe_arrow, "BLOCK_BYTES", 4096)
    monkeypatch.setattr(stripe_arrow, "UNIQUE_CHECK_LIMIT", 100)
    path = report(tmp_path / "many.csv", plain_rows(300))
    rows, _, checks, by_arrow = read(path, fast=True)
    assert len(rows) == 300 and by_arrow > 5 and checks == []


def test_block_without_a_net_amount_is_read_row_by_row(tmp_path):
    # Every row of the block lacks its net: none is converted (a column empty throughout is checked too).
    path = report(tmp_path / "nonet.csv", [line(payment_intent_id=f"pi_{n}", net="") for n in range(3)])
    fast, fast_totals, _, by_arrow = read(path, fast=True)
    assert (fast, fast_totals) == read(path, fast=False)[:2]
    assert by_arrow == 0 and [row[3] for row in fast] == ["malformed"] * 3


def test_times_out_of_the_row_parsers_range_are_its_own(tmp_path, monkeypatch):
    # Year 0 is no date to the row parser (a malformed line); Arrow's strptime reads it: such rows are left to
    # the row parser, as are the years a time zone could move out of datetime's range.
    monkeypatch.setattr(stripe_arrow, "BLOCK_BYTES", 4096)
    rows = plain_rows(200)
    for n, created in enumerate(("0000-01-15 10:00:00", "0001-01-01 00:00:00", "9999-12-31 23:59:59")):
        rows.insert(50 + 50 * n, line(payment_intent_id=f"pi_year{n}", created=created))
    path = report(tmp_path / "years.csv", rows)
    fast, fast_totals, _, by_arrow = read(path, fast=True)
    assert (fast, fast_totals) == read(path, fast=False)[:2]
    assert by_arrow > 3
    assert [row[3] for row in fast if row[5].startswith("pi_year")] == ["charge", "charge"]
    malformed = [row for row in fast if row[3] == "malformed"]
    assert len(malformed) == 1 and "0000-01-15" in malformed[0][14]


def test_printable_report_reads_the_same_without_the_per_row_text_check(tmp_path, monkeypatch):
    # A file of printable ASCII only (one pass over its bytes says so) skips the per-row printable/blank check:
    # a row with a category holds more than separators and spaces. Its odd rows still read as the row parser's.
    monkeypatch.setattr(stripe_arrow, "BLOCK_BYTES", 4096)
    ascii_rows = [odd for odd in ODD_ROWS if odd.isascii() and len(odd.split(",")) == len(COLUMNS)
                  and odd.replace(",", "").strip()]
    rows = plain_rows(1500)
    for position in range(len(rows) // 12, 0, -1):
        rows.insert(position * 12, ascii_rows[position % len(ascii_rows)])
    path = report(tmp_path / "printable.csv", rows)
    assert arrow_blocks.scan(path).printable
    fast, _, _ = fast_and_slow_read_the_same(path, "stripe", instants=True)
    assert {"pi_tz", "pi_yen", "pi_1dp"} <= {row[5] for row in fast}


@pytest.mark.parametrize(("text", "plain", "plain_with_quotes", "printable"), [
    (b"a,b\n1,2\n", True, True, True),
    (b'a,b\n"1",2\n', False, True, True),
    (b"a,b\n1\\,2\n", False, False, True),
    (b"a,b\r\n1,2\r\n", False, False, False),
    (b"a,b\n1\t,2\n", False, False, False),
    (b"a,b\n\x001,2\n", False, False, False),
    (b"\xef\xbb\xbfa,b\n1,2\n", True, True, False),  # a BOM: plain, not printable
    ("a,b\ncafé,2\n".encode(), True, True, False),
    (b"a,b\n1,\x7f\n", True, True, False),
])
def test_one_pass_over_the_bytes(tmp_path, text, plain, plain_with_quotes, printable):
    path = tmp_path / "f.csv"
    path.write_bytes(text)
    scanned = arrow_blocks.scan(path)
    assert (scanned.plain(), scanned.plain(quotes=True), scanned.printable) == (plain, plain_with_quotes, printable)
    assert stripe_arrow.is_plain(path) is plain
