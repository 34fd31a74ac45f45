"""Outbound webhooks to the merchant, end to end: endpoints registered through the API (secret shown
once), events written in the transaction of the change (payments' outbox) and relayed, signed
deliveries by a real Celery worker to a real HTTP endpoint, backoff and a log per attempt, the
endpoint marked failing, redelivery. Nothing mocked."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from conftest import wait_for
from notifications.models import Delivery, DeliveryAttempt, OutboundEvent, Redelivery, WebhookEndpoint
from notifications.services import (
    SIGNATURE_HEADER,
    SignatureError,
    delivery_attempt,
    delivery_redeliver,
    signature_verify,
)
from payments import services
from payments.models import MerchantEvent
from payments.tests.test_checkout_flow import checkout, onboard, wait_terminal

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


class Receiver:
    """A merchant's webhook endpoint: answers ``status`` (a list: one per delivery, the last repeats)."""

    def __init__(self, statuses=(200,)):
        self.statuses = list(statuses)
        self.received = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, type_=None):
        return [json.loads(body) for _, body in self.received
                if type_ is None or json.loads(body)["type"] == type_]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def register(api, url, events=("*",)):
    response = api.post("/api/v1/webhook-endpoints", json={"url": url, "enabled_events": list(events)})
    assert response.status_code == 201, response.text
    return response.json()


def relay_until(predicate, message):
    def step():
        services.merchant_events_relay()
        return predicate()

    return wait_for(step, message=message, interval=0.2)


def test_a_checkout_tells_the_merchant_signed_and_once(api, sandbox, receiver):
    endpoint = register(api, receiver.url)
    assert endpoint["secret"].startswith("whsec_") and endpoint["status"] == "enabled"
    assert "secret" not in api.get(f"/api/v1/webhook-endpoints/{endpoint['id']}").json()
    sellers = [onboard(api, f"seller {n}") for n in range(2)]
    created = checkout(api, [{"seller": s, "amount": 1000, "currency": "usd"} for s in sellers], key="wh-1").json()
    wait_terminal(api, created["id"])

    relay_until(lambda: len(receiver.received) >= 3, "three deliveries")
    types = sorted(e["type"] for e in receiver.events())
    assert types == ["checkout.completed", "payment_order.succeeded", "payment_order.succeeded"]
    completed = receiver.events("checkout.completed")[0]
    assert completed["data"]["object"]["id"] == created["id"] and completed["data"]["object"]["state"] == "succeeded"
    assert [o["state"] for o in completed["data"]["object"]["orders"]] == ["succeeded", "succeeded"]
    for headers, body in receiver.received:
        signature_verify(secret=endpoint["secret"], payload=body, header=headers[SIGNATURE_HEADER])
        with pytest.raises(SignatureError):
            signature_verify(secret=endpoint["secret"], payload=body + b" ", header=headers[SIGNATURE_HEADER])
    assert not MerchantEvent.objects.exists()  # each outbox row taken once
    services.merchant_events_relay()
    assert OutboundEvent.objects.count() == 3 and Delivery.objects.filter(status="succeeded").count() == 3
    assert DeliveryAttempt.objects.filter(succeeded=True).count() == 3


def test_only_the_event_types_asked_for_and_nothing_for_a_client_without_endpoints(api, sandbox, receiver):
    register(api, receiver.url, events=["payment_order.failed"])
    seller = onboard(api, "seller")
    ok = checkout(api, [{"seller": seller, "amount": 1000, "currency": "usd"}], key="wh-ok").json()
    declined = checkout(api, [{"seller": seller, "amount": 700, "currency": "usd"}], key="wh-no",
                        payment_method="pm_card_chargeDeclined").json()
    wait_terminal(api, ok["id"])
    wait_terminal(api, declined["id"])
    relay_until(lambda: len(receiver.received) >= 1, "the failure's delivery")
    assert [e["type"] for e in receiver.events()] == ["payment_order.failed"]
    assert receiver.events()[0]["data"]["object"]["failure_code"] == "generic_decline"
    assert OutboundEvent.objects.count() == 1  # the others were wanted by nobody: not stored


