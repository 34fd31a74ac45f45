"""API clients and Stripe-style idempotency keys."""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import secrets
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from core.exceptions import Conflict, IdempotencyMismatch, InvalidRequest
from core.models import ApiClient, IdempotencyRecord, WebhookInbox
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


NOT_PARSED = object()


def request_fingerprint(*, method: str, path: str, body: bytes, parsed=NOT_PARSED) -> str:
    """Fingerprint of a request: JSON bodies are compared by content, not by formatting. ``parsed``: what
    ``json.loads(body)`` gives, when the caller holds it already (the body parsed once, not twice; the same
    fingerprint: ``core/tests/test_idempotency.py``)."""
    try:
        if parsed is NOT_PARSED:
            parsed = json.loads(body or b"null")
        canonical = json.dumps(parsed, sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


@dataclass(frozen=True)
class IdempotentResponse:
    """``content``: ``body`` as the caller's ``render`` rendered it (None for a replay: rendered from ``body``)."""

    status: int
    body: dict
    replayed: bool
    content: bytes | None = None


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


@dataclass(frozen=True)
class _Key:
    """An ``IdempotencyRecord`` as the request path needs it."""

    id: int
    fingerprint: str
    status: str
    response_status: int | None
    response_body: dict | None
    locked_at: datetime | None = None


# The request path's statements, written once: the ORM compiled each of them on every request.
_TABLE = IdempotencyRecord._meta.db_table
# The claim is the operation's transaction's first statement, under a transaction-scoped advisory lock on the
# key taken without waiting: a twin whose claimer's transaction is still open gets no lock, inserts nothing
# and finds no committed row (409), instead of waiting on the key's unique index for that transaction to end.
_CLAIM = (f"INSERT INTO {_TABLE} (client_id, key, request_method, request_path, request_fingerprint, status,"
          " created_at, locked_at{answer_columns}) SELECT %s, %s, %s, %s, %s, %s, %s, %s{answer_values}"
          " WHERE pg_try_advisory_xact_lock(%s::bigint) ON CONFLICT (client_id, key) DO NOTHING RETURNING id")
# The claim of a key whose response was known before the operation's writes (``Answer``): stored completed at once,
# from the JSON text the client is sent, instead of an ``UPDATE`` after the writes.
_CLAIM, _CLAIM_ANSWERED = (_CLAIM.format(answer_columns="", answer_values=""),
                           _CLAIM.format(answer_columns=", response_status, response_body, completed_at",
                                         answer_values=", %s, %s::jsonb, %s"))
_FIND = (f"SELECT id, request_fingerprint, status, response_status, response_body, created_at FROM {_TABLE}"
         " WHERE client_id = %s AND key = %s")
_EXPIRE = f"DELETE FROM {_TABLE} WHERE client_id = %s AND key = %s AND created_at < %s"
_LOCK = f"SELECT status, response_status, response_body, locked_at FROM {_TABLE} WHERE id = %s FOR UPDATE SKIP LOCKED"
_COMPLETE = (f"UPDATE {_TABLE} SET status = %s, response_status = %s, response_body = {{body}}, completed_at = %s"
             " WHERE id = %s")
# The response stored from the JSON text the client is sent (jsonb keeps the value, not the text).
_COMPLETE, _COMPLETE_RENDERED = _COMPLETE.format(body="%s"), _COMPLETE.format(body="%s::jsonb")
_IN_PROGRESS, _COMPLETED = IdempotencyRecord.Status.IN_PROGRESS, IdempotencyRecord.Status.COMPLETED
_BODY_FIELD = IdempotencyRecord._meta.get_field("response_body")


def _body(value) -> dict | None:
    return _BODY_FIELD.from_db_value(value, None, connection)


def _key_lock(client: ApiClient, key: str) -> int:
    """The key's advisory lock: 64 bits of its hash (PostgreSQL's advisory locks take a bigint)."""
    digest = hashlib.blake2b(f"{client.pk}:{key}".encode(), digest_size=8, person=b"idempotency").digest()
    return int.from_bytes(digest, "big", signed=True)


def _claim(*, client: ApiClient, key: str, method: str, path: str, fingerprint: str,
           answer: tuple[int, str] | None = None) -> tuple[_Key, bool]:
    """Insert the key as in progress in the caller's transaction (completed with ``answer``, its status and
    JSON text, when given), or return the existing committed record; 409 while another transaction holds the
    key. A record older than the retention period is expired: it is replaced, as if pruned."""
    lock = _key_lock(client, key)
    with connection.cursor() as cur:
        for _ in range(2):
            now = timezone.now()
            if answer is None:
                cur.execute(_CLAIM, [client.pk, key, method, path, fingerprint, _IN_PROGRESS, now, now, lock])
            else:
                cur.execute(_CLAIM_ANSWERED, [client.pk, key, method, path, fingerprint, _COMPLETED, now, now,
                                              answer[0], answer[1], now, lock])
            row = cur.fetchone()
            if row is not None:
                return _Key(row[0], fingerprint, _IN_PROGRESS if answer is None else _COMPLETED, None, None, now), True
            cur.execute(_FIND, [client.pk, key])
            found = cur.fetchone()
            expired_before = now - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
            if found is not None and found[5] >= expired_before:
                return _Key(*found[:4], _body(found[4])), False
            cur.execute(_EXPIRE, [client.pk, key, expired_before])
    raise IdempotencyKeyInUse()


class ClaimedRows(Protocol):
    """An operation's rows written by its key's claim itself (``Answer.rows``): one statement, which commits on
    its own outside a transaction (no BEGIN, no COMMIT: two round trips fewer; inside a caller's, in that one).
    Its CTEs: ``before`` (its checks, SELECTs only), then the claim, named ``claim`` (the key inserted completed
    with the response, under its advisory lock, unless ``refused``), then ``after`` (its writes, each guarded by
    ``EXISTS (SELECT FROM claim)``): the rows are written if and only if the key is claimed. ``params``: the
    CTEs' named parameters (none starting with ``claim_``). ``done``: once they are committed (the publish)."""

    before: str
    refused: str  # an SQL condition on ``before``'s CTEs: the rows are refused (then nothing at all is written)
    after: str
    params: dict

    def done(self) -> None: ...


_CLAIM_CTE = (f"claim AS (INSERT INTO {_TABLE} (client_id, key, request_method, request_path, request_fingerprint,"
              " status, created_at, locked_at, response_status, response_body, completed_at)"
              " SELECT %(claim_client)s, %(claim_key)s, %(claim_method)s, %(claim_path)s, %(claim_fingerprint)s,"
              " %(claim_completed)s, %(claim_now)s, %(claim_now)s, %(claim_status)s, %(claim_body)s::jsonb,"
              " %(claim_now)s WHERE NOT ({refused}) AND pg_try_advisory_xact_lock(%(claim_lock)s::bigint)"
              " ON CONFLICT (client_id, key) DO NOTHING RETURNING id)")


@functools.cache
def _claim_with_rows_statement(before: str, refused: str, after: str) -> str:
    return f"WITH {before}, {_CLAIM_CTE.format(refused=refused)}, {after} SELECT id FROM claim"


def _claimed_with_rows(*, client: ApiClient, key: str, method: str, path: str, fingerprint: str, status: int,
                       content: str, rows: ClaimedRows) -> bool:
    """The key claimed completed (``content``: the response's JSON text) and ``rows`` written, in one statement,
    or nothing written at all (False: the key exists, a twin holds its lock, or the rows are refused; the caller
    then takes the path of a transaction, which tells these apart)."""
    now = timezone.now()
    params = {"claim_client": client.pk, "claim_key": key, "claim_method": method, "claim_path": path,
              "claim_fingerprint": fingerprint, "claim_completed": _COMPLETED, "claim_now": now,
              "claim_status": status, "claim_body": content, "claim_lock": _key_lock(client, key), **rows.params}
    with connection.cursor() as cur:
        cur.execute(_claim_with_rows_statement(rows.before, rows.refused, rows.after), params)
        return cur.fetchone() is not None


def _replay(record: _Key) -> IdempotentResponse:
    return IdempotentResponse(status=record.response_status, body=record.response_body, replayed=True)


@dataclass(frozen=True)
class Answer:
    """An operation whose response is known before its writes (``idempotent_call``'s ``prepare`` returns one):
    the key is claimed with the response stored, then ``write`` runs in the same transaction."""

    status: int
    body: dict
    write: Callable[[], None]
    rows: ClaimedRows | None = None  # ``write``'s rows, to be written by the claim's own statement

    def run(self) -> tuple[int, dict]:
        self.write()
        return self.status, self.body


def idempotent_call(
    *,
    client: ApiClient,
    key: str | None,
    method: str,
    path: str,
    body: bytes,
    operation: Callable[[], tuple[int, dict]] | None = None,
    parsed=NOT_PARSED,
    render: Callable[[dict], bytes] | None = None,
    prepare: Callable[[], Answer] | None = None,
) -> IdempotentResponse:
    """Run ``operation`` at most once per (client, key), Stripe's way.

    The key is claimed, the operation run and its response stored in one transaction (one commit), so a
    response is saved if and only if the operation's writes are. A twin request while that transaction is
    open gets 409 at once (whatever its body: the claim is not visible yet); later ones get the stored
    response, or 422 with another body. A request refused by validation (4xx) or failing (5xx) rolls back
    its claim with its writes: the key is released and the client may retry with it. A key left in progress
    by a process that committed its claim on its own (this code before one transaction) is 409 while locked
    or recent, and taken over once abandoned.

    ``parsed``: the body as ``json.loads`` gives it, if the caller has it (``request_fingerprint``).
    ``render``: the response's JSON as the client is sent it; stored from that text (one encoding, not two)
    and answered as ``content``.
    ``prepare`` (instead of ``operation``): the response before the writes (``Answer``), rendered and stored by
    the claim itself, one statement fewer. Whatever it raises is raised where ``operation``'s would be: after
    the key's replay, mismatch or 409, with the claim rolled back. With ``Answer.rows``: ``_claimed_with_rows``
    first (one statement, no transaction), then, if it claimed nothing, the transaction's path as if untried.
    """
    claim = {"client": client, "key": _validate_key(key), "method": method, "path": path,
             "fingerprint": request_fingerprint(method=method, path=path, body=body, parsed=parsed)}
    answer, content, refusal = _prepared(prepare, render)
    if content is not None and answer.rows is not None and _claimed_with_rows(
            **claim, status=answer.status, content=content.decode(), rows=answer.rows):
        answer.rows.done()
        return IdempotentResponse(status=answer.status, body=answer.body, replayed=False, content=content)
    with transaction.atomic():
        record, created = _claim(**claim, answer=None if content is None else (answer.status, content.decode()))
        if created and content is not None:  # claimed with its response: the writes, and nothing after them
            answer.write()
            return IdempotentResponse(status=answer.status, body=answer.body, replayed=False, content=content)
        if record.fingerprint != claim["fingerprint"]:
            raise IdempotencyKeyReused()
        if record.status == _COMPLETED:
            return _replay(record)
        if not created:
            replay = _take_over(record)
            if replay is not None:
                return replay
        if refusal is not None:
            raise refusal
        if answer is not None:
            status, response_body = answer.run()
        else:
            status, response_body = operation()
            content = render(response_body) if render is not None else None
        _complete(record, status, response_body, content)
        return IdempotentResponse(status=status, body=response_body, replayed=False, content=content)


def _prepared(prepare: Callable[[], Answer] | None, render: Callable[[dict], bytes] | None):
    """``(answer, its rendered content or None, None)``, or ``(None, None, what prepare raised)``."""
    if prepare is None:
        return None, None, None
    try:
        answer = prepare()
        return answer, render(answer.body) if render is not None else None, None
    except Exception as exc:  # noqa: BLE001  (raised later, where the operation's would be)
        return None, None, exc


def _complete(record: _Key, status: int, response_body: dict, content: bytes | None) -> None:
    """The claimed key's response stored: from the text the client is sent, else encoded from ``response_body``."""
    with connection.cursor() as cur:
        if content is None:
            cur.execute(_COMPLETE, [_COMPLETED, status, _BODY_FIELD.get_db_prep_save(response_body, connection),
                                    timezone.now(), record.id])
        else:
            cur.execute(_COMPLETE_RENDERED, [_COMPLETED, status, content.decode(), timezone.now(), record.id])


def _take_over(record: _Key) -> IdempotentResponse | None:
    """Lock a key committed in progress by an earlier claim (None: this request runs the operation), replay
    it if it completed meanwhile, or refuse (409) while another request holds it or it is younger than
    ``IDEMPOTENCY_LOCK_TIMEOUT_SECONDS``. Nothing waits on such a key."""
    with connection.cursor() as cur:
        cur.execute(_LOCK, [record.id])
        row = cur.fetchone()
    if row is None:
        raise IdempotencyKeyInUse()
    if row[0] == _COMPLETED:
        return IdempotentResponse(status=row[1], body=_body(row[2]), replayed=True)
    if row[3] > timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_LOCK_TIMEOUT_SECONDS):
        raise IdempotencyKeyInUse()
    return None


