"""The fee rule, the break rules for refunds and payouts, and what settlement books (docs/mutation.md)."""
import re
from datetime import UTC, datetime

import pytest

from ledger import accounts
from ledger import selectors as ledger_selectors
from ledger.models import LedgerTransaction
from payments.selectors import SettledObject
from reconciliation.importers.fees import line_fee
from reconciliation.matching.booking import PayoutReceived, fee_posting_key, payout_posting_key, settlement_book
from reconciliation.matching.outcomes import Outcome
from reconciliation.matching.rules import (
    BankLine,
    PayoutLine,
    money_difference,
    payout_line_outcomes,
    refund_line_outcome,
)
from reconciliation.models import BreakClass, MatchState, SettlementFile

# --- the fee rule ------------------------------------------------------------------------


@pytest.mark.parametrize(("record_type", "fee", "net", "expected"), [
    ("charge", 30, 970, 30),  # a charge's fee column
    ("charge", None, 1000, 0),  # no fee column: no fee
    ("refund", 0, -500, 0),  # a refund's negative net is not a fee
    ("fee", None, -25, 25),  # a fee row: its own negative net is what the PSP took
    ("fee", 5, -25, 30),
    ("fee", None, None, 0),
    ("payout", 7, -10_000, None),  # payouts, bank lines and malformed lines bear no fee
    ("bank_credit", None, 10_000, None),
    ("malformed", 3, None, None),
])
def test_the_fee_of_a_line(record_type, fee, net, expected):
    assert line_fee(record_type, fee, net) == expected


# --- refund and payout lines -------------------------------------------------------------------


def test_a_difference_is_the_currency_first_then_the_amount():
    assert money_difference(expected=100, expected_currency="usd", actual=100, actual_currency="usd") is None
    assert money_difference(expected=100, expected_currency="usd", actual=99, actual_currency="usd") \
        == BreakClass.AMOUNT_MISMATCH
    assert money_difference(expected=100, expected_currency="usd", actual=99, actual_currency="eur") \
        == BreakClass.CURRENCY_MISMATCH


def our_refund(amount=300, currency="usd"):
    return SettledObject(kind="refund", id="rf_1", payment_order_id="ord_1", seller_id="sel_1",
                         psp_reference="re_1", amount=amount, currency=currency, state="succeeded",
                         completed_at=datetime(2026, 3, 1, tzinfo=UTC))


def test_a_refund_line_our_books_do_not_have():
    assert refund_line_outcome(line_id=7, currency="usd", amount=300, refund=None) == Outcome(
        7, MatchState.BREAK, BreakClass.MISSING_IN_BOOKS, actual_amount=300, actual_currency="usd",
        description="the PSP settled a refund our books do not have")


def test_a_refund_line_that_agrees_is_matched_to_the_refund():
    assert refund_line_outcome(line_id=7, currency="usd", amount=300, refund=our_refund()) == Outcome(
        7, MatchState.MATCHED, None, "refund", "rf_1", 300, "usd", 300, "usd", "")


@pytest.mark.parametrize(("amount", "currency", "klass", "description"), [
    (250, "usd", BreakClass.AMOUNT_MISMATCH, "refund rf_1 is 300"),
    (300, "eur", BreakClass.CURRENCY_MISMATCH, "refund rf_1 is in usd"),
], ids=lambda value: re.sub(r"\W+", "-", str(value))[:24])  # short ids without spaces (mutmut)
def test_a_refund_line_that_differs_is_a_break_of_one_class(amount, currency, klass, description):
    assert refund_line_outcome(line_id=7, currency=currency, amount=amount, refund=our_refund()) == Outcome(
        7, MatchState.BREAK, klass, "refund", "rf_1", 300, "usd", amount, currency, description)


def payout(reference="po_1", amount=10_000, currency="usd", line_id=3):
    return PayoutLine(line_id, reference, currency, amount, datetime(2026, 3, 2, tzinfo=UTC))


def test_a_payout_no_bank_line_received():
    assert payout_line_outcomes(payout=payout(), bank=None) == (Outcome(
        3, MatchState.BREAK, BreakClass.PAYOUT_NOT_RECEIVED, "payout", "po_1", 10_000, "usd",
        description="payout po_1 has no matching bank credit yet"), None)
    assert payout_line_outcomes(payout=payout(reference=""), bank=None)[0].description \
        == "payout (no id) has no matching bank credit yet"


def test_a_payout_received_in_full_matches_both_lines():
    assert payout_line_outcomes(payout=payout(), bank=BankLine(9, "usd", 10_000)) == (
        Outcome(3, MatchState.MATCHED, None, "bank_line", "9", 10_000, "usd", 10_000, "usd"),
        Outcome(9, MatchState.MATCHED, None, "payout", "po_1"))


def test_a_payout_without_an_id_is_known_by_its_line():
    assert payout(reference="", line_id=12).key == "line:12"
    _, received = payout_line_outcomes(payout=payout(reference="", line_id=12), bank=BankLine(9, "usd", 10_000))
    assert received == Outcome(9, MatchState.MATCHED, None, "payout", "line:12")


