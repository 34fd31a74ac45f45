"""Stripe Connect through the official SDK: connected accounts with a bank account, transfers, payouts.

A payout is made on the connected account (the ``Stripe-Account`` header) to its bank account
(``destination``). Its status is ``pending`` when created, then ``in_transit``, then ``paid`` or
``failed``: only ``payout.paid`` / ``payout.failed`` (a Connect webhook, signed with the Connect
endpoint's own secret, ``PSP_CONNECT_WEBHOOK_SECRET``) or a later read say how it ended.
"""
from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

import stripe
from django.conf import settings

from payments.psp import stripe_currencies
from payments.psp.base import PSPPermanentError, WebhookSignatureError
from payments.psp.stripe_adapter import StripeAdapter
from payouts.psp.base import (
    BankAccount,
    ConnectedAccount,
    ConnectedAccountRequest,
    PayoutNotice,
    PayoutProvider,
    PayoutRequest,
    PayoutResult,
    PayoutStatus,
    PSPBankAccountRefused,
    TransferRequest,
    TransferResult,
)

_PAYOUT_STATUSES = {"pending": PayoutStatus.PENDING, "in_transit": PayoutStatus.IN_TRANSIT,
                    "paid": PayoutStatus.PAID, "failed": PayoutStatus.FAILED, "canceled": PayoutStatus.FAILED}
_PAYOUT_EVENTS = frozenset({"payout.created", "payout.updated", "payout.paid", "payout.failed", "payout.canceled"})


def _bank(obj: dict) -> BankAccount:
    return BankAccount(psp_reference=obj["id"], last4=str(obj.get("last4") or "")[-4:],
                       bank_name=obj.get("bank_name") or "", country=(obj.get("country") or "").upper(),
                       currency=(obj.get("currency") or "").lower())


def _payout(obj: dict) -> PayoutResult:
    currency = obj["currency"]
    status = _PAYOUT_STATUSES.get(obj.get("status"), PayoutStatus.PENDING)
    arrival = obj.get("arrival_date")
    return PayoutResult(
        status=status, psp_reference=obj["id"], currency=currency,
        amount=stripe_currencies.from_stripe(int(obj["amount"]), currency),
        arrival_date=datetime.fromtimestamp(int(arrival), UTC).date() if arrival else None,
        failure_code=(obj.get("failure_code") or "") if status is PayoutStatus.FAILED else "",
        failure_message=(obj.get("failure_message") or "") if status is PayoutStatus.FAILED else "",
        payout_id=(obj.get("metadata") or {}).get("payout_id", ""),
    )


def _transfer(obj: dict) -> TransferResult:
    currency = obj["currency"]
    return TransferResult(psp_reference=obj["id"], currency=currency,
                          amount=stripe_currencies.from_stripe(int(obj["amount"]), currency),
                          amount_reversed=stripe_currencies.from_stripe(int(obj.get("amount_reversed") or 0),
                                                                        currency))


