"""The nightly files ``reconcile.py`` writes: a Stripe or Adyen report of a night's orders and the bank's credit."""
from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

DAY = date(2026, 1, 15)

#: What a line made into a difference becomes, in turn (``--breaks-pct``); the break class each should give.
BREAK_KINDS = ("amount_mismatch", "currency_mismatch", "missing_in_books", "duplicate", "unknown_record_type",
               "malformed_line", "timing", "missing_in_settlement")


#: ``BENCH_SCATTER_REFERENCES=1``: order ``i``'s PSP reference is its 9 digits reversed, so that references
#: follow neither the orders' completion nor the report's order (as a PSP's random ids do), and every probe of a
#: reference index lands apart from the last; otherwise consecutive orders have neighbouring references.
SCATTER_REFERENCES = os.environ.get("BENCH_SCATTER_REFERENCES") == "1"


def psp_reference(i: int, *, known: bool = True) -> str:
    digits = f"{i:09d}"
    return ("pi_b" if known else "pi_x") + (digits[::-1] if SCATTER_REFERENCES else digits)


#: SQL (over ``i``): ``psp_reference(i)``.
PSP_REFERENCE_SQL = ("'pi_b' || reverse(lpad(i::text, 9, '0'))" if SCATTER_REFERENCES
                     else "'pi_b' || lpad(i::text, 9, '0')")