@pytest.mark.parametrize(("bank", "klass", "description"), [
    (BankLine(9, "usd", 9_990), BreakClass.AMOUNT_MISMATCH, "payout po_1 is 10000, the bank received 9990"),
    (BankLine(9, "eur", 10_000), BreakClass.CURRENCY_MISMATCH, "payout po_1 is in usd, the bank's in eur"),
], ids=lambda value: re.sub(r"\W+", "-", str(value))[:24])  # short ids without spaces (mutmut)
def test_a_payout_the_bank_received_otherwise_is_a_break_and_the_bank_line_is_still_its(bank, klass, description):
    assert payout_line_outcomes(payout=payout(), bank=bank) == (
        Outcome(3, MatchState.BREAK, klass, "payout", "po_1", 10_000, "usd", bank.amount, bank.currency, description),
        Outcome(9, MatchState.MATCHED, None, "payout", "po_1"))


# --- booking ---------------------------------------------------------------------------------------


def settlement_file(sha: str, fees: list) -> SettlementFile:
    return SettlementFile.objects.create(sha256=sha, name=f"{sha}.csv", format="stripe_csv", size=1,
                                         imported_by="test", fees=fees)


def balance(code: str, currency: str = "usd") -> int:
    return ledger_selectors.account_balance(code=code, currency=currency)


def test_posting_keys_name_the_payout_or_else_the_file():
    assert payout_posting_key("po_1", "usd") == "settlement:payout:po_1:usd"
    assert fee_posting_key("abc", "po_1", "usd") == "settlement:fees:po_1:usd"
    assert fee_posting_key("abc", "", "usd") == "settlement:abc:fees:-:usd"


@pytest.mark.django_db
def test_settlement_books_payouts_and_fees_once_each():
    files = [settlement_file("a" * 64, [["po_1", "usd", 45, 3], ["", "eur", 7, 1], ["po_1", "gbp", 0, 2]]).pk,
             settlement_file("b" * 64, [["po_2", "usd", 5, 1]]).pk]
    payouts = [PayoutReceived("po_1", "usd", 10_000), PayoutReceived("line:4", "usd", 0),
               PayoutReceived("po_3", "eur", 2_500), PayoutReceived("po_4", "usd", 500)]
    booked = settlement_book(files=files, payouts=payouts)
    assert (booked.fees, booked.payouts) == ({"usd": 50, "eur": 7}, {"usd": 10_500, "eur": 2_500})
    assert balance(accounts.BANK) == 10_500 and balance(accounts.BANK, "eur") == 2_500
    assert balance(accounts.PSP_FEES) == 50 and balance(accounts.PSP_FEES, "eur") == 7
    assert balance(accounts.PSP_RECEIVABLE) == -10_550 and balance(accounts.PSP_RECEIVABLE, "eur") == -2_507
    assert balance(accounts.PSP_FEES, "gbp") == 0  # a zero total posts nothing
    fees = LedgerTransaction.objects.get(idempotency_key=fee_posting_key("a" * 64, "po_1", "usd"))
    assert (fees.reference, fees.description) == ("po_1", "PSP fees of 3 settlement lines, payout po_1")
    no_payout = LedgerTransaction.objects.get(idempotency_key=fee_posting_key("a" * 64, "", "eur"))
    assert (no_payout.reference, no_payout.description) == ("a" * 16, "PSP fees of 1 settlement lines, payout -")
    received = LedgerTransaction.objects.get(idempotency_key=payout_posting_key("po_1", "usd"))
    assert (received.reference, received.description) == ("po_1", "PSP payout po_1 received by the bank")
    assert not LedgerTransaction.objects.filter(idempotency_key=payout_posting_key("line:4", "usd")).exists()

    again = settlement_book(files=files, payouts=payouts)
    assert (again.fees, again.payouts) == ({}, {"usd": 10_500, "eur": 2_500})  # payouts: received, booked before
    assert balance(accounts.PSP_FEES) == 50 and balance(accounts.BANK) == 10_500
    assert ledger_selectors.trial_balance() == {"usd": 0, "eur": 0}


@pytest.mark.django_db
def test_a_payout_with_a_long_id_is_booked_with_its_reference_cut_to_the_column():
    reference = "po_" + "9" * 150
    files = [settlement_file("c" * 64, [[reference, "usd", 9, 1]]).pk]
    booked = settlement_book(files=files, payouts=[PayoutReceived(reference, "usd", 700)])
    assert (booked.fees, booked.payouts) == ({"usd": 9}, {"usd": 700})
    posting = LedgerTransaction.objects.get(idempotency_key=payout_posting_key(reference, "usd"))
    assert posting.reference == reference[:100]
    fees = LedgerTransaction.objects.get(idempotency_key=fee_posting_key("c" * 64, reference, "usd"))
    assert fees.reference == reference[:100]
    assert (balance(accounts.BANK), balance(accounts.PSP_FEES)) == (700, 9)
