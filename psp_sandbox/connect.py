"""Stripe Connect, the subset a marketplace's payouts use.

* ``POST /v1/accounts`` (a connected account, ``external_account`` a bank account token),
  ``GET /v1/accounts/{id}``, ``POST /v1/accounts/{id}/external_accounts`` (another bank account,
  default for its currency).
* ``POST /v1/transfers`` (platform balance to a connected account), ``GET /v1/transfers/{id}``,
  ``GET /v1/transfers?destination=&transfer_group=``, ``POST /v1/transfers/{id}/reversals``.
* ``POST /v1/payouts`` (a connected account's balance to its bank account), ``GET /v1/payouts/{id}``,
  ``GET /v1/payouts?destination=&status=``. A payout is ``pending`` when created, then ``paid`` or
  ``failed`` after ``PSP_SANDBOX_PAYOUT_DELAY_S`` (1 s): ``payout.updated`` and ``payout.paid`` /
  ``payout.failed`` are sent then, later than the call's answer, as on Stripe.
* ``POST /v1/webhook_endpoints`` (``connect=true``: the endpoint that receives the connected
  accounts' events, each signed with that endpoint's own ``secret``), ``GET /v1/webhook_endpoints/{id}``.

On Stripe a payout is made *on* the connected account (the ``Stripe-Account`` header). The sandbox's
routes do not see headers, so it takes the account from the payout's ``destination`` (a bank account
id, unique across accounts); the header may be sent and is ignored.

Bank account tokens are Stripe's test tokens (``btok_us_verified`` succeeds; ``…_noAccount``,
``…_accountClosed``, ``…_insufficientFunds``, ``…_debitNotAuthorized``, ``…_invalidCurrency``: the
payout fails with that ``failure_code``) and the sandbox's fault tokens (``btok_sandbox_server_error``,
``…_flaky``, ``…_timeout``, ``…_connection_drop``: the transfers to the account and its payouts suffer
that fault, as the ``pm_sandbox_*`` cards do). The fault-rate settings of ``/_sandbox/config``
(``transient_error_rate``, ``error_rate``, ``drop_rate``, ``timeout_rate``) apply to transfers and
payouts as to charges. No account number is kept: only last4, routing number and a fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import context, currencies, objects, validation
from .behaviour import Plan
from .errors import ApiError, invalid, missing, not_found, required
from .store import Store, new_id

if TYPE_CHECKING:
    from .server import Sandbox

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


# -- transfers ------------------------------------------------------------------------------
def _validate_transfer(store: Store) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def check(params: dict[str, Any]) -> dict[str, Any]:
        validation.check_known(params, TRANSFER_CREATE)
        amount, currency = _amount_and_currency(params)
        destination = params.get("destination")
        if destination in (None, ""):
            raise required("destination")
        if not isinstance(destination, str) or store.connect_get("connect_accounts", destination) is None:
            raise invalid(f"No such destination: '{destination}'", param="destination", code="resource_missing")
        return {"amount": amount, "currency": currency, "destination": destination,
                "transfer_group": validation.parse_string(params.get("transfer_group"), "transfer_group"),
                "description": validation.parse_string(params.get("description"), "description"),
                "metadata": _metadata(params)}

    return check


def _default_bank(store: Store, account_id: str, currency: str | None = None) -> tuple[dict[str, Any], Bank] | None:
    rows = store.connect_rows("bank_accounts", {"account": account_id})
    for row in rows:
        if row["object"]["default_for_currency"] and (currency is None or row["currency"] == currency):
            return row["object"], BANKS[row["bank"]]
    return (rows[0]["object"], BANKS[rows[0]["bank"]]) if rows else None


def _transfer_plan(sb: Sandbox) -> Callable[[dict[str, Any], str, str | None], Plan]:
    def plan(req: dict[str, Any], api_key: str, key: str | None) -> Plan:
        found = _default_bank(sb.store, req["destination"])
        return _plan(sb, found[1] if found else Bank(), api_key, key)

    return plan


def _create_transfer(sb: Sandbox, req: dict[str, Any]) -> Result:
    transfer = {
        "id": new_id("tr"),
        "object": "transfer",
        "amount": req["amount"],
        "amount_reversed": 0,
        "balance_transaction": new_id("txn"),
        "created": int(time.time()),
        "currency": req["currency"],
        "description": req["description"],
        "destination": req["destination"],
        "destination_payment": new_id("py"),
        "livemode": False,
        "metadata": req["metadata"],
        "reversals": {"object": "list", "data": [], "has_more": False, "total_count": 0, "url": ""},
        "reversed": False,
        "source_transaction": None,
        "source_type": "card",
        "transfer_group": req["transfer_group"],
    }
    transfer["reversals"]["url"] = f"/v1/transfers/{transfer['id']}/reversals"
    sb.store.connect_insert("transfers", transfer, destination=req["destination"],
                            transfer_group=req["transfer_group"], currency=req["currency"], amount=req["amount"],
                            amount_reversed=0)
    emit(sb, "transfer.created", transfer, None)
    return 200, transfer


def _validate_reversal(store: Store, transfer_id: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def check(params: dict[str, Any]) -> dict[str, Any]:
        validation.check_known(params, REVERSAL_CREATE)
        if store.connect_get("transfers", transfer_id) is None:
            raise not_found("transfer", transfer_id)
        amount = validation.parse_amount(params["amount"]) if params.get("amount") not in (None, "") else None
        return {"amount": amount, "metadata": _metadata(params)}

    return check


def _reverse_transfer(sb: Sandbox, transfer_id: str, req: dict[str, Any]) -> Result:
    transfer = sb.store.connect_get("transfers", transfer_id)["object"]  # type: ignore[index]
    left = transfer["amount"] - transfer["amount_reversed"]
    amount = left if req["amount"] is None else req["amount"]
    if amount > left or left <= 0:
        err = invalid(f"Transfer {transfer_id} has {left} left to reverse, less than {amount}.",
                      param="amount", code="amount_too_large")
        return err.status, err.payload()
    if amount > balance(sb.store, transfer["destination"], transfer["currency"]):
        err = invalid("Insufficient funds in the connected account to reverse this transfer.",
                      code="balance_insufficient")
        return err.status, err.payload()
    reversal = {
        "id": new_id("trr"),
        "object": "transfer_reversal",
        "amount": amount,
        "balance_transaction": new_id("txn"),
        "created": int(time.time()),
        "currency": transfer["currency"],
        "destination_payment_refund": new_id("pyr"),
        "metadata": req["metadata"],
        "source_refund": None,
        "transfer": transfer_id,
    }
    reversals = transfer["reversals"]
    transfer.update(amount_reversed=transfer["amount_reversed"] + amount,
                    reversed=transfer["amount_reversed"] + amount == transfer["amount"],
                    reversals={**reversals, "data": [reversal, *reversals["data"]],
                               "total_count": reversals["total_count"] + 1})
    sb.store.connect_update("transfers", transfer, amount_reversed=transfer["amount_reversed"])
    emit(sb, "transfer.reversed", transfer, None)
    return 200, reversal


def balance(store: Store, account_id: str, currency: str) -> int:
    """A connected account's balance in ``currency``: transfers in, less reversals and payouts not failed."""
    return store.connect_balance(account_id, currency)


