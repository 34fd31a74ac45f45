"""audit_money's dispute check, broken on purpose: it names the dispute at fault."""
import pytest

from core.tests.helpers import audit_violations
from disputes import services
from disputes.models import Dispute, DisputeState
from ledger import accounts
from ledger.services import EntrySpec, ledger_transaction_post

from .helpers import captured_order, report

pytestmark = pytest.mark.django_db


def violations(capsys) -> list[str]:
    return audit_violations(capsys)


def test_a_won_dispute_whose_money_never_came_back(capsys):
    captured_order(10_000)
    dispute, _ = services.dispute_report_apply(report=report(), actor="test")
    Dispute.objects.filter(pk=dispute.pk).update(state=DisputeState.WON)  # as if the reinstatement was lost
    found = violations(capsys)
    assert f"won dispute {dispute.id} has 0 reinstated postings, not 1" in found


def test_a_stray_dispute_posting(capsys):
    ledger_transaction_post(idempotency_key="dispute:dsp_ghost:withdrawn", description="t", entries=[
        EntrySpec(accounts.PSP_RECEIVABLE, "usd", -100), EntrySpec(accounts.DISPUTE_FEES, "usd", 100)])
    assert "posting dispute:dsp_ghost:withdrawn belongs to no dispute of ours" in violations(capsys)
