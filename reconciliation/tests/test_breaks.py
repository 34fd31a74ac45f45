"""Every break class produced on purpose, re-runs, auto-resolution and operator resolution."""
from __future__ import annotations

from datetime import timedelta

import pytest

from ledger import accounts
from ledger import selectors as ledger_selectors
from reconciliation.exceptions import BreakResolutionError
from reconciliation.models import Break, BreakResolution, SettlementFile, SettlementMatch
from reconciliation.selectors import settlement_lines_with_match
from reconciliation.services import break_resolve, reconciliation_run, settlement_file_import

from .helpers import bank_statement, fee, order, row, stripe_report

pytestmark = pytest.mark.django_db


@pytest.fixture
def day_report(tmp_path, now):
    """One settlement batch closing ``now`` that holds one example of each line-level break."""
    before = now - timedelta(hours=2)
    ok = order(amount=1000, psp_reference="pi_ok", completed_at=before)
    amount = order(amount=2000, psp_reference="pi_amount", completed_at=before)
    ccy = order(amount=3000, psp_reference="pi_ccy", completed_at=before)
    dup = order(amount=500, psp_reference="pi_dup", completed_at=before)
    late = order(amount=700, psp_reference="pi_late", completed_at=now - timedelta(days=3))
    fallback = order(amount=400, psp_reference="pi_known_by_metadata", completed_at=before)
    failed = order(amount=900, psp_reference="pi_failed", completed_at=before, state="failed")
    rows = [
        row("charge", gross=1000, fee=fee(1000), pi="pi_ok", created=before),
        row("charge", gross=1900, fee=fee(1900), pi="pi_amount", created=before),
        row("charge", gross=3000, fee=fee(3000), currency="eur", pi="pi_ccy", created=before, payout="po_eur"),
        row("charge", gross=1234, fee=fee(1234), pi="pi_nobody", created=before),
        row("charge", gross=500, fee=fee(500), pi="pi_dup", created=before),
        row("charge", gross=500, fee=fee(500), pi="pi_dup", created=before),
        row("charge", gross=700, fee=fee(700), pi="pi_late", created=now - timedelta(days=3)),
        row("charge", gross=400, fee=fee(400), pi="pi_renamed", order_id=fallback.id, created=before),
        row("charge", gross=900, fee=fee(900), pi="pi_failed", created=before),
        row("topup", gross=5000, created=before),
        row("refund", gross=-300, pi="pi_ok", source="re_unknown", created=before),
        row("charge", gross=0, fee=0, gross_text="1O", pi="pi_broken", created=before),  # malformed
        row("payout", gross=-9999, created=now, source="po_test"),
    ]
    path = stripe_report(tmp_path / "day.csv", rows)
    objects = {"ok": ok, "amount": amount, "ccy": ccy, "dup": dup, "late": late, "fallback": fallback,
               "failed": failed}
    return path, objects


def classes(**filters) -> list[tuple[str, str]]:
    return sorted(Break.objects.filter(**filters).values_list("break_class", "state"))


