"""Payouts from a connected account to its bank account: created pending, paid or failed after the delay by
the payout worker; a paid one the bank sends back (``return_payout``)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import context, validation
from ..errors import invalid
from ..store import Store, new_id
from .common import (
    ARRIVAL_DAYS,
    BANKS,
    FAILURES,
    PAYOUT_CREATE,
    PAYOUT_DELAY_S,
    Result,
    _amount_and_currency,
    _metadata,
    emit,
)
from .transfers import balance

if TYPE_CHECKING:
    from ..server import Sandbox

_PAYOUT_RETURN = re.compile(r"^/_sandbox/payouts/([A-Za-z0-9_]+)/return$")


# -- payouts ----------------------------------------------------------------------------------
def _validate_payout(store: Store) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def check(params: dict[str, Any]) -> dict[str, Any]:
        validation.check_known(params, PAYOUT_CREATE)
        amount, currency = _amount_and_currency(params)
        destination = params.get("destination")
        if destination in (None, ""):
            raise invalid("The sandbox needs the payout's destination (a bank account id): it stands for the "
                          "Stripe-Account header.", param="destination", code="parameter_missing")
        found = store.connect_get("bank_accounts", destination) if isinstance(destination, str) else None
        if found is None:
            raise invalid(f"No such external account: '{destination}'", param="destination",
                          code="resource_missing")
        if found["currency"] != currency:
            raise invalid(f"The bank account {destination} takes {found['currency']}, not {currency}.",
                          param="currency", code="invalid_currency")
        method = validation.parse_enum(params.get("method"), "method", ("instant", "standard"), "standard")
        return {"amount": amount, "currency": currency, "destination": destination, "account": found["account"],
                "bank": BANKS[found["bank"]], "method": method, "metadata": _metadata(params),
                "description": validation.parse_string(params.get("description"), "description"),
                "statement_descriptor": validation.parse_string(params.get("statement_descriptor"),
                                                                "statement_descriptor")}

    return check


def _create_payout(sb: Sandbox, req: dict[str, Any]) -> Result:
    available = balance(sb.store, req["account"], req["currency"])
    if req["amount"] > available:
        err = invalid(f"You have insufficient funds in your Stripe account for this payout: {available} "
                      f"{req['currency']} available.", param="amount", code="balance_insufficient")
        return err.status, err.payload()
    now = time.time()
    payout = {
        "id": new_id("po"),
        "object": "payout",
        "amount": req["amount"],
        "application_fee": None,
        "application_fee_amount": None,
        "arrival_date": int(now // 86400 + ARRIVAL_DAYS) * 86400,
        "automatic": False,
        "balance_transaction": new_id("txn"),
        "created": int(now),
        "currency": req["currency"],
        "description": req["description"],
        "destination": req["destination"],
        "failure_balance_transaction": None,
        "failure_code": None,
        "failure_message": None,
        "livemode": False,
        "metadata": req["metadata"],
        "method": req["method"],
        "original_payout": None,
        "payout_method": None,
        "reconciliation_status": "not_applicable",
        "reversed_by": None,
        "source_type": "card",
        "statement_descriptor": req["statement_descriptor"],
        "status": "pending",
        "trace_id": {"status": "pending", "value": None},
        "type": "bank_account",
    }
    sb.store.connect_insert("payouts", payout, account=req["account"], destination=req["destination"],
                            currency=req["currency"], amount=req["amount"], status="pending",
                            complete_at=now + PAYOUT_DELAY_S,
                            planned_outcome=req["bank"].failure_code or "paid")
    emit(sb, "payout.created", payout, req["account"])
    return 200, payout


def complete_payouts(sb: Sandbox, now: float | None = None) -> int:
    """Pay or fail the pending payouts whose delay has passed; return how many."""
    done = 0
    for row in sb.store.connect_due_payouts(time.time() if now is None else now):
        with sb.store.transaction(), context.use(context.RequestContext()):
            found = sb.store.connect_get("payouts", row["id"])
            if found is None or found["status"] != "pending":
                continue
            payout = found["object"]
            failure = found["planned_outcome"] if found["planned_outcome"] != "paid" else None
            if failure:
                payout.update(status="failed", failure_code=failure, failure_message=FAILURES.get(failure, failure),
                              failure_balance_transaction=new_id("txn"), trace_id={"status": "unsupported",
                                                                                    "value": None})
            else:
                payout.update(status="paid", trace_id={"status": "supported",
                                                       "value": "SBX" + payout["id"][3:15].upper()})
            sb.store.connect_update("payouts", payout, status=payout["status"], complete_at=None,
                                    failed_at=time.time() if failure else None)
            emit(sb, "payout.updated", payout, found["account"])
            emit(sb, f"payout.{payout['status']}", payout, found["account"])
            done += 1
    return done


def return_payout(sb: Sandbox, payout_id: str, failure_code: str = "account_closed") -> Result:
    """The bank sends a paid payout back (``POST /_sandbox/payouts/{id}/return``): as on Stripe, the paid payout
    becomes ``failed`` days later, its money back in the connected account's balance, and ``payout.updated`` and
    ``payout.failed`` are sent. A payout not paid (yet) is refused; one already returned is answered as it is."""
    with sb.store.transaction(), context.use(context.RequestContext()):
        found = sb.store.connect_get("payouts", payout_id)
        if found is None:
            return 404, {"error": f"no such payout: {payout_id}"}
        payout = found["object"]
        if payout["status"] == "failed":
            return 200, payout
        if payout["status"] != "paid":
            return 400, {"error": f"payout {payout_id} is {payout['status']}: only a paid payout is returned"}
        payout.update(status="failed", failure_code=failure_code,
                      failure_message=FAILURES.get(failure_code, failure_code),
                      failure_balance_transaction=new_id("txn"))
        sb.store.connect_update("payouts", payout, status="failed", failed_at=time.time())
        emit(sb, "payout.updated", payout, found["account"])
        emit(sb, "payout.failed", payout, found["account"])
    return 200, payout


class PayoutWorker(threading.Thread):
    """Completes the sandbox's pending payouts (started with the first Connect request)."""

    def __init__(self, sb: Sandbox, interval: float = 0.05) -> None:
        super().__init__(name="psp-sandbox-payouts", daemon=True)
        self.sb, self.interval = sb, interval

    def run(self) -> None:
        """Poll until the sandbox stops."""
        while not self.sb.stop_event.wait(self.interval):
            try:
                complete_payouts(self.sb)
            except Exception as exc:  # noqa: BLE001 - keep the worker alive
                print(f"psp_sandbox: payout worker error: {exc!r}", flush=True)


