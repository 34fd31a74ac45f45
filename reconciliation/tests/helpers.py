"""Test data: orders straight in the database, Stripe reports and camt.053 statements on disk."""
from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

from payments.models import PaymentEvent, PaymentOrder
from payments.tests.factories import SellerFactory
from psp_sandbox.settlement import COLUMNS, camt053, major
from reconciliation.importers import CopyChunk, ReferencesChecked, iter_copy_chunks


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


def copy_rows(path: Path, source: str, *, fast: bool, instants: bool = False) -> tuple[list[tuple], tuple, list, int]:
    """The rows the COPY chunks of a report hold, parsed back, what the chunks sum up, the reference checks
    and how many chunks Arrow converted (bytes; the row parser gives str). ``instants``: times are compared
    as instants (parsed), not as written."""
    rows, total, checks, by_arrow = [], CopyChunk(text="", rows=0), [], 0
    for item in iter_copy_chunks(path, source, 7, fast=fast):
        if isinstance(item, ReferencesChecked):
            if item.unique is not None:  # (the twins alone: no uniqueness check)
                checks.append(item.unique)
            continue
        assert isinstance(item, CopyChunk)
        by_arrow += isinstance(item.text, bytes)
        text = item.text.decode() if isinstance(item.text, bytes) else item.text
        for raw in text.split("\n")[:-1]:  # not splitlines: a value may hold a \x0b
            fields = raw.split("\t")
            assert len(fields) == 16, raw
            if instants and fields[13] != "\\N":
                fields[13] = datetime.fromisoformat(fields[13])
            rows.append(tuple(fields))
        total.absorb(item)
    sums = (total.rows, dict(total.counts), total.fees, total.latest, total.latest_payout)
    return rows, sums, checks, by_arrow


def fast_and_slow_read_the_same(path: Path, source: str, *, instants: bool = False) -> tuple[list[tuple], list, list]:
    """A report of odd rows in every block: the Arrow path and the row parser give the same rows and sums,
    every block went through Arrow (its odd rows rendered in their place), line numbers stay in order, the
    odd rows are there. Returns the rows and each path's reference checks."""
    fast, fast_totals, fast_checks, by_arrow = copy_rows(path, source, fast=True, instants=instants)
    slow, slow_totals, slow_checks, _ = copy_rows(path, source, fast=False, instants=instants)
    assert fast == slow and fast_totals == slow_totals
    chunks = sum(1 for item in iter_copy_chunks(path, source, 7, fast=True) if isinstance(item, CopyChunk))
    assert by_arrow == chunks > 10  # no block went wholly row by row
    assert [row[2] for row in fast] == sorted((row[2] for row in fast), key=int)  # line numbers in order
    assert sum(1 for row in fast if row[3] == "malformed") > 20
    return fast, fast_checks, slow_checks


def plain_report_checks_references(tmp_path: Path, report, plain_rows, read) -> None:
    """A report with no odd row goes through Arrow and checks its references' uniqueness on the way: unique,
    then (one line twice) not. ``report``, ``plain_rows`` and ``read`` are the format's own test helpers."""
    path = report(tmp_path / "plain.csv", plain_rows(500))
    fast, fast_totals, checks, by_arrow = read(path, fast=True)
    assert (fast, fast_totals) == read(path, fast=False)[:2]
    assert checks == [True] and len(fast) == 500 and by_arrow > 5
    twice = report(tmp_path / "twice.csv", [*plain_rows(500), plain_rows(1)[0]])
    assert read(twice, fast=True)[2] == [False]
