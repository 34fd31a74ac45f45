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


class StripeAdapter(PaymentServiceProvider):
    name = "stripe"

    def __init__(self, *, api_key: str | None = None, api_base: str | None = None,
                 timeout: float | None = None) -> None:
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