_workers: dict[int, PayoutWorker] = {}
_workers_lock = threading.Lock()


def ensure_worker(sb: Sandbox) -> None:
    """Start the payout worker of this sandbox once (pending payouts of an earlier run resume too)."""
    if id(sb) in _workers:
        return
    with _workers_lock:
        if id(sb) not in _workers:
            worker = PayoutWorker(sb)
            _workers[id(sb)] = worker
            worker.start()


def report(sb: Sandbox) -> dict[str, Any]:
    """``GET /_sandbox/payouts``: the sandbox's own record of money out, for a bench to hold our books against.
    Every transfer ``[id, transfer_group, destination, amount, amount_reversed]`` and every payout ``[id,
    metadata.payout_id, account, amount, status]``, and the totals per currency paid out (status paid)."""
    transfers = [[r["id"], r["transfer_group"] or "", r["destination"], r["amount"], r["amount_reversed"]]
                 for r in sb.store.connect_rows("transfers", {}, newest_first=False)]
    payouts, paid = [], {}
    for row in sb.store.connect_rows("payouts", {}, newest_first=False):
        obj = row["object"]
        payouts.append([row["id"], (obj.get("metadata") or {}).get("payout_id", ""), row["account"], row["amount"],
                        row["status"]])
        if row["status"] == "paid":
            paid[row["currency"]] = paid.get(row["currency"], 0) + row["amount"]
    return {"transfers": transfers, "payouts": payouts, "paid": paid}


def sandbox_route(sb: Sandbox, method: str, path: str, body: bytes) -> Result | None:
    """The sandbox's own Connect endpoints: ``GET /_sandbox/payouts`` (``report``) and ``POST
    /_sandbox/payouts/{id}/return`` (``return_payout``); None for another path."""
    if path == "/_sandbox/payouts" and method == "GET":
        return 200, report(sb)
    m = _PAYOUT_RETURN.match(path)
    if m and method == "POST":
        params = json.loads(body or b"{}") if body.strip() else {}
        return return_payout(sb, m.group(1), str(params.get("failure_code") or "account_closed"))
    return None
