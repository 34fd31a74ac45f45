"""Signed, Stripe-style webhook delivery from a background thread.

Events live in SQLite (``events`` table, status ``pending`` / ``delivered`` /
``failed`` / ``no_endpoint``).  The dispatcher polls for due events, POSTs
them with a ``Stripe-Signature`` header and retries with exponential backoff.
Chaos: duplicate sends, shuffled order (events are held for a window first),
extra delay.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
import urllib.error
import urllib.request

from .behaviour import Config
from .connect import connect_target
from .store import Store

MAX_BACKOFF_S = 60.0


def sign(payload: str, secret: str, timestamp: int | None = None) -> str:
    """Return a ``Stripe-Signature`` header value for ``payload``."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def post(url: str, payload: str, secret: str, timeout: float) -> tuple[int | None, str | None]:
    """POST one signed payload; return (status code, error text)."""
    req = urllib.request.Request(
        url,
        data=payload.encode(),
        method="POST",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "Stripe-Signature": sign(payload, secret),
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            resp.read()
            return resp.status, None
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code}"
    except Exception as exc:  # noqa: BLE001 - refused, timeout, ...
        return None, repr(exc)


class WebhookDispatcher(threading.Thread):
    """Delivers due events; ``notify()`` wakes it early."""

    def __init__(
        self,
        store: Store,
        config: Config,
        stop: threading.Event,
        interval: float = 0.05,
    ) -> None:
        super().__init__(name="psp-sandbox-webhooks", daemon=True)
        self.store, self.config, self.stop, self.interval = (
            store,
            config,
            stop,
            interval,
        )
        self._wake = threading.Event()

    def notify(self) -> None:
        """Ask for a delivery pass soon."""
        self._wake.set()

    def run(self) -> None:
        """Deliver until stopped."""
        while not self.stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self.deliver_due()
            except Exception as exc:  # noqa: BLE001 - keep the thread alive
                print(f"psp_sandbox: webhook dispatcher error: {exc!r}", flush=True)

    def deliver_due(self) -> None:
        """One pass over the due events."""
        cfg = self.config.snapshot()
        events = self.store.due_events(time.time())
        if not events:
            return
        if cfg["webhook_reorder"]:
            self.config.shuffle(events)
        for event in events:
            if self.stop.is_set():
                return
            target = connect_target(self.store, event)  # a connected account's event: the Connect endpoint
            if target is not None:
                if not target[0]:
                    self.store.update_event(event["id"], status="no_endpoint")
                else:
                    self._deliver(event, target[0], {**cfg, "webhook_secret": target[1]})
                continue
            url = self.config.get("webhook_url")
            if not url:
                self.store.update_event(event["id"], status="no_endpoint")
                continue
            self._deliver(event, url, cfg)

    def _deliver(self, event: dict, url: str, cfg: dict) -> None:
        code, error = post(url, event["payload"], cfg["webhook_secret"], cfg["webhook_timeout_s"])
        self.store.record_attempt(event["id"], code, error, duplicate=False)
        tries = event["tries"] + 1
        if code is not None and 200 <= code < 300:
            self.store.update_event(event["id"], status="delivered", tries=tries)
            if self.config.chance(cfg["webhook_duplicate_rate"]):
                dcode, derror = post(
                    url,
                    event["payload"],
                    cfg["webhook_secret"],
                    cfg["webhook_timeout_s"],
                )
                self.store.record_attempt(event["id"], dcode, derror, duplicate=True)
            return
        if tries >= cfg["webhook_max_attempts"]:
            self.store.update_event(event["id"], status="failed", tries=tries)
            return
        delay = min(cfg["webhook_retry_base_s"] * 2 ** (tries - 1), MAX_BACKOFF_S)
        self.store.update_event(event["id"], tries=tries, next_attempt_at=time.time() + delay)

    def resend(self, event_id: str) -> bool:
        """Queue one event for delivery again (fresh retry budget)."""
        if self.store.get_event(event_id) is None:
            return False
        self.store.update_event(event_id, status="pending", tries=0, next_attempt_at=time.time())
        self.notify()
        return True
