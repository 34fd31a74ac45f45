"""Test payment methods and fault-injection configuration.

``Config`` holds the effective configuration (defaults, env, then overrides
persisted in SQLite).  ``decide`` turns a payment method plus the config into
a ``Plan``: what happens before execution (injected 500 / dropped connection),
what the charge outcome is, and how the response is delivered.
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .store import Store

RATE_KEYS = (
    "error_rate",
    "drop_rate",
    "timeout_rate",
    "processing_rate",
    "decline_rate",
    "webhook_duplicate_rate",
)


def default_config() -> dict[str, Any]:
    """Config defaults; webhook URL and secret come from the environment."""
    return {
        "latency_ms": [0, 0],
        "error_rate": 0.0,
        "drop_rate": 0.0,
        "timeout_rate": 0.0,
        "processing_rate": 0.0,
        "decline_rate": 0.0,
        "seed": None,
        "flaky_failures": 2,
        "timeout_delay_s": 30.0,
        "processing_delay_s": 2.0,
        "webhook_url": os.environ.get("PSP_SANDBOX_WEBHOOK_URL", ""),
        "webhook_secret": os.environ.get("PSP_SANDBOX_WEBHOOK_SECRET", "whsec_sandbox_secret"),
        "webhook_max_attempts": 8,
        "webhook_retry_base_s": 0.5,
        "webhook_duplicate_rate": 0.0,
        "webhook_reorder": False,
        "webhook_reorder_window_s": 1.0,
        "webhook_delay_s": 0.0,
        "webhook_timeout_s": 5.0,
        # Settlement fee rule: fee_percent_bps of the gross (half up) plus fee_fixed minor units.
        "fee_percent_bps": 290,
        "fee_fixed": 30,
    }


class ConfigError(ValueError):
    """A config update was rejected."""


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def validate_update(update: Any) -> dict[str, Any]:
    """Check a partial config update; return it normalised or raise ConfigError."""
    if not isinstance(update, dict):
        raise ConfigError("config must be a JSON object")
    defaults = default_config()
    out: dict[str, Any] = {}
    for key, value in update.items():
        if key not in defaults:
            raise ConfigError(f"unknown config key: {key}")
        if key == "latency_ms":
            ok = (
                isinstance(value, list)
                and len(value) == 2
                and all(_is_number(x) and x >= 0 for x in value)
                and value[0] <= value[1]
            )
            if not ok:
                raise ConfigError("latency_ms must be [min, max] with 0 <= min <= max")
            value = [int(value[0]), int(value[1])]
        elif key == "seed":
            if value is not None and not (isinstance(value, int) and not isinstance(value, bool)):
                raise ConfigError("seed must be an integer or null")
        elif key in ("webhook_url", "webhook_secret"):
            if not isinstance(value, str):
                raise ConfigError(f"{key} must be a string")
        elif key == "webhook_reorder":
            if not isinstance(value, bool):
                raise ConfigError("webhook_reorder must be a boolean")
        elif key in ("flaky_failures", "webhook_max_attempts", "fee_percent_bps", "fee_fixed"):
            if not (isinstance(value, int) and not isinstance(value, bool)) or value < 0:
                raise ConfigError(f"{key} must be a non-negative integer")
        else:
            if not _is_number(value) or value < 0:
                raise ConfigError(f"{key} must be a non-negative number")
            if key in RATE_KEYS and value > 1:
                raise ConfigError(f"{key} must be between 0 and 1")
            value = float(value)
        out[key] = value
    return out


class Config:
    """Effective configuration plus the shared random generator."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._values = {**default_config(), **store.load_config()}
        self._rng = random.Random(self._values["seed"])

    def snapshot(self) -> dict[str, Any]:
        """A copy of the current config."""
        with self._lock:
            return dict(self._values)

    def get(self, key: str) -> Any:
        """One config value."""
        with self._lock:
            return self._values[key]

    def update(self, update: Any) -> dict[str, Any]:
        """Validate, merge and persist an update; return the new config."""
        clean = validate_update(update)
        with self._lock:
            self._store.save_config(clean)
            self._values.update(clean)
            if "seed" in clean:
                self._rng = random.Random(clean["seed"])
            return dict(self._values)

    def reset(self) -> None:
        """Back to defaults (the store is cleared separately)."""
        with self._lock:
            self._values = default_config()
            self._rng = random.Random(None)

    def chance(self, rate: float) -> bool:
        """True with probability ``rate`` (deterministic when a seed is set)."""
        if rate <= 0:
            return False
        with self._lock:
            return self._rng.random() < rate

    def uniform(self, lo: float, hi: float) -> float:
        """Uniform random number in [lo, hi]."""
        if hi <= lo:
            return lo
        with self._lock:
            return self._rng.uniform(lo, hi)

    def shuffle(self, items: list[Any]) -> None:
        """Shuffle in place with the shared generator."""
        with self._lock:
            self._rng.shuffle(items)


