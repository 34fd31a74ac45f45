"""``/api/v1/webhook-endpoints``: a merchant registers where to be told."""
from rest_framework import status
from rest_framework.response import Response

from core.exceptions import NotFound
from core.schema import (
    create_schema,
    list_schema,
    retrieve_schema,
)
from core.views import ApiView, found, idempotent_response, paginated_response, validated
from notifications import selectors, services
from notifications.serializers import WebhookEndpointCreatedOutput, WebhookEndpointInput, WebhookEndpointOutput


class WebhookEndpointListCreateApi(ApiView):
    @create_schema(WebhookEndpointInput, WebhookEndpointCreatedOutput, "webhook_endpoints_create", 409, 422,
                   key_required=False)
    def post(self, request):
        """An endpoint for the event types given; its `secret` is in this answer only."""
        data = validated(WebhookEndpointInput, request)

        def create():
            endpoint = services.webhook_endpoint_create(client=request.user, url=data["url"],
                                                        enabled_events=data["enabled_events"],
                                                        description=data["description"])
            return status.HTTP_201_CREATED, WebhookEndpointCreatedOutput(endpoint).data

        return idempotent_response(request, create, key_required=False)

    @list_schema("WebhookEndpoint", WebhookEndpointOutput, "webhook_endpoints_list")
    def get(self, request):
        return paginated_response(request, self, selectors.webhook_endpoint_list(client=request.user),
                                  WebhookEndpointOutput)


class WebhookEndpointDetailApi(ApiView):
    @retrieve_schema(WebhookEndpointOutput, "webhook_endpoints_retrieve")
    def get(self, request, endpoint_id: str):
        endpoint = found(selectors.webhook_endpoint_get(client=request.user, endpoint_id=endpoint_id),
                         NotFound("No such webhook endpoint.", param="id"))
        return Response(WebhookEndpointOutput(endpoint).data)
