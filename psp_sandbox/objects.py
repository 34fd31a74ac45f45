"""Stripe-shaped objects at the output boundary.

The operations in ``api.py`` build only the fields the sandbox reasons about.  Stripe returns
every field of an object, nullable ones as ``null``, so ``complete`` fills in whatever is
missing with the value Stripe would send for a test-mode card payment: ``null`` where the field
is nullable, ``{}``/``[]`` or a fully populated nested object where it is not (and where a card
payment always carries one, e.g. a charge's ``payment_method_details``).  Fields already set are
kept as they are; completing twice changes nothing.

Standard library only: the field lists are written out here, the conformance test
(``tests/test_conformance.py``) checks them against the official SDK's annotations for the
pinned API version.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from . import object_fields as fields
from .encoding import Encoded

API_VERSION = "2026-10-28.endive"  # the API version these shapes follow (stripe-python 16.1.0)


def _digest(value: str, n: int = 24) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:n]


def _card(pm_id: Any) -> tuple[str, str, str]:
    name = str(pm_id or "").removeprefix("pm_card_").removeprefix("visa_")
    return fields.CARDS.get(name, ("visa", "4242", "credit"))


def _exp_year() -> int:
    return time.gmtime().tm_year + 3


# The nulls ``_fill`` adds, by (nulls, the keys already there): objects of a kind have the same keys. Bounded.
_MISSING: dict[tuple[tuple[str, ...], tuple[str, ...]], dict[str, None]] = {}


def _fill(obj: dict[str, Any], nulls: tuple[str, ...] = (), **values: Any) -> dict[str, Any]:
    """A copy of ``obj`` with each missing key set: from ``values`` (callables get the copy), else null."""
    out = dict(obj)
    for key, value in values.items():
        if key not in out:
            out[key] = value(out) if callable(value) else value
    if nulls:  # the missing ones, in the order of ``nulls`` (a setdefault each, without a Python loop)
        shape = (nulls, tuple(out))
        missing = _MISSING.get(shape)
        if missing is None:
            missing = dict.fromkeys(nulls)
            for key in missing.keys() & out.keys():
                del missing[key]
            if len(_MISSING) < 1024:
                _MISSING[shape] = missing
        out.update(missing)
    return out


def _nested(obj: dict[str, Any], key: str, fn: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Complete ``obj[key]`` in place with ``fn`` when it is an object."""
    if isinstance(obj.get(key), dict):
        obj[key] = fn(obj[key])


def _address(obj: dict[str, Any] | None = None) -> dict[str, Any]:
    return _fill(obj or {}, fields.ADDRESS_NULLS)


def _billing_details(obj: dict[str, Any] | None = None) -> dict[str, Any]:
    out = _fill(obj or {}, fields.names("email name phone tax_id"), address=lambda o: _address())
    _nested(out, "address", _address)
    return out


# -- PaymentIntent ------------------------------------------------------------
def _card_options(obj: dict[str, Any]) -> dict[str, Any]:
    return _fill(obj, fields.PI_CARD_OPTION_NULLS, request_three_d_secure="automatic")


def _payment_method_options(obj: dict[str, Any]) -> dict[str, Any]:
    out = _fill(obj, fields.PI_PMO_TYPES)
    _nested(out, "card", _card_options)
    return out


def _next_action(obj: dict[str, Any]) -> dict[str, Any]:
    out = _fill(obj, fields.NEXT_ACTION_NULLS, type="use_stripe_sdk")
    _nested(out, "redirect_to_url", lambda r: _fill(r, fields.names("return_url url")))
    return out


# The payment_method_options of every PaymentIntent that has none of its own (all the sandbox makes): one
# read-only object for all, encoded once (``dumps_complete`` splices its text in).
_DEFAULT_PMO = Encoded(_payment_method_options({"card": {}}))


def payment_intent(pi: dict[str, Any]) -> dict[str, Any]:
    """Complete a PaymentIntent."""
    types = pi.get("payment_method_types") or ["card"]
    out = _fill(
        pi,
        fields.PI_NULLS,
        amount=0,
        amount_capturable=0,
        amount_received=0,
        amount_details=lambda o: {
            **dict.fromkeys(fields.names("discount_amount error line_items shipping tax")),
            "tip": {"amount": None},
        },
        capture_method="automatic_async",
        client_secret=lambda o: f"{o.get('id')}_secret_{_digest(str(o.get('id')), 25)}",
        confirmation_method="automatic",
        created=lambda o: int(time.time()),
        livemode=False,
        metadata=lambda o: {},
        payment_method_types=lambda o: list(types),
        payment_method_options=lambda o: _DEFAULT_PMO if "card" in types else None,
    )
    _nested(out, "automatic_payment_methods", _automatic_payment_methods)
    if out["payment_method_options"] is not _DEFAULT_PMO:  # complete already
        _nested(out, "payment_method_options", _payment_method_options)
    _nested(out, "next_action", _next_action)
    _nested(out, "last_payment_error", lambda e: _error(e, top=False))
    _nested(out, "latest_charge", charge)
    _nested(out, "payment_method", payment_method)
    return out


