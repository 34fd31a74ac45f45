"""A broker outage right after commit: the checkout still answers 201; the sweeper recovers."""
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from core.services import api_client_create
from payments.models import PaymentOrder, PaymentOrderState
from payments.tests.chaos_schedule import broker_unreachable
from payments.tests.factories import SellerFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def broker_down():
    """The producer points at a port nothing listens on (chaos_schedule.broker_unreachable: the write
    URL, since ``$CELERY_BROKER_URL``, which the Makefile sets, wins over an assigned ``broker_url``)."""
    with broker_unreachable():
        yield


def test_checkout_answers_201_when_the_broker_is_down(broker_down):
    client, key = api_client_create(name="shop")
    seller = SellerFactory(client=client)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    body = {"buyer": {"reference": "b"}, "payment_method": "pm_card_visa",
            "orders": [{"seller": seller.id, "amount": 500, "currency": "usd"}]}
    response = api.post("/api/v1/checkouts", body, format="json", HTTP_IDEMPOTENCY_KEY="outage-1")
    assert response.status_code == 201
    order = PaymentOrder.objects.get()
    assert order.state == PaymentOrderState.NOT_STARTED
    # Nothing was enqueued; the sweeper's lease on the order is what brings it back.
    assert order.next_action_at is not None
    assert order.next_action_at <= timezone.now() + timedelta(seconds=60)
