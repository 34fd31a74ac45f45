"""Settlement and bank-statement parsers, against the real sample files in ../shared/samples.

Plain pytest functions: no database, no Django fixtures
(run with ``pytest reconciliation/tests/test_importers.py -p no:django``).
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.money import is_known_currency
from reconciliation.importers import (
    FORMATS,
    RECORD_TYPES,
    FileHeader,
    ImportFormatError,
    MalformedRecord,
    SettlementRecord,
    UnsupportedFormat,
    detect_format,
    iter_records,
)

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples"
#: The real files live beside the clone (CI has them); a clone on its own skips the tests that read them.
needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"no sample files at {SAMPLES}")

# file -> (format, exact set of normalized record types, number of records, number of headers).
# None of the samples holds a record type that is left "unknown".
EXPECTED = {
    "stripe/payout_reconciliation_itemized.csv": (
        "stripe",
        {"charge", "refund", "fee", "chargeback_reversal", "payout"},
        7,
        0,
    ),
    "adyen/settlement_detail_report_chargeback.csv": ("adyen", {"chargeback", "fee", "payout"}, 3, 0),
    "adyen/settlement_detail_report_deposit_correction.csv": ("adyen", {"deposit_correction"}, 2, 0),
    "adyen/settlement_detail_report_donation-ideal.csv": ("adyen", {"charge", "payout"}, 2, 0),
    "adyen/settlement_detail_report_donation.csv": ("adyen", {"charge", "payout"}, 2, 0),
    "adyen/settlement_detail_report_refund.csv": ("adyen", {"refund", "fee", "payout"}, 3, 0),
    "camt053/valid_example.xml": ("camt053", {"bank_credit", "bank_debit"}, 5, 1),
    "camt053/valid_example_with_batch.xml": ("camt053", {"bank_credit", "bank_debit"}, 3, 1),
    "camt053/valid_example_with_debit.xml": ("camt053", {"bank_credit", "bank_debit"}, 5, 1),
    "mt940/abnamro.sta": ("mt940", {"bank_debit"}, 10, 2),
    "mt940/ing.sta": ("mt940", {"bank_credit", "bank_debit"}, 7, 1),
    "mt940/sepa_mt9401.sta": ("mt940", {"bank_credit", "bank_debit"}, 97, 26),
}


def sample(name: str) -> Path:
    return SAMPLES / name


def parse(path: Path, fmt: str = "auto"):
    items = list(iter_records(path, fmt))
    headers = [i for i in items if isinstance(i, FileHeader)]
    records = [i for i in items if isinstance(i, SettlementRecord)]
    malformed = [i for i in items if isinstance(i, MalformedRecord)]
    return headers, records, malformed


def by_line(records: list[SettlementRecord]) -> dict[int, SettlementRecord]:
    return {r.line_number: r for r in records}


def without_source(record: SettlementRecord) -> tuple:
    return (
        record.line_number,
        record.record_type,
        record.raw_type,
        record.currency,
        record.gross,
        record.fee,
        record.net,
        record.psp_reference,
        record.merchant_reference,
        record.payout_reference,
        record.occurred_at,
    )


# --- every sample ---------------------------------------------------------------------


@needs_samples
def test_every_sample_file_is_covered():
    on_disk = {
        p.relative_to(SAMPLES).as_posix()
        for p in SAMPLES.rglob("*")
        if p.is_file() and p.suffix.lower() in {".csv", ".xml", ".sta"}
    }
    assert on_disk == set(EXPECTED)


@needs_samples
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_detected_and_parsed_cleanly(name):
    fmt, types, n_records, n_headers = EXPECTED[name]
    path = sample(name)
    assert detect_format(path) == fmt
    headers, records, malformed = parse(path)
    assert malformed == []
    assert {r.record_type for r in records} == types
    assert "unknown" not in {r.record_type for r in records}
    assert len(records) == n_records
    assert len(headers) == n_headers
    # Parsing with the format named explicitly gives the same result.
    assert parse(path, fmt)[1] == records
    for record in records:
        assert record.record_type in RECORD_TYPES
        assert record.raw_type
        assert is_known_currency(record.currency) and record.currency == record.currency.lower()
        assert isinstance(record.net, int) and not isinstance(record.net, bool)
        assert record.gross is None or isinstance(record.gross, int)
        assert record.fee is None or isinstance(record.fee, int)
        assert record.line_number >= 1
        assert record.occurred_at is not None and record.occurred_at.utcoffset().total_seconds() == 0
        assert 0 < len(record.source_line) <= 300
        if record.record_type == "bank_credit":
            assert record.net > 0
        if record.record_type == "bank_debit":
            assert record.net < 0
    for header in headers:
        assert header.format == fmt
        assert header.currency == "eur"


@needs_samples
def test_stripe_sample_values():
    _, records, _ = parse(sample("stripe/payout_reconciliation_itemized.csv"))
    lines = by_line(records)
    assert sorted(lines) == [2, 3, 4, 5, 6, 7, 8]  # the header is line 1

    charge = lines[2]
    assert (charge.record_type, charge.currency, charge.gross, charge.fee, charge.net) == (
        "charge",
        "usd",
        2500,
        95,
        2405,
    )
    assert charge.psp_reference == "pi_123"  # payment_intent_id before charge_id
    assert charge.merchant_reference == "24315.1"  # payment_metadata[external_identifier]
    assert charge.payout_reference == "po_test123"
    assert charge.occurred_at == datetime(2026, 1, 30, 10, 11, 12, tzinfo=UTC)

    refund = lines[3]
    assert (refund.record_type, refund.gross, refund.fee, refund.net) == ("refund", -1000, 0, -1000)
    assert refund.merchant_reference == "24316.1"  # payment_metadata[orchestrator_tx_ref]

    fee = lines[5]
    assert (fee.record_type, fee.gross, fee.net, fee.psp_reference) == ("fee", -50, -50, None)
    assert fee.merchant_reference == "Card payments (2026-03-24): Transaction network costs"

    reversal = lines[7]
    assert (reversal.record_type, reversal.raw_type) == ("chargeback_reversal", "dispute_reversal")
    assert (reversal.net, reversal.psp_reference, reversal.merchant_reference) == (335, "pi_3TRX", "2467.1")
    assert reversal.payout_reference is None

    # Sample quirk: the payout row says gross 24, fee 0, net 23.05; kept as written.
    payout = lines[8]
    assert (payout.record_type, payout.gross, payout.fee, payout.net) == ("payout", 2400, 0, 2305)
    assert (payout.psp_reference, payout.payout_reference) == ("po_123", "po_test123")


@needs_samples
def test_adyen_sample_values():
    _, records, _ = parse(sample("adyen/settlement_detail_report_chargeback.csv"))
    chargeback, fee, payout = records
    assert chargeback.line_number == 2
    assert (chargeback.record_type, chargeback.gross, chargeback.fee, chargeback.net) == ("chargeback", -100, 200, -300)
    assert chargeback.psp_reference == "4555568860022701"
    assert chargeback.merchant_reference == "92598318.0"
    assert chargeback.payout_reference == "3"
    assert chargeback.occurred_at == datetime(2016, 2, 10, 18, 25, 36, tzinfo=UTC)  # 10:25:36 PST
    assert (fee.record_type, fee.raw_type, fee.net, fee.gross, fee.fee) == ("fee", "Fee", -180, None, None)
    assert (payout.record_type, payout.raw_type, payout.net) == ("payout", "MerchantPayout", -403)

    _, records, _ = parse(sample("adyen/settlement_detail_report_donation.csv"))
    settled = records[0]
    # Scheme Fees 0.02 + Interchange 0.22.
    assert (settled.record_type, settled.gross, settled.fee, settled.net) == ("charge", 100, 24, 76)
    assert settled.psp_reference == "5364893193133131"

    # Converted payment: 5.35 EUR gross, settled 5.43 USD net after 0.27 USD commission.
    _, records, _ = parse(sample("adyen/settlement_detail_report_donation-ideal.csv"))
    ideal = records[0]
    assert (ideal.currency, ideal.gross, ideal.fee, ideal.net) == ("usd", 570, 27, 543)
    assert (ideal.merchant_reference, ideal.payout_reference) == ("80188432.1", "630")

    _, records, _ = parse(sample("adyen/settlement_detail_report_refund.csv"))
    refund = records[0]
    assert (refund.record_type, refund.gross, refund.fee, refund.net) == ("refund", -100, None, -100)
    assert refund.psp_reference == "4522268860022701"

    # 2025 layout (49 columns): one debit, one credit; "" quoted empty fields.
    _, records, _ = parse(sample("adyen/settlement_detail_report_deposit_correction.csv"))
    assert [(r.line_number, r.raw_type, r.net, r.payout_reference) for r in records] == [
        (2, "DepositCorrection", -50000, "1191"),
        (3, "DepositCorrection", 30000, "1191"),
    ]
    assert records[0].psp_reference is None and records[0].merchant_reference is None
    assert records[0].occurred_at == datetime(2025, 10, 31, 11, 5, 39, tzinfo=UTC)  # 04:05:39 PDT


@needs_samples
def test_camt053_sample_values():
    headers, records, _ = parse(sample("camt053/valid_example.xml"))
    assert headers == [
        FileHeader(
            format="camt053",
            statement_id="0352C5320131227220503",
            account="DE14740618130000033626",
            currency="eur",
            opening_balance=3306,  # no OPBD in this file: PRCD (previous closing) stands in
            closing_balance=2306,
        )
    ]
    assert headers[0].opening_balance + sum(r.net for r in records) == headers[0].closing_balance
    first = records[0]
    assert (first.line_number, first.record_type, first.raw_type, first.net) == (1, "bank_debit", "DBIT", -200)
    assert (first.psp_reference, first.merchant_reference) == ("BankReference", "EndToEndReference")
    assert first.occurred_at == datetime(2013, 12, 27, tzinfo=UTC)
    # EndToEndId NOTPROVIDED: remittance information instead.
    assert records[1].merchant_reference.startswith("Test+berweisung mit BIC und IBAN")
    assert (records[2].record_type, records[2].net) == ("bank_credit", 100)
    # Batch entry: one Ntry of 6.00 with two TxDtls, both numbered as entry 4.
    batch = [r for r in records if r.line_number == 4]
    assert [(r.net, r.merchant_reference) for r in batch] == [
        (-350, "STZV-EtE27122013-11:02-1"),
        (-250, "STZV-EtE27122013-11:02-2"),
    ]
    assert {r.psp_reference for r in batch} == {"2013122711513230000"}

    headers, records, _ = parse(sample("camt053/valid_example_with_batch.xml"))
    (header,) = headers
    assert (header.statement_id, header.account) == ("2019062434566666666666666", "NL18INGB00012345678")
    assert (header.opening_balance, header.closing_balance) == (732980, 2303820)  # OPBD, CLBD
    assert [(r.record_type, r.net, r.merchant_reference) for r in records] == [
        ("bank_debit", -475374, "O0OpeAYTkhjerKu3eE9asw"),  # batch without TxDtls: Btch/PmtInfId
        ("bank_credit", 268800, "GBSXX21170607391766562"),
        ("bank_credit", 500000, None),
    ]
    assert records[1].psp_reference == "s8ecaaf0f96f492f603167c748a0b1c6"

    headers, _, _ = parse(sample("camt053/valid_example_with_debit.xml"))
    assert headers[0].opening_balance == -3306  # a DBIT balance is negative


@needs_samples
def test_mt940_sample_values():
    headers, records, _ = parse(sample("mt940/abnamro.sta"))
    assert [(h.statement_id, h.account, h.opening_balance, h.closing_balance) for h in headers] == [
        ("ABN AMRO BANK NV 19321/1", "517852257", 323628, 87684),
        ("ABN AMRO BANK NV 19322/1", "517852257", 287684, 184975),  # :60M:/:62M:
    ]
    first = records[0]
    assert (first.line_number, first.record_type, first.raw_type, first.net) == (1, "bank_debit", "D", -900)
    assert first.merchant_reference.startswith("GIRO 428428 KPN - DIGITENNE")
    assert first.occurred_at == datetime(2011, 5, 24, tzinfo=UTC)

    headers, records, _ = parse(sample("mt940/ing.sta"))
    assert (headers[0].opening_balance, headers[0].closing_balance) == (0, 347)
    assert (records[2].net, records[2].merchant_reference) == (-111, "TMG TANGO")
    assert [r.net for r in records if r.record_type == "bank_credit"] == [368, 100]
    # The :86: after :62F: is statement information, not part of the last transaction.
    assert "D000004" not in records[-1].source_line


@needs_samples
def test_mt940_sepa_statements_balance_and_reversals():
    items = list(iter_records(sample("mt940/sepa_mt9401.sta")))
    assert isinstance(items[0], FileHeader)
    statements: list[tuple[FileHeader, list[SettlementRecord]]] = []
    for item in items:
        if isinstance(item, FileHeader):
            statements.append((item, []))
        else:
            statements[-1][1].append(item)
    assert len(statements) == 26
    for header, records in statements:
        assert header.opening_balance + sum(r.net for r in records) == header.closing_balance, header
    first_header, first_records = statements[0]
    assert first_header.account == "50880050/0194774600888"
    assert first_header.opening_balance == -123471836
    # ":61:0709040904RCR204,88": a reversal of a credit takes money out.
    reversal = first_records[5]
    assert (reversal.raw_type, reversal.record_type, reversal.net) == ("RC", "bank_debit", -20488)
    assert [r.line_number for _, rs in statements for r in rs] == list(range(1, 98))


# --- malformed input ------------------------------------------------------------------


@needs_samples
def test_malformed_amount_is_reported_and_parsing_continues(tmp_path):
    lines = sample("stripe/payout_reconciliation_itemized.csv").read_text().splitlines(keepends=True)
    lines[3] = lines[3].replace(",USD,10,0,10,", ",USD,1O,0,10,")  # line 4: letter O in gross
    assert "1O" in lines[3]
    broken = tmp_path / "broken.csv"
    broken.write_text("".join(lines))

    _, records, malformed = parse(broken)
    assert len(malformed) == 1
    assert malformed[0].line_number == 4
    assert malformed[0].reason == "column 'gross' is not an amount: '1O'"
    assert malformed[0].source_line.startswith("txn_003,")
    assert [r.line_number for r in records] == [2, 3, 5, 6, 7, 8]


@needs_samples
@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        (",USD,1.00,,1,USD,", ",USD,1.00,,1,XXX,", "column 'Net Currency' is not a known ISO 4217 currency: 'XXX'"),
        (",USD,1.00,,1,USD,1.00,", ",USD,1.00,,1,USD,1.005,", "column 'Net Debit (NC)' has more decimals than USD"),
        (",USD,1.00,,1,USD,1.00,", ",USD,1.00,,1,USD,1;00,", "column 'Net Debit (NC)' is not an amount: '1;00'"),
        ("2016-02-10 10:25:36,PST", "2016-02-10 10:25:36,XYZ", "unknown time zone 'XYZ'"),
        ("2016-02-10 10:25:36,PST", "10/02/2016,PST", "column 'Creation Date' is not a date/time"),
    ],
)
def test_malformed_adyen_line_variants(tmp_path, old, new, reason):
    text = sample("adyen/settlement_detail_report_refund.csv").read_text()
    assert old in text
    path = tmp_path / "adyen.csv"
    path.write_text(text.replace(old, new, 1))
    _, records, malformed = parse(path)
    assert [(m.line_number, m.reason.startswith(reason)) for m in malformed] == [(2, True)], malformed
    assert [r.line_number for r in records] == [3, 4]


@needs_samples
def test_short_row_is_malformed(tmp_path):
    lines = sample("adyen/settlement_detail_report_chargeback.csv").read_text().splitlines(keepends=True)
    lines[2] = ",".join(lines[2].split(",")[:12]) + "\n"  # line 3 cut after 12 columns
    path = tmp_path / "short.csv"
    path.write_text("".join(lines))
    _, records, malformed = parse(path)
    assert [(m.line_number, m.reason) for m in malformed] == [(3, "expected 30 columns, got 12: fields are missing")]
    assert [r.line_number for r in records] == [2, 4]


@needs_samples
def test_unknown_type_is_kept_not_malformed(tmp_path):
    text = sample("adyen/settlement_detail_report_refund.csv").read_text()
    path = tmp_path / "adyen.csv"
    path.write_text(text.replace(",PST,Fee,", ",PST,SomethingNew,", 1))
    _, records, malformed = parse(path)
    assert malformed == []
    assert [(r.record_type, r.raw_type, r.net) for r in records if r.line_number == 3] == [
        ("unknown", "SomethingNew", -180)
    ]


@needs_samples
def test_missing_required_columns_raise(tmp_path):
    text = sample("stripe/payout_reconciliation_itemized.csv").read_text()
    path = tmp_path / "stripe.csv"
    path.write_text(text.replace(",net,reporting_category,", ",net_amount,category,", 1))
    with pytest.raises(ImportFormatError, match=r"missing required column\(s\): net, reporting_category"):
        list(iter_records(path, "stripe"))

    text = sample("adyen/settlement_detail_report_refund.csv").read_text()
    path = tmp_path / "adyen.csv"
    path.write_text(text.replace(",Net Credit (NC),", ",Net Kredit,", 1))
    with pytest.raises(ImportFormatError, match=r"Net Credit \(NC\)"):
        list(iter_records(path))


@needs_samples
def test_unsupported_files(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello,world\n1,2\n")
    with pytest.raises(UnsupportedFormat):
        detect_format(path)
    xml = tmp_path / "camt052.xml"
    xml.write_text('<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.052.001.02"/>')
    with pytest.raises(UnsupportedFormat):
        detect_format(xml)
    with pytest.raises(ImportFormatError):
        list(iter_records(xml, "camt053"))
    with pytest.raises(UnsupportedFormat):
        iter_records(sample("mt940/ing.sta"), "qif")
    assert FORMATS == ("stripe", "adyen", "camt053", "mt940")


# --- CSV robustness -------------------------------------------------------------------


@needs_samples
def test_adyen_reordered_and_extra_columns_give_same_records(tmp_path):
    for name in (
        "adyen/settlement_detail_report_chargeback.csv",
        "adyen/settlement_detail_report_deposit_correction.csv",
    ):
        original = sample(name)
        with open(original, newline="") as handle:
            rows = list(csv.reader(handle))
        order = list(range(len(rows[0])))
        random.Random(20240611).shuffle(order)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(["Merchant Custom Field", *(rows[0][i] for i in order)])
        for row in rows[1:]:
            writer.writerow(["anything", *(row[i] for i in order)])
        shuffled = tmp_path / Path(name).name
        shuffled.write_text("\ufeff" + out.getvalue(), newline="")
        assert order != sorted(order)
        assert detect_format(shuffled) == "adyen"
        _, expected, _ = parse(original)
        _, got, malformed = parse(shuffled)
        assert malformed == []
        assert [without_source(r) for r in got] == [without_source(r) for r in expected]


@needs_samples
def test_bom_crlf_blank_lines_and_trailing_empty_columns(tmp_path):
    lines = sample("stripe/payout_reconciliation_itemized.csv").read_text().splitlines()
    body = [lines[0], lines[1], "", lines[2] + ",,", *lines[3:], "", ""]
    path = tmp_path / "stripe.csv"
    path.write_bytes(("\ufeff" + "\r\n".join(body) + "\r\n").encode())
    assert detect_format(path) == "stripe"
    _, records, malformed = parse(path)
    assert malformed == []
    _, expected, _ = parse(sample("stripe/payout_reconciliation_itemized.csv"))
    # The blank line 3 shifts every later row by one.
    assert [r.line_number for r in records] == [2, 4, 5, 6, 7, 8, 9]
    assert [without_source(r)[1:] for r in records] == [without_source(r)[1:] for r in expected]


@needs_samples
def test_quoted_field_with_newline_keeps_physical_line_numbers(tmp_path):
    lines = sample("stripe/payout_reconciliation_itemized.csv").read_text().splitlines()
    old = "Card payments (2026-03-24): Transaction network costs"
    lines[4] = lines[4].replace(old, '"Card payments (2026-03-24): Transaction\nnetwork costs"')
    path = tmp_path / "stripe.csv"
    path.write_text("\n".join(lines) + "\n")
    _, records, malformed = parse(path)
    assert malformed == []
    assert [r.line_number for r in records] == [2, 3, 4, 5, 7, 8, 9]
    assert by_line(records)[5].merchant_reference == "Card payments (2026-03-24): Transaction\nnetwork costs"


# --- camt.053 specifics ---------------------------------------------------------------


def _prefix_camt(xml: str) -> str:
    """Bind the camt namespace to the prefix ``camt:`` instead of the default namespace."""
    xml = xml.replace(
        'xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"',
        'xmlns:camt="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"',
    )
    return re.sub(r"<(/?)([A-Za-z][\w.]*)(?=[\s>/])", r"<\1camt:\2", xml)


@needs_samples
@pytest.mark.parametrize("name", ["camt053/valid_example.xml", "camt053/valid_example_with_batch.xml"])
def test_camt053_namespace_prefixed(tmp_path, name):
    prefixed = tmp_path / "prefixed.xml"
    prefixed.write_text(_prefix_camt(sample(name).read_text()))
    assert "<camt:Ntry>" in prefixed.read_text()
    assert detect_format(prefixed) == "camt053"
    assert parse(prefixed) == parse(sample(name))


@needs_samples
def test_camt053_without_namespace(tmp_path):
    text = sample("camt053/valid_example.xml").read_text()
    plain = tmp_path / "plain.xml"
    plain.write_text(text.replace(' xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"', ""))
    assert parse(plain) == parse(sample("camt053/valid_example.xml"))


@needs_samples
def test_camt053_bad_entry_is_malformed_and_payout_ids_are_found(tmp_path):
    text = sample("camt053/valid_example.xml").read_text()
    text = text.replace('<Amt Ccy="EUR">3.00</Amt>', '<Amt Ccy="EUR">3.001</Amt>', 1)
    text = text.replace("<Ustrd>R CKBUCHUNG</Ustrd>", "<Ustrd>STRIPE PAYOUT po_1NxYz2AbCdEf TRANSFER</Ustrd>")
    path = tmp_path / "camt.xml"
    path.write_text(text)
    headers, records, malformed = parse(path)
    assert len(headers) == 1
    assert [(m.line_number, m.reason) for m in malformed] == [
        (2, "column 'Ntry/Amt' has more decimals than EUR allows: '3.001'")
    ]
    assert [r.line_number for r in records] == [1, 3, 4, 4]
    assert by_line(records)[3].payout_reference == "po_1NxYz2AbCdEf"


@needs_samples
def test_camt053_pending_entries_are_skipped(tmp_path):
    text = sample("camt053/valid_example_with_batch.xml").read_text()
    path = tmp_path / "camt.xml"
    path.write_text(text.replace("<Sts>BOOK</Sts>", "<Sts>PDNG</Sts>", 1))
    _, records, malformed = parse(path)
    assert malformed == []
    assert [r.line_number for r in records] == [2, 3]


@needs_samples
def test_camt053_truncated_file(tmp_path):
    text = sample("camt053/valid_example_with_batch.xml").read_text()
    path = tmp_path / "camt.xml"
    path.write_text(text[: text.index("<NtryRef>032019169492039060000000002")])
    headers, records, malformed = parse(path)
    assert len(headers) == 1 and len(records) == 2
    assert len(malformed) == 1 and malformed[0].reason.startswith("XML is not well-formed")


@needs_samples
def test_camt053_refuses_dtd_entities(tmp_path):
    text = sample("camt053/valid_example.xml").read_text()
    evil = text.replace(
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE Document [<!ENTITY x "boom">]>',
    ).replace("<Ustrd>R CKBUCHUNG</Ustrd>", "<Ustrd>&x;</Ustrd>")
    path = tmp_path / "evil.xml"
    path.write_text(evil)
    with pytest.raises(ImportFormatError, match="refused XML construct"):
        list(iter_records(path))


# --- MT940 specifics ------------------------------------------------------------------

MT940_WITH_PAYOUT = """:20:STMT1
:25:NL91ABNA0417164300
:28C:1/1
:60F:C240102EUR100,00
:61:2401030103C1234,56NTRFNONREF//B123
:86:STRIPE PAYMENTS PAYOUT po_1OabcDEF123 MARKETPLACE
:61:2401030103D0,56NMSCNONREF
:86:BANK COSTS
:62F:C240103EUR1334,00
"""


def test_mt940_payout_reference_and_broken_block(tmp_path):
    path = tmp_path / "bank.sta"
    broken_block = (
        ":20:STMT2\n:25:NL91ABNA0417164300\n:28C:2/1\n:60F:C240103EUR1334,00\n:61:XX\n:62F:C240104EUR1334,00\n"
    )
    path.write_text(MT940_WITH_PAYOUT + "-\n" + broken_block + "-\n" + MT940_WITH_PAYOUT)
    assert detect_format(path) == "mt940"
    headers, records, malformed = parse(path)
    assert len(headers) == 2
    assert len(malformed) == 1 and "could not be parsed" in malformed[0].reason
    credit = records[0]
    assert (credit.record_type, credit.net, credit.payout_reference, credit.psp_reference) == (
        "bank_credit",
        123456,
        "po_1OabcDEF123",
        "B123",
    )
    assert (records[1].record_type, records[1].net, records[1].payout_reference) == ("bank_debit", -56, None)
    assert [r.line_number for r in records] == [1, 2, 3, 4]
    assert headers[0].opening_balance + records[0].net + records[1].net == headers[0].closing_balance


# --- streaming --------------------------------------------------------------------------


def parse_in_a_process_of_its_own(small: Path, big: Path) -> dict:
    """``streaming_probe``: ``big`` parsed after ``small``; its records, net and peak resident set's growth."""
    done = subprocess.run([sys.executable, "-m", "reconciliation.tests.streaming_probe", str(small), str(big)],
                          cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


#: How far a parser's peak resident set may grow over a 30 MB file (the whole file, or its records kept, is ~170 MB
#: for the Stripe report: measured 0 kB streamed against 168 MB with every record kept in a list).
FLAT_MEMORY_KB = 20 * 1024


@needs_samples
def test_stripe_parser_streams_in_flat_memory(tmp_path):
    header, template = sample("stripe/payout_reconciliation_itemized.csv").read_text().splitlines()[:2]

    def write(path: Path, rows: int) -> Path:
        with open(path, "w", newline="") as out:
            out.write(header + "\n")
            for i in range(rows):
                out.write(template.replace("txn_001,24315.1", f"txn_{i:07d},{i}.1", 1) + "\n")
        return path

    rows = 200_000
    big = write(tmp_path / "big_stripe.csv", rows)
    assert big.stat().st_size > 30_000_000
    parsed = parse_in_a_process_of_its_own(write(tmp_path / "small_stripe.csv", 100), big)
    assert parsed["records"] == rows
    assert parsed["net"] == 2405 * rows
    assert parsed["peak_growth_kb"] < FLAT_MEMORY_KB, f"peak resident set grew {parsed['peak_growth_kb']} kB"


@needs_samples
def test_camt053_parser_streams_in_flat_memory(tmp_path):
    text = sample("camt053/valid_example.xml").read_text()
    start, end = text.index("<Ntry>"), text.rindex("</Ntry>") + len("</Ntry>")
    entries = text[start:end]

    def write(path: Path, repeats: int) -> Path:
        with open(path, "w") as out:
            out.write(text[:start])
            for _ in range(repeats):
                out.write(entries)
            out.write(text[end:])
        return path

    repeats = 2_000  # 8k entries, ~20 MB of XML (far more than 20 MB as a tree)
    parsed = parse_in_a_process_of_its_own(write(tmp_path / "small.xml", 2), write(tmp_path / "big.xml", repeats))
    assert parsed["records"] == 5 * repeats
    assert parsed["peak_growth_kb"] < FLAT_MEMORY_KB, f"peak resident set grew {parsed['peak_growth_kb']} kB"
