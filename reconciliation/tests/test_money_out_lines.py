"""Money out's lines read from Stripe's reports (both readers alike) and the rules that match them to payouts."""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from payouts.selectors import SettledPayout
from psp_sandbox.settlement import COLUMNS, CONNECTED_PAYOUT_COLUMNS
from reconciliation.importers import iter_records, stripe_arrow
from reconciliation.importers.records import SettlementRecord
from reconciliation.matching.transfers import MoneyOutLine, money_out_line_outcome
from reconciliation.models import BreakClass, MatchState
from reconciliation.record_types import RecordType
from reconciliation.tests.test_fast_import import read


def csv(path: Path, columns: tuple[str, ...], rows: list[dict[str, str]]) -> Path:
    path.write_text(",".join(columns) + "\n" + "\n".join(",".join(r.get(c, "") for c in columns) for r in rows)
                    + "\n")
    return path


PLATFORM_ROWS = [
    {"reporting_category": "charge", "currency": "usd", "gross": "25.00", "fee": "1.03", "net": "23.97",
     "source_id": "ch_1", "payment_intent_id": "pi_1", "created": "2026-12-05 10:00:00",
     "automatic_payout_id": "po_platform"},
    {"reporting_category": "transfer", "currency": "usd", "gross": "-20.00", "fee": "0.00", "net": "-20.00",
     "source_id": "tr_1", "connected_account": "acct_1", "transfer_metadata[payout_id]": "pyt_1",
     "created": "2026-12-05 11:00:00", "automatic_payout_id": "po_platform"},
    {"reporting_category": "transfer_reversal", "currency": "usd", "gross": "5.00", "fee": "0.00", "net": "5.00",
     "source_id": "trr_1", "connected_account": "acct_1", "transfer_metadata[payout_id]": "pyt_1",
     "created": "2026-12-05 12:00:00", "automatic_payout_id": "po_platform"},
    {"reporting_category": "payout", "currency": "usd", "gross": "-8.97", "fee": "0.00", "net": "-8.97",
     "source_id": "po_platform", "created": "2026-12-06 00:00:00", "automatic_payout_id": "po_platform"},
]
CONNECTED_ROWS = [
    {"connected_account": "acct_1", "payout_id": "po_seller", "effective_at": "2026-12-05 11:00:01",
     "currency": "usd", "gross": "-20.00", "fee": "0.00", "net": "-20.00", "reporting_category": "payout",
     "source_id": "po_seller", "payout_metadata[payout_id]": "pyt_1"},
    {"connected_account": "acct_1", "payout_id": "po_seller", "effective_at": "2026-12-05 11:30:00",
     "currency": "usd", "gross": "20.00", "fee": "0.00", "net": "20.00", "reporting_category": "payout_reversal",
     "source_id": "po_seller", "payout_metadata[payout_id]": "pyt_1"},
]


def test_platform_report_carries_transfers_and_the_connected_report_seller_payouts(tmp_path):
    platform = [r for r in iter_records(csv(tmp_path / "p.csv", COLUMNS, PLATFORM_ROWS))
                if isinstance(r, SettlementRecord)]
    assert [(r.record_type, r.net, r.source_reference, r.merchant_reference) for r in platform] == [
        (RecordType.CHARGE, 2397, "ch_1", None), (RecordType.TRANSFER, -2000, "tr_1", "pyt_1"),
        (RecordType.TRANSFER_REVERSAL, 500, "trr_1", "pyt_1"), (RecordType.PAYOUT, -897, "po_platform", None)]
    connected = [r for r in iter_records(csv(tmp_path / "c.csv", CONNECTED_PAYOUT_COLUMNS, CONNECTED_ROWS))
                 if isinstance(r, SettlementRecord)]
    assert [(r.record_type, r.net, r.payout_reference, r.merchant_reference, r.occurred_at) for r in connected] == [
        (RecordType.SELLER_PAYOUT, -2000, "po_seller", "pyt_1", datetime(2026, 12, 5, 11, 0, 1, tzinfo=UTC)),
        (RecordType.SELLER_PAYOUT_FAILURE, 2000, "po_seller", "pyt_1", datetime(2026, 12, 5, 11, 30, tzinfo=UTC))]


