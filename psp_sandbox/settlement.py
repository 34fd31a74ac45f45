"""Settlement reports: what the PSP paid out for a day, and the bank's statement of it.

``write_settlement(store, config, day, directory)`` writes two files:

* ``stripe_payout_reconciliation_<day>.csv``: Stripe's itemized payout reconciliation
  columns (as in ``payout_reconciliation.itemized``) plus ``payment_metadata[payment_order_id]``.
  One row per succeeded charge created that UTC day (gross, fee, net), one negative row
  per succeeded refund, one per dispute withdrawal (``dispute``: minus the amount, the dispute fee) and
  reinstatement (``dispute_reversal``), and per currency a ``payout`` row of minus the sum, its id ``po_...``
  in ``automatic_payout_id``, created at the batch's close (midnight after ``day``).
* ``bank_statement_<day>.xml``: ISO 20022 camt.053.001.02, one booked entry per payout
  (credit of its amount, or a debit when refunds exceeded charges) with the payout id in
  the references and remittance information.

Fees: ``fee_percent_bps`` of the gross (rounded half up) plus ``fee_fixed`` minor units,
from the request, else the sandbox config, else 290 bps + 30. Refunds carry no fee.
Payout ids derive from the day and currency, so writing a day again gives the same files.
"""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from . import disputes
from .store import Store

DEFAULT_FEE_PERCENT_BPS = 290
DEFAULT_FEE_FIXED = 30

COLUMNS = (
    "balance_transaction_id", "payment_metadata[payment_order_id]", "source_id", "payment_intent_id", "charge_id",
    "created", "available_on", "automatic_payout_effective_at", "currency", "gross", "fee", "net",
    "reporting_category", "payment_method_type", "card_brand", "card_country", "card_funding", "description",
    "trace_id_status", "gateway_account", "automatic_payout_id", "customer_facing_amount",
    "customer_facing_currency",
)
_EXPONENTS = {
    **dict.fromkeys("bif clp djf gnf isk jpy kmf krw pyg rwf ugx vnd vuv xaf xof xpf".split(), 0),
    **dict.fromkeys("bhd iqd jod kwd lyd omr tnd".split(), 3),
}


class SettlementError(ValueError):
    """Bad request for a settlement (date, directory, fee parameters)."""


def major(minor: int, currency: str) -> str:
    """``1234, "usd"`` -> ``"12.34"``: exact, no float."""
    exponent = _EXPONENTS.get(currency.lower(), 2)
    sign = "-" if minor < 0 else ""
    digits = str(abs(minor)).rjust(exponent + 1, "0")
    if exponent == 0:
        return sign + digits
    return f"{sign}{digits[:-exponent]}.{digits[-exponent:]}"


def fee_for(amount: int, bps: int, fixed: int) -> int:
    return (amount * bps + 5000) // 10000 + fixed


def _stamp(ts: float | datetime) -> str:
    moment = ts if isinstance(ts, datetime) else datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _int_param(params: dict[str, Any], config: dict[str, Any], key: str, default: int) -> int:
    value = params.get(key, config.get(key, default))
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise SettlementError(f"{key} must be a non-negative integer")
    return value


