"""Settlement reports: what the PSP paid out for a day, and the bank's statement of it.

``write_settlement(store, config, day, directory)`` writes three files:

* ``stripe_payout_reconciliation_<day>.csv``: Stripe's itemized payout reconciliation
  columns (as in ``payout_reconciliation.itemized``) plus ``payment_metadata[payment_order_id]``
  and ``transfer_metadata[payout_id]``. One row per succeeded charge created that UTC day (gross,
  fee, net), one negative row per refund that succeeded (a positive ``refund_failure`` row, ``source_id`` the
  refund, the day it failed later), one per dispute withdrawal (``dispute``: minus the amount, the dispute
  fee) and reinstatement (``dispute_reversal``), one negative ``transfer`` row per transfer to a connected
  account and one positive ``transfer_reversal`` row per reversal of one (Connect: the platform's balance pays
  the sellers' payouts, so its own payout is net of them; the ``connected_account`` column names the account),
  and per currency a ``payout`` row of minus the sum, its id ``po_...`` in ``automatic_payout_id``, created
  at the batch's close (midnight after ``day``).
* ``bank_statement_<day>.xml``: ISO 20022 camt.053.001.02, one booked entry per payout
  (credit of its amount, or a debit when refunds and transfers exceeded charges) with the payout
  id in the references and remittance information.
* ``stripe_connected_account_payouts_<day>.csv``: the connected accounts' payouts report (as
  ``connected_account_payouts.itemized``): one negative ``payout`` row per payout a connected account
  made that day to the seller's bank, one positive ``payout_reversal`` row per payout that failed that
  day (a bank may return a paid payout days later: the money is back in the connected account). A
  seller's payout never passes through the platform's bank: this report is the PSP's word on it.

Fees: ``fee_percent_bps`` of the gross (rounded half up) plus ``fee_fixed`` minor units,
from the request, else the sandbox config, else 290 bps + 30. Refunds and transfers carry no fee.
Payout ids derive from the day and currency, so writing a day again gives the same files.

``balance(store, config, paid_out_through)``: what the PSP holds for the platform, per currency,
assuming every day through ``paid_out_through`` was paid out by its settlement.
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
    "customer_facing_currency", "connected_account", "transfer_metadata[payout_id]",
)
#: ``connected_account_payouts.itemized``'s columns, with our payout's id from the payout's metadata.
CONNECTED_PAYOUT_COLUMNS = (
    "connected_account", "payout_id", "effective_at", "currency", "gross", "fee", "net", "reporting_category",
    "source_id", "description", "payout_expected_arrival_date", "payout_status", "payout_type",
    "payout_destination_id", "payout_metadata[payout_id]",
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


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def _transfers(store: Store) -> list[dict[str, Any]]:
    return [row["object"] for row in store.connect_rows("transfers", {}, newest_first=False)]


def _reversals(transfers: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``(reversal, its transfer)`` of every transfer reversal, oldest first."""
    return sorted(((r, t) for t in transfers for r in t["reversals"]["data"]), key=lambda pair: pair[0]["created"])


def _activity(store: Store, lo: float, hi: float | None) -> dict[str, list]:
    """What moved the platform's balance in ``[lo, hi)``: charges, refunds, failures of succeeded ones, transfers..."""
    def within(created: float) -> bool:
        return lo <= created and (hi is None or created < hi)

    transfers, refunds = _transfers(store), store.list_refunds()
    return {
        "charges": [c for c in store.list_charges() if c["status"] == "succeeded" and within(c["created"])],
        "refunds": [r for r in refunds if (r["status"] == "succeeded" or r["failed_at"] is not None)
                    and within(r["created"])],
        "refund_failures": [r for r in refunds if r["failed_at"] is not None and within(r["failed_at"])],
        "transfers": [t for t in transfers if within(t["created"])],
        "reversals": [(r, t) for r, t in _reversals(transfers) if within(r["created"])],
    }


def _settlement_params(params: dict[str, Any], config: dict[str, Any]) -> tuple[date, Path, int, int]:
    """``(day, directory, fee bps, fixed fee)`` of a settlement request, checked."""
    try:
        day = date.fromisoformat(str(params.get("date")))
    except ValueError:
        raise SettlementError("date must be YYYY-MM-DD") from None
    directory = Path(str(params.get("directory") or ""))
    if not directory.is_absolute():
        raise SettlementError("directory must be an absolute path")
    bps = _int_param(params, config, "fee_percent_bps", DEFAULT_FEE_PERCENT_BPS)
    return day, directory, bps, _int_param(params, config, "fee_fixed", DEFAULT_FEE_FIXED)


