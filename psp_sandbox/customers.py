"""Customers: ``POST /v1/customers`` and ``GET /v1/customers/{id}``."""

from __future__ import annotations

import time
from typing import Any

from . import payment_methods, validation
from .errors import not_found
from .payment_methods import Emit
from .store import Store, new_id


def create(store: Store, emit: Emit, params: dict[str, Any]) -> dict[str, Any]:
    """Create a customer; ``payment_method`` is attached to it, as on Stripe."""
    validation.check_known(params, validation.CUSTOMER_CREATE)
    fields = {k: validation.parse_string(params.get(k), k) for k in ("email", "name", "description", "phone")}
    customer = {
        "id": new_id("cus"),
        "object": "customer",
        "address": params.get("address") if isinstance(params.get("address"), dict) else None,
        "balance": 0,
        "created": int(time.time()),
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "discount": None,
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": validation.parse_metadata(params.get("metadata")),
        "next_invoice_sequence": 1,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
        **fields,
    }
    pm_id = params.get("payment_method")
    if pm_id:
        payment_methods.resolve(store, pm_id)  # refuse an unknown id before creating anything
    store.insert_customer(customer)
    emit("customer.created", customer)
    if pm_id:
        payment_methods.attach(store, emit, pm_id, {"customer": customer["id"]}, customer_stored=True)
    return customer


def retrieve(store: Store, customer_id: str) -> dict[str, Any]:
    """``GET /v1/customers/{id}``."""
    customer = store.get_customer(customer_id)
    if customer is None:
        raise not_found("customer", customer_id)
    return customer