def test_a_failing_endpoint_is_retried_with_backoff_then_marked_and_redelivered(api, sandbox, settings):
    settings.NOTIFICATIONS_FAILING_AFTER = 2
    failing = Receiver(statuses=[500, 500, 200])
    try:
        endpoint = register(api, failing.url, events=["payment_order.succeeded"])
        seller = onboard(api, "seller")
        created = checkout(api, [{"seller": seller, "amount": 1000, "currency": "usd"}], key="wh-fail").json()
        wait_terminal(api, created["id"])
        relay_until(lambda: len(failing.received) >= 1, "the first attempt (by the worker)")
        delivery = wait_for(lambda: Delivery.objects.filter(attempts=1).first(), message="the failure recorded")
        wait = (delivery.next_attempt_at - delivery.created_at).total_seconds()
        assert settings.NOTIFICATIONS_RETRY_BASE_SECONDS / 2 <= wait <= settings.NOTIFICATIONS_RETRY_BASE_SECONDS + 5
        assert delivery.status == "pending" and delivery.last_status_code == 500

        for _ in range(2):  # the backoff's due times, brought forward
            Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
            delivery_attempt(delivery_id=delivery.pk)
            if WebhookEndpoint.objects.get(pk=endpoint["id"]).status == "failing":
                assert len(failing.received) == 2  # two failures in a row: marked failing, still tried
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 3, 200)
        log = list(DeliveryAttempt.objects.filter(delivery=delivery).values_list("status_code", "succeeded"))
        assert log == [(500, False), (500, False), (200, True)]
        assert len({json.loads(body)["id"] for _, body in failing.received}) == 1  # one event, sent three times
        assert WebhookEndpoint.objects.get(pk=endpoint["id"]).status == "enabled"  # healthy again

        delivery_redeliver(delivery_id=delivery.pk, operator="alice", reason="merchant lost it")
        wait_for(lambda: len(failing.received) == 4, message="the redelivery (by the worker)")
        assert Redelivery.objects.get().reason == "merchant lost it"
        wait_for(lambda: DeliveryAttempt.objects.filter(delivery=delivery, actor="operator:alice").exists(),
                 message="the redelivery's log row")
    finally:
        failing.close()


def test_a_refused_connection_is_logged_and_retried_never_blocking_payments(api, sandbox):
    endpoint = register(api, "http://127.0.0.1:9/nobody-listens")  # port 9 (discard): connection refused
    seller = onboard(api, "seller")
    created = checkout(api, [{"seller": seller, "amount": 1000, "currency": "usd"}], key="wh-down").json()
    assert wait_terminal(api, created["id"])["orders"][0]["state"] == "succeeded"  # payments go on
    relay_until(lambda: DeliveryAttempt.objects.count() >= 2, "the attempts")
    for attempt in DeliveryAttempt.objects.all():
        assert attempt.status_code is None and "ConnectionError" in attempt.error and not attempt.succeeded
    # payment_order.succeeded and checkout.completed: both waiting for their next attempt
    assert Delivery.objects.filter(endpoint_id=endpoint["id"], status="pending", attempts=1).count() == 2


def test_bad_endpoint_input_is_a_400(api):
    for body, param in [({"url": "ftp://x.example/h", "enabled_events": ["*"]}, "url"),
                        ({"url": "https://x.example/h", "enabled_events": ["payout.paid"]}, "enabled_events[0]"),
                        ({"url": "https://x.example/h", "enabled_events": []}, "enabled_events")]:
        response = api.post("/api/v1/webhook-endpoints", json=body)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == param


def test_a_refund_tells_the_merchant(api, sandbox, receiver):
    register(api, receiver.url, events=["refund.succeeded"])
    seller = onboard(api, "seller")
    created = checkout(api, [{"seller": seller, "amount": 1000, "currency": "usd"}], key="wh-rf").json()
    order_id = wait_terminal(api, created["id"])["orders"][0]["id"]
    refund = api.post(f"/api/v1/payment-orders/{order_id}/refunds", json={"amount": 300},
                      headers={"Idempotency-Key": "rf-1"}).json()
    wait_for(lambda: api.get(f"/api/v1/refunds/{refund['id']}").json()["state"] == "succeeded", message="refund")
    relay_until(lambda: receiver.events("refund.succeeded"), "refund.succeeded")
    [event] = receiver.events()
    assert event["data"]["object"]["id"] == refund["id"] and event["data"]["object"]["amount"] == 300


def test_redelivery_from_the_admin_needs_the_permission_and_a_reason(api, sandbox, receiver, admin_client,
                                                                     django_user_model, client):
    register(api, receiver.url, events=["payment_order.succeeded"])
    created = checkout(api, [{"seller": onboard(api, "seller"), "amount": 1000, "currency": "usd"}], key="wh-a").json()
    wait_terminal(api, created["id"])
    relay_until(lambda: Delivery.objects.filter(status="succeeded").exists(), "the delivery")
    delivery = Delivery.objects.get()
    url = "/admin/notifications/delivery/"
    assert admin_client.get(f"{url}{delivery.pk}/change/").status_code == 200
    asked = admin_client.post(url, {"action": "redeliver", "_selected_action": [delivery.pk]})
    assert b"reason" in asked.content and not Redelivery.objects.exists()  # asks for a reason first
    admin_client.post(url, {"action": "redeliver", "_selected_action": [delivery.pk], "confirmed": "1",
                            "reason": "shop was down"})
    assert Redelivery.objects.get().reason == "shop was down"
    wait_for(lambda: len(receiver.received) == 2, message="the redelivery")

    viewer = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename="view_delivery"))
    client.force_login(viewer)
    client.post(url, {"action": "redeliver", "_selected_action": [delivery.pk], "confirmed": "1", "reason": "x"})
    assert Redelivery.objects.count() == 1  # without notifications.redeliver_delivery: nothing sent