class _DayReport:
    """The rows of one day's payout reconciliation report, and the net of each currency (its payout)."""

    def __init__(self, day: date, moved: dict[str, list], dispute_moves: list) -> None:
        self.close = _day_bounds(day)[1]
        self.rows: list[dict[str, str]] = []
        self.nets: dict[str, int] = {}
        # A payout's id names its batch: the same day settled again gives the same files (and
        # imports as a no-op), while a batch with other contents is another payout.
        batches: dict[str, list[str]] = {}
        objects = moved["charges"] + moved["refunds"] + moved["transfers"] + [r for r, _ in moved["reversals"]]
        moves = [(o["currency"], o["id"]) for o in objects] + [(bt["currency"], bt["id"]) for _, bt in dispute_moves]
        for currency, object_id in moves + [(r["currency"], f"{r['id']}:failure") for r in moved["refund_failures"]]:
            batches.setdefault(currency, []).append(object_id)
        self.payout_ids = {
            currency: "po_" + hashlib.sha256(f"{day.isoformat()}:{currency}:{','.join(sorted(ids))}".encode()
                                             ).hexdigest()[:24]
            for currency, ids in batches.items()
        }

    def _add(self, currency: str, net: int, /, **columns: str) -> None:
        self.nets[currency] = self.nets.get(currency, 0) + net
        self.rows.append({**dict.fromkeys(COLUMNS, ""), "automatic_payout_effective_at": _stamp(self.close),
                          "currency": currency, "automatic_payout_id": self.payout_ids[currency], **columns})

    def charge_row(self, kind: str, obj: dict[str, Any], gross: int, fee: int, charge_id: str, category: str,
                   **columns: str) -> None:
        """A charge, a refund or a dispute's money: ``gross`` less ``fee``."""
        currency = obj["currency"]
        columns = {"balance_transaction_id": "txn_" + hashlib.sha256(obj["id"].encode()).hexdigest()[:24],
                   "payment_metadata[payment_order_id]": obj.get("payment_order_id") or "", **columns}
        self._add(
            currency, gross - fee, source_id=obj["id"], payment_intent_id=obj["payment_intent"], charge_id=charge_id,
            created=_stamp(obj["created"]), available_on=_stamp(self.close),
            gross=major(gross, currency), fee=major(fee, currency), net=major(gross - fee, currency),
            reporting_category=category, payment_method_type="card", card_brand="visa", card_country="US",
            card_funding="credit", description=f"sandbox {kind}", gateway_account="acct_sandbox",
            customer_facing_amount=major(gross, currency), customer_facing_currency=currency, **columns,
        )

    def connect_row(self, obj: dict[str, Any], transfer: dict[str, Any], amount: int, category: str) -> None:
        """A transfer to a connected account (negative) or a reversal of one (positive)."""
        currency = obj["currency"]
        self._add(
            currency, amount, balance_transaction_id=obj["balance_transaction"], source_id=obj["id"],
            created=_stamp(obj["created"]), available_on=_stamp(obj["created"]), gross=major(amount, currency),
            fee=major(0, currency), net=major(amount, currency), reporting_category=category,
            description=transfer.get("description") or f"sandbox {category}",
            connected_account=transfer["destination"],
            **{"transfer_metadata[payout_id]": (transfer.get("metadata") or {}).get("payout_id", "")},
        )

    def payouts(self) -> list[dict[str, Any]]:
        """Close the report: a ``payout`` row of minus each currency's net; the payouts."""
        payouts = []
        for currency, net in sorted(self.nets.items()):
            po = self.payout_ids[currency]
            payouts.append({"id": po, "currency": currency, "amount": net})
            self.rows.append({
                **dict.fromkeys(COLUMNS, ""),
                "balance_transaction_id": "txn_" + po[3:], "source_id": po, "created": _stamp(self.close),
                "available_on": _stamp(self.close), "automatic_payout_effective_at": _stamp(self.close),
                "currency": currency, "gross": major(-net, currency), "fee": major(0, currency),
                "net": major(-net, currency), "reporting_category": "payout", "description": "STRIPE PAYOUT",
                "automatic_payout_id": po,
            })
        return payouts


