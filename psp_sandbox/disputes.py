"""Disputes, Stripe's shape: opened on a succeeded charge by the test card ``pm_card_createDispute`` (a while
after the charge, as Stripe does) or by ``POST /_sandbox/disputes``; ``GET /v1/disputes/{id}`` and
``GET /v1/disputes``; ``POST /v1/disputes/{id}`` (evidence, ``submit=true``: under review);
``POST /v1/disputes/{id}/close`` (accept: lost); the bank's decision by ``POST /_sandbox/disputes/{id}/outcome``
(``{"outcome": "won" | "lost"}``). Events: ``charge.dispute.created``, ``charge.dispute.funds_withdrawn``,
``charge.dispute.updated``, ``charge.dispute.funds_reinstated``, ``charge.dispute.closed``.

Money as Stripe moves it: opening takes the disputed amount and the dispute fee (``dispute_fee``, Stripe's is
1500 in USD) from the balance (a balance transaction of ``-amount`` with ``fee``); a won dispute gives both back
(a second one of ``+amount`` with ``-fee``); a lost one nothing more.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import cards, context, validation
from .errors import ApiError, invalid, missing, not_found
from .store import Store, new_id

if TYPE_CHECKING:
    from .api import Api

Emit = Callable[[str, dict[str, Any]], Any]
REASONS = ("fraudulent", "product_not_received", "product_unacceptable", "duplicate", "subscription_canceled",
           "credit_not_processed", "unrecognized", "general")
EVIDENCE_DAYS = 7
UPDATE: validation.Schema = {"evidence": validation.FREE, "metadata": validation.FREE, "submit": validation.LEAF,
                             "expand": validation.LIST}
LIST_PARAMS: validation.Schema = {
    **dict.fromkeys(("charge", "payment_intent", "limit", "starting_after", "ending_before"), validation.LEAF),
    "created": validation.FREE, "expand": validation.LIST}


def _balance_transaction(amount: int, fee: int, currency: str, category: str, description: str) -> dict[str, Any]:
    now = int(time.time())
    return {
        "id": new_id("txn"), "object": "balance_transaction", "amount": amount, "available_on": now,
        "created": now, "currency": currency, "description": description, "exchange_rate": None, "fee": fee,
        "fee_details": [{"amount": fee, "application": None, "currency": currency, "description": "Dispute fee",
                         "type": "stripe_fee"}] if fee else [],
        "net": amount - fee, "reporting_category": category, "status": "available", "type": "adjustment",
    }


def _dispute_object(charge: dict[str, Any], amount: int, reason: str, fee: int) -> dict[str, Any]:
    now = int(time.time())
    dispute_id = new_id("dp")
    return {
        "id": dispute_id,
        "object": "dispute",
        "amount": amount,
        "balance_transactions": [_balance_transaction(-amount, fee, charge["currency"], "dispute",
                                                      f"Chargeback withdrawal for {charge['id']}")],
        "charge": charge["id"],
        "created": now,
        "currency": charge["currency"],
        "evidence": {"customer_communication": None, "product_description": None, "uncategorized_text": None},
        "evidence_details": {"due_by": now + EVIDENCE_DAYS * 86_400, "has_evidence": False, "past_due": False,
                             "submission_count": 0},
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "payment_intent": charge["payment_intent"],
        "reason": reason,
        "status": "needs_response",
    }


def _save(store: Store, dispute: dict[str, Any]) -> None:
    store.connect_update("disputes", dispute, status=dispute["status"])


def _get(store: Store, dispute_id: str) -> dict[str, Any]:
    found = store.connect_get("disputes", dispute_id)
    if found is None or found["status"] == "scheduled":
        raise not_found("dispute", dispute_id)
    return found["object"]


def open_(store: Store, config_snapshot: dict[str, Any], emit: Emit, charge_id: str, amount: int | None = None,
          reason: str = "fraudulent") -> dict[str, Any]:
    """Dispute a succeeded charge (all of what was not refunded, unless ``amount``), in the caller's store
    transaction and request context."""
    charge = store.get_charge(charge_id)
    if charge is None:
        raise missing("charge", charge_id, "charge")
    if charge["status"] != "succeeded":
        raise invalid(f"Charge {charge_id} has not succeeded: nothing to dispute.", param="charge")
    if store.charge_disputed(charge_id):
        raise invalid(f"Charge {charge_id} has already been disputed.", param="charge",
                      code="charge_already_disputed")
    left = charge["amount"] - charge["amount_refunded"]
    amount = left if amount is None else amount
    if type(amount) is not int or not 0 < amount <= charge["amount"]:
        raise invalid(f"A dispute of {amount} on a charge of {charge['amount']}.", param="amount")
    dispute = _dispute_object(charge, amount, reason, int(config_snapshot.get("dispute_fee", 1500)))
    store.connect_insert("disputes", dispute, charge=charge_id, payment_intent=charge["payment_intent"],
                         status=dispute["status"], opens_at=None)
    emit("charge.dispute.created", dispute)
    emit("charge.dispute.funds_withdrawn", dispute)
    return dispute


def after_charge(
    store: Store, config_snapshot: dict[str, Any], charge: dict[str, Any], card: cards.TestCard | None = None
) -> None:
    """A succeeded charge of ``pm_card_createDispute``: its dispute opens ``dispute_delay_s`` later (``card``:
    the card of the charge's PaymentMethod, if the caller has it)."""
    if charge.get("status") != "succeeded" or not charge.get("payment_method"):
        return
    if card is None:
        pm = store.get_payment_method(charge["payment_method"])
        card = cards.by_name(pm["card"]) if pm else None
    if card is None or not card.disputed:
        return
    placeholder = {"id": new_id("dps"), "object": "scheduled_dispute", "charge": charge["id"]}
    store.connect_insert("disputes", placeholder, charge=charge["id"], payment_intent=charge["payment_intent"],
                         status="scheduled", opens_at=time.time() + float(config_snapshot.get("dispute_delay_s", 1.0)))


def open_due(api: Api, now: float | None = None) -> int:
    """Open the scheduled disputes whose time has come (the processing worker calls this); how many."""
    done = 0
    for row in api.store.connect_due_disputes(time.time() if now is None else now):
        with api.store.transaction(), context.use(api._background(row["payment_intent"])):
            found = api.store.connect_get("disputes", row["id"])
            if found is None or found["status"] != "scheduled":
                continue
            api.store.connect_update("disputes", found["object"], status="superseded", opens_at=None)
            try:
                open_(api.store, api.config.snapshot(), api.emit, found["charge"])
            except ApiError as exc:  # refunded in full since, or disputed by hand: nothing to open
                print(f"psp_sandbox: scheduled dispute on {found['charge']} not opened: {exc}", flush=True)
            done += 1
    return done


def _update(store: Store, emit: Emit, dispute_id: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    dispute = _get(store, dispute_id)
    if dispute["status"] not in ("needs_response", "under_review"):
        err = invalid(f"This dispute is already closed ({dispute['status']}).", code="dispute_already_closed")
        return err.status, err.payload()
    evidence = params.get("evidence") or {}
    dispute["evidence"].update({k: v for k, v in evidence.items() if isinstance(v, str)})
    dispute["metadata"].update(params.get("metadata") or {})
    if evidence:
        dispute["evidence_details"]["has_evidence"] = True
    if validation.parse_bool(params.get("submit"), "submit", default=True) and dispute["status"] == "needs_response":
        dispute["status"] = "under_review"
        dispute["evidence_details"]["submission_count"] += 1
    _save(store, dispute)
    emit("charge.dispute.updated", dispute)
    return 200, dispute


def decide(store: Store, emit: Emit, dispute_id: str, outcome: str) -> dict[str, Any]:
    """Close a dispute as the bank decided: ``won`` gives the amount and fee back, ``lost`` keeps them."""
    if outcome not in ("won", "lost"):
        raise invalid("outcome must be won or lost", param="outcome")
    dispute = _get(store, dispute_id)
    if dispute["status"] in ("won", "lost"):
        if dispute["status"] != outcome:
            raise invalid(f"This dispute is already {dispute['status']}.", code="dispute_already_closed")
        return dispute
    dispute["status"] = outcome
    if outcome == "won":
        withdrawal = dispute["balance_transactions"][0]
        dispute["balance_transactions"].append(_balance_transaction(
            -withdrawal["amount"], -withdrawal["fee"], withdrawal["currency"], "dispute_reversal",
            f"Chargeback reversal for {dispute['charge']}"))
    _save(store, dispute)
    if outcome == "won":
        emit("charge.dispute.funds_reinstated", dispute)
    emit("charge.dispute.closed", dispute)
    return dispute


def balance_transactions(store: Store, lo: float, hi: float) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``(dispute, balance transaction)`` of every dispute's money moved in ``[lo, hi)``, for the settlement
    report."""
    moves = []
    for row in store.connect_rows("disputes", {}, newest_first=False):
        if row["status"] in ("scheduled", "superseded"):
            continue
        moves += [(row["object"], bt) for bt in row["object"]["balance_transactions"] if lo <= bt["created"] < hi]
    return moves


def report(store: Store) -> dict[str, Any]:
    """``GET /_sandbox/disputes``: the sandbox's own record of disputes: how many per status, each one's status,
    the open ones' ids, and per currency what they took from the balance (withdrawals less reinstatements, fees
    included)."""
    by_status: dict[str, int] = {}
    taken: dict[str, int] = {}
    open_ids, states = [], {}
    for row in store.connect_rows("disputes", {}, newest_first=False):
        if row["status"] in ("scheduled", "superseded"):
            continue
        dispute = row["object"]
        by_status[dispute["status"]] = by_status.get(dispute["status"], 0) + 1
        states[dispute["id"]] = dispute["status"]
        if dispute["status"] in ("needs_response", "under_review"):
            open_ids.append(dispute["id"])
        for bt in dispute["balance_transactions"]:
            taken[bt["currency"]] = taken.get(bt["currency"], 0) - bt["net"]
    return {"count": sum(by_status.values()), "by_status": by_status, "open": open_ids, "states": states,
            "taken": taken,
            "scheduled": len(store.connect_rows("disputes", {"status": "scheduled"}))}


def sandbox_route(api: Api, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]] | None:
    """``POST /_sandbox/disputes`` (``{"charge" | "payment_intent", "amount"?, "reason"?}``) and
    ``POST /_sandbox/disputes/{id}/outcome`` (``{"outcome": "won" | "lost"}``); None for another path."""
    import re

    if not path.startswith("/_sandbox/disputes"):
        return None
    if method == "GET" and path == "/_sandbox/disputes":
        return 200, report(api.store)
    if method != "POST":
        return None
    try:
        params = json.loads(body or b"{}")
        if not isinstance(params, dict):
            raise ValueError
    except ValueError:
        return 400, {"error": "the body must be a JSON object"}
    store = api.store
    if path == "/_sandbox/disputes":
        charge_id = params.get("charge")
        if not charge_id and params.get("payment_intent"):
            pi = store.get_payment_intent(str(params["payment_intent"]))
            if pi is None:
                return 404, {"error": f"no such payment_intent: {params['payment_intent']}"}
            charge_id = pi.get("latest_charge")
        if not charge_id:
            return 400, {"error": "charge or payment_intent is required"}
        reason = params.get("reason") or "fraudulent"
        if reason not in REASONS:
            return 400, {"error": f"reason must be one of {', '.join(REASONS)}"}
        charge = store.get_charge(str(charge_id))
        with store.transaction(), context.use(api._background(charge["payment_intent"] if charge else "")):
            try:
                return 200, open_(store, api.config.snapshot(), api.emit, str(charge_id), params.get("amount"), reason)
            except ApiError as exc:
                return exc.status, exc.payload()
    m = re.fullmatch(r"/_sandbox/disputes/([A-Za-z0-9_]+)/outcome", path)
    if m is None:
        return 404, {"error": f"unknown sandbox endpoint: {method} {path}"}
    found = store.connect_get("disputes", m[1])
    with store.transaction(), context.use(api._background(found["payment_intent"] if found else "")):
        try:
            return 200, decide(store, api.emit, m[1], str(params.get("outcome")))
        except ApiError as exc:
            return exc.status, exc.payload()


def post(api: Api, path: str) -> tuple[Callable, Callable] | None:
    """``(validate, execute)`` of ``POST /v1/disputes/{id}`` and ``/close``, or None."""
    import re

    if m := re.fullmatch(r"/v1/disputes/([A-Za-z0-9_]+)/close", path):
        def close(req: dict[str, Any], *_: Any) -> tuple[int, dict[str, Any]]:
            dispute = _get(api.store, m[1])
            if dispute["status"] in ("won", "lost"):
                err = invalid(f"This dispute is already closed ({dispute['status']}).", code="dispute_already_closed")
                return err.status, err.payload()
            return 200, decide(api.store, api.emit, m[1], "lost")

        return (lambda params: validation.check_known(params, {"expand": validation.LIST}) or params), close
    if m := re.fullmatch(r"/v1/disputes/([A-Za-z0-9_]+)", path):
        def validate(params: dict[str, Any]) -> dict[str, Any]:
            validation.check_known(params, UPDATE)
            return params

        return validate, lambda req, *_: _update(api.store, api.emit, m[1], req)
    return None


def get(api: Api, path: str, params: dict[str, Any]) -> dict[str, Any] | None:
    """``GET /v1/disputes`` and ``GET /v1/disputes/{id}``, or None."""
    import re

    store = api.store
    if path == "/v1/disputes":
        validation.check_known(params, LIST_PARAMS)
        where = {k: params[k] for k in ("charge", "payment_intent") if params.get(k)}
        rows = [r["object"] for r in store.connect_rows("disputes", where)
                if r["status"] not in ("scheduled", "superseded")]
        limit = validation.parse_int(params.get("limit") or "10", "limit")
        return {"object": "list", "data": rows[:limit], "has_more": len(rows) > limit, "url": path}
    if m := re.fullmatch(r"/v1/disputes/([A-Za-z0-9_]+)", path):
        validation.check_known(params, validation.RETRIEVE)
        return _get(store, m[1])
    return None
