"""The PSP boundary for money out: dataclasses in, dataclasses out. No PSP's JSON crosses it.

Errors are the payments boundary's (``payments.psp.base``): ``PSPRetryableError`` (send again, same key),
``PSPUnknownOutcome`` (no answer: the object may exist), ``PSPKeySpent`` (the PSP saved a failure against
the key), ``PSPPermanentError`` (refused: nothing was made).
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from payments.psp.base import PSPPermanentError


class PSPBankAccountRefused(PSPPermanentError):
    """The bank account token is unknown, used up or not a bank account's."""


@dataclass(frozen=True)
class BankAccount:
    """A seller's bank account as the PSP keeps it: its id and what may be shown, never its number."""

    psp_reference: str
    last4: str
    bank_name: str
    country: str
    currency: str


@dataclass(frozen=True)
class ConnectedAccountRequest:
    idempotency_key: str
    seller_id: str  # sent as metadata
    country: str
    bank_token: str
    email: str = ""


@dataclass(frozen=True)
class ConnectedAccount:
    psp_reference: str
    bank_account: BankAccount
    payouts_enabled: bool


class PayoutStatus(StrEnum):
    PENDING = "pending"  # created, not on its way yet
    IN_TRANSIT = "in_transit"  # sent to the bank: only the PSP's webhook or a later read says paid or failed
    PAID = "paid"
    FAILED = "failed"


@dataclass(frozen=True)
class TransferRequest:
    idempotency_key: str
    payout_id: str  # our payout: metadata and transfer group, so the transfer is found whatever the key
    psp_account: str
    amount: int
    currency: str


@dataclass(frozen=True)
class TransferResult:
    psp_reference: str
    amount: int
    currency: str
    amount_reversed: int = 0


@dataclass(frozen=True)
class PayoutRequest:
    idempotency_key: str
    payout_id: str
    psp_account: str
    psp_bank_account: str
    amount: int
    currency: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PayoutResult:
    status: PayoutStatus
    psp_reference: str
    amount: int
    currency: str
    arrival_date: date | None = None
    failure_code: str = ""
    failure_message: str = ""
    payout_id: str = ""  # the payout our metadata names, when the PSP echoes it


@dataclass(frozen=True)
class PayoutNotice:
    """A Connect webhook, verified and translated. ``payout`` is set when it is about one."""

    event_id: str
    type: str
    object_id: str
    psp_account: str = ""
    payout: PayoutResult | None = None


class PayoutProvider(abc.ABC):
    name: str

    # -- accounts ---------------------------------------------------------------------
    @abc.abstractmethod
    def create_connected_account(self, request: ConnectedAccountRequest) -> ConnectedAccount:
        """A connected account for a seller, paying out to the bank account behind ``bank_token``."""

    @abc.abstractmethod
    def add_bank_account(self, *, psp_account: str, bank_token: str, idempotency_key: str) -> BankAccount:
        """Another bank account on the connected account, the default for its currency from now on."""

    # -- money out ----------------------------------------------------------------------
    @abc.abstractmethod
    def create_transfer(self, request: TransferRequest) -> TransferResult:
        """Move ``amount`` from the platform's balance to the connected account, once per key."""

    @abc.abstractmethod
    def find_transfer(self, *, psp_account: str, payout_id: str) -> TransferResult | None:
        """The transfer made for our payout (under any key), or None. Strongly consistent."""

    @abc.abstractmethod
    def reverse_transfer(self, *, transfer: str, amount: int, idempotency_key: str) -> int:
        """Take ``amount`` of a transfer back to the platform; returns the transfer's amount reversed."""

    @abc.abstractmethod
    def create_payout(self, request: PayoutRequest) -> PayoutResult:
        """Pay the connected account's balance out to its bank account, once per key."""

    @abc.abstractmethod
    def retrieve_payout(self, psp_reference: str, *, psp_account: str) -> PayoutResult:
        """The PSP's current view of a payout, on the connected account it was made on."""

    @abc.abstractmethod
    def find_payout(self, *, psp_account: str, psp_bank_account: str, payout_id: str) -> PayoutResult | None:
        """The payout made for our payout (under any key) on its connected account, or None. Strongly
        consistent (a list). Asked on the platform's own account, it would always answer None."""

    # -- webhooks ----------------------------------------------------------------------------
    @abc.abstractmethod
    def create_connect_endpoint(self, *, url: str) -> tuple[str, str]:
        """Register ``url`` for the connected accounts' events; returns ``(endpoint id, signing secret)``."""

    @abc.abstractmethod
    def verify_webhook(self, payload: bytes, signature: str) -> dict:
        """Check a Connect webhook's signature; return the event. Raises ``WebhookSignatureError``."""

    @abc.abstractmethod
    def webhook_notice(self, event: dict) -> PayoutNotice:
        """Translate a verified Connect event into our terms."""