def _day_report(store: Store, day: date, bps: int, fixed: int) -> _DayReport:
    lo, hi = (bound.timestamp() for bound in _day_bounds(day))
    moved = _activity(store, lo, hi)
    dispute_moves = disputes.balance_transactions(store, lo, hi)  # withdrawals and reinstatements of the day
    report = _DayReport(day, moved, dispute_moves)
    for charge in moved["charges"]:
        report.charge_row("charge", charge, charge["amount"], fee_for(charge["amount"], bps, fixed), charge["id"],
                          "charge")
    for refund in moved["refunds"]:
        report.charge_row("refund", refund, -refund["amount"], 0, refund["charge"], "refund")
    for refund in moved["refund_failures"]:  # the money back: source_id the refund, its failure's transaction
        failure_bt = (store.get_refund(refund["id"]) or {}).get("failure_balance_transaction") or ""
        report.charge_row("refund failure", {**refund, "created": refund["failed_at"]}, refund["amount"], 0,
                          refund["charge"], "refund_failure", balance_transaction_id=failure_bt)
    for transfer in moved["transfers"]:
        report.connect_row(transfer, transfer, -transfer["amount"], "transfer")
    for reversal, transfer in moved["reversals"]:
        report.connect_row(reversal, transfer, reversal["amount"], "transfer_reversal")
    for dispute, bt in dispute_moves:  # source_id: the dispute; its fee is the dispute fee (or its return)
        obj = {"id": dispute["id"], "payment_intent": dispute["payment_intent"], "created": bt["created"],
               "currency": bt["currency"]}
        report.charge_row(bt["reporting_category"], obj, bt["amount"], bt["fee"], dispute["charge"],
                          bt["reporting_category"], balance_transaction_id=bt["id"])
    return report


