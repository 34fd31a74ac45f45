"""The PSP boundary: dataclasses in, dataclasses out. No PSP's JSON crosses it."""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from enum import StrEnum


class PaymentStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # declined or refused: final, nothing was captured
    PROCESSING = "processing"  # the PSP has not decided yet: wait for a webhook or ask later
    REQUIRES_ACTION = "requires_action"  # the buyer must authenticate (3-D Secure) at ``action_url``


@dataclass(frozen=True)
class PaymentRequest:
    idempotency_key: str  # the payment order's current PSP key: the PSP charges at most once per key
    payment_order_id: str  # sent as metadata, so the PSP can be searched by order whatever the key
    amount: int  # our minor units; the adapter converts to the PSP's own
    currency: str
    payment_method: str
    customer: str = ""  # the PSP customer the payment method is attached to, when it is
    metadata: dict[str, str] = field(default_factory=dict)
    # The buyer is present: confirm on-session; the PSP may ask for 3-D Secure and sends the buyer back
    # here. Blank: off-session (a card that insists on 3-D Secure is declined).
    return_url: str = ""


@dataclass(frozen=True)
class CustomerRequest:
    idempotency_key: str
    buyer_reference: str
    email: str = ""
    payment_method: str = ""  # attached to the new customer in the same call (refused as attaching would be)


@dataclass(frozen=True)
class AmountProblem:
    """A PSP rule an amount breaks (a minimum charge, a currency's precision)."""

    code: str
    message: str


@dataclass(frozen=True)
class PaymentResult:
    status: PaymentStatus
    psp_reference: str
    amount: int
    currency: str
    failure_code: str = ""
    failure_message: str = ""
    payment_order_id: str = ""  # the order the PSP's object says it is for (our metadata), when it says
    action_url: str = ""  # REQUIRES_ACTION: the page the buyer is sent to (the issuer's challenge)


@dataclass(frozen=True)
class RefundRequest:
    idempotency_key: str  # the refund's current PSP key (its id, unless the PSP spent it)
    refund_id: str  # sent as metadata, so the PSP's refund can be found whatever the key
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


class PSPKeySpent(PSPUnknownOutcome):
    """The PSP failed while executing and saved that failure against our idempotency key
    (Stripe's 500 with ``Stripe-Should-Retry: false``): sending again with the same key
    replays the failure. The charge may or may not exist; only a search tells."""


class PSPPermanentError(PSPError):
    """The PSP refused the request itself (bad credentials, invalid parameters)."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code or "psp_refused_request"


class PSPPaymentMethodRefused(PSPPermanentError):
    """The buyer's payment method cannot be used (declined when attached, unknown, used up)."""


class PaymentServiceProvider(abc.ABC):
    name: str

    @abc.abstractmethod
    def amount_problem(self, amount: int, currency: str) -> AmountProblem | None:
        """The PSP's rule this amount breaks, or ``None``: checked before anything is sent."""

    @abc.abstractmethod
    def create_customer(self, request: CustomerRequest) -> str:
        """A customer at the PSP for one buyer; returns its id. Idempotent per key. With ``payment_method``,
        the token is attached to it in the same call: ``PSPPaymentMethodRefused`` (and no customer) when the
        PSP won't attach it; attached, the token is charged as it is (with the customer)."""

    @abc.abstractmethod
    def attach_payment_method(self, *, payment_method: str, customer: str, idempotency_key: str) -> str:
        """Attach the buyer's payment method to their customer so that it can pay several orders.
        Returns the id to charge (Stripe's test ids attach as a new payment method)."""

    @abc.abstractmethod
    def create_payment(self, request: PaymentRequest) -> PaymentResult:
        """Charge and capture at once. Raises ``PSPError`` subclasses when there is no answer."""

    @abc.abstractmethod
    def retrieve_payment(self, psp_reference: str) -> PaymentResult:
        """The PSP's current view of a payment."""

    @abc.abstractmethod
    def cancel_payment(self, psp_reference: str, *, idempotency_key: str) -> PaymentResult:
        """Cancel a payment still waiting for its buyer (an abandoned 3-D Secure challenge). If the PSP
        has decided it meanwhile (the buyer answered just now), its current view is returned instead."""

    @abc.abstractmethod
    def find_payment(self, payment_order_id: str) -> PaymentResult | None:
        """The payment made for our order (under any of its keys), or ``None`` if the PSP shows
        none. Search may lag behind the PSP's writes: ``None`` proves nothing about a recent call."""

    @abc.abstractmethod
    def verify_webhook(self, payload: bytes, signature: str) -> dict:
        """Check the signature and its timestamp; return the event. Raises ``WebhookSignatureError``."""

    @abc.abstractmethod
    def webhook_notice(self, event: dict) -> WebhookNotice:
        """Translate a verified event into our terms."""

    @abc.abstractmethod
    def create_refund(self, request: RefundRequest) -> RefundResult:
        """Refund (part of) a captured payment, at most once per idempotency key."""

    @abc.abstractmethod
    def retrieve_refund(self, psp_reference: str) -> RefundResult:
        """The PSP's current view of a refund (a replay under its key repeats the first answer)."""

    @abc.abstractmethod
    def find_refund(self, *, psp_payment_reference: str, refund_id: str) -> RefundResult | None:
        """The PSP's refund of that payment made for our refund (under any of its keys), or ``None``.
        Read from the payment's list of refunds, which does not lag as search does."""