@pytest.mark.parametrize(("columns", "rows"), [(COLUMNS, PLATFORM_ROWS), (CONNECTED_PAYOUT_COLUMNS, CONNECTED_ROWS)])
def test_arrow_reads_money_out_lines_as_the_row_parser_does(tmp_path, columns, rows):
    path = csv(tmp_path / "r.csv", columns, rows * 50)
    assert stripe_arrow.is_plain(path)
    fast, fast_totals, _, by_arrow = read(path, fast=True)
    slow, slow_totals, _, _ = read(path, fast=False)
    assert by_arrow and fast == slow and fast_totals == slow_totals
    charges = sum(1 for r in rows if r["reporting_category"] == "charge") * 50
    # Only the charges bear a fee: transfers, their reversals and seller payouts do not.
    assert sum(lines for _, lines in fast_totals[2].values()) == charges


def payout(**changes) -> SettledPayout:
    values = {"id": "pyt_1", "seller_id": "sel_1", "state": "paid", "amount": 2000, "currency": "usd",
              "psp_transfer_id": "tr_1", "psp_payout_id": "po_seller",
              "completed_at": datetime(2026, 12, 5, 12, tzinfo=UTC), **changes}
    return SettledPayout(**values)


def line(record_type: RecordType, source: str, amount: int = 2000, currency: str = "usd",
         merchant: str = "pyt_1") -> MoneyOutLine:
    return MoneyOutLine(7, record_type, source, merchant, "", currency, amount)


@pytest.mark.parametrize(("case", "found", "earlier", "expected"), [
    (line(RecordType.TRANSFER, "tr_1"), payout(), [], (MatchState.MATCHED, None)),
    (line(RecordType.SELLER_PAYOUT, "po_seller"), payout(), [], (MatchState.MATCHED, None)),
    (line(RecordType.TRANSFER, "tr_x", merchant=""), None, [], (MatchState.BREAK, BreakClass.MISSING_IN_BOOKS)),
    (line(RecordType.TRANSFER, "tr_1", amount=1999), payout(), [], (MatchState.BREAK, BreakClass.AMOUNT_MISMATCH)),
    (line(RecordType.SELLER_PAYOUT, "po_seller", currency="eur"), payout(), [],
     (MatchState.BREAK, BreakClass.CURRENCY_MISMATCH)),
    (line(RecordType.TRANSFER, "tr_2"), payout(), [], (MatchState.BREAK, BreakClass.DUPLICATE)),
    (line(RecordType.SELLER_PAYOUT, "po_seller"), payout(), [("seller_payout", "po_seller", 2000)],
     (MatchState.BREAK, BreakClass.DUPLICATE)),
    (line(RecordType.SELLER_PAYOUT_FAILURE, "po_seller"), payout(), [],
     (MatchState.BREAK, BreakClass.PAYOUT_FAILED_AT_PSP)),
    (line(RecordType.SELLER_PAYOUT_FAILURE, "po_seller"), payout(state="failed"), [], (MatchState.MATCHED, None)),
    (line(RecordType.TRANSFER_REVERSAL, "trr_1"), payout(), [], (MatchState.BREAK, BreakClass.MISSING_IN_BOOKS)),
    (line(RecordType.TRANSFER_REVERSAL, "trr_1", amount=500), payout(state="failed"),
     [("transfer_reversal", "trr_0", 1500)], (MatchState.MATCHED, None)),
    (line(RecordType.TRANSFER_REVERSAL, "trr_1", amount=600), payout(state="failed"),
     [("transfer_reversal", "trr_0", 1500)], (MatchState.BREAK, BreakClass.AMOUNT_MISMATCH)),
    (line(RecordType.TRANSFER_REVERSAL, "trr_0", amount=500), payout(state="failed"),
     [("transfer_reversal", "trr_0", 500)], (MatchState.BREAK, BreakClass.DUPLICATE)),
])
def test_money_out_line_rules(case, found, earlier, expected):
    outcome = money_out_line_outcome(line=case, payout=found, earlier=earlier)
    assert (outcome.match_state, outcome.break_class) == expected
    assert outcome.object_id == ("" if found is None else found.id)
    assert (outcome.break_class is None) == (outcome.description == "")
