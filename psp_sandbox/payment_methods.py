"""PaymentMethods as Stripe has them: test ids, created cards, attachment, single use.

* A magic test id (``pm_card_visa``) is reusable: each use makes a new ``pm_`` with the
  same behaviour (used by one PaymentIntent, or attached to a customer), as on Stripe.
* ``POST /v1/payment_methods`` makes a ``pm_`` from a test card number or token; only
  brand, last4 and expiry are kept, never the number.
* A ``pm_`` not attached to a customer serves one PaymentIntent; attached, it serves any
  PaymentIntent of that customer (and only with ``customer`` set).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import cards, validation
from .cards import TestCard
from .errors import ApiError, invalid, missing, not_found, required
from .store import Store, new_id

Emit = Callable[[str, dict[str, Any]], Any]

CONSUMED = (
    "The provided PaymentMethod was previously used with a PaymentIntent without Customer attachment, "
    "shared with a connected account without Customer attachment, or was detached from a Customer. "
    "It may not be used again. To use a PaymentMethod multiple times, you must attach it to a Customer first."
)


@dataclass(frozen=True)
class Resolved:
    """A payment method named in a request: its behaviour and, unless magic, its stored row."""

    requested: str
    card: TestCard
    row: dict[str, Any] | None

    @property
    def customer(self) -> str | None:
        """The customer it is attached to."""
        return self.row["customer"] if self.row else None


def card_object(card: TestCard, exp_month: int = 12, exp_year: int | None = None) -> dict[str, Any]:
    """The ``card`` hash of a PaymentMethod."""
    return {
        "brand": card.brand,
        "checks": {"address_line1_check": None, "address_postal_code_check": None, "cvc_check": "unchecked"},
        "country": card.country,
        "display_brand": card.brand.replace("amex", "american_express"),
        "exp_month": exp_month,
        "exp_year": exp_year or time.gmtime().tm_year + 3,
        "fingerprint": hashlib.sha256(card.number.encode()).hexdigest()[:16],
        "funding": card.funding,
        "generated_from": None,
        "last4": card.last4,
        "networks": {"available": [card.brand], "preferred": None},
        "regulated_status": "unregulated",
        "three_d_secure_usage": {"supported": True},
        "wallet": None,
    }


def new_object(card: TestCard, **fields: Any) -> dict[str, Any]:
    """A new PaymentMethod object for ``card``."""
    exp = {k: fields.pop(k) for k in ("exp_month", "exp_year") if k in fields}
    return {
        "id": new_id("pm"),
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": {"address": None, "email": None, "name": None, "phone": None, "tax_id": None},
        "card": card_object(card, **exp),
        "created": int(time.time()),
        "customer": None,
        "livemode": False,
        "metadata": {},
        "type": "card",
        **fields,
    }


def resolve(store: Store, pm_id: Any, param: str = "payment_method") -> Resolved:
    """The payment method named ``pm_id``, or Stripe's 400 ``resource_missing``."""
    if not isinstance(pm_id, str) or not pm_id:
        raise invalid(f"Invalid string: {pm_id!r}", param=param)
    card = cards.magic(pm_id)
    if card is not None:
        return Resolved(pm_id, card, None)
    row = store.get_payment_method(pm_id)
    if row is None:
        raise missing("PaymentMethod", pm_id, param)
    return Resolved(pm_id, cards.by_name(row["card"]), row)


def check_usable(pm: Resolved, customer: str | None) -> None:
    """Refuse what Stripe refuses: another customer's method, or a spent single-use one."""
    if pm.customer and pm.customer != customer:
        raise invalid(
            f"The `payment_method` parameter supplied {pm.requested} belongs to the Customer {pm.customer}. "
            "Please include the Customer in the `customer` parameter on the PaymentIntent.",
            param="payment_method",
            code="payment_method_unexpected_state",
        )
    if pm.row and not pm.customer and pm.row["consumed_by"]:
        raise invalid(CONSUMED, param="payment_method", code="payment_method_unexpected_state")


def consume(store: Store, pm: Resolved, pi_id: str, customer: str | None) -> dict[str, Any]:
    """Use ``pm`` for PaymentIntent ``pi_id``; return the PaymentMethod object it used."""
    check_usable(pm, customer)
    if pm.row is None:  # a magic id: a fresh PaymentMethod each time
        obj = new_object(pm.card)
        store.insert_payment_method(obj, cards.card_name(pm.card), consumed_by=pi_id)
        return obj
    if not pm.customer:
        store.update_payment_method(pm.row["object"], consumed_by=pi_id)
    return pm.row["object"]


# -- POST /v1/payment_methods -----------------------------------------------------------
def _card_error(message: str, code: str, param: str, decline_code: str | None = None) -> ApiError:
    return ApiError(402, "card_error", message, code=code, param=param, decline_code=decline_code)


