"""Transfers from the platform's balance to a connected account, their reversals, an account's balance."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import validation
from ..behaviour import Plan
from ..errors import invalid, not_found, required
from ..store import Store, new_id
from .common import BANKS, REVERSAL_CREATE, TRANSFER_CREATE, Bank, Result, _amount_and_currency, _metadata, _plan, emit

if TYPE_CHECKING:
    from ..server import Sandbox


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
