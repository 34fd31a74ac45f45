"""PaymentIntents as Stripe's current API has them: create (and confirm), 3-D Secure, capture, cancel.

Pure business logic over ``Store``; HTTP concerns (auth, idempotency, injected faults,
delays) live in ``server.py``. Every state change emits an event through ``Api.emit``
(stored, then delivered by ``webhooks``), stamped with the request that caused it.
Refunds, charges, customers and payment methods have modules of their own.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any

from . import (
    cards,
    charges,
    context,
    customers,
    disputes,
    events,
    intent_params,
    payment_methods,
    refunds,
    validation,
)
from .behaviour import Config, Decline, Plan
from .cards import GENERIC_DECLINE
from .context import RequestContext
from .errors import DOC_URL, ApiError, invalid, not_found
from .store import Store

__all__ = ["Api", "ApiError", "ProcessingWorker", "invalid", "not_found"]

_SEARCH = re.compile(r"""^\s*metadata\[(['"])(?P<key>[^'"]+)\1\]\s*:\s*(['"])(?P<value>[^'"]*)\3\s*$""")
CANCELABLE = ("requires_payment_method", "requires_capture", "requires_confirmation", "requires_action")
CANCELLATION_REASONS = ("abandoned", "duplicate", "fraudulent", "requested_by_customer")
AUTHENTICATION_FAILED = (
    "The provided PaymentMethod has failed authentication. You can provide payment_method_data or a new "
    "PaymentMethod to attempt to fulfill this PaymentIntent again."
)
_CHARGE_STATUS = {"declined": "failed", "processing": "pending", "processing_fail": "pending"}


class Api:
    """Payment operations on one store."""

    def __init__(self, store: Store, config: Config, notify: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.config = config
        self.notify = notify

    # -- events -------------------------------------------------------------
    def emit(self, event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Store an event for the current request; it is delivered if a webhook URL is configured."""
        return self._emit(event_type, obj)[0]

    def emit_encoded(self, event_type: str, obj: dict[str, Any]) -> str:
        """``emit``, answering the JSON text of the (complete) object the event carries: an answer's body."""
        return self._emit(event_type, obj)[1]

    def _emit(self, event_type: str, obj: dict[str, Any]) -> tuple[dict[str, Any], str]:
        cfg = self.config.snapshot()
        event = events.new(event_type, obj, cfg, context.current())
        payload, obj_json = events.encode(event)
        status = "pending" if cfg["webhook_url"] else "no_endpoint"
        self.store.insert_event(event, status, events.due(cfg), payload)
        if cfg["webhook_url"]:  # the dispatcher delivers pending events only
            self.notify()
        return event, obj_json

    def _background(self, pi_id: str) -> RequestContext:
        """The context of work no request caused: the PaymentIntent's API version, no request id."""
        version = self.store.pi_extra(pi_id).get("api_version") or context.DEFAULT_API_VERSION
        return RequestContext(api_version=version)

    # -- create and confirm ---------------------------------------------------
    def validate_create(self, params: dict[str, Any]) -> dict[str, Any]:
        """Check create parameters (errors here are not stored for idempotency)."""
        return intent_params.validate_create(self.store, params)

    def create_payment_intent(
        self, req: dict[str, Any], plan: Plan, api_key: str, idempotency_key: str | None
    ) -> tuple[int, dict[str, Any]]:
        """Create (and confirm) a payment intent; return (status, body) to store and send."""
        pi = intent_params.new_payment_intent(req)
        extra = {"api_version": context.current().api_version, "return_url": req["return_url"]}
        with self.store.transaction():
            if not req["confirm"]:
                pi["payment_method"] = req["pm"].requested if req["pm"] else None
                self.store.insert_payment_intent(pi, api_key, idempotency_key, extra=extra)
                self.emit("payment_intent.created", pi)
                return 200, pi
            pm = payment_methods.consume(self.store, req["pm"], pi["id"], req["customer"])
            fresh_pm = pm if req["pm"].row is None else None  # a magic id's PaymentMethod, just stored
            pi["payment_method"] = pm["id"]
            self.emit("payment_intent.created", dict(pi))
            if plan.outcome == "requires_action":
                pi.update(status="requires_action", next_action=self._next_action(pi, pm, req["return_url"]))
                self.store.insert_payment_intent(pi, api_key, idempotency_key, extra=extra)
                self.emit("payment_intent.requires_action", pi)
                return 200, pi
            return self._charge(pi, (pm, req["pm"].card, fresh_pm), plan, (api_key, idempotency_key), extra)

    def _charge(
        self,
        pi: dict[str, Any],
        used: tuple[dict[str, Any], cards.TestCard, dict[str, Any] | None],
        plan: Plan,
        key: tuple[str, str | None],
        extra: dict[str, Any],
    ) -> tuple[int, dict[str, Any]]:
        """``used``: the PaymentMethod object, its card, and the object again if this request stored it."""
        pm, card, fresh_pm = used
        status = "authorized" if pi["capture_method"] == "manual" else "succeeded"
        decline = plan.decline
        charge = charges.new_row(
            pi, pm["id"], key[1], _CHARGE_STATUS.get(plan.outcome, status), decline.code if decline else None
        )
        pi["latest_charge"] = charge["id"]
        complete_at = planned = None
        if decline is not None:
            pi.update(status="requires_payment_method", payment_method=None)
            pi["last_payment_error"] = self._payment_error(decline, charge["id"], pm)
        elif plan.outcome in ("processing", "processing_fail"):
            pi["status"] = "processing"
            complete_at = time.time() + self.config.get("processing_delay_s")
            planned = "succeeded" if plan.outcome == "processing" else "failed"
        else:
            pi.update(self._paid(pi))
        self.store.insert_payment_intent(pi, key[0], key[1], complete_at, planned, extra=extra)
        self.store.insert_charge(charge)
        disputes.after_charge(self.store, self.config.snapshot(), charge, card)
        # The charge as just stored (no dispute opened on it yet), and its PaymentMethod if stored here too.
        new_pm = {"object": fresh_pm} if fresh_pm is not None else None
        sent = self._emit_outcome(pi, charge, fresh=(charge, new_pm))
        if decline is not None:
            return 402, {"error": {**pi["last_payment_error"], "payment_intent": pi}}
        return 200, sent  # the PaymentIntent's text as its event carries it, not encoded again

    @staticmethod
    def _paid(pi: dict[str, Any]) -> dict[str, Any]:
        if pi["capture_method"] == "manual":
            return {"status": "requires_capture", "amount_capturable": pi["amount"]}
        return {"status": "succeeded", "amount_received": pi["amount"]}

    def _emit_outcome(
        self,
        pi: dict[str, Any],
        charge: dict[str, Any],
        fresh: tuple[dict[str, Any], dict[str, Any] | None] | None = None,
    ) -> str:
        """``charge.<status>`` then ``payment_intent.<status>``, as Stripe sends them; the PaymentIntent's text.

        ``fresh``: the charge's row as this transaction just inserted it (not read back) and its PaymentMethod's
        row if this transaction inserted that too (else it is read)."""
        if fresh is None:
            row, pm, disputed = self.store.get_charge(charge["id"]) or charge, None, None
        else:  # a dispute on a charge this transaction made can only be scheduled, which does not count
            (row, pm), disputed = fresh, False
        status = {"failed": "failed", "pending": "pending"}.get(row["status"], "succeeded")
        # pi: stored by every caller
        self.emit(f"charge.{status}", charges.charge_object(self.store, row, pi, pm=pm, disputed=disputed))
        return self.emit_encoded(
            {
                "requires_payment_method": "payment_intent.payment_failed",
                "processing": "payment_intent.processing",
                "requires_capture": "payment_intent.amount_capturable_updated",
            }.get(pi["status"], "payment_intent.succeeded"),
            pi,
        )

    @staticmethod
    def _payment_error(decline: Decline, charge_id: str | None, pm: dict[str, Any] | None) -> dict[str, Any]:
        err = ApiError(
            402,
            "card_error",
            decline.message,
            code=decline.code,
            param=decline.param,
            decline_code=decline.decline_code,
            advice_code=decline.advice_code,
            charge=charge_id,
            payment_method=pm,
        )
        return err.body

    @staticmethod
    def _next_action(pi: dict[str, Any], pm: dict[str, Any], return_url: str | None) -> dict[str, Any]:
        url = f"{context.current().base_url}/_sandbox/3ds/{pi['id']}"
        if return_url:
            return {"type": "redirect_to_url", "redirect_to_url": {"return_url": return_url, "url": url}}
        sdk = {"type": "three_d_secure_redirect", "stripe_js": url, "source": pm["id"]}
        return {"type": "use_stripe_sdk", "use_stripe_sdk": sdk}

    # -- after creation -------------------------------------------------------
    def complete_challenge(self, pi_id: str, succeed: bool) -> tuple[dict[str, Any], str | None]:
        """Finish a 3-D Secure challenge; return the PaymentIntent and where to send the buyer."""
        with self.store.transaction(), context.use(self._background(pi_id)):
            pi, row = self.retrieve_payment_intent(pi_id), self.store.get_payment_intent_row(pi_id) or {}
            if pi["status"] != "requires_action":
                raise invalid(
                    f"This PaymentIntent has a status of {pi['status']}: there is no challenge to complete.",
                    code="payment_intent_unexpected_state",
                )
            pi["next_action"] = None
            pm = self.store.get_payment_method(pi["payment_method"] or "")
            if pm and cards.by_name(pm["card"]).authentication_fails:
                succeed = False  # the issuer refuses it, whatever the buyer answered
            if succeed:
                charge = charges.new_row(pi, pi["payment_method"], row.get("idempotency_key"), "succeeded")
                if pi["capture_method"] == "manual":
                    charge["status"] = "authorized"
                pi.update(latest_charge=charge["id"], **self._paid(pi))
                self.store.insert_charge(charge)
                self.store.update_payment_intent(pi)
                self._emit_outcome(pi, charge)
            else:
                pi.update(status="requires_payment_method", payment_method=None)
                pi["last_payment_error"] = {
                    "type": "invalid_request_error",
                    "code": "payment_intent_authentication_failure",
                    "doc_url": DOC_URL + "payment-intent-authentication-failure",
                    "message": AUTHENTICATION_FAILED,
                    "payment_method": pm["object"] if pm else None,
                }
                self.store.update_payment_intent(pi)
                self.emit("payment_intent.payment_failed", pi)
            return pi, self.store.pi_extra(pi_id).get("return_url")

    def complete_processing(self, now: float | None = None) -> int:
        """Finish processing payment intents whose time has come; return how many."""
        done = 0
        for row in self.store.due_processing(time.time() if now is None else now):
            with self.store.transaction(), context.use(self._background(row["id"])):
                pi = self.store.get_payment_intent(row["id"])
                if pi is None or pi["status"] != "processing":
                    continue
                pm = self.store.get_payment_method(pi["payment_method"] or "")
                if row["planned_outcome"] == "failed":
                    decline = GENERIC_DECLINE
                    pi["last_payment_error"] = self._payment_error(
                        decline, pi["latest_charge"], pm["object"] if pm else None
                    )
                    pi.update(status="requires_payment_method", payment_method=None)
                    self.store.update_charge(pi["latest_charge"], status="failed", failure_code=decline.code)
                else:
                    pi.update(self._paid(pi))
                    self.store.update_charge(pi["latest_charge"], status="succeeded")
                self.store.update_payment_intent(pi)
                self._emit_outcome(pi, {"id": pi["latest_charge"]})
                done += 1
        return done

    def complete_refunds(self, now: float | None = None) -> int:
        """Fail the pending refunds (a ``refundFail`` card's) whose delay has passed; return how many."""
        now = time.time() if now is None else now
        done = 0
        for row in self.store.due_pending_refunds(now - self.config.get("refund_failure_delay_s")):
            with self.store.transaction(), context.use(self._background(row["payment_intent"])):
                done += refunds.fail(self.store, self.emit, row["id"])
        return done

    def cancel_payment_intent(self, pi_id: str, req: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """``POST /v1/payment_intents/{id}/cancel``."""
        pi = self.retrieve_payment_intent(pi_id)
        if pi["status"] not in CANCELABLE:
            raise invalid(
                f"You cannot cancel this PaymentIntent because it has a status of {pi['status']}. Only a "
                f"PaymentIntent with one of the following statuses may be canceled: {', '.join(CANCELABLE)}.",
                code="payment_intent_unexpected_state",
            )
        if pi["status"] == "requires_capture":
            self.store.update_charge(pi["latest_charge"], status="released")
        pi.update(
            status="canceled",
            canceled_at=int(time.time()),
            cancellation_reason=req["cancellation_reason"],
            next_action=None,
            amount_capturable=0,
        )
        self.store.update_payment_intent(pi)
        self.emit("payment_intent.canceled", pi)
        return 200, pi

    def capture_payment_intent(self, pi_id: str, req: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """``POST /v1/payment_intents/{id}/capture`` (the whole authorized amount)."""
        pi = self.retrieve_payment_intent(pi_id)
        if pi["status"] != "requires_capture":
            raise invalid(
                f"This PaymentIntent could not be captured because it has a status of {pi['status']}. Only a "
                "PaymentIntent with one of the following statuses may be captured: requires_capture.",
                code="payment_intent_unexpected_state",
            )
        amount = req["amount_to_capture"]
        if amount is not None and amount != pi["amount_capturable"]:
            raise invalid("The sandbox captures the whole authorized amount only.", param="amount_to_capture")
        self.store.update_charge(pi["latest_charge"], status="succeeded")
        pi.update(status="succeeded", amount_received=pi["amount"], amount_capturable=0)
        self.store.update_payment_intent(pi)
        row = self.store.get_charge(pi["latest_charge"])
        self.emit("charge.captured", charges.charge_object(self.store, row or {}))
        self.emit("payment_intent.succeeded", pi)
        return 200, pi

    # -- reads ----------------------------------------------------------------
    def retrieve_payment_intent(self, pi_id: str) -> dict[str, Any]:
        """GET /v1/payment_intents/{id}."""
        pi = self.store.get_payment_intent(pi_id)
        if pi is None:
            raise not_found("payment_intent", pi_id)
        return pi

    def search_payment_intents(self, api_key: str, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/payment_intents/search (``metadata['k']:'v'`` only), lagging ``search_lag_s``."""
        validation.check_known(params, validation.SEARCH)
        m = _SEARCH.match(params.get("query") or "")
        if not m:
            raise invalid(
                "Only queries of the form metadata['key']:'value' are supported by the sandbox.",
                param="query",
                code="parameter_invalid_string",
            )
        lag = self.config.get("search_lag_s")
        data = self.store.search_payment_intents(api_key, m["key"], m["value"], lag)
        return {
            "object": "search_result",
            "data": data,
            "has_more": False,
            "next_page": None,
            "url": "/v1/payment_intents/search",
            "total_count": len(data),
        }

    # -- the other resources ----------------------------------------------------
    def create_refund(self, req: dict[str, Any], idempotency_key: str | None) -> tuple[int, dict[str, Any]]:
        """POST /v1/refunds."""
        return refunds.create(self.store, self.emit, req, idempotency_key)

    def create_customer(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """POST /v1/customers."""
        sent: dict[str, str] = {}

        def emit(event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
            event, sent[event_type] = self._emit(event_type, obj)
            return event

        customers.create(self.store, emit, params)
        return 200, sent["customer.created"]  # the customer as its event carries it (attaching leaves it as is)

    def attach_payment_method(self, pm_id: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """POST /v1/payment_methods/{id}/attach."""
        return 200, payment_methods.attach(self.store, self.emit, pm_id, params)

    def charges_report(self) -> dict[str, Any]:
        """The sandbox's own record of money moved, with double charges."""
        return charges.report(self.store)


class ProcessingWorker(threading.Thread):
    """Completes ``processing`` payment intents, and fails a ``refundFail`` card's pending refunds,
    when their delay has passed."""

    def __init__(self, api: Api, stop: threading.Event, interval: float = 0.05) -> None:
        super().__init__(name="psp-sandbox-processing", daemon=True)
        self.api, self.stop, self.interval = api, stop, interval

    def run(self) -> None:
        """Poll until stopped."""
        while not self.stop.wait(self.interval):
            try:
                self.api.complete_processing()
                self.api.complete_refunds()
                disputes.open_due(self.api)
            except Exception as exc:  # noqa: BLE001 - keep the worker alive
                print(f"psp_sandbox: processing worker error: {exc!r}", flush=True)