# -- payouts ----------------------------------------------------------------------------------
def _validate_payout(store: Store) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def check(params: dict[str, Any]) -> dict[str, Any]:
        validation.check_known(params, PAYOUT_CREATE)
        amount, currency = _amount_and_currency(params)
        destination = params.get("destination")
        if destination in (None, ""):
            raise invalid("The sandbox needs the payout's destination (a bank account id): it stands for the "
                          "Stripe-Account header.", param="destination", code="parameter_missing")
        found = store.connect_get("bank_accounts", destination) if isinstance(destination, str) else None
        if found is None:
            raise invalid(f"No such external account: '{destination}'", param="destination",
                          code="resource_missing")
        if found["currency"] != currency:
            raise invalid(f"The bank account {destination} takes {found['currency']}, not {currency}.",
                          param="currency", code="invalid_currency")
        method = validation.parse_enum(params.get("method"), "method", ("instant", "standard"), "standard")
        return {"amount": amount, "currency": currency, "destination": destination, "account": found["account"],
                "bank": BANKS[found["bank"]], "method": method, "metadata": _metadata(params),
                "description": validation.parse_string(params.get("description"), "description"),
                "statement_descriptor": validation.parse_string(params.get("statement_descriptor"),
                                                                "statement_descriptor")}

    return check


