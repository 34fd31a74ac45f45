"""PaymentIntent create parameters, checked as Stripe's current API checks them.

* ``payment_method_types`` and ``automatic_payment_methods`` are exclusive; with neither,
  automatic payment methods are enabled (redirects allowed), so confirming needs a
  ``return_url`` unless ``off_session=true`` or ``allow_redirects=never``.
* ``off_session`` only with ``confirm=true``; enums (``capture_method`` defaults to
  ``automatic_async``); amounts and currencies by ``currencies``; a payment method that
  exists and may be used (``payment_methods``); a customer that exists.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from . import context, currencies, payment_methods, validation
from .errors import invalid, missing, required
from .store import Store, new_id

CAPTURE_METHODS = ("automatic", "automatic_async", "manual")
PAYMENT_METHOD_TYPES_REMOVED = "2026-09-30"  # changelog: endive removes writable payment_method_types
ALLOWED_TYPES_ADDED = "2026-07-29"  # changelog: dahlia adds allowed_payment_method_types
CARD_TYPES = ("card", "link")  # types that never redirect the buyer
_STRINGS = ("return_url", "description", "receipt_email", "statement_descriptor", "statement_descriptor_suffix")
RETURN_URL_REQUIRED = (
    "A `return_url` must be specified because this Payment Intent is configured to automatically accept the "
    "payment methods enabled in the Dashboard, some of which may require a full page redirect to succeed. If you "
    "do not want to accept redirect-based payment methods, set `automatic_payment_methods[enabled]` to `true` and "
    "`automatic_payment_methods[allow_redirects]` to `never` when creating Setup Intents and Payment Intents."
)


def _off_session(raw: Any, confirm: bool) -> bool:
    if raw in (None, ""):
        return False
    if raw not in ("true", "false", "one_off", "recurring"):
        raise invalid("Invalid off_session: must be a boolean, one_off or recurring", param="off_session")
    if not confirm:
        raise invalid("`off_session` can only be used when `confirm` is set to true.", param="off_session")
    return raw != "false"


def _types(params: dict[str, Any], name: str) -> list[str] | None:
    raw = params.get(name)
    if raw in (None, ""):
        return None
    types = validation.as_list(raw, name)
    if not types or not all(isinstance(t, str) and t for t in types):
        raise invalid(f"Invalid array: {name}", param=name)
    return types


def _payment_method_types(params: dict[str, Any], api_version: str) -> dict[str, Any]:
    """Which payment method types, and whether a redirect (so a ``return_url``) may be needed.

    Dynamic payment methods (``automatic_payment_methods``) are the default. Since
    2026-09-30.endive ``payment_method_types`` is refused; ``allowed_payment_method_types``
    (since 2026-07-29.dahlia) restricts the types and excludes every other way of choosing them.
    """
    version = api_version[:10]
    given, allowed = _types(params, "payment_method_types"), _types(params, "allowed_payment_method_types")
    excluded, apm = _types(params, "excluded_payment_method_types"), params.get("automatic_payment_methods")
    if given is not None and version >= PAYMENT_METHOD_TYPES_REMOVED:
        raise invalid(
            "The `payment_method_types` parameter is no longer supported on this API version. Use "
            "`allowed_payment_method_types`, `excluded_payment_method_types` or dynamic payment methods instead.",
            param="payment_method_types",
            code="payment_method_types_no_longer_supported",
        )
    if allowed is not None and version < ALLOWED_TYPES_ADDED:
        raise invalid("Received unknown parameter: allowed_payment_method_types", "allowed_payment_method_types",
                      "parameter_unknown")  # fmt: skip
    chosen = [n for n, v in (("allowed_payment_method_types", allowed), ("automatic_payment_methods", apm),
                             ("excluded_payment_method_types", excluded), ("payment_method_types", given))
              if v not in (None, "")]  # fmt: skip
    if len(chosen) > 1 and set(chosen) != {"automatic_payment_methods", "excluded_payment_method_types"}:
        raise invalid(
            f"You may only specify one of these parameters: {', '.join(chosen)}.",
            param=chosen[0],
            code="parameters_exclusive",
        )
    out: dict[str, Any] = {"allowed": allowed, "excluded": excluded, "automatic_payment_methods": None}
    if given is not None:
        return {**out, "types": given, "redirects": False}
    if allowed is not None:
        return {**out, "types": [t for t in allowed if t in CARD_TYPES] or allowed, "redirects": bool(
            set(allowed) - set(CARD_TYPES))}  # fmt: skip
    apm = apm if isinstance(apm, dict) else {}
    if apm and apm.get("enabled") in (None, ""):
        raise required("automatic_payment_methods[enabled]")
    if not validation.parse_bool(apm.get("enabled"), "automatic_payment_methods[enabled]", default=True):
        return {**out, "types": ["card"], "redirects": False}
    redirects = validation.parse_enum(
        apm.get("allow_redirects"), "automatic_payment_methods[allow_redirects]", ("always", "never"), "always"
    )
    apm_out = {"enabled": True, "allow_redirects": redirects}
    return {**out, "types": ["card"], "automatic_payment_methods": apm_out, "redirects": redirects != "never"}


def validate_create(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """Check create parameters (errors here are not stored for idempotency)."""
    validation.check_known(params, validation.PI_CREATE)
    amount = validation.parse_amount(params.get("amount"))
    if params.get("currency") in (None, ""):
        raise required("currency")
    currency = currencies.check_currency(str(params["currency"]))
    currencies.check_amount(amount, currency)
    confirm = validation.parse_bool(params.get("confirm"), "confirm")
    types = _payment_method_types(params, context.current().api_version)
    for flag in ("error_on_requires_action", "use_stripe_sdk"):
        validation.parse_bool(params.get(flag), flag)
    req: dict[str, Any] = {
        "amount": amount,
        "currency": currency,
        "confirm": confirm,
        "off_session": _off_session(params.get("off_session"), confirm),
        "capture_method": validation.parse_enum(
            params.get("capture_method"), "capture_method", CAPTURE_METHODS, "automatic_async"
        ),
        "confirmation_method": validation.parse_enum(
            params.get("confirmation_method"), "confirmation_method", ("automatic", "manual"), "automatic"
        ),
        "setup_future_usage": validation.parse_enum(
            params.get("setup_future_usage"), "setup_future_usage", ("off_session", "on_session")
        ),
        "payment_method_types": types["types"],
        "automatic_payment_methods": types["automatic_payment_methods"],
        "allowed_payment_method_types": types["allowed"],
        "excluded_payment_method_types": types["excluded"],
        "redirects": types["redirects"],
        "metadata": validation.parse_metadata(params.get("metadata")),
        "customer": _customer(store, params.get("customer")),
        "pm": None,
    }
    for key in _STRINGS:
        req[key] = validation.parse_string(params.get(key), key)
    _check_confirmation(store, req, params.get("payment_method"))
    return req


def _customer(store: Store, raw: Any) -> str | None:
    customer = validation.parse_string(raw, "customer")
    if customer and not store.customer_exists(customer):
        raise missing("customer", customer, "customer")
    return customer


def _check_confirmation(store: Store, req: dict[str, Any], pm_id: Any) -> None:
    if pm_id not in (None, ""):
        req["pm"] = payment_methods.resolve(store, pm_id)
        payment_methods.check_usable(req["pm"], req["customer"])
    if not req["confirm"]:
        return
    if req["pm"] is None:
        raise invalid(
            "You cannot confirm this PaymentIntent because it's missing a payment method.",
            param="payment_method",
            code="payment_intent_unexpected_state",
        )
    if req["off_session"] and req["setup_future_usage"]:
        raise invalid(
            "You cannot confirm with the `off_session` parameter when `setup_future_usage` is also set on "
            "the PaymentIntent because you cannot set up future usages when processing payments off-session.",
            param="setup_future_usage",
        )
    if req["redirects"] and not req["off_session"] and not req["return_url"]:
        raise invalid(RETURN_URL_REQUIRED, param="return_url")


def new_payment_intent(req: dict[str, Any]) -> dict[str, Any]:
    """The PaymentIntent a validated create request (``validate_create``) makes, before confirmation."""
    pi_id = new_id("pi")
    return {
        "id": pi_id,
        "object": "payment_intent",
        "allowed_payment_method_types": req["allowed_payment_method_types"],
        "amount": req["amount"],
        "amount_capturable": 0,
        "amount_received": 0,
        "automatic_payment_methods": req["automatic_payment_methods"],
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": req["capture_method"],
        "client_secret": f"{pi_id}_secret_{secrets.token_urlsafe(18).replace('-', 'x').replace('_', 'y')}",
        "confirmation_method": req["confirmation_method"],
        "created": int(time.time()),
        "currency": req["currency"],
        "customer": req["customer"],
        "description": req["description"],
        "excluded_payment_method_types": req["excluded_payment_method_types"],
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": req["metadata"],
        "next_action": None,
        "payment_method": None,
        "payment_method_types": req["payment_method_types"],
        "processing": None,
        "receipt_email": req["receipt_email"],
        "setup_future_usage": req["setup_future_usage"],
        "statement_descriptor": req["statement_descriptor"],
        "statement_descriptor_suffix": req["statement_descriptor_suffix"],
        "status": "requires_confirmation" if req["pm"] else "requires_payment_method",
    }
