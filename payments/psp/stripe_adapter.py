"""Stripe PaymentIntents through the official SDK. The sandbox is Stripe at another URL.

Every request is one Stripe documents for the SDK's pinned API version (``stripe.api_version``,
2026-10-28.endive for stripe 16.1): card payments are confirmed server-side with
``allowed_payment_method_types=["card"]`` so that no redirect-based payment method is involved.
(Since 2026-09-30.endive the older ``payment_method_types`` parameter is refused, and dynamic
payment methods, the default since 2023-08-16, would want a ``return_url``.) When the buyer is not
present (``off_session``) a card that insists on 3-D Secure is declined with
``authentication_required``: nobody is there to answer the challenge. When the buyer is present
(a ``return_url``: the hosted payment page), such a card leaves the PaymentIntent
``requires_action`` with a ``redirect_to_url`` next action: the buyer's challenge, which sends them
back to the ``return_url``.
"""
from __future__ import annotations

from urllib.parse import quote

import stripe
from django.conf import settings

from payments.psp import stripe_currencies
from payments.psp.base import (
    AmountProblem,
    CustomerRequest,
    PaymentRequest,
    PaymentResult,
    PaymentServiceProvider,
    PaymentStatus,
    PSPKeySpent,
    PSPPaymentMethodRefused,
    PSPPermanentError,
    PSPRetryableError,
    PSPUnknownOutcome,
    RefundRequest,
    RefundResult,
    WebhookNotice,
    WebhookSignatureError,
)
from payments.psp.http_client import PSPHttpClient
from payments.psp.stripe_sdk_encoding import form_encoding_cached
from payments.psp.stripe_sdk_headers import request_headers_once
from payments.psp.stripe_sdk_json import sdk_json_plain
from payments.psp.stripe_sdk_logging import sdk_logging_when_enabled

API_VERSION = stripe.api_version  # pinned: the version the installed SDK's types describe
sdk_logging_when_enabled()
sdk_json_plain()
form_encoding_cached()

_STATUSES = {
    "succeeded": PaymentStatus.SUCCEEDED,
    "processing": PaymentStatus.PROCESSING,
    "requires_payment_method": PaymentStatus.FAILED,
    "canceled": PaymentStatus.FAILED,
    # Waiting for the buyer's 3-D Secure (on-session, with a redirect: see _result; any other next
    # action cannot be answered by us, so it is not paid); waiting for a confirmation: not paid.
    "requires_action": PaymentStatus.REQUIRES_ACTION,
    "requires_confirmation": PaymentStatus.FAILED,
}
# Only these events carry a payment's outcome; payment_intent.created and charge.* restate it.
_PAYMENT_OUTCOME_EVENTS = frozenset({
    "payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.processing",
    "payment_intent.canceled", "payment_intent.requires_action",
})
_REFUND_EVENTS = frozenset({"refund.created", "refund.updated", "refund.failed", "charge.refunded"})


def _plain(obj) -> dict:
    """The SDK's StripeObject as a plain dict (it refuses dict methods)."""
    if obj is None:
        return {}
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _result(intent) -> PaymentResult:
    intent = _plain(intent)
    error = intent.get("last_payment_error") or {}
    status = _STATUSES.get(intent["status"], PaymentStatus.PROCESSING)
    action_url = ""
    if status is PaymentStatus.REQUIRES_ACTION:
        action = intent.get("next_action") or {}
        action_url = str(((action.get("redirect_to_url") or {}).get("url")) or "") \
            if action.get("type") == "redirect_to_url" else ""
        if not action_url:  # nothing we can send the buyer to (Stripe.js' own flow): not paid
            status = PaymentStatus.FAILED
    code = error.get("decline_code") or error.get("code") or ""
    if status is PaymentStatus.FAILED and not code:
        code = f"payment_intent_{intent['status']}"
    currency = intent["currency"]
    return PaymentResult(
        status=status,
        psp_reference=intent["id"],
        amount=stripe_currencies.from_stripe(int(intent["amount"]), currency),
        currency=currency,
        failure_code=code if status is PaymentStatus.FAILED else "",
        failure_message=(error.get("message") or "") if status is PaymentStatus.FAILED else "",
        payment_order_id=(intent.get("metadata") or {}).get("payment_order_id", ""),
        action_url=action_url,
    )


def _refund_result(refund: dict) -> RefundResult:
    status = {"succeeded": PaymentStatus.SUCCEEDED, "failed": PaymentStatus.FAILED,
              "canceled": PaymentStatus.FAILED}.get(refund["status"], PaymentStatus.PROCESSING)
    currency = refund["currency"]
    return RefundResult(status=status, psp_reference=refund["id"],
                        amount=stripe_currencies.from_stripe(int(refund["amount"]), currency),
                        currency=currency, failure_code=refund.get("failure_reason") or "")