def _create_payout(sb: Sandbox, req: dict[str, Any]) -> Result:
    available = balance(sb.store, req["account"], req["currency"])
    if req["amount"] > available:
        err = invalid(f"You have insufficient funds in your Stripe account for this payout: {available} "
                      f"{req['currency']} available.", param="amount", code="balance_insufficient")
        return err.status, err.payload()
    now = time.time()
    payout = {
        "id": new_id("po"),
        "object": "payout",
        "amount": req["amount"],
        "application_fee": None,
        "application_fee_amount": None,
        "arrival_date": int(now // 86400 + ARRIVAL_DAYS) * 86400,
        "automatic": False,
        "balance_transaction": new_id("txn"),
        "created": int(now),
        "currency": req["currency"],
        "description": req["description"],
        "destination": req["destination"],
        "failure_balance_transaction": None,
        "failure_code": None,
        "failure_message": None,
        "livemode": False,
        "metadata": req["metadata"],
        "method": req["method"],
        "original_payout": None,
        "payout_method": None,
        "reconciliation_status": "not_applicable",
        "reversed_by": None,
        "source_type": "card",
        "statement_descriptor": req["statement_descriptor"],
        "status": "pending",
        "trace_id": {"status": "pending", "value": None},
        "type": "bank_account",
    }
    sb.store.connect_insert("payouts", payout, account=req["account"], destination=req["destination"],
                            currency=req["currency"], amount=req["amount"], status="pending",
                            complete_at=now + PAYOUT_DELAY_S,
                            planned_outcome=req["bank"].failure_code or "paid")
    emit(sb, "payout.created", payout, req["account"])
    return 200, payout


def complete_payouts(sb: Sandbox, now: float | None = None) -> int:
    """Pay or fail the pending payouts whose delay has passed; return how many."""
    done = 0
    for row in sb.store.connect_due_payouts(time.time() if now is None else now):
        with sb.store.transaction(), context.use(context.RequestContext()):
            found = sb.store.connect_get("payouts", row["id"])
            if found is None or found["status"] != "pending":
                continue
            payout = found["object"]
            failure = found["planned_outcome"] if found["planned_outcome"] != "paid" else None
            if failure:
                payout.update(status="failed", failure_code=failure, failure_message=FAILURES.get(failure, failure),
                              failure_balance_transaction=new_id("txn"), trace_id={"status": "unsupported",
                                                                                    "value": None})
            else:
                payout.update(status="paid", trace_id={"status": "supported",
                                                       "value": "SBX" + payout["id"][3:15].upper()})
            sb.store.connect_update("payouts", payout, status=payout["status"], complete_at=None,
                                    failed_at=time.time() if failure else None)
            emit(sb, "payout.updated", payout, found["account"])
            emit(sb, f"payout.{payout['status']}", payout, found["account"])
            done += 1
    return done


def return_payout(sb: Sandbox, payout_id: str, failure_code: str = "account_closed") -> Result:
    """The bank sends a paid payout back (``POST /_sandbox/payouts/{id}/return``): as on Stripe, the paid payout
    becomes ``failed`` days later, its money back in the connected account's balance, and ``payout.updated`` and
    ``payout.failed`` are sent. A payout not paid (yet) is refused; one already returned is answered as it is."""
    with sb.store.transaction(), context.use(context.RequestContext()):
        found = sb.store.connect_get("payouts", payout_id)
        if found is None:
            return 404, {"error": f"no such payout: {payout_id}"}
        payout = found["object"]
        if payout["status"] == "failed":
            return 200, payout
        if payout["status"] != "paid":
            return 400, {"error": f"payout {payout_id} is {payout['status']}: only a paid payout is returned"}
        payout.update(status="failed", failure_code=failure_code,
                      failure_message=FAILURES.get(failure_code, failure_code),
                      failure_balance_transaction=new_id("txn"))
        sb.store.connect_update("payouts", payout, status="failed", failed_at=time.time())
        emit(sb, "payout.updated", payout, found["account"])
        emit(sb, "payout.failed", payout, found["account"])
    return 200, payout


class PayoutWorker(threading.Thread):
    """Completes the sandbox's pending payouts (started with the first Connect request)."""

    def __init__(self, sb: Sandbox, interval: float = 0.05) -> None:
        super().__init__(name="psp-sandbox-payouts", daemon=True)
        self.sb, self.interval = sb, interval

    def run(self) -> None:
        """Poll until the sandbox stops."""
        while not self.sb.stop_event.wait(self.interval):
            try:
                complete_payouts(self.sb)
            except Exception as exc:  # noqa: BLE001 - keep the worker alive
                print(f"psp_sandbox: payout worker error: {exc!r}", flush=True)


_workers: dict[int, PayoutWorker] = {}
_workers_lock = threading.Lock()


def ensure_worker(sb: Sandbox) -> None:
    """Start the payout worker of this sandbox once (pending payouts of an earlier run resume too)."""
    if id(sb) in _workers:
        return
    with _workers_lock:
        if id(sb) not in _workers:
            worker = PayoutWorker(sb)
            _workers[id(sb)] = worker
            worker.start()


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
        "secret": "whsec_" + new_id("x")[2:],
        "status": "enabled",
        "url": req["url"],
    }
    sb.store.connect_insert("webhook_endpoints", endpoint, connect=int(req["connect"]))
    return 200, endpoint


