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

from .cards import AUTHENTICATION_REQUIRED, GENERIC_DECLINE, Decline, TestCard
from .store import Store

__all__ = ["GENERIC_DECLINE", "Config", "ConfigError", "Decline", "Plan", "decide"]

RATE_KEYS = (
    "error_rate",
    "transient_error_rate",
    "rate_limit_rate",
    "drop_rate",
    "timeout_rate",
    "processing_rate",
    "decline_rate",
    "refund_error_rate",
    "webhook_duplicate_rate",
)


def default_config() -> dict[str, Any]:
    """Config defaults; webhook URL and secret come from the environment."""
    return {
        "latency_ms": [0, 0],
        "error_rate": 0.0,
        "transient_error_rate": 0.0,
        # A 429 rate_limit before execution, not saved against the key (a retry runs the request again).
        "rate_limit_rate": 0.0,
        "drop_rate": 0.0,
        "timeout_rate": 0.0,
        "processing_rate": 0.0,
        "decline_rate": 0.0,
        # A refund's 500, saved against its idempotency key (nothing refunded), like error_rate's.
        "refund_error_rate": 0.0,
        "seed": None,
        "flaky_failures": 2,
        "timeout_delay_s": 30.0,
        "processing_delay_s": 2.0,
        # How long a refund of a refundFail card stays pending before it fails.
        "refund_failure_delay_s": 2.0,
        # pm_card_createDispute: its charge is disputed this long after it succeeds, for this fee (minor units).
        "dispute_delay_s": 1.0,
        "dispute_fee": 1500,
        "search_lag_s": 2.0,
        "idempotency_ttl_s": 86400.0,
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
        elif key in ("flaky_failures", "webhook_max_attempts", "fee_percent_bps", "fee_fixed", "dispute_fee"):
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
        # Persist before taking our own lock: request threads read the config while holding the
        # store's lock, so holding ours while waiting for the store's would deadlock against them.
        self._store.save_config(clean)
        with self._lock:
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


@dataclass
class Plan:
    """What one confirm attempt will do.

    pre_fault: before execution. "transient" is a 500 that is not saved against the
    idempotency key (Stripe's lock timeout: retrying runs the request again), "rate_limit" is Stripe's
    429 (not saved either), "drop" closes
    the connection; nothing is executed or stored. "error" is a 500 saved against the key
    and replayed for it (no PaymentIntent is created). outcome: "succeeded", "declined",
    "requires_action", "processing" (later succeeds) or "processing_fail" (later fails).
    response_delay_s: the charge is stored, then the response waits that long. drop_after:
    the charge is stored, then the connection is closed without a response.
    """

    pre_fault: str | None = None
    outcome: str = "succeeded"
    decline: Decline | None = None
    response_delay_s: float = 0.0
    drop_after: bool = False


_FAULT_PLANS = {
    "server_error": Plan(pre_fault="error"),
    "processing": Plan(outcome="processing"),
    "processing_fail": Plan(outcome="processing_fail"),
    "connection_drop": Plan(drop_after=True),
}


def decide(card: TestCard, off_session: bool, config: Config, flaky_count: Callable[[], int]) -> Plan:
    """Plan the confirm attempt for a payment method behaving as ``card``."""
    if card.fault == "flaky":
        return Plan(pre_fault="transient") if flaky_count() <= config.get("flaky_failures") else Plan()
    if card.fault == "timeout":
        return Plan(response_delay_s=config.get("timeout_delay_s"))
    if card.fault:
        return _FAULT_PLANS[card.fault]
    if card.decline:
        return Plan(outcome="declined", decline=card.decline)
    if card.three_d_secure:
        if off_session:
            return Plan(outcome="declined", decline=AUTHENTICATION_REQUIRED)
        return Plan(outcome="requires_action")
    return _chaos(config)


def _chaos(config: Config) -> Plan:
    """A good card: the configured fault rates apply."""
    cfg = config.snapshot()
    if config.chance(cfg["transient_error_rate"]):
        return Plan(pre_fault="transient")
    if config.chance(cfg["rate_limit_rate"]):
        return Plan(pre_fault="rate_limit")
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