class StripeConnectAdapter(PayoutProvider):
    name = "stripe"

    def __init__(self, *, api_key: str | None = None, api_base: str | None = None, timeout: float | None = None
                 ) -> None:
        # The payments adapter's client: the same SDK set-up (pinned version, our retries only, no env reads).
        self._stripe = StripeAdapter(api_key=api_key, api_base=api_base, timeout=timeout)

    def _call(self, method: str, path: str, params: dict | None = None, *, idempotency_key: str = "",
              account: str = "") -> dict:
        options = {"idempotency_key": idempotency_key} if idempotency_key else {}
        if account:
            options["stripe_account"] = account
        return self._stripe.client.raw_request(method, path, **(params or {}), **options).data

    @staticmethod
    def _translate(exc: stripe.StripeError) -> Exception:
        return StripeAdapter._translate(exc)  # one reading of Stripe's errors for money in and out

    # -- accounts ---------------------------------------------------------------------------
    def create_connected_account(self, request: ConnectedAccountRequest) -> ConnectedAccount:
        params = {"type": "custom", "country": request.country.upper(), "external_account": request.bank_token,
                  "capabilities": {"transfers": {"requested": True}},
                  "settings": {"payouts": {"schedule": {"interval": "manual"}}},  # we decide when
                  "metadata": {"seller_id": request.seller_id}}
        if request.email:
            params["email"] = request.email
        try:
            account = self._call("post", "/v1/accounts", params, idempotency_key=request.idempotency_key)
        except stripe.InvalidRequestError as exc:
            raise self._refused(exc) from exc
        except stripe.StripeError as exc:
            raise self._translate(exc) from exc
        banks = (account.get("external_accounts") or {}).get("data") or []
        if not banks:
            raise PSPBankAccountRefused("the PSP made the account without a bank account", code="bank_account_missing")
        return ConnectedAccount(psp_reference=account["id"], bank_account=_bank(banks[0]),
                                payouts_enabled=bool(account.get("payouts_enabled")))

    def add_bank_account(self, *, psp_account: str, bank_token: str, idempotency_key: str) -> BankAccount:
        try:
            bank = self._call("post", f"/v1/accounts/{quote(psp_account, safe='')}/external_accounts",
                              {"external_account": bank_token, "default_for_currency": True},
                              idempotency_key=idempotency_key)
        except stripe.InvalidRequestError as exc:
            raise self._refused(exc) from exc
        except stripe.StripeError as exc:
            raise self._translate(exc) from exc
        return _bank(bank)

    def _refused(self, exc: stripe.InvalidRequestError) -> Exception:
        if isinstance(exc, stripe.IdempotencyError):
            return self._translate(exc)
        if exc.param in ("external_account", "country"):
            return PSPBankAccountRefused(exc.user_message or str(exc), code=exc.code or "bank_account_refused")
        return PSPPermanentError(exc.user_message or str(exc), code=exc.code or "")

    # -- money out ------------------------------------------------------------------------------
    def create_transfer(self, request: TransferRequest) -> TransferResult:
        params = {"amount": stripe_currencies.to_stripe(request.amount, request.currency),
                  "currency": request.currency, "destination": request.psp_account,
                  "transfer_group": request.payout_id, "metadata": {"payout_id": request.payout_id}}
        try:
            return _transfer(self._call("post", "/v1/transfers", params, idempotency_key=request.idempotency_key))
        except stripe.StripeError as exc:
            raise self._translate(exc) from exc

    def find_transfer(self, *, psp_account: str, payout_id: str) -> TransferResult | None:
        try:
            listed = self._call("get", "/v1/transfers", {"destination": psp_account, "transfer_group": payout_id,
                                                         "limit": 10})
        except stripe.StripeError as exc:
            raise self._translate(exc) from exc
        ours = [t for t in listed.get("data") or [] if (t.get("metadata") or {}).get("payout_id") == payout_id]
        return _transfer(ours[-1]) if ours else None  # the oldest: a later one would be a double

    def reverse_transfer(self, *, transfer: str, amount: int, idempotency_key: str) -> int:
        try:
            self._call("post", f"/v1/transfers/{quote(transfer, safe='')}/reversals",
                       {"amount": amount}, idempotency_key=idempotency_key)
            return _transfer(self._call("get", f"/v1/transfers/{quote(transfer, safe='')}")).amount_reversed
        except stripe.StripeError as exc:
            raise self._translate(exc) from exc

    def create_payout(self, request: PayoutRequest) -> PayoutResult:
        params = {"amount": stripe_currencies.to_stripe(request.amount, request.currency),
                  "currency": request.currency, "destination": request.psp_bank_account,
                  "metadata": {**request.metadata, "payout_id": request.payout_id}}
        try:
            return _payout(self._call("post", "/v1/payouts", params, idempotency_key=request.idempotency_key,
                                      account=request.psp_account))
        except stripe.StripeError as exc:
            raise self._translate(exc) from exc

    def retrieve_payout(self, psp_reference: str, *, psp_account: str) -> PayoutResult:
        try:
            return _payout(self._call("get", f"/v1/payouts/{quote(psp_reference, safe='')}", account=psp_account))
        except stripe.StripeError as exc:
            raise self._translate(exc) from exc

    def find_payout(self, *, psp_account: str, psp_bank_account: str, payout_id: str) -> PayoutResult | None:
        try:
            listed = self._call("get", "/v1/payouts", {"destination": psp_bank_account, "limit": 100},
                                account=psp_account)
        except stripe.StripeError as exc:
            raise self._translate(exc) from exc
        ours = [p for p in listed.get("data") or [] if (p.get("metadata") or {}).get("payout_id") == payout_id]
        return _payout(ours[-1]) if ours else None

    # -- webhooks ------------------------------------------------------------------------------------
    def create_connect_endpoint(self, *, url: str) -> tuple[str, str]:
        try:
            endpoint = self._call("post", "/v1/webhook_endpoints",
                                  {"url": url, "connect": True, "enabled_events": sorted(_PAYOUT_EVENTS)})
        except stripe.StripeError as exc:
            raise self._translate(exc) from exc
        return endpoint["id"], endpoint["secret"]

    def verify_webhook(self, payload: bytes, signature: str) -> dict:
        secret = settings.PSP_CONNECT_WEBHOOK_SECRET
        if not secret:
            raise WebhookSignatureError("no Connect webhook secret is configured (PSP_CONNECT_WEBHOOK_SECRET)")
        try:
            event = stripe.Webhook.construct_event(payload, signature, secret,
                                                   tolerance=settings.PSP_WEBHOOK_TOLERANCE_SECONDS)
        except (stripe.SignatureVerificationError, ValueError) as exc:
            raise WebhookSignatureError(str(exc)) from exc
        return event.to_dict() if hasattr(event, "to_dict") else dict(event)

    def webhook_notice(self, event: dict) -> PayoutNotice:
        obj = (event.get("data") or {}).get("object") or {}
        payout = None
        if obj.get("object") == "payout" and event.get("type") in _PAYOUT_EVENTS:
            payout = _payout(obj)
        return PayoutNotice(event_id=event["id"], type=event.get("type", ""), object_id=str(obj.get("id", "")),
                            psp_account=event.get("account") or "", payout=payout)