def break_kind(i: int, every: int) -> str | None:
    """The difference line ``i`` is made into when one line in ``every`` is one (``every`` 0: none)."""
    if not every or i % every:
        return None
    return BREAK_KINDS[(i // every) % len(BREAK_KINDS)]


def night_files(workdir: Path, night: int) -> tuple[Path, Path]:
    return workdir / f"report_{night}.csv", workdir / f"bank_{night}.xml"


ADYEN_COLUMNS = (
    "Company Account", "Merchant Account", "Psp Reference", "Merchant Reference", "Payment Method", "Creation Date",
    "TimeZone", "Type", "Modification Reference", "Gross Currency", "Gross Debit (GC)", "Gross Credit (GC)",
    "Exchange Rate", "Net Currency", "Net Debit (NC)", "Net Credit (NC)", "Commission (NC)", "Markup (NC)",
    "Scheme Fees (NC)", "Interchange (NC)", "Payment Method Variant", "Modification Merchant Reference",
    "Batch Number", "Reserved4", "Reserved5", "Reserved6", "Reserved7", "Reserved8", "Reserved9", "Reserved10")


def _charge(i: int, every: int) -> tuple[str | None, int, int, str, int]:
    """Line ``i``'s difference, its order's amount and fee, and what the report says of its currency and gross."""
    kind = break_kind(i, every)
    amount = 100 + (i % 100000)
    fee = (amount * 290 + 5000) // 10000 + 30
    return kind, amount, fee, "eur" if kind == "currency_mismatch" else "usd", amount + (kind == "amount_mismatch")


def _settled(night: int, lines: int, every: int) -> Iterator[tuple[int, str | None, int, str, int, int]]:
    """The night's orders the report settles: ``i``, its difference, fee, currency and gross, and what it adds
    to the payout."""
    for i in range(lines * night + 1, lines * (night + 1) + 1):
        kind, _, fee, currency, gross = _charge(i, every)
        if kind == "missing_in_settlement":
            continue
        paid = (gross - fee) * (1 + (kind == "duplicate")) if currency == "usd" and kind != "malformed_line" else 0
        yield i, kind, fee, currency, gross, paid


def _batch_close(night: int) -> tuple[date, datetime]:
    """Night ``night``'s business day, and when its batch closes (the next midnight, UTC)."""
    day = DAY + timedelta(days=night)
    return day, datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)


def _report_writer(handle, columns) -> tuple:
    """A CSV writer that has written the header, each column's position, and an empty row."""
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(columns)
    return writer, {name: n for n, name in enumerate(columns)}, [""] * len(columns)


def _stamps(close: datetime) -> list[str]:
    """The report's ``created`` of line ``i``, indexed by ``i % 86000`` (seconds into the night's day)."""
    start = close - timedelta(days=1)
    return [(start + timedelta(seconds=s)).strftime("%Y-%m-%d %H:%M:%S") for s in range(86000)]


def write_night(workdir: Path, night: int, lines: int, every: int, columns, camt053, major) -> None:
    """Night ``night``'s Stripe report (one charge per order, then the payout) and bank statement. Written a
    million lines a night: each line's values are set by position, its amounts and time taken from caches."""
    report, statement = night_files(workdir, night)
    day, close = _batch_close(night)
    payout_id = f"po_bench{night + 1}"
    total = 0
    stamps = _stamps(close)
    amounts: dict[tuple[int, str], str] = {}

    def money(minor: int, currency: str) -> str:
        text = amounts.get((minor, currency))
        if text is None:
            text = amounts[minor, currency] = major(minor, currency)
        return text

    with open(report, "w", newline="") as handle:
        writer, index, base = _report_writer(handle, columns)
        base[index["payment_method_type"]], base[index["automatic_payout_id"]] = "card", payout_id
        (txn, order, source, intent, charge, created, currency_at, gross_at, fee_at, net_at, category) = (
            index[name] for name in ("balance_transaction_id", "payment_metadata[payment_order_id]", "source_id",
                                     "payment_intent_id", "charge_id", "created", "currency", "gross", "fee", "net",
                                     "reporting_category"))
        for i, kind, fee, currency, gross, paid in _settled(night, lines, every):
            total += paid
            known = kind != "missing_in_books"
            row = base.copy()
            row[txn], row[source], row[charge] = f"txn_b{i}", f"ch_b{i}", f"ch_b{i}"
            row[order] = f"ord_b{i}" if known else ""
            row[intent] = psp_reference(i, known=known)
            row[created], row[currency_at] = stamps[i % 86000], currency
            row[gross_at] = "12.3.4" if kind == "malformed_line" else money(gross, currency)
            row[fee_at], row[net_at] = money(fee, currency), money(gross - fee, currency)
            row[category] = "bench_unknown" if kind == "unknown_record_type" else "charge"
            writer.writerow(row)
            if kind == "duplicate":
                writer.writerow(row)
        payout = base.copy()
        for name, value in (("source_id", payout_id), ("created", close.strftime("%Y-%m-%d %H:%M:%S")),
                            ("currency", "usd"), ("gross", major(-total, "usd")), ("fee", "0.00"),
                            ("net", major(-total, "usd")), ("reporting_category", "payout"),
                            ("payment_method_type", ""), ("automatic_payout_id", payout_id)):
            payout[index[name]] = value
        writer.writerow(payout)
    statement.write_text(camt053(day, close, [{"id": payout_id, "currency": "usd", "amount": total}]))


def write_adyen_night(workdir: Path, night: int, lines: int, every: int, columns, camt053, major) -> None:
    """Night ``night``'s Adyen settlement details report (``Settled`` rows, a ``MerchantPayout`` of batch
    ``night + 1``) and the bank's credit naming that batch."""
    report, statement = night_files(workdir, night)
    day, close = _batch_close(night)
    batch = str(night + 1)
    total = 0
    with open(report, "w", newline="") as handle:
        writer, index, base = _report_writer(handle, ADYEN_COLUMNS)
        base[index["Company Account"]], base[index["Merchant Account"]] = "Bench", "BenchCOM"
        base[index["TimeZone"]], base[index["Batch Number"]] = "UTC", batch
        for i, kind, fee, currency, gross, paid in _settled(night, lines, every):
            total += paid
            known = kind != "missing_in_books"
            row = base.copy()
            for name, value in (
                    ("Psp Reference", psp_reference(i, known=known)),
                    ("Merchant Reference", f"ord_b{i}" if known else ""), ("Payment Method", "visa"),
                    ("Creation Date", (close - timedelta(days=1) + timedelta(seconds=i % 86000)).strftime(
                        "%Y-%m-%d %H:%M:%S")),
                    ("Type", "BenchUnknown" if kind == "unknown_record_type" else "Settled"),
                    ("Gross Currency", currency.upper()),
                    ("Gross Credit (GC)", "12.3.4" if kind == "malformed_line" else major(gross, currency)),
                    ("Exchange Rate", "1"), ("Net Currency", currency.upper()),
                    ("Net Credit (NC)", major(gross - fee, currency)), ("Commission (NC)", major(fee, currency))):
                row[index[name]] = value
            writer.writerow(row)
            if kind == "duplicate":
                writer.writerow(row)
        payout = base.copy()
        payout[index["Creation Date"]] = close.strftime("%Y-%m-%d %H:%M:%S")
        payout[index["Type"]], payout[index["Net Currency"]] = "MerchantPayout", "USD"
        payout[index["Net Debit (NC)"]] = major(total, "usd")
        writer.writerow(payout)
    statement.write_text(camt053(day, close, [{"id": f"TX{night + 1:04d}XT batch {batch}", "currency": "usd",
                                               "amount": total}]))
