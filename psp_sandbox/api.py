"""The Stripe-compatible operations: payment intents, refunds, charges.

Pure business logic over ``Store``; HTTP concerns (auth, idempotency,
injected faults, delays) live in ``server.py``.  Every state change emits an
event through ``Api.emit`` (stored, then delivered by ``webhooks``).
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from . import behaviour
from .behaviour import Config, Decline, Plan
from .store import Store, new_id

_CURRENCY = re.compile(r"^[a-z]{3}$")
_SEARCH = re.compile(r"""^\s*metadata\[(['"])(?P<key>[^'"]+)\1\]\s*:\s*(['"])(?P<value>[^'"]*)\3\s*$""")


class ApiError(Exception):
    """An error response in Stripe's shape: ``{"error": {...}}``."""

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"type": type_, "message": message}
        if code:
            self.body["code"] = code
            self.body["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
        if param:
            self.body["param"] = param
        self.body.update({k: v for k, v in extra.items() if v is not None})

    def payload(self) -> dict[str, Any]:
        """The JSON response body."""
        return {"error": self.body}


def invalid(message: str, param: str | None = None, code: str | None = None, status: int = 400) -> ApiError:
    """A 400 invalid_request_error."""
    return ApiError(status, "invalid_request_error", message, code=code, param=param)


def not_found(kind: str, obj_id: str) -> ApiError:
    """A 404 resource_missing error."""
    return invalid(f"No such {kind}: '{obj_id}'", param="id", code="resource_missing", status=404)


def _parse_amount(raw: Any, param: str = "amount") -> int:
    if not isinstance(raw, str) or not raw.isdigit():
        raise invalid(f"Invalid integer: {raw}", param=param, code="parameter_invalid_integer")
    amount = int(raw)
    if amount <= 0:
        raise invalid(
            "This value must be greater than or equal to 1.",
            param=param,
            code="amount_too_small",
        )
    return amount


def _parse_bool(raw: Any, param: str) -> bool:
    if raw in (None, "", "false"):
        return False
    if raw == "true":
        return True
    raise invalid(f"Invalid boolean: {raw}", param=param)


def _metadata(raw: Any) -> dict[str, str]:
    if raw in (None, ""):
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise invalid("Invalid metadata: must be a hash of string values", param="metadata")
    return dict(raw)


class Api:
    """Payment operations on one store."""

    def __init__(self, store: Store, config: Config, notify: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.config = config
        self.notify = notify

    # -- events -------------------------------------------------------------
    def emit(self, event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Store an event; it is delivered if a webhook URL is configured."""
        cfg = self.config.snapshot()
        event = {
            "id": new_id("evt"),
            "object": "event",
            "api_version": "2024-06-20",
            "type": event_type,
            "created": int(time.time()),
            "livemode": False,
            "pending_webhooks": 1 if cfg["webhook_url"] else 0,
            "request": {"id": None, "idempotency_key": None},
            "data": {"object": obj},
        }
        due = time.time() + cfg["webhook_delay_s"]
        window = cfg["webhook_reorder_window_s"]
        if cfg["webhook_reorder"] and window > 0:
            # Hold events until the end of the next window boundary so every event of a window
            # becomes due at once and the dispatcher delivers the batch shuffled.
            due = (math.floor(due / window) + 2) * window
        self.store.insert_event(event, "pending" if cfg["webhook_url"] else "no_endpoint", due)
        self.notify()
        return event

    # -- rendering ----------------------------------------------------------
    def charge_object(self, row: dict[str, Any]) -> dict[str, Any]:
        """A Stripe charge object from a charges row."""
        pi = self.store.get_payment_intent(row["payment_intent"]) or {}
        failed = row["status"] == "failed"
        return {
            "id": row["id"],
            "object": "charge",
            "amount": row["amount"],
            "amount_captured": row["amount"] if row["status"] == "succeeded" else 0,
            "amount_refunded": row["amount_refunded"],
            "captured": row["status"] == "succeeded",
            "refunded": row["status"] == "succeeded" and row["amount_refunded"] >= row["amount"],
            "currency": row["currency"],
            "payment_intent": row["payment_intent"],
            "payment_method": row["payment_method"],
            "paid": row["status"] == "succeeded",
            "status": row["status"],
            "failure_code": row["failure_code"],
            "failure_message": "Your card was declined." if failed else None,
            "metadata": pi.get("metadata", {}),
            "created": row["created"],
            "livemode": False,
        }

    # -- payment intents ----------------------------------------------------
    def validate_create(self, params: dict[str, Any]) -> dict[str, Any]:
        """Check create parameters (errors here are not stored for idempotency)."""
        if "amount" not in params:
            raise invalid(
                "Missing required param: amount.",
                param="amount",
                code="parameter_missing",
            )
        amount = _parse_amount(params["amount"])
        currency = str(params.get("currency") or "").lower()
        if not currency:
            raise invalid(
                "Missing required param: currency.",
                param="currency",
                code="parameter_missing",
            )
        if not _CURRENCY.match(currency):
            raise invalid(
                f"Invalid currency: {currency}.",
                param="currency",
                code="parameter_invalid_string",
            )
        pm = params.get("payment_method")
        if pm is not None and (not isinstance(pm, str) or not behaviour.is_valid_payment_method(pm)):
            raise invalid(
                f"No such PaymentMethod: '{pm}'",
                param="payment_method",
                code="resource_missing",
            )
        confirm = _parse_bool(params.get("confirm"), "confirm")
        if confirm and not pm:
            raise invalid(
                "You cannot confirm this PaymentIntent because it's missing a payment method.",
                param="payment_method",
                code="payment_intent_unexpected_state",
            )
        return {
            "amount": amount,
            "currency": currency,
            "payment_method": pm,
            "confirm": confirm,
            "metadata": _metadata(params.get("metadata")),
            "description": params.get("description"),
        }

    def create_payment_intent(
        self, req: dict[str, Any], plan: Plan, api_key: str, idempotency_key: str | None
    ) -> tuple[int, dict[str, Any]]:
        """Create (and confirm) a payment intent; return (status, body) to store and send."""
        now = int(time.time())
        pi: dict[str, Any] = {
            "id": new_id("pi"),
            "object": "payment_intent",
            "amount": req["amount"],
            "amount_capturable": 0,
            "amount_received": 0,
            "capture_method": "automatic",
            "confirmation_method": "automatic",
            "currency": req["currency"],
            "description": req["description"],
            "status": "requires_payment_method",
            "payment_method": req["payment_method"],
            "payment_method_types": ["card"],
            "latest_charge": None,
            "metadata": req["metadata"],
            "created": now,
            "livemode": False,
            "last_payment_error": None,
        }
        with self.store.transaction():
            if not req["confirm"]:
                if pi["payment_method"]:
                    pi["status"] = "requires_confirmation"
                self.store.insert_payment_intent(pi, api_key, idempotency_key)
                return 200, pi
            charge = {
                "id": new_id("ch"),
                "payment_intent": pi["id"],
                "idempotency_key": idempotency_key,
                "payment_order_id": req["metadata"].get("payment_order_id"),
                "amount": req["amount"],
                "amount_refunded": 0,
                "currency": req["currency"],
                "payment_method": req["payment_method"],
                "created": now,
                "created_at": time.time(),
            }
            pi["latest_charge"] = charge["id"]
            complete_at = planned = None
            if plan.outcome == "declined":
                assert plan.decline is not None
                charge.update(status="failed", failure_code=plan.decline.code)
                pi["last_payment_error"] = self._payment_error(plan.decline, charge["id"], pi["payment_method"])
            elif plan.outcome in ("processing", "processing_fail"):
                charge["status"] = "pending"
                pi["status"] = "processing"
                complete_at = time.time() + self.config.get("processing_delay_s")
                planned = "succeeded" if plan.outcome == "processing" else "failed"
            else:
                charge["status"] = "succeeded"
                pi["status"] = "succeeded"
                pi["amount_received"] = pi["amount"]
            self.store.insert_payment_intent(pi, api_key, idempotency_key, complete_at, planned)
            self.store.insert_charge(charge)
            if plan.outcome == "declined":
                self.emit("payment_intent.payment_failed", pi)
                err = ApiError(
                    402,
                    "card_error",
                    plan.decline.message if plan.decline else "",
                    code=pi["last_payment_error"]["code"],
                    decline_code=pi["last_payment_error"].get("decline_code"),
                    charge=charge["id"],
                    payment_intent=pi,
                    payment_method={
                        "id": pi["payment_method"],
                        "object": "payment_method",
                    },
                )
                return err.status, err.payload()
            self.emit(
                "payment_intent.processing" if pi["status"] == "processing" else "payment_intent.succeeded",
                pi,
            )
            return 200, pi

    @staticmethod
    def _payment_error(decline: Decline, charge_id: str, pm: str | None) -> dict[str, Any]:
        err: dict[str, Any] = {
            "type": "card_error",
            "code": decline.code,
            "message": decline.message,
            "charge": charge_id,
            "payment_method": {"id": pm, "object": "payment_method"},
        }
        if decline.decline_code:
            err["decline_code"] = decline.decline_code
        return err

    def complete_processing(self, now: float | None = None) -> int:
        """Finish processing payment intents whose time has come; return how many."""
        done = 0
        for row in self.store.due_processing(time.time() if now is None else now):
            with self.store.transaction():
                pi = self.store.get_payment_intent(row["id"])
                if pi is None or pi["status"] != "processing":
                    continue
                if row["planned_outcome"] == "failed":
                    pi["status"] = "requires_payment_method"
                    pi["last_payment_error"] = self._payment_error(
                        behaviour.GENERIC_DECLINE,
                        pi["latest_charge"],
                        pi["payment_method"],
                    )
                    self.store.update_charge(
                        pi["latest_charge"],
                        status="failed",
                        failure_code="card_declined",
                    )
                    self.store.update_payment_intent(pi)
                    self.emit("payment_intent.payment_failed", pi)
                else:
                    pi["status"] = "succeeded"
                    pi["amount_received"] = pi["amount"]
                    self.store.update_charge(pi["latest_charge"], status="succeeded")
                    self.store.update_payment_intent(pi)
                    self.emit("payment_intent.succeeded", pi)
                done += 1
        return done

    def retrieve_payment_intent(self, pi_id: str) -> dict[str, Any]:
        """GET /v1/payment_intents/{id}."""
        pi = self.store.get_payment_intent(pi_id)
        if pi is None:
            raise not_found("payment_intent", pi_id)
        return pi

    def search_payment_intents(self, api_key: str, query: str | None) -> dict[str, Any]:
        """GET /v1/payment_intents/search (only ``metadata['k']:'v'`` queries)."""
        m = _SEARCH.match(query or "")
        if not m:
            raise invalid(
                "Only queries of the form metadata['key']:'value' are supported by the sandbox.",
                param="query",
                code="parameter_invalid_string",
            )
        data = self.store.search_payment_intents(api_key, m["key"], m["value"])
        return {
            "object": "search_result",
            "data": data,
            "has_more": False,
            "next_page": None,
            "url": "/v1/payment_intents/search",
            "total_count": len(data),
        }

    # -- refunds ------------------------------------------------------------
    def validate_refund(self, params: dict[str, Any]) -> dict[str, Any]:
        """Check refund parameters (errors here are not stored)."""
        pi_id, charge_id = params.get("payment_intent"), params.get("charge")
        if not pi_id and not charge_id:
            raise invalid(
                "One of the following params should be provided for this request: payment_intent or charge.",
                param="payment_intent",
                code="parameter_missing",
            )
        amount = _parse_amount(params["amount"]) if params.get("amount") not in (None, "") else None
        return {
            "payment_intent": pi_id,
            "charge": charge_id,
            "amount": amount,
            "metadata": _metadata(params.get("metadata")),
            "reason": params.get("reason"),
        }

    def create_refund(self, req: dict[str, Any], idempotency_key: str | None) -> tuple[int, dict[str, Any]]:
        """Refund (part of) a succeeded charge; return (status, body)."""
        with self.store.transaction():
            if req["payment_intent"]:
                pi = self.store.get_payment_intent(req["payment_intent"])
                if pi is None:
                    raise not_found("payment_intent", req["payment_intent"])
                charge = self.store.get_charge(pi["latest_charge"]) if pi["latest_charge"] else None
            else:
                charge = self.store.get_charge(req["charge"])
                if charge is None:
                    raise not_found("charge", req["charge"])
                pi = self.store.get_payment_intent(charge["payment_intent"])
            if charge is None or charge["status"] != "succeeded" or pi is None:
                err = invalid(
                    "This PaymentIntent does not have a successful charge to refund.",
                    param="payment_intent",
                    code="charge_not_refundable",
                )
                return err.status, err.payload()
            left = charge["amount"] - charge["amount_refunded"]
            if left <= 0:
                err = invalid(
                    f"Charge {charge['id']} has already been refunded.",
                    code="charge_already_refunded",
                )
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
                "currency": charge["currency"],
                "charge": charge["id"],
                "payment_intent": pi["id"],
                "status": "succeeded",
                "reason": req["reason"],
                "metadata": req["metadata"],
                "created": int(time.time()),
            }
            self.store.insert_refund(
                refund,
                charge["id"],
                idempotency_key,
                pi["metadata"].get("payment_order_id"),
            )
            self.store.update_charge(charge["id"], amount_refunded=charge["amount_refunded"] + amount)
            self.emit("refund.created", refund)
            self.emit(
                "charge.refunded",
                self.charge_object(self.store.get_charge(charge["id"]) or charge),
            )
            return 200, refund

    def retrieve_refund(self, refund_id: str) -> dict[str, Any]:
        """GET /v1/refunds/{id}."""
        refund = self.store.get_refund(refund_id)
        if refund is None:
            raise not_found("refund", refund_id)
        return refund

    def retrieve_charge(self, charge_id: str) -> dict[str, Any]:
        """GET /v1/charges/{id}."""
        row = self.store.get_charge(charge_id)
        if row is None:
            raise not_found("charge", charge_id)
        return self.charge_object(row)

    # -- sandbox report -----------------------------------------------------
    def charges_report(self) -> dict[str, Any]:
        """The sandbox's own record of money moved, with double charges."""
        charges, refunds = self.store.list_charges(), self.store.list_refunds()
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
        return {
            "charges": charges,
            "refunds": refunds,
            "totals": totals,
            "double_charges": doubles,
        }


class ProcessingWorker(threading.Thread):
    """Completes ``processing`` payment intents when their delay has passed."""

    def __init__(self, api: Api, stop: threading.Event, interval: float = 0.05) -> None:
        super().__init__(name="psp-sandbox-processing", daemon=True)
        self.api, self.stop, self.interval = api, stop, interval

    def run(self) -> None:
        """Poll until stopped."""
        while not self.stop.wait(self.interval):
            try:
                self.api.complete_processing()
            except Exception as exc:  # noqa: BLE001 - keep the worker alive
                print(f"psp_sandbox: processing worker error: {exc!r}", flush=True)