def write_settlement(store: Store, config: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Write the day's settlement report, bank statement and connected accounts' payouts; return their paths
    and payouts."""
    day, directory, bps, fixed = _settlement_params(params, config)
    day_report = _day_report(store, day, bps, fixed)
    payouts = day_report.payouts()
    directory.mkdir(parents=True, exist_ok=True)
    report = directory / f"stripe_payout_reconciliation_{day.isoformat()}.csv"
    _write_csv(report, COLUMNS, day_report.rows)
    statement = directory / f"bank_statement_{day.isoformat()}.xml"
    currency = payouts[0]["currency"] if payouts else "usd"
    opening = paid_out_before(store, day, bps, fixed).get(currency, 0)
    statement.write_text(camt053(day, day_report.close, payouts, opening=opening))
    connected = directory / f"stripe_connected_account_payouts_{day.isoformat()}.csv"
    seller_payouts = _connected_payout_rows(store, *(bound.timestamp() for bound in _day_bounds(day)))
    _write_csv(connected, CONNECTED_PAYOUT_COLUMNS, seller_payouts)
    return {"settlement_report": str(report), "bank_statement": str(statement),
            "connected_payouts_report": str(connected), "payouts": payouts,
            "seller_payouts": len(seller_payouts), "fee_percent_bps": bps, "fee_fixed": fixed}


def _write_csv(path: Path, columns: tuple[str, ...], rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def _connected_payout_rows(store: Store, lo: float, hi: float) -> list[dict[str, str]]:
    """The connected accounts' payouts made in ``[lo, hi)`` (negative), and those that failed then (positive:
    the money is back in the account's balance), oldest first."""
    rows = []
    for found in store.connect_rows("payouts", {}, newest_first=False):
        payout, currency = found["object"], found["currency"]
        made = lo <= payout["created"] < hi
        failed = found.get("failed_at") is not None and lo <= found["failed_at"] < hi
        for category, amount, when in (("payout", -payout["amount"], payout["created"]),
                                       ("payout_reversal", payout["amount"], found.get("failed_at"))):
            if not (made if category == "payout" else failed):
                continue
            rows.append({
                "connected_account": found["account"], "payout_id": payout["id"], "effective_at": _stamp(when),
                "currency": currency, "gross": major(amount, currency), "fee": major(0, currency),
                "net": major(amount, currency), "reporting_category": category, "source_id": payout["id"],
                "description": "STRIPE PAYOUT" if category == "payout" else f"payout failed: {payout['failure_code']}",
                "payout_expected_arrival_date": datetime.fromtimestamp(payout["arrival_date"], UTC).date().isoformat(),
                "payout_status": payout["status"], "payout_type": payout["type"],
                "payout_destination_id": payout["destination"],
                "payout_metadata[payout_id]": (payout.get("metadata") or {}).get("payout_id", ""),
            })
    return sorted(rows, key=lambda r: r["effective_at"])


def _platform_nets(store: Store, lo: float, hi: float, bps: int, fixed: int) -> dict[str, int]:
    """What the platform's balance gained in ``[lo, hi)``, per currency: charges less fees, refunds, transfers
    and disputes (their fees too), plus reversals. A day's payout to the bank is that day's figure."""
    moved = _activity(store, lo, hi)
    nets: dict[str, int] = {}
    amounts = [(c["currency"], c["amount"] - fee_for(c["amount"], bps, fixed)) for c in moved["charges"]]
    amounts += [(r["currency"], -r["amount"]) for r in moved["refunds"]]
    amounts += [(r["currency"], r["amount"]) for r in moved["refund_failures"]]
    amounts += [(t["currency"], -t["amount"]) for t in moved["transfers"]]
    amounts += [(r["currency"], r["amount"]) for r, _ in moved["reversals"]]
    amounts += [(bt["currency"], bt["amount"] - bt["fee"]) for _, bt in disputes.balance_transactions(store, lo, hi)]
    for currency, amount in amounts:
        nets[currency] = nets.get(currency, 0) + amount
    return nets


def paid_out_before(store: Store, day: date, bps: int, fixed: int) -> dict[str, int]:
    """The platform's bank account before ``day``, per currency: every earlier day's payout (each day is paid
    out by its settlement), so a statement opens where the previous day's closed."""
    return _platform_nets(store, float("-inf"), _day_bounds(day)[0].timestamp(), bps, fixed)


def balance(store: Store, config: dict[str, Any], paid_out_through: date) -> dict[str, dict[str, int]]:
    """What the PSP holds for the platform, per currency (minor units): its own balance (everything after
    ``paid_out_through``'s daily payout: charges less fees, refunds, transfers and disputes, plus reversals), the
    connected accounts' balances, and their payouts still on the way to the banks (``pending``)."""
    bps = _int_param({}, config, "fee_percent_bps", DEFAULT_FEE_PERCENT_BPS)
    fixed = _int_param({}, config, "fee_fixed", DEFAULT_FEE_FIXED)
    since = _day_bounds(paid_out_through)[1].timestamp()
    result: dict[str, dict[str, int]] = {}

    def add(currency: str, part: str, amount: int) -> None:
        held = result.setdefault(currency, {"platform": 0, "connected": 0, "in_transit": 0, "total": 0})
        held[part] += amount
        held["total"] += amount

    for currency, amount in _platform_nets(store, since, float("inf"), bps, fixed).items():
        add(currency, "platform", amount)
    accounts = {(row["destination"], row["currency"]) for row in store.connect_rows("transfers", {})}
    for account, currency in sorted(accounts):
        add(currency, "connected", store.connect_balance(account, currency))
    for row in store.connect_rows("payouts", {"status": "pending"}):
        add(row["currency"], "in_transit", row["amount"])
    return result


def camt053(day: date, booked: datetime, payouts: list[dict[str, Any]], opening: int = 0) -> str:
    """A camt.053.001.02 statement: one booked entry per payout; it opens at ``opening`` and closes at that plus
    its entries (in the first payout's currency)."""
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
    total = opening + sum(p["amount"] for p in payouts if p["currency"].upper() == currency)
    stamp = booked.strftime("%Y-%m-%dT%H:%M:%S")
    body = "\n".join(entries)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">
  <BkToCstmrStmt>
    <GrpHdr><MsgId>SANDBOX-{day.strftime('%Y%m%d')}</MsgId><CreDtTm>{stamp}</CreDtTm></GrpHdr>
    <Stmt>
      <Id>SANDBOX-STMT-{day.strftime('%Y%m%d')}</Id>
      <CreDtTm>{stamp}</CreDtTm>
      <Acct><Id><IBAN>DE89370400440532013000</IBAN></Id><Ccy>{currency}</Ccy></Acct>
{_camt_balance("OPBD", opening, currency, booking_day)}
{_camt_balance("CLBD", total, currency, booking_day)}
{body}
    </Stmt>
  </BkToCstmrStmt>
</Document>
"""


def _camt_balance(code: str, amount: int, currency: str, booking_day: str) -> str:
    figure, indicator = major(abs(amount), currency), "CRDT" if amount >= 0 else "DBIT"
    return f"""      <Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy="{currency}">{figure}</Amt>
        <CdtDbtInd>{indicator}</CdtDbtInd><Dt><Dt>{booking_day}</Dt></Dt></Bal>"""


def handle_balance(store: Store, config: dict[str, Any], query: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """``GET /_sandbox/balance?paid_out_through=YYYY-MM-DD``."""
    try:
        day = date.fromisoformat(str(query.get("paid_out_through")))
        return 200, {"paid_out_through": day.isoformat(), "currencies": balance(store, config, day)}
    except ValueError as exc:
        return 400, {"error": f"paid_out_through must be YYYY-MM-DD ({exc})"}


def handle(store: Store, config: dict[str, Any], body: bytes) -> tuple[int, dict[str, Any]]:
    """``POST /_sandbox/settlements`` ``{"date", "directory"[, "fee_percent_bps", "fee_fixed"]}``."""
    try:
        params = json.loads(body or b"{}")
        if not isinstance(params, dict):
            raise SettlementError("body must be a JSON object")
        return 200, write_settlement(store, config, params)
    except (ValueError, OSError) as exc:  # SettlementError and bad JSON are ValueErrors
        return 400, {"error": str(exc)}