@dataclass(frozen=True)
class Decline:
    """A card error as Stripe reports it."""

    code: str
    decline_code: str | None
    message: str


GENERIC_DECLINE = Decline("card_declined", "generic_decline", "Your card was declined.")

SUCCESS_METHODS = frozenset(
    {
        "pm_card_visa",
        "pm_card_visa_debit",
        "pm_card_mastercard",
        "pm_card_mastercard_debit",
        "pm_card_amex",
        "pm_card_discover",
        "pm_card_us",
    }
)

DECLINES: dict[str, Decline] = {
    "pm_card_chargeDeclined": GENERIC_DECLINE,
    "pm_card_chargeDeclinedInsufficientFunds": Decline(
        "card_declined", "insufficient_funds", "Your card has insufficient funds."
    ),
    "pm_card_chargeDeclinedExpiredCard": Decline("expired_card", "expired_card", "Your card has expired."),
    "pm_card_chargeDeclinedIncorrectCvc": Decline(
        "incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect."
    ),
    "pm_card_chargeDeclinedProcessingError": Decline(
        "processing_error",
        "processing_error",
        "An error occurred while processing your card. Try again.",
    ),
    "pm_card_chargeDeclinedFraudulent": Decline("card_declined", "fraudulent", "Your card was declined."),
    "pm_card_chargeDeclinedLostCard": Decline("card_declined", "lost_card", "Your card was declined."),
    "pm_card_chargeDeclinedStolenCard": Decline("card_declined", "stolen_card", "Your card was declined."),
}

SANDBOX_METHODS = frozenset(
    {
        "pm_sandbox_server_error",
        "pm_sandbox_flaky",
        "pm_sandbox_timeout",
        "pm_sandbox_processing",
        "pm_sandbox_processing_fail",
        "pm_sandbox_connection_drop",
    }
)


def is_valid_payment_method(pm: str) -> bool:
    """Anything starting with ``pm_`` is accepted (unknown ones behave like a good card)."""
    return pm.startswith("pm_") and len(pm) > 3


@dataclass
class Plan:
    """What one confirm attempt will do.

    pre_fault: "error" (500) or "drop" (connection closed) before execution,
    nothing stored.  outcome: "succeeded", "declined", "processing" (later
    succeeds) or "processing_fail" (later fails).  response_delay_s: the
    charge is stored, then the response waits that long.  drop_after: the
    charge is stored, then the connection is closed without a response.
    """

    pre_fault: str | None = None
    outcome: str = "succeeded"
    decline: Decline | None = None
    response_delay_s: float = 0.0
    drop_after: bool = False


def decide(pm: str, config: Config, flaky_count: Callable[[], int]) -> Plan:
    """Plan the confirm attempt for payment method ``pm``."""
    if pm == "pm_sandbox_server_error":
        return Plan(pre_fault="error")
    if pm == "pm_sandbox_flaky":
        return Plan(pre_fault="error") if flaky_count() <= config.get("flaky_failures") else Plan()
    if pm == "pm_sandbox_timeout":
        return Plan(response_delay_s=config.get("timeout_delay_s"))
    if pm == "pm_sandbox_processing":
        return Plan(outcome="processing")
    if pm == "pm_sandbox_processing_fail":
        return Plan(outcome="processing_fail")
    if pm == "pm_sandbox_connection_drop":
        return Plan(drop_after=True)
    if pm in DECLINES:
        return Plan(outcome="declined", decline=DECLINES[pm])
    # A good card: configured chaos applies.
    cfg = config.snapshot()
    if config.chance(cfg["error_rate"]):
        return Plan(pre_fault="error")
    if config.chance(cfg["drop_rate"]):
        return Plan(pre_fault="drop")
    if config.chance(cfg["decline_rate"]):
        return Plan(outcome="declined", decline=GENERIC_DECLINE)
    if config.chance(cfg["processing_rate"]):
        return Plan(outcome="processing")
    if config.chance(cfg["timeout_rate"]):
        return Plan(response_delay_s=cfg["timeout_delay_s"])
    return Plan()
