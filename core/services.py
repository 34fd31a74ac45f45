"""API clients and Stripe-style idempotency keys."""
from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.exceptions import Conflict, IdempotencyMismatch, InvalidRequest
from core.models import ApiClient, IdempotencyRecord
from core.selectors import api_key_hash

logger = logging.getLogger(__name__)

API_KEY_PREFIX = "mk_live_"  # a key for a live PSP account
API_KEY_TEST_PREFIX = "mk_test_"  # a key for a PSP test account (or the sandbox), as Stripe marks sk_test_
_PSP_TEST_KEY_PREFIXES = ("sk_test_", "rk_test_")


def api_key_prefix() -> str:
    """``mk_test_`` while ``PSP_API_KEY`` is a Stripe test key (``sk_test_``/``rk_test_``), else ``mk_live_``.
    Only a key's SHA-256 is stored and looked up, so keys made under either prefix keep working."""
    psp_key = getattr(settings, "PSP_API_KEY", "") or ""
    return API_KEY_TEST_PREFIX if psp_key.startswith(_PSP_TEST_KEY_PREFIXES) else API_KEY_PREFIX


def api_client_create(*, name: str) -> tuple[ApiClient, str]:
    """Create a client and return it with its plaintext key (shown once, never stored)."""
    key = api_key_prefix() + secrets.token_urlsafe(32)
    client = ApiClient.objects.create(name=name, key_prefix=key[:12], key_hash=api_key_hash(key))
    return client, key


def request_fingerprint(*, method: str, path: str, body: bytes) -> str:
    """Fingerprint of a request: JSON bodies are compared by content, not by formatting."""
    try:
        canonical = json.dumps(json.loads(body or b"null"), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


@dataclass(frozen=True)
class IdempotentResponse:
    status: int
    body: dict
    replayed: bool


class IdempotencyKeyInUse(Conflict):
    code = "idempotency_key_in_use"
    message = "A request with this Idempotency-Key is still being processed; retry later."


class IdempotencyKeyReused(IdempotencyMismatch):
    message = "This Idempotency-Key was used with a different request."


def _validate_key(key: str | None) -> str:
    if not key:
        raise InvalidRequest("The Idempotency-Key header is required.", code="idempotency_key_missing",
                             param="Idempotency-Key")
    if len(key) > 255 or not key.isprintable():
        raise InvalidRequest("Idempotency-Key must be 1 to 255 printable characters.",
                             code="idempotency_key_invalid", param="Idempotency-Key")
    return key


def _claim(*, client: ApiClient, key: str, method: str, path: str, fingerprint: str
           ) -> tuple[IdempotencyRecord, bool]:
    """Insert the key as in progress (committed at once), or return the existing record.

    A record older than the retention period is expired: it is replaced, as if pruned.
    """
    for _ in range(2):
        now = timezone.now()
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    client=client, key=key, request_method=method, request_path=path,
                    request_fingerprint=fingerprint, locked_at=now,
                )
            return record, True
        except IntegrityError:
            existing = IdempotencyRecord.objects.filter(client=client, key=key).first()
            expired_before = now - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
            if existing is not None and existing.created_at >= expired_before:
                return existing, False
            IdempotencyRecord.objects.filter(client=client, key=key, created_at__lt=expired_before).delete()
    raise IdempotencyKeyInUse()


def _replay(record: IdempotencyRecord) -> IdempotentResponse:
    return IdempotentResponse(status=record.response_status, body=record.response_body, replayed=True)


def idempotent_call(
    *,
    client: ApiClient,
    key: str | None,
    method: str,
    path: str,
    body: bytes,
    operation: Callable[[], tuple[int, dict]],
) -> IdempotentResponse:
    """Run ``operation`` at most once per (client, key), Stripe's way.

    The key is claimed in its own committed row; the operation then runs in one
    transaction that holds that row locked and stores the response with it, so a
    response is saved if and only if the operation's writes are. A twin request
    that finds the row locked gets 409; one with another body gets 422; later ones
    get the stored response. A request refused by validation (4xx) releases the key.
    """
    key = _validate_key(key)
    fingerprint = request_fingerprint(method=method, path=path, body=body)
    record, created = _claim(client=client, key=key, method=method, path=path, fingerprint=fingerprint)
    if record.request_fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    if record.status == IdempotencyRecord.Status.COMPLETED:
        return _replay(record)

    try:
        return _run_locked(record=record, created=created, operation=operation)
    except IdempotencyKeyInUse:
        raise
    except Exception:
        # Validation refused it (4xx) or a bug (5xx): the operation's writes were rolled
        # back, so the key is released and the client may retry with it.
        if created:
            IdempotencyRecord.objects.filter(pk=record.pk, status=IdempotencyRecord.Status.IN_PROGRESS).delete()
        raise


def _run_locked(*, record: IdempotencyRecord, created: bool,
                operation: Callable[[], tuple[int, dict]]) -> IdempotentResponse:
    with transaction.atomic():
        rows = IdempotencyRecord.objects.filter(pk=record.pk)
        # The claimer waits for a twin's brief lock; a twin never waits.
        locked = (rows.select_for_update() if created else rows.select_for_update(skip_locked=True)).first()
        if locked is None:
            raise IdempotencyKeyInUse()
        if locked.status == IdempotencyRecord.Status.COMPLETED:
            return _replay(locked)
        abandoned_before = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_LOCK_TIMEOUT_SECONDS)
        if not created and locked.locked_at > abandoned_before:
            raise IdempotencyKeyInUse()
        status, response_body = operation()
        locked.status = IdempotencyRecord.Status.COMPLETED
        locked.response_status = status
        locked.response_body = response_body
        locked.completed_at = timezone.now()
        locked.save(update_fields=["status", "response_status", "response_body", "completed_at"])
        return IdempotentResponse(status=status, body=response_body, replayed=False)


def idempotency_keys_expire() -> int:
    """Delete keys older than the retention period. Returns how many were deleted."""
    cutoff = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