def test_each_line_break_class_once(day_report, now):
    path, objects = day_report
    missing = order(amount=800, psp_reference="pi_missing", completed_at=now - timedelta(days=5))
    file = settlement_file_import(path=path, actor="test").file
    assert file.malformed_count == 1

    run = reconciliation_run(day=now.date(), actor="test")
    assert classes() == [
        ("amount_mismatch", "open"),
        ("currency_mismatch", "open"),
        ("duplicate", "open"),
        ("malformed_line", "open"),
        ("missing_in_books", "open"),  # pi_nobody
        ("missing_in_books", "open"),  # the failed order
        ("missing_in_books", "open"),  # the refund we do not know
        ("missing_in_settlement", "open"),
        ("payout_not_received", "open"),
        ("timing", "auto_resolved"),
        ("unknown_record_type", "open"),
    ]
    amount = Break.objects.get(break_class="amount_mismatch")
    assert (amount.object_id, amount.expected_amount, amount.actual_amount) == (objects["amount"].id, 2000, 1900)
    currency = Break.objects.get(break_class="currency_mismatch")
    assert (currency.expected_currency, currency.actual_currency) == ("usd", "eur")
    duplicate = Break.objects.get(break_class="duplicate")
    assert duplicate.line.line_number == 7 and duplicate.object_id == objects["dup"].id
    assert Break.objects.get(break_class="missing_in_settlement").object_id == missing.id
    malformed = Break.objects.get(break_class="malformed_line")
    assert malformed.line.line_number == 13 and "'gross' is not an amount: '1O'" in malformed.description
    timing = Break.objects.get(break_class="timing")
    assert timing.resolution == "settled_later" and timing.resolutions.count() == 1
    fallback = settlement_lines_with_match().get(psp_reference="pi_renamed")
    assert (fallback.match_state, fallback.matched_object_id) == ("matched", objects["fallback"].id)
    assert run.stats["breaks"]["amount_mismatch"] == {"count": 1, "new": 1, "open": 1, "amounts": {"usd": -100}}

    # Fees are booked even for lines in a break: the PSP took them.
    charged = [1000, 1900, 1234, 500, 500, 700, 400, 900]
    assert ledger_selectors.account_balance(code=accounts.PSP_FEES, currency="usd") == sum(map(fee, charged))
    assert ledger_selectors.account_balance(code=accounts.PSP_FEES, currency="eur") == fee(3000)

    # A re-run finds the same breaks and posts nothing new.
    count, postings = Break.objects.count(), ledger_selectors.posting_keys_with_prefix(prefix="settlement:")
    again = reconciliation_run(day=now.date(), actor="test")
    assert Break.objects.count() == count
    assert ledger_selectors.posting_keys_with_prefix(prefix="settlement:") == postings
    assert Break.objects.filter(last_seen_run=again, state="open").count() == count - 1
    assert again.stats["breaks"]["amount_mismatch"]["new"] == 0


def test_bank_credit_arriving_later_clears_payout_not_received(tmp_path, now):
    before = now - timedelta(hours=2)
    order(amount=1000, psp_reference="pi_a", completed_at=before)
    net = 1000 - fee(1000)
    settlement_file_import(path=stripe_report(tmp_path / "s.csv", [
        row("charge", gross=1000, fee=fee(1000), pi="pi_a", created=before, payout="po_late1"),
        row("payout", gross=-net, created=now, source="po_late1", payout="po_late1"),
    ]), actor="test")
    reconciliation_run(day=now.date(), actor="test")
    assert classes() == [("payout_not_received", "open")]
    assert ledger_selectors.account_balance(code=accounts.BANK, currency="usd") == 0

    payout = {"id": "po_late1", "currency": "usd", "amount": net}
    settlement_file_import(path=bank_statement(tmp_path / "bank.xml", now + timedelta(days=1), [payout]),
                           actor="test")
    reconciliation_run(day=now.date(), actor="test")
    assert classes() == [("payout_not_received", "auto_resolved")]
    brk = Break.objects.get()
    assert brk.resolution == "cleared" and brk.resolutions.get().actor == "system:reconcile"
    assert ledger_selectors.account_balance(code=accounts.BANK, currency="usd") == net
    # Receivable: +1000 captured would come from the payments flow; here only fee and payout: -1000.
    assert ledger_selectors.account_balance(code=accounts.PSP_RECEIVABLE, currency="usd") == -1000


def test_payout_matched_by_amount_without_id_and_amount_mismatch(tmp_path, now):
    settlement_file_import(path=stripe_report(tmp_path / "s.csv", [
        row("payout", gross=-5000, created=now, source="po_noref", payout="po_noref"),
        row("payout", gross=-7000, created=now, source="po_short", payout="po_short"),
    ]), actor="test")
    credits = [{"id": "po_short", "currency": "usd", "amount": 6990}]
    path = bank_statement(tmp_path / "bank.xml", now + timedelta(days=1), credits)
    path.write_text(path.read_text().replace("</Ntry>", "</Ntry>\n" + _credit_without_reference(5000, now), 1))
    settlement_file_import(path=path, actor="test")
    reconciliation_run(day=now.date(), actor="test")
    # The short payout is not booked, so the bank's closing balance (6990, the statement's own) is not the books'.
    assert classes() == [("amount_mismatch", "open"), ("bank_balance_mismatch", "open")]
    brk = Break.objects.get(break_class="amount_mismatch")
    assert (brk.object_id, brk.expected_amount, brk.actual_amount) == ("po_short", 7000, 6990)
    balance = Break.objects.get(break_class="bank_balance_mismatch")
    assert (balance.expected_amount, balance.actual_amount) == (5000, 6990)
    assert ledger_selectors.account_balance(code=accounts.BANK, currency="usd") == 5000