# -- routing (called by routes.py) ------------------------------------------------------------------
Validate = Callable[[dict[str, Any]], Any]
Execute = Callable[[Any, Plan, str, str | None], Result]
PlanFn = Callable[[Any, str, str | None], Plan]


def post(sb: Sandbox, path: str) -> tuple[Validate, Execute, PlanFn | None] | None:
    """``(validate, execute, plan)`` of ``POST path``, or None when it is not a Connect path."""
    store = sb.store
    if path == "/v1/accounts":
        return _validate_account, lambda r, p, a, k: _create_account(sb, r), None
    if m := re.fullmatch(rf"/v1/accounts/({_ID})/external_accounts", path):
        return _validate_external_account(m[1], store), lambda r, p, a, k: _add_external_account(sb, m[1], r), None
    if path == "/v1/transfers":
        return _validate_transfer(store), lambda r, p, a, k: _create_transfer(sb, r), _transfer_plan(sb)
    if m := re.fullmatch(rf"/v1/transfers/({_ID})/reversals", path):
        return _validate_reversal(store, m[1]), lambda r, p, a, k: _reverse_transfer(sb, m[1], r), None
    if path == "/v1/payouts":
        ensure_worker(sb)
        return (_validate_payout(store), lambda r, p, a, k: _create_payout(sb, r),
                lambda r, a, k: _plan(sb, r["bank"], a, k))
    if path == "/v1/webhook_endpoints":
        return _validate_endpoint, lambda r, p, a, k: _create_endpoint(sb, r), None
    return None


def get(sb: Sandbox, path: str, params: dict[str, Any]) -> dict[str, Any] | None:
    """The answer to a Connect ``GET``, or None when it is not a Connect path."""
    store = sb.store
    if path == "/v1/transfers":
        validation.check_known(params, LIST_PARAMS)
        where = {k: params[k] for k in ("destination", "transfer_group") if params.get(k)}
        return _list([r["object"] for r in store.connect_rows("transfers", where)], params, path)
    if path == "/v1/payouts":
        ensure_worker(sb)
        validation.check_known(params, LIST_PARAMS)
        where = {k: params[k] for k in ("destination", "status") if params.get(k)}
        return _list([r["object"] for r in store.connect_rows("payouts", where)], params, path)
    m = re.fullmatch(rf"/v1/(accounts|transfers|payouts|webhook_endpoints)/({_ID})", path)
    if not m:
        return None
    validation.check_known(params, validation.RETRIEVE)
    table = {"accounts": "connect_accounts"}.get(m[1], m[1])
    found = store.connect_get(table, m[2])
    if found is None:
        raise not_found(m[1].rstrip("s"), m[2])
    if m[1] == "accounts":
        return _account_object(found["object"], store)
    if m[1] == "payouts":
        ensure_worker(sb)
    if m[1] == "webhook_endpoints":
        return {k: v for k, v in found["object"].items() if k != "secret"}  # shown once, at creation
    return found["object"]


__all__ = ["BANKS", "ApiError", "complete_payouts", "return_payout", "connect_target", "ensure_worker", "get", "post"]