def write_settlement(store: Store, config: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Write the day's settlement report and bank statement; return their paths and payouts."""
    try:
        day = date.fromisoformat(str(params.get("date")))
    except ValueError:
        raise SettlementError("date must be YYYY-MM-DD") from None
    directory = Path(str(params.get("directory") or ""))
    if not directory.is_absolute():
        raise SettlementError("directory must be an absolute path")
    bps = _int_param(params, config, "fee_percent_bps", DEFAULT_FEE_PERCENT_BPS)
    fixed = _int_param(params, config, "fee_fixed", DEFAULT_FEE_FIXED)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    close = start + timedelta(days=1)
    lo, hi = start.timestamp(), close.timestamp()

    rows: list[dict[str, str]] = []
    nets: dict[str, int] = {}
    charges = [c for c in store.list_charges() if c["status"] == "succeeded" and lo <= c["created"] < hi]
    refunds = [r for r in store.list_refunds() if r["status"] == "succeeded" and lo <= r["created"] < hi]
    dispute_moves = disputes.balance_transactions(store, lo, hi)  # withdrawals and reinstatements of the day
    # A payout's id names its batch: the same day settled again gives the same files (and
    # imports as a no-op), while a batch with other contents is another payout.
    batches: dict[str, list[str]] = {}
    for obj in charges + refunds:
        batches.setdefault(obj["currency"], []).append(obj["id"])
    for _, bt in dispute_moves:
        batches.setdefault(bt["currency"], []).append(bt["id"])
    payout_ids = {
        currency: "po_" + hashlib.sha256(f"{day.isoformat()}:{currency}:{','.join(sorted(ids))}".encode()
                                         ).hexdigest()[:24]
        for currency, ids in batches.items()
    }

    def payout_id(currency: str) -> str:
        return payout_ids[currency]

    def row(kind: str, obj: dict[str, Any], gross: int, fee: int, charge_id: str, category: str) -> dict[str, str]:
        currency = obj["currency"]
        nets[currency] = nets.get(currency, 0) + gross - fee
        return {
            "balance_transaction_id": "txn_" + hashlib.sha256(obj["id"].encode()).hexdigest()[:24],
            "payment_metadata[payment_order_id]": obj.get("payment_order_id") or "",
            "source_id": obj["id"], "payment_intent_id": obj["payment_intent"], "charge_id": charge_id,
            "created": _stamp(obj["created"]), "available_on": _stamp(close),
            "automatic_payout_effective_at": _stamp(close), "currency": currency,
            "gross": major(gross, currency), "fee": major(fee, currency), "net": major(gross - fee, currency),
            "reporting_category": category, "payment_method_type": "card", "card_brand": "visa",
            "card_country": "US", "card_funding": "credit", "description": f"sandbox {kind}",
            "trace_id_status": "", "gateway_account": "acct_sandbox", "automatic_payout_id": payout_id(currency),
            "customer_facing_amount": major(gross, currency), "customer_facing_currency": currency,
        }

    for charge in charges:
        rows.append(row("charge", charge, charge["amount"], fee_for(charge["amount"], bps, fixed), charge["id"],
                        "charge"))
    for refund in refunds:
        rows.append(row("refund", refund, -refund["amount"], 0, refund["charge"], "refund"))
    for dispute, bt in dispute_moves:  # source_id: the dispute; its fee is the dispute fee (or its return)
        obj = {"id": dispute["id"], "payment_intent": dispute["payment_intent"], "created": bt["created"],
               "currency": bt["currency"]}
        rows.append({**row(bt["reporting_category"], obj, bt["amount"], bt["fee"], dispute["charge"],
                           bt["reporting_category"]), "balance_transaction_id": bt["id"]})
    payouts = []
    for currency, net in sorted(nets.items()):
        po = payout_id(currency)
        payouts.append({"id": po, "currency": currency, "amount": net})
        rows.append({
            **dict.fromkeys(COLUMNS, ""),
            "balance_transaction_id": "txn_" + po[3:], "source_id": po, "created": _stamp(close),
            "available_on": _stamp(close), "automatic_payout_effective_at": _stamp(close), "currency": currency,
            "gross": major(-net, currency), "fee": major(0, currency), "net": major(-net, currency),
            "reporting_category": "payout", "description": "STRIPE PAYOUT", "automatic_payout_id": po,
        })

    directory.mkdir(parents=True, exist_ok=True)
    report = directory / f"stripe_payout_reconciliation_{day.isoformat()}.csv"
    with open(report, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    statement = directory / f"bank_statement_{day.isoformat()}.xml"
    statement.write_text(camt053(day, close, payouts))
    return {"settlement_report": str(report), "bank_statement": str(statement), "payouts": payouts,
            "fee_percent_bps": bps, "fee_fixed": fixed}


def camt053(day: date, booked: datetime, payouts: list[dict[str, Any]]) -> str:
    """A camt.053.001.02 statement: one booked entry per payout."""
    booking_day = booked.date().isoformat()
    entries = []
    for n, payout in enumerate(payouts, 1):
        amount, currency, po = payout["amount"], payout["currency"].upper(), escape(payout["id"])
        indicator = "CRDT" if amount >= 0 else "DBIT"
        entries.append(f"""      <Ntry>
        <NtryRef>{n}</NtryRef>
        <Amt Ccy="{currency}">{major(abs(amount), currency)}</Amt>
        <CdtDbtInd>{indicator}</CdtDbtInd>
        <Sts>BOOK</Sts>
        <BookgDt><Dt>{booking_day}</Dt></BookgDt>
        <ValDt><Dt>{booking_day}</Dt></ValDt>
        <AcctSvcrRef>BANK-{day.strftime('%Y%m%d')}-{n:04d}</AcctSvcrRef>
        <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd>
        <NtryDtls><TxDtls>
          <Refs><EndToEndId>{po}</EndToEndId></Refs>
          <RmtInf><Ustrd>STRIPE PAYOUT {po}</Ustrd></RmtInf>
        </TxDtls></NtryDtls>
      </Ntry>""")
    currency = (payouts[0]["currency"] if payouts else "usd").upper()
    total = sum(p["amount"] for p in payouts if p["currency"].upper() == currency)
    stamp = booked.strftime("%Y-%m-%dT%H:%M:%S")
    closing = "CRDT" if total >= 0 else "DBIT"
    body = "\n".join(entries)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">
  <BkToCstmrStmt>
    <GrpHdr><MsgId>SANDBOX-{day.strftime('%Y%m%d')}</MsgId><CreDtTm>{stamp}</CreDtTm></GrpHdr>
    <Stmt>
      <Id>SANDBOX-STMT-{day.strftime('%Y%m%d')}</Id>
      <CreDtTm>{stamp}</CreDtTm>
      <Acct><Id><IBAN>DE89370400440532013000</IBAN></Id><Ccy>{currency}</Ccy></Acct>
      <Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy="{currency}">0.00</Amt>
        <CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>{booking_day}</Dt></Dt></Bal>
      <Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy="{currency}">{major(abs(total), currency)}</Amt>
        <CdtDbtInd>{closing}</CdtDbtInd><Dt><Dt>{booking_day}</Dt></Dt></Bal>
{body}
    </Stmt>
  </BkToCstmrStmt>
</Document>
"""


def handle(store: Store, config: dict[str, Any], body: bytes) -> tuple[int, dict[str, Any]]:
    """``POST /_sandbox/settlements`` ``{"date", "directory"[, "fee_percent_bps", "fee_fixed"]}``."""
    try:
        params = json.loads(body or b"{}")
        if not isinstance(params, dict):
            raise SettlementError("body must be a JSON object")
        return 200, write_settlement(store, config, params)
    except (ValueError, OSError) as exc:  # SettlementError and bad JSON are ValueErrors
        return 400, {"error": str(exc)}
