"""Stripe's documented test cards (https://docs.stripe.com/testing) and the sandbox's fault cards.

Every card has a name; ``pm_card_<name>`` and ``tok_<name>`` are its magic ids (reusable,
as on Stripe) and its number creates a PaymentMethod with the same behaviour. The
``pm_sandbox_*`` ids are the sandbox's own fault injection and have no number.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Decline:
    """A card error as Stripe reports it."""

    code: str
    decline_code: str | None
    message: str
    param: str | None = None
    advice_code: str | None = None


DECLINED = "Your card was declined."
GENERIC_DECLINE = Decline("card_declined", "generic_decline", DECLINED)
AUTHENTICATION_REQUIRED = Decline(
    "authentication_required",
    "authentication_required",
    "Your card was declined. This transaction requires authentication.",
    advice_code="try_again_later",
)


@dataclass(frozen=True)
class TestCard:
    """How a test card behaves when a PaymentIntent is confirmed with it."""

    number: str = ""
    brand: str = "visa"
    funding: str = "credit"
    country: str = "US"
    decline: Decline | None = None
    three_d_secure: bool = False  # on-session: requires_action; off-session: authentication_required
    fault: str | None = None  # pm_sandbox_*: server_error, flaky, timeout, processing, ...
    networks: tuple[str, ...] = field(default=())
    refund_fails: bool = False  # the charge succeeds; a refund starts pending, then fails
    authentication_fails: bool = False  # 3-D Secure: the issuer refuses the challenge, whatever the buyer does
    disputed: bool = False  # the charge succeeds, then is disputed (dispute_delay_s later; disputes.py)

    @property
    def last4(self) -> str:
        """The last four digits (``4242`` for the fault cards)."""
        return self.number[-4:] if self.number else "4242"


def _decline(code: str, decline_code: str, message: str = DECLINED, **kw: str) -> Decline:
    return Decline(code, decline_code, message, **kw)


INSUFFICIENT = _decline(
    "card_declined", "insufficient_funds", "Your card has insufficient funds.", advice_code="try_again_later"
)
LOST = _decline("card_declined", "lost_card", advice_code="do_not_try_again")
STOLEN = _decline("card_declined", "stolen_card", advice_code="do_not_try_again")
EXPIRED = _decline(
    "expired_card", "expired_card", "Your card has expired.", param="exp_month", advice_code="confirm_card_data"
)
INCORRECT_CVC = _decline(
    "incorrect_cvc",
    "incorrect_cvc",
    "Your card's security code is incorrect.",
    param="cvc",
    advice_code="confirm_card_data",
)
PROCESSING = _decline(
    "processing_error",
    "processing_error",
    "An error occurred while processing your card. Try again in a little bit.",
    advice_code="try_again_later",
)
VELOCITY = _decline(
    "card_declined",
    "card_velocity_exceeded",
    "Your card was declined for making repeated attempts too frequently or exceeding its amount limit.",
    advice_code="try_again_later",
)
FRAUDULENT = _decline("card_declined", "fraudulent", advice_code="do_not_try_again")

VISA = "4242424242424242"
CARDS: dict[str, TestCard] = {
    # Successful payments, by brand and country.
    "visa": TestCard(VISA),
    "us": TestCard(VISA),
    "visa_debit": TestCard("4000056655665556", funding="debit"),
    "mastercard": TestCard("5555555555554444", "mastercard"),
    "mastercard_debit": TestCard("5200828282828210", "mastercard", "debit"),
    "mastercard_prepaid": TestCard("5105105105105100", "mastercard", "prepaid"),
    "amex": TestCard("378282246310005", "amex"),
    "discover": TestCard("6011111111111117", "discover"),
    "diners": TestCard("3056930009020004", "diners"),
    "jcb": TestCard("3566002020360505", "jcb", country="JP"),
    "unionpay": TestCard("6200000000000005", "unionpay", country="CN"),
    "gb": TestCard("4000008260000000", country="GB"),
    "de": TestCard("4000002760000016", country="DE"),
    "fr": TestCard("4000002500000003", country="FR"),
    # Declines: Stripe's documented ids, then the sandbox's older aliases.
    "visa_chargeDeclined": TestCard("4000000000000002", decline=GENERIC_DECLINE),
    "visa_chargeDeclinedInsufficientFunds": TestCard("4000000000009995", decline=INSUFFICIENT),
    "visa_chargeDeclinedLostCard": TestCard("4000000000009987", decline=LOST),
    "visa_chargeDeclinedStolenCard": TestCard("4000000000009979", decline=STOLEN),
    "chargeDeclinedExpiredCard": TestCard("4000000000000069", decline=EXPIRED),
    "chargeDeclinedIncorrectCvc": TestCard("4000000000000127", decline=INCORRECT_CVC),
    "chargeDeclinedProcessingError": TestCard("4000000000000119", decline=PROCESSING),
    "visa_chargeDeclinedVelocityLimitExceeded": TestCard("4000000000006975", decline=VELOCITY),
    "chargeDeclinedFraudulent": TestCard("4100000000000019", decline=FRAUDULENT),
    "chargeCustomerFail": TestCard("4000000000000341", decline=GENERIC_DECLINE),
    "chargeDeclined": TestCard("4000000000000002", decline=GENERIC_DECLINE),
    "chargeDeclinedInsufficientFunds": TestCard("4000000000009995", decline=INSUFFICIENT),
    "chargeDeclinedLostCard": TestCard("4000000000009987", decline=LOST),
    "chargeDeclinedStolenCard": TestCard("4000000000009979", decline=STOLEN),
    # 3-D Secure.
    "authenticationRequired": TestCard("4000002760003184", country="DE", three_d_secure=True),
    "threeDSecure2Required": TestCard("4000000000003220", three_d_secure=True),
    "threeDSecureRequired": TestCard("4000000000003063", three_d_secure=True),
    "authenticationRequiredFails": TestCard("4000008400001280", three_d_secure=True, authentication_fails=True),
    # Refunds: "asynchronous failure" (a refund is created pending, then fails with
    # expired_or_canceled_card and a refund.failed event after refund_failure_delay_s).
    "refundFail": TestCard("4000000000005126", refund_fails=True),
    # Disputes: the charge succeeds, then the buyer's bank disputes it (fraudulent), as Stripe's test card does.
    "createDispute": TestCard("4000000000000259", disputed=True),
}  # fmt: skip

FAULTS: dict[str, TestCard] = {
    f"pm_sandbox_{fault}": TestCard(VISA, fault=fault)
    for fault in ("server_error", "flaky", "timeout", "processing", "processing_fail", "connection_drop")
}

BY_NUMBER: dict[str, str] = {}
for _name, _card in CARDS.items():
    BY_NUMBER.setdefault(_card.number, _name)


def magic(pm_id: str) -> TestCard | None:
    """The card behind a magic test id (``pm_card_visa``, ``pm_sandbox_flaky``), or None."""
    if pm_id in FAULTS:
        return FAULTS[pm_id]
    return CARDS.get(pm_id[len("pm_card_") :]) if pm_id.startswith("pm_card_") else None


def token(tok_id: str) -> TestCard | None:
    """The card behind a test token (``tok_visa``), or None."""
    return CARDS.get(tok_id[len("tok_") :]) if tok_id.startswith("tok_") else None


def card_name(card: TestCard) -> str:
    """A stable key for storing a card's behaviour."""
    if card.fault:
        return "pm_sandbox_" + card.fault
    return next(name for name, c in CARDS.items() if c == card)


def by_name(name: str) -> TestCard:
    """Inverse of ``card_name``."""
    return FAULTS[name] if name.startswith("pm_sandbox_") else CARDS[name]


def luhn_ok(number: str) -> bool:
    """The Luhn checksum every card number carries."""
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def brand_of(number: str) -> str:
    """A card brand from the number's prefix (for non-test numbers, which are refused anyway)."""
    if number.startswith("4"):
        return "visa"
    if number[:2] in ("34", "37"):
        return "amex"
    if number[:2] in {str(n) for n in range(51, 56)} or 2221 <= int(number[:4] or 0) <= 2720:
        return "mastercard"
    return "unknown"
