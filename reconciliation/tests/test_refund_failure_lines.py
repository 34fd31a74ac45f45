"""A refund that succeeded and failed later, seen from the settlement: the PSP's ``refund_failure`` line is a
``refund_failed_at_psp`` break while our books hold the refund succeeded, and matched to it once the refund is
reversed (here by the recovery path: the PSP asked about the refund). The books then agree with the PSP's."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from conftest import wait_for
from core.tests import loopback
from ledger import accounts
from ledger import selectors as ledger_selectors
from payments.models import Refund, RefundState
from payments.services import refund_refresh
from payments.tests.test_psp_faults import one_order, wait_state
from reconciliation.models import Break, BreakClass, BreakState, SettlementLine
from reconciliation.selectors import settlement_lines_with_match
from reconciliation.services import reconciliation_run, settlement_file_import
from wallet import selectors as wallet_selectors

from .helpers import fee

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def refund_line_states() -> dict[str, tuple[str, str]]:
    lines = settlement_lines_with_match(lines=SettlementLine.objects.filter(record_type__startswith="refund"))
    return {line.record_type: (line.match_state, line.matched_object_id) for line in lines}


def test_a_refund_failure_line_breaks_until_the_refund_is_reversed_then_matches(api, sandbox, tmp_path):
    order = wait_state(one_order(api, amount=1000), "succeeded")
    created = api.post(f"/api/v1/payment-orders/{order.id}/refunds", json={"amount": 400},
                       headers={"Idempotency-Key": "rf-late-fail"})
    assert created.status_code == 201, created.text
    refund = Refund.objects.get(pk=created.json()["id"])
    wait_for(lambda: Refund.objects.get(pk=refund.pk).state == RefundState.SUCCEEDED, message="the refund")
    refund.refresh_from_db()

    def wallet() -> int:
        return wallet_selectors.wallet_balance(owner_id=order.seller_id, currency="usd")

    assert wallet() == 600
    # The buyer's bank sends it back. No webhook reaches us (none is configured): only the settlement says so.
    loopback.post(f"{sandbox}/_sandbox/refunds/{refund.psp_reference}/fail", json={}, timeout=5).raise_for_status()

    day = timezone.now().date()
    written = loopback.post(f"{sandbox}/_sandbox/settlements", json={"date": day.isoformat(),
                                                                     "directory": str(tmp_path)}, timeout=10).json()
    for key in ("settlement_report", "bank_statement"):
        assert settlement_file_import(path=Path(written[key]), actor="test").malformed == 0
    assert SettlementLine.objects.get(record_type="refund_failure").source_reference == refund.psp_reference

    reconciliation_run(day=day, actor="test")
    open_breaks = list(Break.objects.filter(state=BreakState.OPEN).values_list("break_class", "object_id"))
    assert open_breaks == [(BreakClass.REFUND_FAILED_AT_PSP, refund.id)]
    assert refund_line_states() == {"refund": ("matched", refund.id), "refund_failure": ("break", refund.id)}
    call_command("audit_money")  # our books are consistent, only not the PSP's

    # Recovery: the PSP is asked about the refund and says failed: it is reversed, once.
    assert refund_refresh(refund_id=refund.id, actor="operator:alice") == RefundState.FAILED
    assert refund_refresh(refund_id=refund.id, actor="operator:alice") == RefundState.FAILED
    refund.refresh_from_db()
    assert (refund.failure_code, refund.transitions.get(to_state="failed", from_state="succeeded").actor) == (
        "expired_or_canceled_card", "operator:alice")
    assert wallet() == 1000
    order.refresh_from_db()
    assert order.amount_refunded == 0

    reconciliation_run(day=day, actor="test")
    assert not Break.objects.filter(state=BreakState.OPEN).exists()
    assert refund_line_states() == {"refund": ("matched", refund.id), "refund_failure": ("matched", refund.id)}
    # The charge, its refund and the refund's failure settled: the PSP owes us nothing, the bank got the charge.
    assert ledger_selectors.account_balance(code=accounts.PSP_RECEIVABLE, currency="usd") == 0
    assert ledger_selectors.account_balance(code=accounts.BANK, currency="usd") == 1000 - fee(1000)
    assert ledger_selectors.account_balance(code=accounts.seller_payable(order.seller_id), currency="usd") == -1000
    call_command("audit_money")

    # The whole amount can be refunded again, at the PSP too.
    again = api.post(f"/api/v1/payment-orders/{order.id}/refunds", json={"amount": 1000},
                     headers={"Idempotency-Key": "rf-again"})
    assert again.status_code == 201, again.text
    wait_for(lambda: Refund.objects.get(pk=again.json()["id"]).state == RefundState.SUCCEEDED, message="refund")
    assert wallet() == 0
    call_command("audit_money")
