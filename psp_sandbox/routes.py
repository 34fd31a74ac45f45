"""The ``/v1`` endpoints: which operation answers which method and path.

A POST is an ``Operation``: ``validate`` (errors are not saved against the idempotency key),
``plan`` (faults: PaymentIntent confirmation, and refunds' saved 500s) and ``execute`` (its answer is saved).
A GET is a plain function of the path's id and the query parameters.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import behaviour, charges, connect, customers, disputes, payment_methods, refunds, validation
from .behaviour import Plan

if TYPE_CHECKING:
    from .server import Sandbox

_ID = r"([A-Za-z0-9_]+)"
Result = tuple[int, dict[str, Any] | str]  # a dict, or the JSON text of a complete object


@dataclass(frozen=True)
class Operation:
    """One idempotent POST."""

    validate: Callable[[dict[str, Any]], Any]
    execute: Callable[[Any, Plan, str, str | None], Result]
    plan: Callable[[Any, str, str | None], Plan] | None = None


def _known(schema: validation.Schema) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def check(params: dict[str, Any]) -> dict[str, Any]:
        validation.check_known(params, schema)
        return params

    return check


def _cancel(params: dict[str, Any]) -> dict[str, Any]:
    validation.check_known(params, validation.PI_CANCEL)
    reason = validation.parse_enum(
        params.get("cancellation_reason"),
        "cancellation_reason",
        ("abandoned", "duplicate", "fraudulent", "requested_by_customer"),
    )
    return {"cancellation_reason": reason}


def _capture(params: dict[str, Any]) -> dict[str, Any]:
    validation.check_known(params, {"amount_to_capture": validation.LEAF, "expand": validation.LIST})
    raw = params.get("amount_to_capture")
    return {"amount_to_capture": validation.parse_amount(raw, "amount_to_capture") if raw else None}


def post(sb: Sandbox, path: str) -> Operation | None:
    """The operation for ``POST path``, or None."""
    api, store = sb.api, sb.store

    def pi_plan(req: dict[str, Any], api_key: str, key: str | None) -> Plan:
        if not req["confirm"]:
            return Plan()
        bump = lambda: store.bump_flaky(api_key, key or "")  # noqa: E731
        return behaviour.decide(req["pm"].card, req["off_session"], sb.config, bump)

    if path == "/v1/payment_intents":
        return Operation(api.validate_create, lambda r, p, a, k: api.create_payment_intent(r, p, a, k), pi_plan)
    def refund_plan(req: dict[str, Any], api_key: str, key: str | None) -> Plan:
        return Plan(pre_fault="error") if sb.config.chance(sb.config.get("refund_error_rate")) else Plan()

    if path == "/v1/refunds":
        return Operation(refunds.validate, lambda r, p, a, k: api.create_refund(r, k), refund_plan)
    if path == "/v1/customers":
        return Operation(_known(validation.CUSTOMER_CREATE), lambda r, p, a, k: api.create_customer(r))
    if path == "/v1/payment_methods":
        return Operation(_known(validation.PM_CREATE), lambda r, p, a, k: (200, payment_methods.create(store, r)))
    if m := re.fullmatch(rf"/v1/payment_intents/{_ID}/cancel", path):
        return Operation(_cancel, lambda r, p, a, k: api.cancel_payment_intent(m[1], r))
    if m := re.fullmatch(rf"/v1/payment_intents/{_ID}/capture", path):
        return Operation(_capture, lambda r, p, a, k: api.capture_payment_intent(m[1], r))
    if m := re.fullmatch(rf"/v1/payment_methods/{_ID}/attach", path):
        return Operation(_known(validation.PM_ATTACH), lambda r, p, a, k: api.attach_payment_method(m[1], r))
    if (dispute_op := disputes.post(api, path)) is not None:  # /v1/disputes/{id}, /close
        return Operation(*dispute_op)
    if (connect_op := connect.post(sb, path)) is not None:  # accounts, transfers, payouts, webhook endpoints
        return Operation(*connect_op)
    return None


def get(sb: Sandbox, path: str, api_key: str, params: dict[str, Any]) -> dict[str, Any] | None:
    """The answer to ``GET path?params``, or None for an unknown path."""
    api, store = sb.api, sb.store
    if path == "/v1/payment_intents/search":
        return api.search_payment_intents(api_key, params)
    if path == "/v1/refunds":
        return refunds.list_(store, params)
    if (dispute_answer := disputes.get(api, path, params)) is not None:
        return dispute_answer
    if (connect_answer := connect.get(sb, path, params)) is not None:
        return connect_answer
    readers: dict[str, Callable[[str], dict[str, Any]]] = {
        "payment_intents": api.retrieve_payment_intent,
        "refunds": lambda i: refunds.retrieve(store, i),
        "charges": lambda i: charges.retrieve(store, i),
        "customers": lambda i: customers.retrieve(store, i),
        "payment_methods": lambda i: payment_methods.retrieve(store, i),
    }
    m = re.fullmatch(rf"/v1/({'|'.join(readers)})/{_ID}", path)
    if not m:
        return None
    validation.check_known(params, validation.RETRIEVE)
    return readers[m[1]](m[2])


CHALLENGE_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>3D Secure test payment</title></head>
<body style="font-family: sans-serif; max-width: 28em; margin: 3em auto">
<h1>3D Secure 2 test page</h1>
<p>Sandbox test payment of <b>{amount}</b> for PaymentIntent <code>{pi}</code>.</p>
<form method="post" action="/_sandbox/3ds/{pi}">
<button name="outcome" value="succeed">Complete authentication</button>
<button name="outcome" value="fail">Fail authentication</button>
</form></body></html>
"""


def challenge_page(pi: dict[str, Any]) -> str:
    """The tiny page standing in for the issuer's 3-D Secure challenge."""
    amount = f"{pi['amount']} {pi['currency']}"
    return CHALLENGE_PAGE.format(amount=html.escape(amount), pi=html.escape(pi["id"]))
