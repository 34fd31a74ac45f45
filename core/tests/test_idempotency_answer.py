"""Idempotency keys for an operation whose response is known before its writes (``prepare`` returns an ``Answer``):
the claim stores the response (no UPDATE after the writes), and every rule of ``operation`` holds: a refusal or a
failed write releases the key, a completed key is replayed or refused before anything ``prepare`` raised, a twin
is 409 while the first runs, a key left in progress is taken over."""
import json
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.errors import ApiError
from core.models import IdempotencyRecord
from core.services import (
    Answer,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    api_client_create,
    idempotent_call,
    request_fingerprint,
)
from core.tests.helpers import twin_race

pytestmark = pytest.mark.django_db


def _render(body: dict) -> bytes:
    return json.dumps(body).encode()


def answered(client, key, body=b'{"a": 1}', response=None, write=None, render=_render, prepare=None):
    def made():
        return Answer(201, response or {"ok": 1}, write or (lambda: None))

    return idempotent_call(client=client, key=key, method="POST", path="/x", body=body, prepare=prepare or made,
                           render=render)


def _refuse():
    raise ApiError("no", code="nope")


@pytest.mark.parametrize("render", [_render, None])
def test_the_answer_is_stored_by_the_claim_then_replayed(render):
    client, _ = api_client_create(name="c")
    writes = []
    with CaptureQueriesContext(connection) as captured:
        first = answered(client, "k", write=lambda: writes.append(1), render=render)
    statements = [q["sql"] for q in captured.captured_queries]
    # With the JSON text, stored by the claim: no UPDATE (without it, stored after the writes, as before).
    assert any(s.startswith("UPDATE core_idempotencyrecord") for s in statements) is (render is None)
    assert (first.replayed, first.body, first.content) == (False, {"ok": 1}, _render({"ok": 1}) if render else None)
    record = IdempotencyRecord.objects.get()
    assert (record.status, record.response_status, record.response_body) == ("completed", 201, {"ok": 1})
    assert record.completed_at is not None
    again = answered(client, "k", response={"ok": 2}, write=lambda: writes.append(2))
    assert (again.replayed, again.status, again.body) == (True, 201, {"ok": 1})
    assert writes == [1]
    with pytest.raises(IdempotencyKeyReused):
        answered(client, "k", body=b'{"b": 2}')


def test_a_refused_answer_or_a_failed_write_releases_the_key():
    client, _ = api_client_create(name="c")
    with pytest.raises(ApiError):
        answered(client, "k", prepare=_refuse)
    assert not IdempotencyRecord.objects.exists()
    with pytest.raises(ApiError):
        answered(client, "k", write=_refuse)
    assert not IdempotencyRecord.objects.exists()
    assert answered(client, "k").replayed is False


def test_a_completed_key_is_replayed_or_refused_before_what_prepare_raised():
    client, _ = api_client_create(name="c")
    answered(client, "k")
    assert answered(client, "k", prepare=_refuse).body == {"ok": 1}
    with pytest.raises(IdempotencyKeyReused):
        answered(client, "k", body=b'{"b": 2}', prepare=_refuse)


def test_a_key_left_in_progress_is_409_then_taken_over_by_an_answer():
    client, _ = api_client_create(name="c")
    now = timezone.now()
    fingerprint = request_fingerprint(method="POST", path="/x", body=b'{"a": 1}')
    record = IdempotencyRecord.objects.create(client=client, key="k", request_method="POST", request_path="/x",
                                              request_fingerprint=fingerprint, locked_at=now)
    with pytest.raises(IdempotencyKeyInUse):
        answered(client, "k")
    IdempotencyRecord.objects.filter(pk=record.pk).update(locked_at=now - timedelta(seconds=61))
    writes = []
    taken = answered(client, "k", response={"taken": 1}, write=lambda: writes.append(1))
    assert (taken.replayed, taken.body, writes) == (False, {"taken": 1}, [1])
    record.refresh_from_db()
    assert (record.status, record.response_body) == ("completed", {"taken": 1})


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("first_fails", [False, True])
def test_a_twin_is_409_while_the_answers_writes_run(first_fails):
    client, _ = api_client_create(name="c")
    started, release = threading.Event(), threading.Event()

    def slow_write():
        started.set()
        assert release.wait(10)
        if first_fails:
            _refuse()

    def first():
        try:
            return answered(client, "k", response={"first": 1}, write=slow_write)
        except ApiError as exc:
            return exc
        finally:
            connection.close()

    def twin():
        try:
            return answered(client, "k", response={"twin": 1})
        except IdempotencyKeyInUse as exc:
            return exc
        finally:
            connection.close()

    during, _, after = twin_race(first, twin, started, release)
    assert isinstance(during, IdempotencyKeyInUse)
    assert (after.replayed, after.body) == ((False, {"twin": 1}) if first_fails else (True, {"first": 1}))
    assert IdempotencyRecord.objects.count() == 1
