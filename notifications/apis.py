"""``/api/v1/webhook-endpoints``: a merchant registers where to be told."""
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import ApiError
from core.pagination import CreatedCursorPagination
from core.parsers import JSONParser
from core.schema import (
    PAGINATION_PARAMETERS,
    RETRY_AFTER_HEADER,
    WRITE_ERRORS,
    error_responses,
    idempotent_write,
    paginated,
)
from core.views import idempotent_response
from notifications import selectors, services
from notifications.serializers import WebhookEndpointCreatedOutput, WebhookEndpointInput, WebhookEndpointOutput


class ApiView(APIView):
    parser_classes = [JSONParser]


class WebhookEndpointListCreateApi(ApiView):
    @extend_schema(request=WebhookEndpointInput,
                   responses={201: WebhookEndpointCreatedOutput, **error_responses(409, 422, *WRITE_ERRORS)},
                   parameters=idempotent_write(required=False), operation_id="webhook_endpoints_create")
    def post(self, request):
        """An endpoint for the event types given; its `secret` is in this answer only."""
        request._request.body  # noqa: B018  (the idempotency fingerprint reads the raw body)
        serializer = WebhookEndpointInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data

        def create():
            endpoint = services.webhook_endpoint_create(client=request.user, url=data["url"],
                                                        enabled_events=data["enabled_events"],
                                                        description=data["description"])
            return status.HTTP_201_CREATED, WebhookEndpointCreatedOutput(endpoint).data

        return idempotent_response(request, create, key_required=False)

    @extend_schema(responses={200: paginated("WebhookEndpoint", WebhookEndpointOutput), **error_responses()},
                   parameters=PAGINATION_PARAMETERS, operation_id="webhook_endpoints_list")
    def get(self, request):
        paginator = CreatedCursorPagination()
        page = paginator.paginate_queryset(selectors.webhook_endpoint_list(client=request.user), request, view=self)
        return paginator.get_paginated_response(WebhookEndpointOutput(page, many=True).data)


class WebhookEndpointDetailApi(ApiView):
    @extend_schema(responses={200: WebhookEndpointOutput, **error_responses(404)}, parameters=[RETRY_AFTER_HEADER],
                   operation_id="webhook_endpoints_retrieve")
    def get(self, request, endpoint_id: str):
        endpoint = selectors.webhook_endpoint_get(client=request.user, endpoint_id=endpoint_id)
        if endpoint is None:
            raise ApiError("No such webhook endpoint.", code="resource_missing", status_code=404, param="id")
        return Response(WebhookEndpointOutput(endpoint).data)
