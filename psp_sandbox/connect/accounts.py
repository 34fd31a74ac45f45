"""Connected accounts, their bank accounts (external accounts) and the Connect webhook endpoints."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import currencies, validation
from ..errors import invalid, missing, not_found, required
from ..store import Store, new_id
from .common import (
    ACCOUNT_CREATE,
    ARRIVAL_DAYS,
    ENDPOINT_CREATE,
    EXTERNAL_ACCOUNT_CREATE,
    Bank,
    Result,
    _bank,
    _fingerprint,
    _metadata,
    emit,
)

if TYPE_CHECKING:
    from ..server import Sandbox


# -- objects -----------------------------------------------------------------------------
def _bank_account(account: str, token: str, bank: Bank, metadata: dict[str, str]) -> dict[str, Any]:
    return {
        "id": new_id("ba"),
        "object": "bank_account",
        "account": account,
        "account_holder_name": None,
        "account_holder_type": "individual",
        "account_type": None,
        "available_payout_methods": ["standard"],
        "bank_name": bank.bank_name,
        "country": bank.country,
        "currency": bank.currency,
        "default_for_currency": True,
        "fingerprint": _fingerprint(token),
        "future_requirements": None,
        "last4": bank.last4,
        "metadata": metadata,
        "requirements": None,
        "routing_number": bank.routing_number,
        "status": "new",
    }


def _account_object(row: dict[str, Any], store: Store) -> dict[str, Any]:
    account = dict(row)
    banks = [r["object"] for r in store.connect_rows("bank_accounts", {"account": account["id"]})]
    account["external_accounts"] = {"object": "list", "data": banks, "has_more": False, "total_count": len(banks),
                                    "url": f"/v1/accounts/{account['id']}/external_accounts"}
    account["payouts_enabled"] = bool(banks)
    return account


def _new_account(req: dict[str, Any]) -> dict[str, Any]:
    account_id = new_id("acct")
    capabilities = {name: "active" for name, value in (req["capabilities"] or {}).items()
                    if isinstance(value, dict) and value.get("requested") == "true"}
    return {
        "id": account_id,
        "object": "account",
        "business_profile": {"mcc": None, "name": (req["business_profile"] or {}).get("name"),
                             "product_description": None, "support_email": None, "url": None},
        "business_type": req["business_type"],
        "capabilities": capabilities,
        "charges_enabled": False,
        "controller": {"type": "application", "is_controller": True},
        "country": req["country"],
        "created": int(time.time()),
        "default_currency": req["default_currency"],
        "details_submitted": True,
        "email": req["email"],
        "metadata": req["metadata"],
        "requirements": {"alternatives": [], "current_deadline": None, "currently_due": [],
                         "disabled_reason": None, "errors": [], "eventually_due": [], "past_due": [],
                         "pending_verification": []},
        "settings": {"payouts": {"debit_negative_balances": False, "statement_descriptor": None,
                                 "schedule": {"delay_days": ARRIVAL_DAYS, "interval": "manual"}}},
        "tos_acceptance": {"date": None, "ip": None, "user_agent": None},
        "type": req["type"],
    }


# -- accounts -----------------------------------------------------------------------------
def _validate_account(params: dict[str, Any]) -> dict[str, Any]:
    validation.check_known(params, ACCOUNT_CREATE)
    account_type = validation.parse_enum(params.get("type"), "type", ("custom", "express", "standard"), "custom")
    country = validation.parse_string(params.get("country"), "country") or "US"
    if len(country) != 2 or not country.isalpha():
        raise invalid(f"Invalid country: {country}", param="country")
    bank = None
    if params.get("external_account") not in (None, ""):
        bank = _bank(params["external_account"])
    default_currency = params.get("default_currency") or (bank[1].currency if bank else "usd")
    return {
        "type": account_type,
        "country": country.upper(),
        "email": validation.parse_string(params.get("email"), "email"),
        "business_type": validation.parse_enum(params.get("business_type"), "business_type",
                                               ("company", "government_entity", "individual", "non_profit")),
        "default_currency": currencies.check_currency(str(default_currency)),
        "capabilities": params.get("capabilities") if isinstance(params.get("capabilities"), dict) else {},
        "business_profile": params.get("business_profile") if isinstance(params.get("business_profile"), dict)
        else {},
        "metadata": _metadata(params),
        "bank": bank,
    }


def _create_account(sb: Sandbox, req: dict[str, Any]) -> Result:
    account = _new_account(req)
    sb.store.connect_insert("connect_accounts", account)
    if req["bank"]:
        token, bank = req["bank"]
        ba = _bank_account(account["id"], token, bank, {})
        sb.store.connect_insert("bank_accounts", ba, account=account["id"], currency=bank.currency, bank=token)
    full = _account_object(account, sb.store)
    emit(sb, "account.updated", full, account["id"])
    return 200, full


def _get_account(store: Store, account_id: str, param: str = "id") -> dict[str, Any]:
    found = store.connect_get("connect_accounts", account_id)
    if found is None:
        raise not_found("account", account_id, param) if param == "id" else missing("account", account_id, param)
    return found["object"]


def _validate_external_account(account_id: str, store: Store) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def check(params: dict[str, Any]) -> dict[str, Any]:
        validation.check_known(params, EXTERNAL_ACCOUNT_CREATE)
        _get_account(store, account_id)
        return {"bank": _bank(params.get("external_account")), "metadata": _metadata(params),
                "default": validation.parse_bool(params.get("default_for_currency"), "default_for_currency")}

    return check


def _add_external_account(sb: Sandbox, account_id: str, req: dict[str, Any]) -> Result:
    token, bank = req["bank"]
    same_currency = [r for r in sb.store.connect_rows("bank_accounts", {"account": account_id})
                     if r["currency"] == bank.currency]
    ba = _bank_account(account_id, token, bank, req["metadata"])
    ba["default_for_currency"] = req["default"] or not same_currency
    if ba["default_for_currency"]:
        for row in same_currency:
            if row["object"]["default_for_currency"]:
                sb.store.connect_update("bank_accounts", {**row["object"], "default_for_currency": False})
    sb.store.connect_insert("bank_accounts", ba, account=account_id, currency=bank.currency, bank=token)
    emit(sb, "account.external_account.created", ba, account_id)
    return 200, ba


# -- webhook endpoints ---------------------------------------------------------------------------
def _validate_endpoint(params: dict[str, Any]) -> dict[str, Any]:
    validation.check_known(params, ENDPOINT_CREATE)
    url = validation.parse_string(params.get("url"), "url")
    if not url:
        raise required("url")
    if not url.startswith(("http://", "https://")):
        raise invalid(f"Invalid URL: {url}", param="url", code="url_invalid")
    events = validation.as_list(params.get("enabled_events"), "enabled_events")
    if not events:
        raise required("enabled_events")
    return {"url": url, "enabled_events": [str(e) for e in events], "metadata": _metadata(params),
            "connect": validation.parse_bool(params.get("connect"), "connect"),
            "description": validation.parse_string(params.get("description"), "description")}


def _create_endpoint(sb: Sandbox, req: dict[str, Any]) -> Result:
    endpoint = {
        "id": new_id("we"),
        "object": "webhook_endpoint",
        "api_version": None,
        "application": None,
        "connect": req["connect"],
        "created": int(time.time()),
        "description": req["description"],
        "enabled_events": req["enabled_events"],
        "livemode": False,
        "metadata": req["metadata"],
        # PSP_SANDBOX_CONNECT_WEBHOOK_SECRET: a Connect endpoint's secret known in advance (a bench's stack
        # starts the web with it), as PSP_SANDBOX_WEBHOOK_SECRET is the platform endpoint's.
        "secret": ((req["connect"] and os.environ.get("PSP_SANDBOX_CONNECT_WEBHOOK_SECRET"))
                   or "whsec_" + new_id("x")[2:]),
        "status": "enabled",
        "url": req["url"],
    }
    sb.store.connect_insert("webhook_endpoints", endpoint, connect=int(req["connect"]))
    return 200, endpoint
