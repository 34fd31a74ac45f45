"""The PSP boundary: dataclasses in, dataclasses out. No PSP's JSON crosses it."""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from enum import StrEnum


class PaymentStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # declined or refused: final, nothing was captured
    PROCESSING = "processing"  # the PSP has not decided yet: wait for a webhook or ask later


@dataclass(frozen=True)
class PaymentRequest:
    idempotency_key: str  # our payment order id: the PSP charges at most once per key
    amount: int
    currency: str
    payment_method: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PaymentResult:
    status: PaymentStatus
    psp_reference: str
    amount: int
    currency: str
    failure_code: str = ""
    failure_message: str = ""


@dataclass(frozen=True)
class RefundRequest:
    idempotency_key: str  # our refund id
    psp_payment_reference: str
    amount: int
    currency: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RefundResult:
    status: PaymentStatus
    psp_reference: str
    amount: int
    currency: str
    failure_code: str = ""


@dataclass(frozen=True)
class WebhookNotice:
    """A PSP webhook, verified and translated. ``payment`` or ``refund`` is set when it is about one."""

    event_id: str
    type: str
    object_id: str
    payment_order_id: str = ""  # from the object's metadata, when the PSP echoes it back
    refund_id: str = ""
    payment: PaymentResult | None = None
    refund: RefundResult | None = None


class WebhookSignatureError(Exception):
    """Forged, stale or malformed: the webhook is refused."""


class PSPError(Exception):
    """The PSP could not give an answer. Nothing about the charge is known from it."""


class PSPRetryableError(PSPError):
    """Transient failure (5xx, rate limit): the same request, same key, may be retried."""


class PSPUnknownOutcome(PSPRetryableError):
    """Timeout or dropped connection after sending: the charge may or may not exist."""


class PSPPermanentError(PSPError):
    """The PSP refused the request itself (bad credentials, invalid parameters)."""


class PaymentServiceProvider(abc.ABC):
    name: str

    @abc.abstractmethod
    def create_payment(self, request: PaymentRequest) -> PaymentResult:
        """Charge and capture at once. Raises ``PSPError`` subclasses when there is no answer."""

    @abc.abstractmethod
    def retrieve_payment(self, psp_reference: str) -> PaymentResult:
        """The PSP's current view of a payment."""

    @abc.abstractmethod
    def find_payment(self, idempotency_key: str) -> PaymentResult | None:
        """The payment made for our idempotency key, or ``None`` if the PSP has none (read-only)."""

    @abc.abstractmethod
    def verify_webhook(self, payload: bytes, signature: str) -> dict:
        """Check the signature and its timestamp; return the event. Raises ``WebhookSignatureError``."""

    @abc.abstractmethod
    def webhook_notice(self, event: dict) -> WebhookNotice:
        """Translate a verified event into our terms."""

    @abc.abstractmethod
    def create_refund(self, request: RefundRequest) -> RefundResult:
        """Refund (part of) a captured payment, at most once per idempotency key."""
