"""Idempotency keys at the service level: retention and release on failure."""
from datetime import timedelta

import pytest
from django.utils import timezone

from core.errors import ApiError
from core.models import IdempotencyRecord
from core.services import IdempotencyKeyReused, api_client_create, idempotency_keys_expire, idempotent_call

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
