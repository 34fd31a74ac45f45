"""What the Connect modules share: the test banks, the request schemas, parameter helpers, a connected
account's events (``emit``) and the faults of a transfer or payout call (``_plan``)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import context, currencies, objects, validation
from ..behaviour import Plan
from ..errors import invalid, missing, required
from ..store import Store, new_id

if TYPE_CHECKING:
    from ..server import Sandbox

Result = tuple[int, dict[str, Any]]
PAYOUT_DELAY_S = float(os.environ.get("PSP_SANDBOX_PAYOUT_DELAY_S", "1.0"))
ARRIVAL_DAYS = 2  # a standard payout's arrival_date: two days after its creation


@dataclass(frozen=True)
class Bank:
    """How a test bank account behaves."""

    country: str = "US"
    currency: str = "usd"
    last4: str = "6789"
    routing_number: str = "110000000"
    bank_name: str = "STRIPE TEST BANK"
    failure_code: str | None = None  # the payout fails with it, after the delay
    fault: str | None = None  # server_error, flaky, timeout, connection_drop (the sandbox's own)


FAILURES = {
    "no_account": "The bank account details on file are probably incorrect. No bank account could be located "
    "with those details.",
    "account_closed": "The bank account has been closed.",
    "insufficient_funds": "Your Stripe account has insufficient funds to cover the payout.",
    "debit_not_authorized": "Debit transactions are not approved on the bank account.",
    "invalid_currency": "The bank was unable to process this payout because of its currency.",
}

BANKS: dict[str, Bank] = {
    "btok_us_verified": Bank(),
    "btok_us": Bank(),
    "btok_us_verified_noAccount": Bank(last4="1116", failure_code="no_account"),
    "btok_us_verified_accountClosed": Bank(last4="1113", failure_code="account_closed"),
    "btok_us_verified_insufficientFunds": Bank(last4="2227", failure_code="insufficient_funds"),
    "btok_us_verified_debitNotAuthorized": Bank(last4="3335", failure_code="debit_not_authorized"),
    "btok_us_verified_invalidCurrency": Bank(last4="4440", failure_code="invalid_currency"),
    "btok_gb": Bank(country="GB", currency="gbp", last4="2345", routing_number="10-88-00"),
    "btok_de": Bank(country="DE", currency="eur", last4="3000", routing_number="37040044"),
    "btok_fr": Bank(country="FR", currency="eur", last4="0189", routing_number="20041010"),
    "btok_sandbox_server_error": Bank(fault="server_error"),
    "btok_sandbox_flaky": Bank(fault="flaky"),
    "btok_sandbox_timeout": Bank(fault="timeout"),
    "btok_sandbox_connection_drop": Bank(fault="connection_drop"),
}

LEAF, LIST, FREE = validation.LEAF, validation.LIST, validation.FREE
ACCOUNT_CREATE: validation.Schema = {
    **dict.fromkeys(("type", "country", "email", "business_type", "default_currency", "external_account"), LEAF),
    "metadata": FREE,
    "capabilities": FREE,
    "controller": FREE,
    "settings": FREE,
    "business_profile": dict.fromkeys(("name", "url", "mcc", "product_description", "support_email"), LEAF),
    "tos_acceptance": dict.fromkeys(("date", "ip", "user_agent", "service_agreement"), LEAF),
    "expand": LIST,
}
EXTERNAL_ACCOUNT_CREATE: validation.Schema = {
    "external_account": LEAF, "default_for_currency": LEAF, "metadata": FREE, "expand": LIST,
}
TRANSFER_CREATE: validation.Schema = {
    **dict.fromkeys(("amount", "currency", "destination", "transfer_group", "description", "source_transaction",
                     "source_type"), LEAF),
    "metadata": FREE,
    "expand": LIST,
}
REVERSAL_CREATE: validation.Schema = {
    **dict.fromkeys(("amount", "description", "refund_application_fee"), LEAF), "metadata": FREE, "expand": LIST,
}
PAYOUT_CREATE: validation.Schema = {
    **dict.fromkeys(("amount", "currency", "destination", "description", "method", "source_type",
                     "statement_descriptor"), LEAF),
    "metadata": FREE,
    "expand": LIST,
}
ENDPOINT_CREATE: validation.Schema = {
    **dict.fromkeys(("url", "connect", "description", "api_version"), LEAF),
    "enabled_events": LIST,
    "metadata": FREE,
    "expand": LIST,
}
LIST_PARAMS: validation.Schema = {
    **dict.fromkeys(("destination", "transfer_group", "status", "limit", "starting_after", "ending_before"), LEAF),
    "created": FREE,
    "arrival_date": FREE,
    "expand": LIST,
}

_ID = r"[A-Za-z0-9_]+"


# -- helpers --------------------------------------------------------------------------
def _bank(token: Any, param: str = "external_account") -> tuple[str, Bank]:
    if token in (None, ""):
        raise required(param)
    if not isinstance(token, str):
        raise invalid(f"Invalid string: {token!r}", param=param)
    bank = BANKS.get(token)
    if bank is None:
        raise missing("token", token, param)
    return token, bank


def _fingerprint(token: str) -> str:
    return hashlib.sha256(f"bank:{token}".encode()).hexdigest()[:16]


def _metadata(params: dict[str, Any]) -> dict[str, str]:
    return validation.parse_metadata(params.get("metadata"))


def _amount_and_currency(params: dict[str, Any]) -> tuple[int, str]:
    amount = validation.parse_amount(params.get("amount"))
    raw = params.get("currency")
    if raw in (None, ""):
        raise required("currency")
    currency = currencies.check_currency(str(raw))
    if amount > currencies.MAX_AMOUNT:
        raise invalid("Amount must be no more than 99999999.", param="amount", code="amount_too_large")
    return amount, currency


def _list(data: list[dict[str, Any]], params: dict[str, Any], url: str) -> dict[str, Any]:
    limit = validation.parse_int(params.get("limit") or "10", "limit")
    if not 1 <= limit <= 100:
        raise invalid("This value must be between 1 and 100.", param="limit")
    return {"object": "list", "data": data[:limit], "has_more": len(data) > limit, "url": url}


def emit(sb: Sandbox, event_type: str, obj: dict[str, Any], account: str | None) -> dict[str, Any]:
    """Store an event; a connected account's (``account`` set) goes to the Connect endpoint, if any."""
    if account is None:
        return sb.api.emit(event_type, obj)
    cfg, ctx = sb.config.snapshot(), context.current()
    deliver = connect_endpoint(sb.store) is not None
    event = objects.complete({
        "id": new_id("evt"),
        "object": "event",
        "account": account,
        "api_version": ctx.api_version,
        "type": event_type,
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1 if deliver else 0,
        "request": {"id": ctx.request_id, "idempotency_key": ctx.idempotency_key},
        "data": {"object": obj},
    })
    due = time.time() + cfg["webhook_delay_s"]
    window = cfg["webhook_reorder_window_s"]
    if cfg["webhook_reorder"] and window > 0:
        due = (math.floor(due / window) + 2) * window
    sb.store.insert_event(event, "pending" if deliver else "no_endpoint", due)
    sb.dispatcher.notify()
    return event


