"""Stripe PaymentIntents through the official SDK. The sandbox is Stripe at another URL."""
from __future__ import annotations

import stripe
from django.conf import settings

from payments.psp.base import (
    PaymentRequest,
    PaymentResult,
    PaymentServiceProvider,
    PaymentStatus,
    PSPPermanentError,
    PSPRetryableError,
    PSPUnknownOutcome,
    RefundRequest,
    RefundResult,
    WebhookNotice,
    WebhookSignatureError,
)

_STATUSES = {
    "succeeded": PaymentStatus.SUCCEEDED,
    "processing": PaymentStatus.PROCESSING,
    "requires_payment_method": PaymentStatus.FAILED,
    "canceled": PaymentStatus.FAILED,
    # We confirm server-side without 3-D Secure; a PaymentIntent that wants more is not paid.
    "requires_action": PaymentStatus.FAILED,
    "requires_confirmation": PaymentStatus.FAILED,
}


def _plain(obj) -> dict:
    """The SDK's StripeObject as a plain dict (it refuses dict methods)."""
    if obj is None:
        return {}
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _result(intent) -> PaymentResult:
    intent = _plain(intent)
    error = intent.get("last_payment_error") or {}
    status = _STATUSES.get(intent["status"], PaymentStatus.PROCESSING)
    code = error.get("decline_code") or error.get("code") or ""
    if status is PaymentStatus.FAILED and not code:
        code = f"payment_intent_{intent['status']}"
    return PaymentResult(
        status=status,
        psp_reference=intent["id"],
        amount=int(intent["amount"]),
        currency=intent["currency"],
        failure_code=code if status is PaymentStatus.FAILED else "",
        failure_message=(error.get("message") or "") if status is PaymentStatus.FAILED else "",
    )


def _refund_result(refund: dict) -> RefundResult:
    status = {"succeeded": PaymentStatus.SUCCEEDED, "failed": PaymentStatus.FAILED,
              "canceled": PaymentStatus.FAILED}.get(refund["status"], PaymentStatus.PROCESSING)
    return RefundResult(status=status, psp_reference=refund["id"], amount=int(refund["amount"]),
                        currency=refund["currency"], failure_code=refund.get("failure_reason") or "")


class StripeAdapter(PaymentServiceProvider):
    name = "stripe"

    def __init__(self, *, api_key: str | None = None, api_base: str | None = None,
                 timeout: float | None = None, webhook_secret: str | None = None) -> None:
        self.webhook_secret = webhook_secret or settings.PSP_WEBHOOK_SECRET
        self.client = stripe.StripeClient(
            api_key or settings.PSP_API_KEY,
            base_addresses={"api": api_base or settings.PSP_API_BASE},
            max_network_retries=0,  # retries are ours: Celery with backoff, same idempotency key
            http_client=stripe.RequestsClient(timeout=timeout or settings.PSP_TIMEOUT_SECONDS),
        )

    def create_payment(self, request: PaymentRequest) -> PaymentResult:
        params = {
            "amount": request.amount,
            "currency": request.currency,
            "payment_method": request.payment_method,
            "confirm": True,
            "metadata": {"payment_order_id": request.idempotency_key, **request.metadata},
        }
        try:
            intent = self.client.v1.payment_intents.create(
                params=params, options={"idempotency_key": request.idempotency_key}
            )
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
            return _result(self.client.v1.payment_intents.retrieve(psp_reference))
        except stripe.StripeError as exc:
            raise self._translate(exc) from exc

    def find_payment(self, idempotency_key: str) -> PaymentResult | None:
        query = f"metadata['payment_order_id']:'{idempotency_key}'"
        try:
            found = self.client.v1.payment_intents.search(params={"query": query})
        except stripe.StripeError as exc:
            raise self._translate(exc) from exc
        intents = _plain(found).get("data") or []
        return _result(intents[0]) if intents else None

    def create_refund(self, request: RefundRequest) -> RefundResult:
        params = {"payment_intent": request.psp_payment_reference, "amount": request.amount,
                  "metadata": {"refund_id": request.idempotency_key, **request.metadata}}
        try:
            refund = _plain(self.client.v1.refunds.create(
                params=params, options={"idempotency_key": request.idempotency_key}))
        except stripe.InvalidRequestError as exc:
            # The PSP refused the refund itself (e.g. more than what is left): nothing was refunded.
            return RefundResult(status=PaymentStatus.FAILED, psp_reference="", amount=request.amount,
                                currency=request.currency, failure_code=exc.code or "refund_refused")
        except stripe.StripeError as exc:
            raise self._translate(exc) from exc
        return _refund_result(refund)

    def verify_webhook(self, payload: bytes, signature: str) -> dict:
        try:
            event = stripe.Webhook.construct_event(
                payload, signature, self.webhook_secret, tolerance=settings.PSP_WEBHOOK_TOLERANCE_SECONDS)
        except (stripe.SignatureVerificationError, ValueError) as exc:
            raise WebhookSignatureError(str(exc)) from exc
        return _plain(event)

    def webhook_notice(self, event: dict) -> WebhookNotice:
        obj = (event.get("data") or {}).get("object") or {}
        metadata = obj.get("metadata") or {}
        payment = refund = None
        if obj.get("object") == "payment_intent":
            payment = _result(obj)
        elif obj.get("object") == "refund":
            refund = _refund_result(obj)
        elif obj.get("object") == "charge" and event.get("type") == "charge.refunded":
            refunds = (obj.get("refunds") or {}).get("data") or []
            if refunds:
                refund = _refund_result(refunds[-1])
                metadata = refunds[-1].get("metadata") or metadata
        return WebhookNotice(
            event_id=event["id"], type=event.get("type", ""), object_id=obj.get("id", ""),
            payment_order_id=metadata.get("payment_order_id", ""), refund_id=metadata.get("refund_id", ""),
            payment=payment, refund=refund,
        )

    @staticmethod
    def _translate(exc: stripe.StripeError) -> Exception:
        message = f"{type(exc).__name__}: {exc.user_message or exc}"
        if isinstance(exc, stripe.APIConnectionError):
            return PSPUnknownOutcome(message)
        if isinstance(exc, (stripe.APIError, stripe.RateLimitError)):
            return PSPRetryableError(message)
        if isinstance(exc, stripe.IdempotencyError):
            # Our key with other parameters: a charge may exist. Never treat as a decline.
            return PSPUnknownOutcome(message)
        if exc.http_status and exc.http_status >= 500:
            return PSPRetryableError(message)
        return PSPPermanentError(message)
