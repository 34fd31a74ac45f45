"""The SDK's request logging is made only when the ``stripe`` logger (or ``stripe.log``) will show it, and then
exactly as the SDK makes it."""
import logging

import pytest
import stripe
from stripe import _util

from payments.psp.base import PaymentRequest, PaymentStatus
from payments.psp.stripe_adapter import StripeAdapter

pytestmark = pytest.mark.integration


@pytest.fixture
def formatted(monkeypatch):
    made = []
    logfmt = _util.logfmt
    monkeypatch.setattr(_util, "logfmt", lambda props: made.append(props["message"]) or logfmt(props))
    return made


@pytest.fixture
def stripe_logger():
    logger = logging.getLogger("stripe")
    level = logger.level
    yield logger
    logger.setLevel(level)  # setLevel, not the attribute: it clears the loggers' cached answers


def pay(url, key):
    return StripeAdapter(api_base=url).create_payment(PaymentRequest(
        idempotency_key=key, payment_order_id=key, amount=1000, currency="usd", payment_method="pm_card_visa"))


def test_nothing_is_formatted_for_a_logger_that_drops_it(psp_sandbox, formatted, monkeypatch, stripe_logger):
    monkeypatch.setattr(stripe, "log", None)
    stripe_logger.setLevel(logging.WARNING)
    assert pay(psp_sandbox, "ord_log_quiet").status is PaymentStatus.SUCCEEDED
    assert formatted == []


def test_what_is_shown_is_made_as_the_sdk_makes_it(psp_sandbox, formatted, caplog, monkeypatch, stripe_logger):
    monkeypatch.setattr(stripe, "log", None)
    with caplog.at_level(logging.INFO, logger="stripe"):
        pay(psp_sandbox, "ord_log_info")
    assert formatted == ["Request to Stripe api", "Stripe API response"]
    assert [r.getMessage() for r in caplog.records if r.name == "stripe"] == [
        f"message='Request to Stripe api' method=post url={psp_sandbox}/v1/payment_intents",
        f"message='Stripe API response' path={psp_sandbox}/v1/payment_intents response_code=200"]

    formatted.clear()
    with caplog.at_level(logging.DEBUG, logger="stripe"):
        pay(psp_sandbox, "ord_log_debug")
    assert "API response body" in formatted and "Post details" in formatted

    formatted.clear()
    stripe_logger.setLevel(logging.WARNING)
    monkeypatch.setattr(stripe, "log", "info")  # the SDK's own console logging
    pay(psp_sandbox, "ord_log_console")
    assert formatted == ["Request to Stripe api", "Stripe API response"]
