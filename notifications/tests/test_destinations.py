"""Merchants' webhooks are never sent into our own network (SSRF): refused at registration for an address
or a local name in the URL, and before each delivery for what the host resolves to then."""
import ipaddress
import socket

import pytest
from django.utils import timezone

from core.exceptions import InvalidRequest
from core.services import api_client_create
from notifications.destinations import destination_refusal_at_delivery, destination_refusal_at_registration
from notifications.models import Delivery, DeliveryAttempt, OutboundEvent, WebhookEndpoint
from notifications.services import delivery_attempt, webhook_endpoint_create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def production_rule(settings):
    settings.NOTIFICATIONS_ALLOW_PRIVATE_DESTINATIONS = False


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8000/hooks", "https://localhost/hooks", "http://10.0.0.5/x", "http://192.168.1.10/x",
    "http://169.254.169.254/latest/meta-data", "http://[::1]/x", "http://0.0.0.0/x", "http://shop.localhost/x",
])
def test_an_endpoint_into_our_network_is_refused_at_registration(url):
    client, _ = api_client_create(name="shop")
    with pytest.raises(InvalidRequest) as refused:
        webhook_endpoint_create(client=client, url=url, enabled_events=["*"])
    assert (refused.value.code, refused.value.param) == ("url_not_allowed", "url")
    assert not WebhookEndpoint.objects.exists()


def test_public_addresses_and_names_pass_registration():
    assert destination_refusal_at_registration("https://93.184.215.14/hooks") is None
    assert destination_refusal_at_registration("https://hooks.shop.example/x") is None  # resolved per delivery


def test_a_name_that_resolves_into_our_network_is_not_sent_to(settings):
    host = socket.gethostname()  # a name, not "localhost", that resolves to this machine's own address
    if all(ipaddress.ip_address(info[4][0]).is_global for info in socket.getaddrinfo(host, 80)):
        pytest.skip(f"{host} resolves to a public address here")
    assert f"{host} resolves to" in destination_refusal_at_delivery(f"http://{host}:8000/x")
    settings.NOTIFICATIONS_ALLOW_PRIVATE_DESTINATIONS = True
    client, _ = api_client_create(name="shop")
    endpoint = webhook_endpoint_create(client=client, url="http://localhost:9/hooks", enabled_events=["*"])
    settings.NOTIFICATIONS_ALLOW_PRIVATE_DESTINATIONS = False  # e.g. DNS changed after registration
    event = OutboundEvent.objects.create(id="evt_1", client=client, type="checkout.completed", data={})
    delivery = Delivery.objects.create(event=event, endpoint=endpoint, next_attempt_at=timezone.now())
    assert delivery_attempt(delivery_id=delivery.id) is not None  # retried later, never sent now
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert attempt.status_code is None and attempt.error.startswith("not sent: ")