def _card_from_number(number: str) -> TestCard:
    if not number.isdigit() or not 12 <= len(number) <= 19 or not cards.luhn_ok(number):
        raise _card_error("Your card number is incorrect.", "incorrect_number", "number")
    name = cards.BY_NUMBER.get(number)
    if name is None:
        raise _card_error(
            "Your card was declined. Your request was in test mode, but used a non test (live) card. "
            "For a list of valid test cards, visit: https://stripe.com/docs/testing.",
            "card_declined",
            "number",
            decline_code="test_mode_live_card",
        )
    return cards.CARDS[name]


def _expiry(card: dict[str, Any]) -> dict[str, int]:
    for key in ("exp_month", "exp_year"):
        if card.get(key) in (None, ""):
            raise required(f"card[{key}]")
    month, year = card["exp_month"], card["exp_year"]
    if not (isinstance(month, str) and month.isdigit() and 1 <= int(month) <= 12):
        raise _card_error("Your card's expiration month is invalid.", "invalid_expiry_month", "exp_month")
    now = time.gmtime()
    full_year = int(year) + (2000 if isinstance(year, str) and year.isdigit() and len(year) <= 2 else 0)
    if not (isinstance(year, str) and year.isdigit()) or (full_year, int(month)) < (now.tm_year, now.tm_mon):
        raise _card_error("Your card's expiration year is invalid.", "invalid_expiry_year", "exp_year")
    return {"exp_month": int(month), "exp_year": full_year}


def _card_params(raw: Any) -> tuple[TestCard, dict[str, int]]:
    if not isinstance(raw, dict):
        raise required("card")
    if raw.get("token"):
        if raw.get("number"):
            raise invalid("You cannot pass both `card[token]` and `card[number]`.", param="card[token]")
        card = cards.token(raw["token"])
        if card is None:
            raise missing("token", raw["token"], "card[token]")
        return card, {}
    if not raw.get("number"):
        raise required("card[number]")
    card, expiry = _card_from_number(str(raw["number"])), _expiry(raw)
    cvc = raw.get("cvc")
    if cvc not in (None, "") and not (isinstance(cvc, str) and cvc.isdigit() and 3 <= len(cvc) <= 4):
        raise _card_error("Your card's security code is invalid.", "invalid_cvc", "cvc")
    return card, expiry


def create(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """``POST /v1/payment_methods`` (type=card, from a test card number or token)."""
    validation.check_known(params, validation.PM_CREATE)
    kind = params.get("type")
    if not kind:
        raise required("type")
    if kind != "card":
        raise invalid(f"Invalid type: the sandbox models only `card`, not {kind!r}.", param="type")
    card, expiry = _card_params(params.get("card"))
    billing = params.get("billing_details") if isinstance(params.get("billing_details"), dict) else {}
    obj = new_object(card, metadata=validation.parse_metadata(params.get("metadata")), **expiry)
    obj["billing_details"].update(billing)
    store.insert_payment_method(obj, cards.card_name(card))
    return obj


def retrieve(store: Store, pm_id: str) -> dict[str, Any]:
    """``GET /v1/payment_methods/{id}`` (a magic id answers a fresh, unsaved object)."""
    card = cards.magic(pm_id)
    if card is not None:
        return {**new_object(card), "id": pm_id}
    row = store.get_payment_method(pm_id)
    if row is None:
        raise not_found("payment_method", pm_id)
    return row["object"]


def attach(
    store: Store, emit: Emit, pm_id: str, params: dict[str, Any], *, customer_stored: bool = False
) -> dict[str, Any]:
    """``POST /v1/payment_methods/{id}/attach``: a magic id attaches a new ``pm_`` (``customer_stored``: the
    caller has just stored the customer, in this transaction)."""
    validation.check_known(params, validation.PM_ATTACH)
    customer = params.get("customer")
    if not customer:
        raise required("customer")
    if not customer_stored and not store.customer_exists(customer):
        raise missing("customer", customer, "customer")
    pm = resolve(store, pm_id, param="payment_method")
    if pm.customer == customer:
        return pm.row["object"] if pm.row else {}
    if pm.customer:
        raise invalid("The payment method you provided has already been attached to a customer.")
    if pm.row and pm.row["consumed_by"]:
        raise invalid(
            "This PaymentMethod was previously used without being attached to a Customer or was detached "
            "from a Customer, and may not be used again.",
            code="payment_method_unexpected_state",
        )
    if pm.row is None:
        obj = {**new_object(pm.card), "customer": customer}
        store.insert_payment_method(obj, cards.card_name(pm.card))
    else:
        obj = {**pm.row["object"], "customer": customer}
        store.update_payment_method(obj)
    emit("payment_method.attached", obj)
    return obj
