"""Refunds: create (``POST /v1/refunds``), retrieve, and list by PaymentIntent or charge."""

from __future__ import annotations

import time
from typing import Any

from . import cards, validation
from .charges import charge_object
from .errors import invalid, missing, not_found
from .payment_methods import Emit
from .store import Store, new_id

REASONS = ("duplicate", "fraudulent", "requested_by_customer")


def validate(params: dict[str, Any]) -> dict[str, Any]:
    """Check refund parameters (errors here are not stored for idempotency)."""
    validation.check_known(params, validation.REFUND_CREATE)
    pi_id, charge_id = params.get("payment_intent"), params.get("charge")
    if not pi_id and not charge_id:
        raise invalid(
            "One of the following params should be provided for this request: payment_intent or charge.",
            param="payment_intent",
            code="parameter_missing",
        )
    amount = validation.parse_amount(params["amount"]) if params.get("amount") not in (None, "") else None
    return {
        "payment_intent": pi_id,
        "charge": charge_id,
        "amount": amount,
        "metadata": validation.parse_metadata(params.get("metadata")),
        "reason": validation.parse_enum(params.get("reason"), "reason", REASONS),
    }


def _refundable(store: Store, req: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The PaymentIntent and charge row to refund, or the error Stripe answers."""
    if req["payment_intent"]:
        pi = store.get_payment_intent(req["payment_intent"])
        if pi is None:
            raise missing("payment_intent", req["payment_intent"], "payment_intent")
        charge = store.get_charge(pi["latest_charge"]) if pi["latest_charge"] else None
    else:
        charge = store.get_charge(req["charge"])
        if charge is None:
            raise missing("charge", req["charge"], "charge")
        pi = store.get_payment_intent(charge["payment_intent"])
    if charge is None or charge["status"] != "succeeded" or pi is None:
        raise invalid(
            "This PaymentIntent does not have a successful charge to refund.",
            param="payment_intent",
            code="charge_not_refundable",
        )
    if store.charge_disputed(charge["id"]):  # as Stripe: the dispute decides where the money goes
        raise invalid(f"Charge {charge['id']} has been charged back; cannot issue a refund.", code="charge_disputed")
    return pi, charge


def create(store: Store, emit: Emit, req: dict[str, Any], idempotency_key: str | None) -> tuple[int, dict[str, Any]]:
    """Refund (part of) a succeeded charge; return (status, body) to store and send."""
    pi, charge = _refundable(store, req)  # raises: not saved, as a validation error
    left = charge["amount"] - charge["amount_refunded"]
    if left <= 0:
        err = invalid(f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded")
        return err.status, err.payload()
    amount = left if req["amount"] is None else req["amount"]
    if amount > left:
        err = invalid(
            f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
            param="amount",
            code="amount_too_large",
        )
        return err.status, err.payload()
    refund = {
        "id": new_id("re"),
        "object": "refund",
        "amount": amount,
        "balance_transaction": new_id("txn"),
        "charge": charge["id"],
        "created": int(time.time()),
        "currency": charge["currency"],
        "metadata": req["metadata"],
        "payment_intent": pi["id"],
        "reason": req["reason"],
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "pending" if _refund_fails(store, charge) else "succeeded",
        "transfer_reversal": None,
    }
    store.insert_refund(refund, charge["id"], idempotency_key, pi["metadata"].get("payment_order_id"))
    store.update_charge(charge["id"], amount_refunded=charge["amount_refunded"] + amount)
    emit("refund.created", refund)
    emit("charge.refunded", charge_object(store, store.get_charge(charge["id"]) or charge))
    return 200, refund


def _refund_fails(store: Store, charge: dict[str, Any]) -> bool:
    """Whether the charge was paid with a card whose refunds fail (``refundFail``)."""
    pm = store.get_payment_method(charge.get("payment_method") or "")
    return bool(pm) and cards.by_name(pm["card"]).refund_fails


def fail(store: Store, emit: Emit, refund_id: str) -> bool:
    """Fail a pending refund as Stripe does for ``refundFail``: the refund becomes ``failed``
    (``expired_or_canceled_card``), the charge gets the amount back as refundable, and
    ``refund.updated`` then ``refund.failed`` are sent. Returns whether it was pending."""
    refund = store.get_refund(refund_id)
    if refund is None or refund["status"] != "pending":
        return False
    refund.update(status="failed", failure_reason="expired_or_canceled_card", failure_balance_transaction=new_id("txn"))
    store.update_refund(refund)
    charge = store.get_charge(refund["charge"])
    if charge is not None:
        store.update_charge(charge["id"], amount_refunded=max(0, charge["amount_refunded"] - refund["amount"]))
    emit("refund.updated", refund)
    emit("refund.failed", refund)
    return True


#: Stripe's ``failure_reason`` values of a refund the buyer's bank sent back.
FAILURE_REASONS = ("charge_for_pending_refund_disputed", "declined", "expired_or_canceled_card", "insufficient_funds",
                   "lost_or_stolen_card", "merchant_request", "unknown")


def fail_succeeded(store: Store, emit: Emit, refund_id: str, reason: str) -> dict[str, Any]:
    """Fail a succeeded refund later, as Stripe does when the buyer's bank rejects it (a closed or expired card):
    ``failed`` with ``failure_reason``, the amount back on the platform's balance (a ``refund_failure`` row in
    the settlement of the day it failed) and refundable again on the charge; ``refund.updated`` then
    ``refund.failed`` are sent. ``POST /_sandbox/refunds/{id}/fail``."""
    if reason not in FAILURE_REASONS:
        raise invalid(f"failure_reason must be one of {', '.join(FAILURE_REASONS)}", param="failure_reason")
    refund = store.get_refund(refund_id)
    if refund is None:
        raise not_found("refund", refund_id)
    if refund["status"] != "succeeded":
        raise invalid(f"Refund {refund_id} is {refund['status']}: only a succeeded refund can fail later.",
                      code="refund_not_succeeded")
    refund.update(status="failed", failure_reason=reason, failure_balance_transaction=new_id("txn"))
    store.update_refund(refund, failed_at=time.time())
    charge = store.get_charge(refund["charge"])
    if charge is not None:
        store.update_charge(charge["id"], amount_refunded=max(0, charge["amount_refunded"] - refund["amount"]))
    emit("refund.updated", refund)
    emit("refund.failed", refund)
    return refund


def retrieve(store: Store, refund_id: str) -> dict[str, Any]:
    """``GET /v1/refunds/{id}``."""
    refund = store.get_refund(refund_id)
    if refund is None:
        raise not_found("refund", refund_id)
    return refund


def list_(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """``GET /v1/refunds?payment_intent=...`` (strongly consistent, newest first)."""
    validation.check_known(params, validation.REFUND_LIST)
    pi_id, charge_id = params.get("payment_intent") or None, params.get("charge") or None
    if pi_id and store.get_payment_intent(pi_id) is None:
        raise missing("payment_intent", pi_id, "payment_intent")
    limit = validation.parse_int(params.get("limit") or "10", "limit")
    if not 1 <= limit <= 100:
        raise invalid("This value must be between 1 and 100.", param="limit")
    data = store.refunds_of(pi_id, charge_id)
    return {"object": "list", "data": data[:limit], "has_more": len(data) > limit, "url": "/v1/refunds"}
