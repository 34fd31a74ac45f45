"""Webhooks that are signed but not events, future-dated, oversized, or whose processing fails:
a 4xx in the error shape with nothing stored, or a 5xx that makes the PSP deliver again."""
import hashlib
import hmac
import json
import time

import pytest
from django.test import Client

from ledger import selectors as ledger_selectors
from payments.models import PaymentOrderState, WebhookEvent
from payments.services import capture_posting_key
from payments.services import webhooks as webhook_services
from payments.tests.factories import PaymentOrderFactory
from payments.tests.http.errors import assert_error
from payments.tests.webhook_signing import deliver, payment_intent_event, signed
from wallet import selectors as wallet_selectors

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "whsec_sandbox_secret"


def sign_raw(payload: bytes, *, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={hmac.new(SECRET.encode(), f'{t}.'.encode() + payload, hashlib.sha256).hexdigest()}"


@pytest.fixture
def order():
    return PaymentOrderFactory(state=PaymentOrderState.EXECUTING, amount=4200)


def assert_untouched(order):
    assert not WebhookEvent.objects.exists()
    order.refresh_from_db()
    assert order.state == PaymentOrderState.EXECUTING
    assert wallet_selectors.wallet_balance(owner_id=order.seller_id, currency="usd") == 0
    assert ledger_selectors.postings_count_by_key(keys=[capture_posting_key(order.id)]) == {}


def _event(order, **changes) -> dict:
    event = payment_intent_event("evt_shape", order, "succeeded")
    event.update(changes)
    return event


def _nested(depth: int):
    value = "x"
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize("raw", [b"[]", b"null", b"5", b'"x"', b"true", b"{}", b'{"object": "event"}'])
def test_signed_bodies_that_are_not_events_are_400(order, raw):
    response = deliver(raw, sign_raw(raw))
    assert_error(response, 400, "malformed_event")
    assert_untouched(order)


@pytest.mark.parametrize(("changes", "param"), [
    ({"data": 5}, "data"),
    ({"data": []}, "data"),
    ({"data": "x"}, "data"),
    ({"data": None}, "data"),
    ({"data": {"object": []}}, "data.object"),
    ({"data": {"object": "pi_1"}}, "data.object"),
    ({"data": {}}, "data.object"),
    ({"id": "evt_" + "x" * 97}, "id"),  # 101 characters
    ({"id": "e" * 10_000}, "id"),
    ({"id": ""}, "id"),
    ({"id": 12345}, "id"),
    ({"id": ["evt_1"]}, "id"),
    ({"id": "evt with space"}, "id"),
    ({"id": "evt_x\n"}, "id"),
    ({"id": "evt_\u00e9"}, "id"),
    ({"type": None}, "type"),
    ({"type": "t" * 101}, "type"),
    ({"type": ""}, "type"),
])
def test_signed_events_of_the_wrong_shape_are_400(order, changes, param):
    payload = json.dumps(_event(order, **changes)).encode()
    assert_error(deliver(payload, sign_raw(payload)), 400, "malformed_event", param)
    assert_untouched(order)


def test_an_object_id_that_is_not_a_string_is_400(order):
    event = _event(order)
    event["data"]["object"]["id"] = {"nested": 1}
    payload = json.dumps(event).encode()
    assert_error(deliver(payload, sign_raw(payload)), 400, "malformed_event", "data.object.id")
    assert_untouched(order)


@pytest.mark.parametrize("where", ["id", "type", "object_value", "object_key", "metadata"])
def test_escaped_nul_anywhere_is_400(order, where):
    event = _event(order)
    if where == "id":
        event["id"] = "evt_\u0000"
    elif where == "type":
        event["type"] = "payment_intent.succeeded\u0000"
    elif where == "object_value":
        event["data"]["object"]["description"] = "a\u0000b"
    elif where == "object_key":
        event["data"]["object"]["k\u0000"] = "v"
    else:
        event["data"]["object"]["metadata"]["note"] = "\u0000"
    payload = json.dumps(event).encode()
    assert b"\\u0000" in payload
    assert_error(deliver(payload, sign_raw(payload)), 400)
    assert_untouched(order)


def test_a_raw_nul_byte_is_400(order):
    payload = json.dumps(_event(order)).encode().replace(b'"succeeded"', b'"succ\x00eeded"')
    assert_error(deliver(payload, sign_raw(payload)), 400)
    assert_untouched(order)


@pytest.mark.parametrize("raw", [
    b'{"id": "evt_s", "type": "t", "data": {"object": {"id": "\\ud800"}}}',  # a lone surrogate
    b'{"id": "evt_n", "type": "t", "data": {"object": {"amount": NaN}}}',
    b'{"id": "evt_i", "type": "t", "data": {"object": {"amount": Infinity}}}',
])
def test_text_or_numbers_postgresql_cannot_store_are_400(order, raw):
    assert_error(deliver(raw, sign_raw(raw)), 400, "malformed_event")
    assert_untouched(order)


@pytest.mark.parametrize("depth", [40, 5000])
def test_deeply_nested_events_are_400(order, depth):
    event = _event(order)
    event["data"]["object"]["metadata"]["deep"] = "PLACEHOLDER"
    payload = json.dumps(event).encode().replace(
        b'"PLACEHOLDER"', b'{"a": ' * depth + b'"x"' + b"}" * depth)
    assert_error(deliver(payload, sign_raw(payload)), 400, "malformed_event")
    assert_untouched(order)


def test_an_event_id_of_exactly_100_characters_is_accepted(order):
    event_id = "evt_" + "x" * 96
    response = deliver(*signed(payment_intent_event(event_id, order, "succeeded")))
    assert response.status_code == 200, response.content
    assert WebhookEvent.objects.get().id == event_id


def test_a_timestamp_beyond_the_tolerance_in_the_future_is_refused(order, settings):
    future = int(time.time()) + settings.PSP_WEBHOOK_TOLERANCE_SECONDS + 60
    payload, signature = signed(payment_intent_event("evt_future", order, "succeeded"), timestamp=future)
    assert_error(deliver(payload, signature), 400, "invalid_signature")
    assert_untouched(order)


def test_a_far_future_timestamp_is_refused(order):
    payload, signature = signed(payment_intent_event("evt_far", order, "succeeded"), timestamp=2**40)
    assert_error(deliver(payload, signature), 400, "invalid_signature")
    assert_untouched(order)


def test_a_slightly_ahead_clock_within_the_tolerance_is_accepted(order):
    payload, signature = signed(payment_intent_event("evt_skew", order, "succeeded"), timestamp=int(time.time()) + 30)
    assert deliver(payload, signature).status_code == 200
    order.refresh_from_db()
    assert order.state == PaymentOrderState.SUCCEEDED


def test_two_timestamps_in_the_header_are_refused(order, settings):
    payload, signature = signed(payment_intent_event("evt_two_t", order, "succeeded"))
    future = int(time.time()) + settings.PSP_WEBHOOK_TOLERANCE_SECONDS + 600
    assert_error(deliver(payload, f"{signature},t={future}"), 400, "invalid_signature")
    assert_untouched(order)


def test_forged_and_stale_stay_refused_in_the_error_shape(order, settings):
    forged, forged_signature = signed(payment_intent_event("evt_f", order, "succeeded"), secret="whsec_attacker")
    assert_error(deliver(forged, forged_signature), 400, "invalid_signature")
    stale = int(time.time()) - settings.PSP_WEBHOOK_TOLERANCE_SECONDS - 60
    assert_error(deliver(*signed(payment_intent_event("evt_s", order, "succeeded"), timestamp=stale)),
                 400, "invalid_signature")
    # A malformed body is not looked at unless it is signed.
    assert_error(deliver(b"[]", "t=1,v1=00"), 400, "invalid_signature")
    assert_untouched(order)


def test_a_processing_failure_is_a_5xx_kept_on_the_row_and_rerun_on_redelivery(order, monkeypatch):
    real_apply = webhook_services.payment_order_apply_result
    calls = []

    def apply_then_fail_once(**kwargs):
        real_apply(**kwargs)  # writes the order, wallet and ledger ...
        calls.append(kwargs)
        if len(calls) == 1:
            raise RuntimeError("database went away mid-processing")  # ... then fails: all of it rolled back

    monkeypatch.setattr(webhook_services, "payment_order_apply_result", apply_then_fail_once)
    payload, signature = signed(payment_intent_event("evt_flaky", order, "succeeded"))

    first = deliver(payload, signature)
    assert_error(first, 500, "webhook_processing_failed")
    assert "evt_flaky" in first.json()["error"]["message"]
    stored = WebhookEvent.objects.get()
    assert stored.status == WebhookEvent.Status.FAILED and stored.attempts == 1
    assert "database went away" in stored.last_error
    order.refresh_from_db()
    assert order.state == PaymentOrderState.EXECUTING  # nothing half-written
    assert wallet_selectors.wallet_balance(owner_id=order.seller_id, currency="usd") == 0
    assert ledger_selectors.postings_count_by_key(keys=[capture_posting_key(order.id)]) == {}

    second = deliver(payload, signature)  # the PSP's redelivery runs it again
    assert second.status_code == 200, second.content
    assert second.json() == {"received": True, "id": "evt_flaky", "duplicate": True, "status": "processed"}
    stored.refresh_from_db()
    assert stored.status == WebhookEvent.Status.PROCESSED and stored.attempts == 2 and stored.deliveries == 2
    assert stored.last_error == ""
    order.refresh_from_db()
    assert order.state == PaymentOrderState.SUCCEEDED
    assert wallet_selectors.wallet_balance(owner_id=order.seller_id, currency="usd") == 4200

    third = deliver(payload, signature)  # processed: not run again
    assert third.status_code == 200 and third.json()["status"] == "processed"
    stored.refresh_from_db()
    assert stored.attempts == 2 and stored.deliveries == 3
    assert wallet_selectors.wallet_balance(owner_id=order.seller_id, currency="usd") == 4200


def test_a_failure_that_lasts_stays_5xx_on_every_redelivery(order):
    event = payment_intent_event("evt_unreadable", order, "succeeded")
    del event["data"]["object"]["amount"]
    payload, signature = signed(event)
    for attempt in (1, 2, 3):
        assert_error(deliver(payload, signature), 500, "webhook_processing_failed")
        stored = WebhookEvent.objects.get()
        assert stored.status == WebhookEvent.Status.FAILED and stored.attempts == attempt
        assert stored.last_error
    order.refresh_from_db()
    assert order.state == PaymentOrderState.EXECUTING


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete", "head", "options"])
def test_other_methods_are_405_in_the_error_shape(method):
    response = getattr(Client(), method)("/webhooks/psp")
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    if method != "head":
        assert_error(response, 405, "method_not_allowed")
    assert not WebhookEvent.objects.exists()


def test_a_3_mb_body_is_413_in_the_error_shape(order):
    payload = b'{"id": "evt_big", "pad": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    assert_error(deliver(payload, sign_raw(payload)), 413, "body_too_large")
    assert_untouched(order)


def test_an_unknown_webhook_path_is_404_in_the_error_shape():
    assert_error(Client().post("/webhooks/other", b"{}", content_type="application/json"), 404, "resource_missing")