def _credit_without_reference(amount: int, now) -> str:
    day = (now + timedelta(days=1)).date().isoformat()
    return (f'<Ntry><Amt Ccy="USD">{amount / 100:.2f}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>'
            f"<BookgDt><Dt>{day}</Dt></BookgDt><AcctSvcrRef>NOREF1</AcctSvcrRef>"
            "<NtryDtls><TxDtls><RmtInf><Ustrd>PSP SETTLEMENT</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>")


def test_missing_in_settlement_then_settled_later_is_timing(tmp_path, now):
    old = order(amount=800, psp_reference="pi_slow", completed_at=now - timedelta(days=5))
    reconciliation_run(day=now.date(), actor="test")
    assert classes() == [("missing_in_settlement", "open")]

    settlement_file_import(path=stripe_report(tmp_path / "s.csv", [
        row("charge", gross=800, fee=fee(800), pi="pi_slow", created=now - timedelta(days=5)),
        row("payout", gross=-(800 - fee(800)), created=now, source="po_test"),  # today's batch
    ]), actor="test")
    reconciliation_run(day=now.date(), actor="test")
    assert classes() == [("missing_in_settlement", "auto_resolved"), ("payout_not_received", "open"),
                         ("timing", "auto_resolved")]
    missing = Break.objects.get(break_class="missing_in_settlement")
    assert missing.object_id == old.id and missing.resolution == "settled_later"


def test_duplicate_across_files(tmp_path, now):
    before = now - timedelta(hours=1)
    order(amount=100, psp_reference="pi_twice", completed_at=before)
    first = [row("charge", gross=100, fee=fee(100), pi="pi_twice", created=before)]
    settlement_file_import(path=stripe_report(tmp_path / "a.csv", first), actor="test")
    reconciliation_run(day=now.date(), actor="test")
    second = [*first, row("fee", gross=-50, created=before)]  # other bytes, the same charge again
    settlement_file_import(path=stripe_report(tmp_path / "b.csv", second), actor="test")
    reconciliation_run(day=now.date(), actor="test")
    assert classes() == [("duplicate", "open")]
    assert Break.objects.get().line.file.name == "b.csv"
    # The same payout batch in a second file is not charged fees a second time.
    assert ledger_selectors.account_balance(code=accounts.PSP_FEES, currency="usd") == fee(100)


def test_break_resolve_service_requires_reason_and_writes_audit(day_report, now):
    settlement_file_import(path=day_report[0], actor="test")
    reconciliation_run(day=now.date(), actor="test")
    brk = Break.objects.get(break_class="amount_mismatch")
    with pytest.raises(BreakResolutionError, match="reason"):
        break_resolve(break_id=brk.pk, resolution="psp_corrected", reason="  ", actor="operator:alice")
    with pytest.raises(BreakResolutionError, match="unknown resolution"):
        break_resolve(break_id=brk.pk, resolution="settled_later", reason="x", actor="operator:alice")

    resolved = break_resolve(break_id=brk.pk, resolution="psp_corrected", reason="Stripe credits 1.00 on Monday",
                             actor="operator:alice")
    assert (resolved.state, resolved.resolution, resolved.resolved_by) == ("resolved", "psp_corrected",
                                                                           "operator:alice")
    audit = BreakResolution.objects.get(brk=brk)
    assert (audit.from_state, audit.to_state, audit.actor, audit.reason) == (
        "open", "resolved", "operator:alice", "Stripe credits 1.00 on Monday")
    with pytest.raises(BreakResolutionError, match="not open"):
        break_resolve(break_id=brk.pk, resolution="no_action", reason="again", actor="operator:bob")

    reconciliation_run(day=now.date(), actor="test")  # a resolved break stays resolved
    assert Break.objects.get(pk=brk.pk).state == "resolved"