def connect_endpoint(store: Store) -> dict[str, Any] | None:
    """The Connect webhook endpoint (the first one created), or None."""
    rows = store.connect_rows("webhook_endpoints", {"connect": 1}, newest_first=False)
    return rows[0]["object"] if rows else None


def connect_target(store: Store, event: dict[str, Any]) -> tuple[str, str] | None:
    """For the webhook dispatcher: ``(url, secret)`` of the Connect endpoint when ``event`` (a row of
    ``events``) is a connected account's, ``("", "")`` when it is one and no endpoint exists, else None."""
    payload = event["payload"]
    if '"account": "acct_' not in payload:  # cheap: most events are the platform's (account null)
        return None
    if not json.loads(payload).get("account"):
        return None
    endpoint = connect_endpoint(store)
    if endpoint is None:
        return "", ""
    return endpoint["url"], endpoint["secret"]


def _plan(sb: Sandbox, bank: Bank, api_key: str, key: str | None) -> Plan:
    """Faults of a transfer or payout call: the bank's fault token, else the configured rates."""
    if bank.fault == "flaky":
        return Plan(pre_fault="transient") if sb.store.bump_flaky(api_key, key or "") <= sb.config.get(
            "flaky_failures") else Plan()
    if bank.fault == "timeout":
        return Plan(response_delay_s=sb.config.get("timeout_delay_s"))
    if bank.fault == "server_error":
        return Plan(pre_fault="error")
    if bank.fault == "connection_drop":
        return Plan(drop_after=True)
    cfg = sb.config.snapshot()
    if sb.config.chance(cfg["transient_error_rate"]):
        return Plan(pre_fault="transient")
    if sb.config.chance(cfg["error_rate"]):
        return Plan(pre_fault="error")
    if sb.config.chance(cfg["drop_rate"]):
        return Plan(pre_fault="drop")
    if sb.config.chance(cfg["timeout_rate"]):
        return Plan(response_delay_s=cfg["timeout_delay_s"])
    return Plan()
