"""A sandbox day end to end: checkouts over HTTP, the sandbox settles, we import and reconcile."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from conftest import wait_for
from core.tests import loopback
from ledger import accounts
from ledger import selectors as ledger_selectors
from payments.models import PaymentOrder
from reconciliation.models import Break, SettlementLine
from reconciliation.selectors import settlement_lines_with_match
from reconciliation.services import reconciliation_run, settlement_file_import

from .helpers import fee

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_sandbox_day_reconciles_with_no_breaks(api, sandbox, tmp_path):
    sellers = [api.post("/api/v1/sellers", json={"name": f"seller {n}"}).json()["id"] for n in range(2)]
    baskets = [
        [{"seller": sellers[0], "amount": 1250, "currency": "usd"}, {"seller": sellers[1], "amount": 990,
                                                                      "currency": "usd"}],
        [{"seller": sellers[1], "amount": 5000, "currency": "eur"}],
        [{"seller": sellers[0], "amount": 333, "currency": "usd"}],
    ]
    for n, orders in enumerate(baskets):
        body = {"buyer": {"reference": f"buyer-{n}"}, "payment_method": "pm_card_visa", "orders": orders}
        response = api.post("/api/v1/checkouts", json=body, headers={"Idempotency-Key": f"day-{n}"})
        assert response.status_code == 201, response.text
    declined = {"buyer": {"reference": "buyer-x"}, "payment_method": "pm_card_chargeDeclined",
                "orders": [{"seller": sellers[0], "amount": 700, "currency": "usd"}]}
    assert api.post("/api/v1/checkouts", json=declined, headers={"Idempotency-Key": "day-x"}).status_code == 201
    wait_for(lambda: PaymentOrder.objects.filter(state__in=["succeeded", "failed"]).count() == 5, timeout=60,
             message="5 orders to finish")
    assert PaymentOrder.objects.filter(state="succeeded").count() == 4

    day = timezone.now().date()
    response = loopback.post(f"{sandbox}/_sandbox/settlements",
                             json={"date": day.isoformat(), "directory": str(tmp_path)}, timeout=10)
    assert response.status_code == 200, response.text
    written = response.json()
    assert {p["currency"] for p in written["payouts"]} == {"usd", "eur"}

    for key in ("settlement_report", "bank_statement"):
        result = settlement_file_import(path=Path(written[key]), actor="test")
        assert result.created and result.malformed == 0
    assert SettlementLine.objects.filter(record_type="charge").count() == 4
    assert SettlementLine.objects.filter(record_type="bank_credit").count() == 2

    run = reconciliation_run(day=day, actor="test")
    assert list(Break.objects.values_list("break_class", "description")) == []
    assert run.stats["breaks"] == {}
    assert not settlement_lines_with_match().exclude(match_state="matched").exists()

    fees = {"usd": fee(1250) + fee(990) + fee(333), "eur": fee(5000)}
    for currency, total in fees.items():
        assert ledger_selectors.account_balance(code=accounts.PSP_FEES, currency=currency) == total
        assert ledger_selectors.account_balance(code=accounts.PSP_RECEIVABLE, currency=currency) == 0
    assert ledger_selectors.account_balance(code=accounts.BANK, currency="usd") == 1250 + 990 + 333 - fees["usd"]
    call_command("audit_money")

    # A re-run and a re-import change nothing.
    postings = ledger_selectors.posting_keys_with_prefix(prefix="settlement:")
    again = reconciliation_run(day=day, actor="test")
    assert again.stats["breaks"] == {} and Break.objects.count() == 0
    assert sorted(ledger_selectors.posting_keys_with_prefix(prefix="settlement:")) == sorted(postings)
    assert not settlement_file_import(path=Path(written["settlement_report"]), actor="test").created
