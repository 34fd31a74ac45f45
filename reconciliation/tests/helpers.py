"""Test data: orders straight in the database, Stripe reports and camt.053 statements on disk."""
from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

from payments.models import PaymentEvent, PaymentOrder
from payments.tests.factories import SellerFactory
from psp_sandbox.settlement import COLUMNS, camt053, major


def order(*, amount: int, currency: str = "usd", psp_reference: str, completed_at: datetime,
          state: str = "succeeded") -> PaymentOrder:
    seller = SellerFactory()
    event = PaymentEvent.objects.create(client=seller.client, buyer_reference="buyer", payment_method="pm_card_visa",
                                        idempotency_key=f"key-{psp_reference}")
    return PaymentOrder.objects.create(payment_event=event, seller=seller, amount=amount, currency=currency,
                                       state=state, psp_reference=psp_reference, completed_at=completed_at)


def row(category: str, *, gross: int, fee: int = 0, currency: str = "usd", pi: str = "", order_id: str = "",
        created: datetime, payout: str = "po_test", source: str = "", net: int | None = None,
        gross_text: str | None = None) -> dict[str, str]:
    net = gross - fee if net is None else net
    return {
        **dict.fromkeys(COLUMNS, ""),
        "payment_metadata[payment_order_id]": order_id, "source_id": source or pi, "payment_intent_id": pi,
        "created": created.strftime("%Y-%m-%d %H:%M:%S"), "currency": currency,
        "gross": gross_text if gross_text is not None else major(gross, currency), "fee": major(fee, currency),
        "net": major(net, currency), "reporting_category": category, "automatic_payout_id": payout,
    }


def stripe_report(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def bank_statement(path: Path, booked: datetime, payouts: list[dict]) -> Path:
    """``payouts``: ``{"id": "po_...", "currency": "usd", "amount": 123}``."""
    path.write_text(camt053(booked.date(), booked, payouts))
    return path


def fee(amount: int) -> int:
    """The sandbox's default fee rule: 2.9 % (half up) + 30."""
    return (amount * 290 + 5000) // 10000 + 30