def _automatic_payment_methods(obj: dict[str, Any]) -> dict[str, Any]:
    return _fill(obj, enabled=False, allow_redirects=lambda o: "always" if o["enabled"] else None)


# -- errors -------------------------------------------------------------------
def _error(err: dict[str, Any], top: bool = True) -> dict[str, Any]:
    out = _fill(err, (*fields.ERROR_NULLS, "user_message") if top else fields.ERROR_NULLS, type="api_error")
    _nested(out, "payment_intent", payment_intent)
    _nested(out, "payment_method", payment_method)
    return out


def error(err: dict[str, Any]) -> dict[str, Any]:
    """Complete the object inside an error response's ``{"error": ...}``."""
    return _error(err, top=True)


# -- Charge -------------------------------------------------------------------
def _charge_card(ch: dict[str, Any]) -> dict[str, Any]:
    brand, last4, funding = _card(ch.get("payment_method"))
    ok = ch.get("status") == "succeeded"
    return _fill(
        {
            "amount_authorized": ch.get("amount") if ok else None,
            "brand": brand,
            "checks": _fill({"cvc_check": "pass" if ok else None}, fields.CHECKS_NULLS),
            "country": "US",
            "exp_month": 12,
            "exp_year": _exp_year(),
            "extended_authorization": {"status": "disabled"},
            "fingerprint": _digest(f"{brand}{last4}", 16),
            "funding": funding,
            "incremental_authorization": {"status": "unavailable"},
            "last4": last4,
            "multicapture": {"status": "unavailable"},
            "network": brand,
            "network_token": {"used": False},
            "overcapture": {"maximum_amount_capturable": ch.get("amount") or 0, "status": "unavailable"},
            "regulated_status": "unregulated",
        },
        fields.CHARGE_CARD_NULLS,
    )


def _outcome(ch: dict[str, Any]) -> dict[str, Any] | None:
    status = ch.get("status")
    if status == "succeeded":
        values = {
            "network_status": "approved_by_network",
            "risk_level": "normal",
            "risk_score": int(_digest(str(ch.get("id")), 4), 16) % 60,
            "seller_message": "Payment complete.",
            "type": "authorized",
        }
    elif status == "failed":
        code = ch.get("failure_code") or "card_declined"
        values = {
            "network_status": "declined_by_network",
            "reason": "generic_decline" if code == "card_declined" else code,
            "risk_level": "normal",
            "risk_score": int(_digest(str(ch.get("id")), 4), 16) % 60,
            "seller_message": "The bank did not return any further details with this decline.",
            "type": "issuer_declined",
        }
    else:
        return None
    return _fill(values, fields.OUTCOME_NULLS)


def _payment_method_details(ch: dict[str, Any]) -> dict[str, Any] | None:
    if not ch.get("payment_method"):
        return None
    return _fill({"card": _charge_card(ch), "type": "card"}, fields.CHARGE_PMD_TYPES)


def charge(ch: dict[str, Any]) -> dict[str, Any]:
    """Complete a Charge."""
    ok = ch.get("status") == "succeeded"
    out = _fill(
        ch,
        fields.CHARGE_NULLS,
        amount=0,
        amount_captured=lambda o: o["amount"] if ok else 0,
        amount_refunded=0,
        balance_transaction=lambda o: "txn_" + _digest(str(o.get("id"))) if ok else None,
        billing_details=lambda o: _billing_details(),
        captured=ok,
        created=lambda o: int(time.time()),
        disputed=False,
        livemode=False,
        metadata=lambda o: {},
        outcome=_outcome,
        paid=ok,
        payment_method_details=_payment_method_details,
        refunded=False,
        status="pending",
    )
    _nested(out, "billing_details", _billing_details)
    _nested(out, "outcome", lambda o: _fill(o, fields.OUTCOME_NULLS, type="authorized"))
    _nested(out, "payment_method_details", lambda d: _fill(d, fields.CHARGE_PMD_TYPES, type="card"))
    _nested(out, "payment_intent", payment_intent)
    return out


# -- Refund -------------------------------------------------------------------
def _destination_details(obj: dict[str, Any]) -> dict[str, Any]:
    return _fill(obj, fields.REFUND_DEST_TYPES, type="card")


