"""No admin page shows raw minor units: every changelist and change page of the money models shows
amounts through format_money, over a zero-, a two- and a three-decimal currency."""
import csv
import io
import re

import pytest
from django.contrib import admin
from django.utils import timezone

from core.money import format_money
from payments.models import PaymentOrderState, Refund, SuspectedDoubleCharge
from payments.psp.base import PaymentResult, PaymentStatus
from payments.services import payment_order_apply_result
from payments.tests.factories import PaymentOrderFactory
from reconciliation.models import Break, ReconciliationRun, SettlementFile, SettlementLine
from wallet.models import Wallet, WalletMovement

pytestmark = pytest.mark.django_db

RAW = 123456
SHOWN = {"usd": "1,234.56 USD", "jpy": "123,456 JPY", "kwd": "123.456 KWD"}


def _succeeded(currency):
    order = PaymentOrderFactory(state=PaymentOrderState.EXECUTING, amount=RAW, currency=currency,
                                psp_reference=f"pi_money_{currency}")
    payment_order_apply_result(payment_order_id=order.id, actor="test", result=PaymentResult(
        status=PaymentStatus.SUCCEEDED, psp_reference=f"pi_money_{currency}", amount=RAW, currency=currency))
    order.refresh_from_db()
    return order


@pytest.fixture
def money_rows():
    """Succeeded orders (wallets, movements, ledger entries), refunds, suspected double charges, a settlement
    file with lines, a run and breaks: every money model, each amount 123456 minor units."""
    orders = {currency: _succeeded(currency) for currency in SHOWN}
    run = ReconciliationRun.objects.create(date=timezone.now().date(), actor="test", stats={
        "breaks": {"amount_mismatch": {"count": 3, "new": 3, "open": 3, "amounts": {c: RAW for c in SHOWN}}},
        "lines": {"matched": 3}, "fees_booked": {c: RAW for c in SHOWN},
        "payouts": {"matched_amounts": {c: RAW for c in SHOWN}, "count": 3}})
    settlement = SettlementFile.objects.create(
        sha256="f" * 64, name="report.csv", format="stripe", size=10, imported_by="test",
        fees=[["po_1", c, RAW, 1] for c in SHOWN],
        statements=[{"statement_id": "s1", "account": "acct", "currency": c, "opening_balance": RAW,
                     "closing_balance": RAW} for c in SHOWN])
    for number, (currency, order) in enumerate(orders.items(), start=1):
        Refund.objects.create(payment_order=order, amount=RAW, currency=currency, psp_reference=f"re_{currency}")
        SuspectedDoubleCharge.objects.create(payment_order=order, psp_reference=f"pi_extra_{currency}",
                                             kind=SuspectedDoubleCharge.Kind.choices[0][0], amount=RAW,
                                             currency=currency, detected_by="test")
        line = SettlementLine.objects.create(file=settlement, ordinal=number, line_number=number, record_type="charge",
                                             currency=currency, gross=RAW, fee=RAW, net=RAW)
        Break.objects.create(key=f"b{number}", break_class="amount_mismatch", run=run, last_seen_run=run, line=line,
                             expected_amount=RAW, expected_currency=currency, actual_amount=-RAW,
                             actual_currency=currency, description="test")
    return orders


MONEY_MODELS = ["payments.paymentorder", "payments.paymentevent", "payments.refund", "payments.suspecteddoublecharge",
                "ledger.entry", "ledger.ledgertransaction", "ledger.account", "wallet.wallet", "wallet.walletmovement",
                "reconciliation.settlementfile", "reconciliation.settlementline", "reconciliation.break",
                "reconciliation.reconciliationrun"]


def _text(response) -> str:
    return re.sub(r"<[^>]+>", " ", response.content.decode())  # what is shown, not ids in markup


def test_no_admin_page_shows_minor_units(admin_client, money_rows):
    assert Wallet.objects.count() == 3 and WalletMovement.objects.count() == 3
    registered = {f"{m._meta.app_label}.{m._meta.model_name}": m for m in admin.site._registry}
    for label in MONEY_MODELS:
        model = registered[label]
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        pages = [base] + [f"{base}{obj.pk}/change/" for obj in model.objects.all()[:10]]
        for url in pages:
            response = admin_client.get(url)
            assert response.status_code == 200, url
            text = _text(response)
            assert str(RAW) not in text, f"{url} shows raw minor units"
            assert "123456" not in response.content.decode(), url
    breaks = _text(admin_client.get("/admin/reconciliation/break/"))
    for currency in SHOWN:  # the breaks list shows the difference, PSP minus books: -RAW - RAW
        assert format_money(-2 * RAW, currency) in breaks
    order = money_rows["usd"]
    page = _text(admin_client.get(f"/admin/payments/paymentorder/{order.pk}/change/"))
    assert SHOWN["usd"] in page
    for shown in SHOWN.values():
        assert shown in _text(admin_client.get("/admin/payments/paymentorder/"))
        assert shown in _text(admin_client.get("/admin/wallet/walletmovement/"))
        assert shown in _text(admin_client.get("/admin/ledger/entry/"))


def test_dashboard_formats_volumes(admin_client, money_rows):
    text = _text(admin_client.get("/admin/"))
    assert all(shown in text for shown in SHOWN.values()) and str(RAW) not in text


def test_break_csv_keeps_minor_units_beside_formatted_text(admin_client, money_rows):
    ids = [str(pk) for pk in Break.objects.order_by("pk").values_list("pk", flat=True)]
    response = admin_client.post("/admin/reconciliation/break/", {"action": "export_csv", "_selected_action": ids})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    header = rows[0]
    assert header[header.index("expected_currency") + 1] == "expected_formatted"
    assert header[header.index("actual_currency") + 1] == "actual_formatted"
    by_currency = {row[header.index("expected_currency")]: row for row in rows[1:]}
    for currency, shown in SHOWN.items():
        row = by_currency[currency]
        assert row[header.index("expected_amount")] == str(RAW)  # a number a spreadsheet adds up
        assert row[header.index("expected_formatted")] == shown
        assert row[header.index("actual_amount")] == str(-RAW)
        assert row[header.index("actual_formatted")] == f"'-{shown}"  # text starting with "-": neutralised
