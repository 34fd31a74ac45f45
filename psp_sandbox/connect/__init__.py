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

The sandbox's own: ``GET /_sandbox/payouts`` (every transfer and payout, for a bench to hold our books
against) and ``POST /_sandbox/payouts/{id}/return`` (the bank sends a paid payout back). A Connect endpoint's
secret is ``$PSP_SANDBOX_CONNECT_WEBHOOK_SECRET`` when set (known in advance), else random.

Modules: ``common`` (test banks, schemas, helpers, events, faults), ``accounts`` (accounts, bank accounts,
webhook endpoints), ``transfers`` (transfers, reversals, balances), ``payouts`` (payouts, their worker, the
sandbox's own endpoints); this one routes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import validation
from ..behaviour import Plan
from ..errors import ApiError, not_found
from .accounts import (
    _account_object,
    _add_external_account,
    _create_account,
    _create_endpoint,
    _validate_account,
    _validate_endpoint,
    _validate_external_account,
)
from .common import _ID, BANKS, LIST_PARAMS, Result, _list, _plan, connect_target, emit
from .payouts import _create_payout, _validate_payout, complete_payouts, ensure_worker, return_payout, sandbox_route
from .transfers import (
    _create_transfer,
    _reverse_transfer,
    _transfer_plan,
    _validate_reversal,
    _validate_transfer,
    balance,
)

if TYPE_CHECKING:
    from ..server import Sandbox

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


__all__ = ["BANKS", "ApiError", "balance", "complete_payouts", "connect_target", "emit", "ensure_worker", "get",
           "post", "return_payout", "sandbox_route"]