def refund(rf: dict[str, Any]) -> dict[str, Any]:
    """Complete a Refund."""
    ok = rf.get("status") == "succeeded"
    out = _fill(
        rf,
        fields.REFUND_NULLS,
        amount=0,
        balance_transaction=lambda o: "txn_" + _digest(str(o.get("id"))) if ok else None,
        created=lambda o: int(time.time()),
        destination_details=lambda o: _destination_details(
            {
                "card": {
                    "reference": None,
                    "reference_status": "pending",
                    "reference_type": "acquirer_reference_number",
                    "type": "refund",
                },
                "type": "card",
            }
        ),
        metadata=lambda o: {},
    )
    _nested(out, "destination_details", _destination_details)
    _nested(out, "charge", charge)
    _nested(out, "payment_intent", payment_intent)
    return out


# -- Customer, PaymentMethod --------------------------------------------------
def customer(cus: dict[str, Any]) -> dict[str, Any]:
    """Complete a Customer."""
    out = _fill(
        cus,
        fields.CUSTOMER_NULLS,
        balance=0,
        created=lambda o: int(time.time()),
        delinquent=False,
        invoice_credit_balance=lambda o: {},
        invoice_prefix=lambda o: _digest(str(o.get("id")), 8).upper(),
        invoice_settings=lambda o: _fill({}, fields.INVOICE_SETTINGS_NULLS),
        livemode=False,
        metadata=lambda o: {},
        next_invoice_sequence=1,
        preferred_locales=lambda o: [],
        tax_exempt="none",
    )
    _nested(out, "invoice_settings", lambda s: _fill(s, fields.INVOICE_SETTINGS_NULLS))
    _nested(out, "address", _address)
    return out


def _pm_card(pm_id: Any, obj: dict[str, Any] | None = None) -> dict[str, Any]:
    brand, last4, funding = _card(pm_id)
    out = _fill(
        obj or {},
        fields.PM_CARD_NULLS,
        brand=brand,
        checks=lambda o: _fill({"cvc_check": "unchecked"}, fields.CHECKS_NULLS),
        country="US",
        display_brand=lambda o: o["brand"].replace("amex", "american_express"),
        exp_month=12,
        exp_year=lambda o: _exp_year(),
        fingerprint=lambda o: _digest(f"{o['brand']}{o.get('last4', last4)}", 16),
        funding=funding,
        last4=last4,
        networks=lambda o: {"available": [o["brand"]], "preferred": None},
        regulated_status="unregulated",
        three_d_secure_usage=lambda o: {"supported": True},
    )
    _nested(out, "checks", lambda c: _fill(c, fields.CHECKS_NULLS))
    return out


def payment_method(pm: dict[str, Any]) -> dict[str, Any]:
    """Complete a PaymentMethod (a card unless it says otherwise)."""
    out = _fill(
        pm,
        fields.PM_NULLS,
        allow_redisplay="unspecified",
        billing_details=lambda o: _billing_details(),
        created=lambda o: int(time.time()),
        livemode=False,
        metadata=lambda o: {},
        type="card",
        card=lambda o: _pm_card(o.get("id")) if o["type"] == "card" else None,
    )
    _nested(out, "billing_details", _billing_details)
    _nested(out, "card", lambda c: _pm_card(out.get("id"), c))
    _nested(out, "customer", customer)
    return out


# -- Event, lists -------------------------------------------------------------
def event(evt: dict[str, Any]) -> dict[str, Any]:
    """Complete an Event (and the object it carries)."""
    out = _fill(
        evt,
        fields.EVENT_NULLS,
        api_version=API_VERSION,
        created=lambda o: int(time.time()),
        livemode=False,
        pending_webhooks=0,
        request=lambda o: {"id": None, "idempotency_key": None},
    )
    _nested(out, "request", lambda r: _fill(r, fields.names("id idempotency_key")))
    if isinstance(out.get("data"), dict):
        data = _fill(out["data"], ("previous_attributes",))
        _nested(data, "object", complete)
        out["data"] = data
    return out


def _list(lst: dict[str, Any]) -> dict[str, Any]:
    out = _fill(lst, has_more=False, data=lambda o: [])
    out["data"] = [complete(item) if isinstance(item, dict) else item for item in out["data"]]
    return out


_BY_OBJECT: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "payment_intent": payment_intent,
    "charge": charge,
    "refund": refund,
    "event": event,
    "customer": customer,
    "payment_method": payment_method,
    "list": _list,
    "search_result": _list,
}


def complete(obj: Any) -> Any:
    """Complete a response body: a Stripe object (by its ``object``), a list, or ``{"error": {...}}``.

    Anything else (sandbox-only payloads, raw strings) is returned unchanged.
    """
    if not isinstance(obj, dict):
        return obj
    fn = _BY_OBJECT.get(str(obj.get("object")))
    if fn is not None:
        return fn(obj)
    if "object" not in obj and isinstance(obj.get("error"), dict):
        return {**obj, "error": error(obj["error"])}
    return obj
