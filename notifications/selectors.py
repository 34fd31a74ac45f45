"""Reads of outbound webhooks. A client sees only its own endpoints."""
from django.db.models import QuerySet

from core.models import ApiClient
from notifications.models import WebhookEndpoint


def webhook_endpoint_list(*, client: ApiClient) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(client=client)


def webhook_endpoint_get(*, client: ApiClient, endpoint_id: str) -> WebhookEndpoint | None:
    return webhook_endpoint_list(client=client).filter(pk=endpoint_id).first()
