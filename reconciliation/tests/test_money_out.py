"""Money out reconciled: a day with seller payouts, end to end through the real API, worker and PSP sandbox.

The sandbox's platform report nets our transfers to the connected accounts (and their reversals) off its payout
to our bank; its connected accounts' payouts report carries the sellers' payouts and their failures. After the
import and a reconcile, ``assets:psp_receivable`` is what the PSP still holds for us, with no break.
"""
from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from conftest import wait_for
from core.tests import loopback
from ledger import accounts
from ledger import selectors as ledger_selectors
from payouts.audit import payout_settlement_problems
from payouts.models import Payout, PayoutState
from payouts.services import payouts_run
from payouts.tests.helpers import age_holds, capture, connect_webhooks, onboard, payout_account, wait_state
from reconciliation.models import Break, MatchState, SettlementLine, SettlementMatch
from reconciliation.record_types import RecordType
from reconciliation.selectors import settlement_lines_with_match
from reconciliation.services import reconciliation_run, settlement_file_import

from .helpers import fee

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def settle(sandbox, day, directory) -> dict:
    response = loopback.post(f"{sandbox}/_sandbox/settlements", json={"date": day.isoformat(),
                                                                      "directory": str(directory)}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def import_all(written: dict) -> None:
    for key in ("settlement_report", "bank_statement", "connected_payouts_report"):
        result = settlement_file_import(path=Path(written[key]), actor="test")
        assert result.malformed == 0, key


def psp_holds(sandbox, day) -> dict[str, int]:
    response = loopback.get(f"{sandbox}/_sandbox/balance", params={"paid_out_through": day.isoformat()}, timeout=10)
    assert response.status_code == 200, response.text
    return {currency: held["total"] for currency, held in response.json()["currencies"].items()}


def receivable(currency="usd") -> int:
    return ledger_selectors.account_balance(code=accounts.PSP_RECEIVABLE, currency=currency)


def paid_and_failed_payouts(api, sandbox, live_server, settings):
    """Two sellers paid out today: one paid, one whose bank refused it (failed, its transfer taken back)."""
    connect_webhooks(sandbox, live_server, settings)
    paid_seller, failed_seller = onboard(api, "paid"), onboard(api, "refused")
    payout_account(api, paid_seller)
    payout_account(api, failed_seller, token="btok_us_verified_accountClosed")
    capture(api, paid_seller, 2500)
    capture(api, paid_seller, 1200)
    capture(api, failed_seller, 4000)
    age_holds(paid_seller, failed_seller)
    run = payouts_run(payout_date=timezone.now().date(), actor="test")
    by_seller = {item.seller_id: item.payout for item in run.items.all()}
    paid = wait_state(by_seller[paid_seller].id, PayoutState.PAID)
    wait_state(by_seller[failed_seller].id, PayoutState.FAILED)
    failed = wait_for(lambda: (p := Payout.objects.get(pk=by_seller[failed_seller].id)).transfer_reversed_at and p,
                      message="the failed payout's transfer taken back")
    return paid, failed


def test_a_day_with_payouts_reconciles_with_no_drift_and_no_break(api, sandbox, live_server, settings, tmp_path):
    paid, failed = paid_and_failed_payouts(api, sandbox, live_server, settings)
    day = timezone.now().date()
    written = settle(sandbox, day, tmp_path)
    captured = 2500 + 1200 + 4000
    fees = fee(2500) + fee(1200) + fee(4000)
    # The PSP paid us what it took in, less its fees and the transfer that stayed with the seller.
    assert [(p["currency"], p["amount"]) for p in written["payouts"]] == [("usd", captured - fees - paid.amount)]
    assert written["seller_payouts"] == 3  # two payouts made, one of them failed

    import_all(written)
    lines = dict(SettlementLine.objects.filter(record_type__in=[str(t) for t in (
        RecordType.TRANSFER, RecordType.TRANSFER_REVERSAL, RecordType.SELLER_PAYOUT,
        RecordType.SELLER_PAYOUT_FAILURE)]).values_list("record_type", "net").order_by("record_type", "net"))
    assert lines["transfer_reversal"] == failed.amount and lines["seller_payout_failure"] == failed.amount
    assert SettlementLine.objects.filter(record_type="transfer").count() == 2
    assert SettlementLine.objects.filter(record_type="seller_payout").count() == 2

    run = reconciliation_run(day=day, actor="test")
    assert list(Break.objects.values_list("break_class", "description")) == []
    assert run.stats["money_out"] == {"lines": 6, "paid_payouts_unsettled": 0}
    assert not settlement_lines_with_match().exclude(match_state="matched").exists()
    matched = settlement_lines_with_match().filter(record_type__in=["transfer", "seller_payout"])
    assert sorted(matched.values_list("matched_object_id", flat=True)) == sorted([paid.id, paid.id, failed.id,
                                                                                failed.id])

    # No drift: our PSP receivable is what the PSP holds for us (nothing: all paid out), the bank has the rest.
    assert psp_holds(sandbox, day) == {"usd": 0}
    assert receivable() == 0
    assert ledger_selectors.account_balance(code=accounts.BANK, currency="usd") == captured - fees - paid.amount
    call_command("audit_money", stdout=StringIO())

    # Again: nothing new; a re-import changes nothing.
    again = reconciliation_run(day=day, actor="test")
    assert again.stats["breaks"] == {} and Break.objects.count() == 0
    assert not settlement_file_import(path=Path(written["connected_payouts_report"]), actor="test").created


def test_a_paid_payout_the_reports_lack_past_the_cut_off_is_a_break_until_they_have_it(
        api, sandbox, live_server, settings, tmp_path):
    settings.RECONCILIATION_MISSING_CUTOFF_HOURS = -24  # the cut-off is tomorrow: today's payouts are past it
    paid, failed = paid_and_failed_payouts(api, sandbox, live_server, settings)
    day = timezone.now().date()
    written = settle(sandbox, day, tmp_path)
    for key in ("settlement_report", "bank_statement"):  # the connected accounts' report is not there yet
        settlement_file_import(path=Path(written[key]), actor="test")

    run = reconciliation_run(day=day, actor="test")
    missing = Break.objects.get(object_kind="payout")
    assert (missing.key, missing.break_class, missing.state, missing.object_id, missing.expected_amount) == (
        f"missing_in_settlement:object:{paid.id}", "missing_in_settlement", "open", paid.id, paid.amount)
    assert "no payout of it" in missing.description and "transfer" not in missing.description
    assert run.stats["money_out"]["paid_payouts_unsettled"] == 1
    assert Break.objects.count() == 1  # the failed payout is not missing: it is not paid
    # audit_money: a paid payout of a reconciled day is not matched to the PSP's payout line.
    assert payout_settlement_problems() == [
        f"paid payout {paid.id} (paid on or before {day}, the last day reconciled) has no seller_payout line matched"]
    with pytest.raises(CommandError, match="violation"):
        call_command("audit_money", stdout=StringIO())

    settlement_file_import(path=Path(written["connected_payouts_report"]), actor="test")
    again = reconciliation_run(day=day, actor="test")
    missing.refresh_from_db()
    assert (missing.state, missing.resolution) == ("auto_resolved", "settled_later")
    assert list(missing.resolutions.values_list("to_state", "actor")) == [("auto_resolved", "system:reconcile")]
    assert again.stats["money_out"]["paid_payouts_unsettled"] == 0
    assert Break.objects.filter(state="open").count() == 0
    assert receivable() == 0
    call_command("audit_money", stdout=StringIO())

    # The connected accounts' report sent again in another file: its lines are duplicates, matched to nothing.
    copy = tmp_path / "again.csv"
    copy.write_text(Path(written["connected_payouts_report"]).read_text() + "\n")
    settlement_file_import(path=copy, actor="test")
    reconciliation_run(day=day, actor="test")
    assert sorted(Break.objects.filter(state="open").values_list("break_class", flat=True)) == ["duplicate"] * 3
    assert payout_settlement_problems() == []
    # Were one of them matched to the payout too, audit_money would say the payout is matched twice.
    line = Break.objects.filter(state="open", object_id=paid.id).get().line
    SettlementMatch.objects.filter(line=line).update(state=MatchState.MATCHED)
    assert payout_settlement_problems() == [f"payout {paid.id} has 2 seller_payout lines matched, not one"]
