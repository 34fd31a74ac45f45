"""Charges: the rows the sandbox keeps, the Charge objects it shows, and its money report."""

from __future__ import annotations

import time
from typing import Any

from .errors import not_found
from .store import Store, new_id

_OUTCOMES = {
    "succeeded": ("approved_by_network", "authorized", "Payment complete."),
    "failed": (
        "declined_by_network",
        "issuer_declined",
        "The bank did not return any further details with this decline.",
    ),
}


def new_row(
    pi: dict[str, Any], pm_id: str | None, idempotency_key: str | None, status: str, failure_code: str | None = None
) -> dict[str, Any]:
    """A charges row for PaymentIntent ``pi`` (inserted by the caller).

    ``status``: succeeded, failed, pending, or (manual capture) authorized, then released.
    """
    return {
        "id": new_id("ch"),
        "payment_intent": pi["id"],
        "idempotency_key": idempotency_key,
        "payment_order_id": pi["metadata"].get("payment_order_id"),
        "amount": pi["amount"],
        "amount_refunded": 0,
        "currency": pi["currency"],
        "payment_method": pm_id,
        "status": status,
        "failure_code": failure_code,
        "created": int(time.time()),
        "created_at": time.time(),
    }


def _outcome(row: dict[str, Any], reason: str | None) -> dict[str, Any] | None:
    status = "succeeded" if row["status"] in ("authorized", "released") else row["status"]
    if status not in _OUTCOMES:
        return None
    network_status, kind, message = _OUTCOMES[status]
    return {
        "network_status": network_status,
        "reason": reason,
        "risk_level": "normal",
        "seller_message": message,
        "type": kind,
    }


_CARD_NULLS = (
    "authorization_code capture_before description electronic_commerce_indicator iin installments issuer mandate "
    "moto network_transaction_id setup_credential_usage stored_credential_usage three_d_secure transaction_link_id "
    "wallet"
).split()


def _card_details(row: dict[str, Any], pm: dict[str, Any] | None) -> dict[str, Any] | None:
    """``payment_method_details`` from the PaymentMethod the charge used (brand, last4, expiry...)."""
    if pm is None:
        return None
    card = pm["object"]["card"]
    keep = ("brand", "country", "exp_month", "exp_year", "fingerprint", "funding", "last4", "regulated_status")
    ok = row["status"] in ("succeeded", "authorized", "released")
    details: dict[str, Any] = {k: card.get(k) for k in keep} | dict.fromkeys(_CARD_NULLS)
    details |= {
        "amount_authorized": row["amount"] if ok else None,
        "checks": {"address_line1_check": None, "address_postal_code_check": None, "cvc_check": "pass"},
        "extended_authorization": {"status": "disabled"},
        "incremental_authorization": {"status": "unavailable"},
        "multicapture": {"status": "unavailable"},
        "network": card.get("brand"),
        "network_token": {"used": False},
        "overcapture": {"maximum_amount_capturable": row["amount"], "status": "unavailable"},
    }
    return {"type": "card", "card": details}


def charge_object(
    store: Store,
    row: dict[str, Any],
    pi: dict[str, Any] | None = None,
    *,
    pm: dict[str, Any] | None = None,
    disputed: bool | None = None,
) -> dict[str, Any]:
    """A Stripe Charge object from a charges row (``pi``: its PaymentIntent as just stored, if the caller has it;
    ``pm``: its PaymentMethod's row as just stored, and ``disputed``, if the caller knows them)."""
    if pi is None or pi.get("id") != row["payment_intent"]:
        pi = store.get_payment_intent(row["payment_intent"]) or {}
    status = row["status"]
    ok, failed, held = status == "succeeded", status == "failed", status in ("authorized", "released")
    error = (pi.get("last_payment_error") or {}) if failed and pi.get("latest_charge") == row["id"] else {}
    if pm is None:
        pm = store.get_payment_method(row["payment_method"] or "")
    return {
        "id": row["id"],
        "object": "charge",
        "amount": row["amount"],
        "amount_refunded": row["amount"] if status == "released" else row["amount_refunded"],
        "billing_details": pm["object"]["billing_details"] if pm else None,
        "captured": ok,
        "amount_captured": row["amount"] if ok else 0,
        "created": row["created"],
        "currency": row["currency"],
        "customer": pi.get("customer"),
        "description": pi.get("description"),
        "disputed": store.charge_disputed(row["id"]) if disputed is None else disputed,
        "failure_code": row["failure_code"],
        "failure_message": (error.get("message") or "Your card was declined.") if failed else None,
        "livemode": False,
        "metadata": pi.get("metadata", {}),
        "outcome": _outcome(row, error.get("decline_code") or row["failure_code"] if failed else None),
        "paid": ok or held,
        "payment_intent": row["payment_intent"],
        "payment_method": row["payment_method"],
        "payment_method_details": _card_details(row, pm),
        "refunded": (ok and row["amount_refunded"] >= row["amount"]) or status == "released",
        "status": "succeeded" if held else status,
    }


def retrieve(store: Store, charge_id: str) -> dict[str, Any]:
    """``GET /v1/charges/{id}``."""
    row = store.get_charge(charge_id)
    if row is None:
        raise not_found("charge", charge_id)
    return charge_object(store, row)


def report(store: Store) -> dict[str, Any]:
    """The sandbox's own record of money moved, with double charges."""
    charges, refunds = store.list_charges(), store.list_refunds()
    totals: dict[str, dict[str, int]] = {}
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for ch in charges:
        ch.pop("seq", None)
        if ch["status"] != "succeeded":
            continue
        t = totals.setdefault(ch["currency"], {"captured": 0, "refunded": 0, "count": 0})
        t["captured"] += ch["amount"]
        t["count"] += 1
        if ch["payment_order_id"]:
            groups.setdefault(("payment_order_id", ch["payment_order_id"]), []).append(ch)
        elif ch["idempotency_key"]:
            groups.setdefault(("idempotency_key", ch["idempotency_key"]), []).append(ch)
    for rf in refunds:
        rf.pop("seq", None)
        if rf["status"] == "succeeded":
            t = totals.setdefault(rf["currency"], {"captured": 0, "refunded": 0, "count": 0})
            t["refunded"] += rf["amount"]
    doubles = [
        {
            "key_type": kind,
            "key": key,
            "count": len(chs),
            "amount": sum(c["amount"] for c in chs),
            "currency": chs[0]["currency"],
            "charges": [c["id"] for c in chs],
        }
        for (kind, key), chs in groups.items()
        if len(chs) > 1
    ]
    return {"charges": charges, "refunds": refunds, "totals": totals, "double_charges": doubles}