def test_clean_charge_is_matched_by_reference_without_a_match_row(tmp_path, now):
    before = now - timedelta(hours=1)
    paid = order(amount=1000, psp_reference="pi_clean", completed_at=before)
    short = order(amount=2000, psp_reference="pi_short", completed_at=before)
    result = settlement_file_import(path=stripe_report(tmp_path / "a.csv", [
        row("charge", gross=1000, fee=fee(1000), pi="pi_clean", created=before),
        row("charge", gross=1500, fee=fee(1500), pi="pi_short", created=before),
    ]), actor="test")
    assert result.file.unique_references is True
    run = reconciliation_run(day=now.date(), actor="test")
    clean = settlement_lines_with_match().get(psp_reference="pi_clean")
    assert not SettlementMatch.objects.filter(line=clean).exists()
    assert (clean.match_state, clean.matched_kind, clean.matched_object_id) == ("matched", "payment_order", paid.id)
    assert SettlementFile.objects.get(pk=result.file.pk).reconciled_run == run
    broken = settlement_lines_with_match().get(psp_reference="pi_short")
    assert (broken.match_state, broken.matched_object_id) == ("break", short.id)
    assert run.stats["lines"] == {"break": 1, "matched": 1} and run.lines_evaluated == 2


def test_duplicate_of_an_order_found_by_merchant_reference(tmp_path, now):
    """Unique PSP references in a file do not rule out a duplicate: a line found by our order id
    can settle the order another line settled by its PSP reference."""
    before = now - timedelta(hours=1)
    twice = order(amount=600, psp_reference="pi_twice", completed_at=before)
    result = settlement_file_import(path=stripe_report(tmp_path / "a.csv", [
        row("charge", gross=600, fee=fee(600), pi="pi_twice", created=before),
        row("charge", gross=600, fee=fee(600), pi="pi_other", order_id=twice.id, created=before),
    ]), actor="test")
    assert result.file.unique_references is True
    reconciliation_run(day=now.date(), actor="test")
    assert classes() == [("duplicate", "open")]
    assert Break.objects.get().line.psp_reference == "pi_other"


def test_missing_in_settlement_looks_at_the_orders_new_to_its_window_and_those_with_a_break(now):
    start = now.replace(hour=0, minute=0, second=0)
    old = order(amount=800, psp_reference="pi_old", completed_at=start - timedelta(days=2))
    later = order(amount=900, psp_reference="pi_later", completed_at=start - timedelta(hours=12))
    first = reconciliation_run(day=now.date(), actor="test")  # the cut-off: the start of yesterday
    assert Break.objects.get().object_id == old.id
    second = reconciliation_run(day=now.date() + timedelta(days=1), actor="test")  # ...of today
    assert second.stats["missing_window"]["before"] == start.isoformat()
    assert sorted(Break.objects.values_list("object_id", "run_id", "last_seen_run_id")) == sorted([
        (old.id, first.pk, second.pk), (later.id, second.pk, second.pk)])


def test_a_line_break_seen_again_only_gets_its_last_seen_run(day_report, now):
    settlement_file_import(path=day_report[0], actor="test")
    first = reconciliation_run(day=now.date(), actor="test")
    columns = [f.attname for f in Break._meta.concrete_fields if f.attname != "last_seen_run_id"]
    line_breaks = Break.objects.filter(line__isnull=False).order_by("id")
    before = list(line_breaks.values_list(*columns))
    assert before and set(line_breaks.values_list("last_seen_run_id", flat=True)) == {first.pk}
    again = reconciliation_run(day=now.date(), actor="test")
    assert list(line_breaks.values_list(*columns)) == before
    seen = set(line_breaks.filter(state="open").values_list("last_seen_run_id", flat=True))
    assert seen == {again.pk}