def _header(exc: stripe.StripeError, name: str) -> str:
    return next((str(v) for k, v in (exc.headers or {}).items() if k.lower() == name), "")


class StripeAdapter(PaymentServiceProvider):
    name = "stripe"

    def __init__(self, *, api_key: str | None = None, api_base: str | None = None,
                 timeout: float | None = None, webhook_secret: str | None = None,
                 http_client: stripe.HTTPClient | None = None) -> None:
        self.webhook_secret = webhook_secret or settings.PSP_WEBHOOK_SECRET
        api_base = api_base or settings.PSP_API_BASE
        self.client = stripe.StripeClient(
            api_key or settings.PSP_API_KEY,
            stripe_version=API_VERSION,
            base_addresses={"api": api_base},
            max_network_retries=0,  # retries are ours: Celery with backoff, same idempotency key
            http_client=http_client or PSPHttpClient(api_base=api_base,
                                                     timeout=timeout or settings.PSP_TIMEOUT_SECONDS),
        )
        request_headers_once(self.client._requestor)

    def _call(self, method: str, path: str, params: dict | None = None, *, idempotency_key: str = "") -> dict:
        """One request through the SDK (auth, pinned version, errors as its exceptions), answered as
        plain JSON: the SDK's object model costs more CPU than the rest of an order's PSP call."""
        options = {"idempotency_key": idempotency_key} if idempotency_key else {}
        return self.client.raw_request(method, path, **(params or {}), **options).data

    def amount_problem(self, amount: int, currency: str) -> AmountProblem | None:
        return stripe_currencies.psp_amount_problem(amount, currency)

    def create_customer(self, request: CustomerRequest) -> str:
        params = {"metadata": {"buyer_reference": request.buyer_reference}}
        if request.email:
            params["email"] = request.email
        if request.payment_method:
            params["payment_method"] = request.payment_method  # attached on create
        try:
            customer = self._call("post", "/v1/customers", params, idempotency_key=request.idempotency_key)
        except stripe.StripeError as exc:
            raise self._translate_setup(exc) from exc
        return customer["id"]

    def attach_payment_method(self, *, payment_method: str, customer: str, idempotency_key: str) -> str:
        try:
            attached = self._call("post", f"/v1/payment_methods/{quote(payment_method, safe='')}/attach",
                                  {"customer": customer}, idempotency_key=idempotency_key)
        except stripe.StripeError as exc:
            raise self._translate_setup(exc) from exc
        return attached["id"]

    def create_payment(self, request: PaymentRequest) -> PaymentResult:
        params = {
            "amount": stripe_currencies.to_stripe(request.amount, request.currency),
            "currency": request.currency,
            "payment_method": request.payment_method,
            "allowed_payment_method_types": ["card"],
            "confirm": True,
            "metadata": {**request.metadata, "payment_order_id": request.payment_order_id},
        }
        if request.return_url:
            params["return_url"] = request.return_url  # the buyer is there: 3-D Secure may be asked
        else:
            params["off_session"] = True  # the executor pays after the checkout: the buyer is not there
        if request.customer:
            params["customer"] = request.customer
        try:
            intent = self._call("post", "/v1/payment_intents", params, idempotency_key=request.idempotency_key)
        except stripe.CardError as exc:
            intent = _plain(exc.error.payment_intent if exc.error else None)
            return PaymentResult(
                status=PaymentStatus.FAILED,
                psp_reference=intent.get("id", ""),
                amount=request.amount,
                currency=request.currency,
                failure_code=(exc.error.decline_code if exc.error else None) or exc.code or "card_declined",
                failure_message=exc.user_message or "The card was declined.",
            )
        except stripe.StripeError as exc:
            raise self._translate(exc) from exc
        return _result(intent)

    def retrieve_payment(self, psp_reference: str) -> PaymentResult:
        try:
            return _result(self._call("get", f"/v1/payment_intents/{quote(psp_reference, safe='')}"))
        except stripe.StripeError as exc:
            raise self._translate(exc) from exc

    def cancel_payment(self, psp_reference: str, *, idempotency_key: str) -> PaymentResult:
        try:
            return _result(self._call("post", f"/v1/payment_intents/{quote(psp_reference, safe='')}/cancel",
                                      {"cancellation_reason": "abandoned"}, idempotency_key=idempotency_key))
        except stripe.InvalidRequestError as exc:
            if exc.code != "payment_intent_unexpected_state":
                raise self._translate(exc) from exc
        except stripe.StripeError as exc:
            raise self._translate(exc) from exc
        return self.retrieve_payment(psp_reference)  # decided meanwhile: its own word stands

    def find_payment(self, payment_order_id: str) -> PaymentResult | None:
        query = f"metadata['payment_order_id']:'{payment_order_id}'"
        try:
            found = self._call("get", "/v1/payment_intents/search", {"query": query})
        except stripe.StripeError as exc:
            raise self._translate(exc) from exc
        intents = _plain(found).get("data") or []
        # A succeeded one wins over failed attempts under earlier keys.
        intents.sort(key=lambda pi: pi.get("status") != "succeeded")
        return _result(intents[0]) if intents else None

    def create_refund(self, request: RefundRequest) -> RefundResult:
        params = {"payment_intent": request.psp_payment_reference,
                  "amount": stripe_currencies.to_stripe(request.amount, request.currency),
                  "metadata": {**request.metadata, "refund_id": request.refund_id}}
        try:
            refund = self._call("post", "/v1/refunds", params, idempotency_key=request.idempotency_key)
        except stripe.InvalidRequestError as exc:
            # The PSP refused the refund itself (e.g. more than what is left): nothing was refunded.
            return RefundResult(status=PaymentStatus.FAILED, psp_reference="", amount=request.amount,
                                currency=request.currency, failure_code=exc.code or "refund_refused")
        except stripe.StripeError as exc:
            raise self._translate(exc) from exc
        return _refund_result(refund)

    def retrieve_refund(self, psp_reference: str) -> RefundResult:
        try:
            return _refund_result(self._call("get", f"/v1/refunds/{quote(psp_reference, safe='')}"))
        except stripe.StripeError as exc:
            raise self._translate(exc) from exc

    def find_refund(self, *, psp_payment_reference: str, refund_id: str) -> RefundResult | None:
        try:
            listed = self._call("get", "/v1/refunds", {"payment_intent": psp_payment_reference, "limit": 100})
        except stripe.StripeError as exc:
            raise self._translate(exc) from exc
        ours = [r for r in _plain(listed).get("data") or [] if (r.get("metadata") or {}).get("refund_id") == refund_id]
        return _refund_result(ours[0]) if ours else None

    def verify_webhook(self, payload: bytes, signature: str) -> dict:
        try:
            event = stripe.Webhook.construct_event(
                payload, signature, self.webhook_secret, tolerance=settings.PSP_WEBHOOK_TOLERANCE_SECONDS)
        except (stripe.SignatureVerificationError, ValueError) as exc:
            raise WebhookSignatureError(str(exc)) from exc
        return _plain(event)

    def webhook_notice(self, event: dict) -> WebhookNotice:
        obj = (event.get("data") or {}).get("object") or {}
        event_type = event.get("type", "")
        metadata = obj.get("metadata") or {}
        payment = refund = None
        if obj.get("object") == "payment_intent" and event_type in _PAYMENT_OUTCOME_EVENTS:
            payment = _result(obj)
        elif obj.get("object") == "refund" and event_type in _REFUND_EVENTS:
            refund = _refund_result(obj)
        elif obj.get("object") == "charge" and event_type == "charge.refunded":
            refunds = (obj.get("refunds") or {}).get("data") or []
            if refunds:
                refund = _refund_result(refunds[-1])
                metadata = refunds[-1].get("metadata") or metadata
        return WebhookNotice(
            event_id=event["id"], type=event_type, object_id=obj.get("id", ""),
            payment_order_id=metadata.get("payment_order_id", ""), refund_id=metadata.get("refund_id", ""),
            payment=payment, refund=refund,
        )

    @staticmethod
    def _translate(exc: stripe.StripeError) -> Exception:
        message = f"{type(exc).__name__}: {exc.user_message or exc}"
        if isinstance(exc, stripe.APIConnectionError):
            return PSPUnknownOutcome(message)
        should_retry = _header(exc, "stripe-should-retry")
        if isinstance(exc, stripe.RateLimitError) or should_retry == "true":
            return PSPRetryableError(message)
        if isinstance(exc, stripe.IdempotencyError):
            # Our key with other parameters, or a twin still in flight: a charge may exist.
            return PSPUnknownOutcome(message)
        if isinstance(exc, stripe.APIError) or (exc.http_status and exc.http_status >= 500):
            # Stripe saves a 500 against the key and replays it: the same key can't get past it.
            return PSPKeySpent(message)
        return PSPPermanentError(message, code=exc.code or "")

    @classmethod
    def _translate_setup(cls, exc: stripe.StripeError) -> Exception:
        """Preparing a payment method moves no money: anything short of a refusal is retried."""
        if isinstance(exc, (stripe.CardError, stripe.InvalidRequestError)) and not isinstance(
                exc, stripe.IdempotencyError):
            return PSPPaymentMethodRefused(f"{type(exc).__name__}: {exc.user_message or exc}",
                                           code=(exc.error.decline_code if exc.error else None) or exc.code or "")
        translated = cls._translate(exc)
        if isinstance(translated, PSPPermanentError):
            return translated
        return PSPRetryableError(str(translated))