def idempotency_keys_expire() -> int:
    """Delete keys older than the retention period. Returns how many were deleted."""
    cutoff = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def webhook_inbox_store(*, inbox: type[WebhookInbox], event: dict, **columns: str) -> tuple[WebhookInbox, bool]:
    """Store one verified event (its shape checked) in ``inbox``, with the inbox's own ``columns``. Returns
    ``(row, created)``; a duplicate delivery is counted, not stored again."""
    obj = event["data"]["object"]
    try:
        with transaction.atomic():
            return inbox.objects.create(id=event["id"], type=event["type"], payload=event,
                                        object_id=str(obj.get("id", ""))[:100], **columns), True
    except IntegrityError:
        inbox.objects.filter(pk=event["id"]).update(deliveries=F("deliveries") + 1)
        return inbox.objects.get(pk=event["id"]), False


def webhook_inbox_process(*, inbox: type[WebhookInbox], event_id: str, apply: Callable[[WebhookInbox], str],
                          failure_event: str) -> str:
    """Apply a stored event with ``apply`` (which returns its new status), under the row's lock. Safe to run
    again: a processed or ignored event is left alone. A failure is kept on the row (logged as
    ``failure_event``) for a redelivery to run it again."""
    try:
        with transaction.atomic():
            event = inbox.objects.select_for_update().get(pk=event_id)
            if event.status in (WebhookInbox.Status.PROCESSED, WebhookInbox.Status.IGNORED):
                return event.status
            event.status = apply(event)
            event.attempts += 1
            event.processed_at = timezone.now()
            event.last_error = ""
            event.save(update_fields=["status", "attempts", "processed_at", "last_error"])
            return event.status
    except Exception:
        logger.exception("event=%s webhook_event=%s", failure_event, event_id)
        inbox.objects.filter(pk=event_id).update(status=WebhookInbox.Status.FAILED, attempts=F("attempts") + 1,
                                                 last_error=traceback.format_exc()[-4000:])
        return WebhookInbox.Status.FAILED
