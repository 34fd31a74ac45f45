"""Idempotency keys at the service level: retention, release on failure, twins and keys left in progress."""
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from core.errors import ApiError
from core.models import IdempotencyRecord
from core.services import (
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    api_client_create,
    idempotency_keys_expire,
    idempotent_call,
    request_fingerprint,
)
from core.tests.helpers import twin_race

pytestmark = pytest.mark.django_db


def call(client, key, body=b'{"a": 1}', result=(201, {"ok": 1})):
    return idempotent_call(client=client, key=key, method="POST", path="/x", body=body, operation=lambda: result)


def test_json_bodies_are_compared_by_content_not_formatting():
    client, _ = api_client_create(name="c")
    first = call(client, "k")
    again = call(client, "k", body=b'{ "a" :1 }', result=(201, {"ok": 2}))
    assert (first.replayed, again.replayed) == (False, True)
    assert again.body == {"ok": 1}


def test_keys_are_per_client():
    one, _ = api_client_create(name="one")
    two, _ = api_client_create(name="two")
    call(one, "shared")
    assert call(two, "shared", body=b'{"b": 2}').replayed is False


def test_a_refused_request_releases_its_key():
    client, _ = api_client_create(name="c")

    def refuse():
        raise ApiError("no", code="nope")

    with pytest.raises(ApiError):
        idempotent_call(client=client, key="k", method="POST", path="/x", body=b"{}", operation=refuse)
    assert not IdempotencyRecord.objects.exists()
    assert call(client, "k").replayed is False


def test_keys_are_kept_24_hours_then_expire():
    client, _ = api_client_create(name="c")
    call(client, "old")
    call(client, "new")
    IdempotencyRecord.objects.filter(key="old").update(created_at=timezone.now() - timedelta(hours=25))
    IdempotencyRecord.objects.filter(key="new").update(created_at=timezone.now() - timedelta(hours=23))
    with pytest.raises(IdempotencyKeyReused):  # still remembered at 23 hours
        call(client, "new", body=b'{"other": 1}')
    # An expired key is a fresh key, even with another body.
    assert call(client, "old", body=b'{"other": 1}', result=(201, {"second": 1})).replayed is False
    IdempotencyRecord.objects.filter(key="old").update(created_at=timezone.now() - timedelta(hours=25))
    assert idempotency_keys_expire() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]


def test_a_key_left_in_progress_by_a_claim_committed_on_its_own_is_409_until_abandoned():
    """Before the claim shared the operation's transaction it was committed on its own: such a key (a crashed
    request's, or one of the previous release's during a deploy) is refused while recent, taken over once older
    than IDEMPOTENCY_LOCK_TIMEOUT_SECONDS, and replayed if it completed."""
    client, _ = api_client_create(name="c")
    now = timezone.now()
    fingerprint = request_fingerprint(method="POST", path="/x", body=b'{"a": 1}')
    record = IdempotencyRecord.objects.create(client=client, key="k", request_method="POST", request_path="/x",
                                              request_fingerprint=fingerprint, locked_at=now)
    with pytest.raises(IdempotencyKeyInUse):
        call(client, "k")
    IdempotencyRecord.objects.filter(pk=record.pk).update(locked_at=now - timedelta(seconds=61))
    taken = call(client, "k", result=(201, {"taken": 1}))
    assert (taken.replayed, taken.body) == (False, {"taken": 1})
    assert IdempotencyRecord.objects.get(pk=record.pk).status == IdempotencyRecord.Status.COMPLETED
    assert call(client, "k").body == {"taken": 1}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("first_fails", "twin_body"),
                         [(False, b'{"a": 1}'), (False, b'{"b": 2}'), (True, b'{"a": 1}')])
def test_a_twin_is_409_while_the_first_request_runs_then_replays_is_refused_or_runs(first_fails, twin_body):
    """The claim is in the operation's transaction, not yet visible to a twin: the twin gets 409 at once
    (it does not wait), then, once the first request's transaction ended, the stored response (same body),
    422 (another body), or runs itself (the first was rolled back and released the key)."""
    client, _ = api_client_create(name="c")
    started, release = threading.Event(), threading.Event()

    def slow():
        started.set()
        assert release.wait(10)
        if first_fails:
            raise ApiError("no", code="nope")
        return 201, {"first": 1}

    def first():
        try:
            return idempotent_call(client=client, key="k", method="POST", path="/x", body=b'{"a": 1}', operation=slow)
        except ApiError as exc:
            return exc
        finally:
            connection.close()

    def twin():
        try:
            return call(client, "k", body=twin_body, result=(201, {"twin": 1}))
        except (IdempotencyKeyInUse, IdempotencyKeyReused) as exc:
            return exc
        finally:
            connection.close()

    during, first_result, after = twin_race(first, twin, started, release)
    assert isinstance(during, IdempotencyKeyInUse)
    if first_fails:
        assert isinstance(first_result, ApiError)
        assert (after.replayed, after.body) == (False, {"twin": 1})
    elif twin_body == b'{"a": 1}':
        assert (first_result.replayed, after.replayed, after.body) == (False, True, {"first": 1})
    else:
        assert isinstance(after, IdempotencyKeyReused)
    assert IdempotencyRecord.objects.count() == 1
