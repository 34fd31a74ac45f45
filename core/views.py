"""What every API view shares: the base view, the validated body, a page of a list, a 404 for what a selector
did not find, and the idempotency wrapper around a service call; and what the PSP's webhook endpoints share:
POST only, and the answer once an event is stored and processed."""
from collections.abc import Callable
from functools import wraps
from typing import TypeVar

from django.db.models import QuerySet
from django.http import JsonResponse
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import json_error_response
from core.exceptions import DomainError
from core.models import WebhookInbox
from core.pagination import CreatedCursorPagination
from core.parsers import JSONParser
from core.services import idempotent_call

T = TypeVar("T")


class ApiView(APIView):
    # Here rather than in DEFAULT_PARSER_CLASSES: deeply nested JSON, NUL and lone surrogates are 400s.
    parser_classes = [JSONParser]


def validated(serializer_class, request: Request) -> dict:
    """The request's body as ``serializer_class`` validates it (a 422 otherwise)."""
    request._request.body  # noqa: B018  (read the raw body first: the idempotency fingerprint needs it)
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def paginated_response(request: Request, view: APIView, queryset: QuerySet, output_class,
                       pagination=CreatedCursorPagination) -> Response:
    """One page of ``queryset`` (newest first), each row as ``output_class`` renders it."""
    paginator = pagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(output_class(page, many=True).data)


def found(obj: T | None, error: DomainError) -> T:
    """``obj``, which a selector looked up for the caller; ``error`` (a not-found) when there is none."""
    if obj is None:
        raise error
    return obj


def idempotent_response(request: Request, operation: Callable[[], tuple[int, dict]],
                        *, key_required: bool = True) -> Response:
    """Run ``operation`` under the request's ``Idempotency-Key`` and answer its response.

    ``request.body`` must have been read before ``request.data`` (the view does so).
    """
    key = request.headers.get("Idempotency-Key")
    if key is None and not key_required:
        status, body = operation()
        return Response(body, status=status)
    result = idempotent_call(client=request.user, key=key, method=request.method,
                             path=request.path, body=request._request.body, operation=operation)
    headers = {"Idempotent-Replayed": "true"} if result.replayed else {}
    return Response(result.body, status=result.status, headers=headers)


def webhook_post_only(view):
    """A PSP webhook endpoint: any other method than POST is a 405 in the error shape."""
    @wraps(view)
    def post_only(request, *args, **kwargs):
        if request.method != "POST":
            response = json_error_response(405, error_type="invalid_request_error", code="method_not_allowed",
                                           message="Webhooks are delivered with POST.")
            response["Allow"] = "POST"
            return response
        return view(request, *args, **kwargs)
    return post_only


def webhook_answer(event: WebhookInbox, created: bool, status: str) -> JsonResponse:
    """200 once an event is stored and processed (or ignored); a 500 in the error shape when its processing
    failed, so the PSP sends it again."""
    if status == WebhookInbox.Status.FAILED:
        message = f"Event {event.id} is stored but its processing failed; send it again later."
        return json_error_response(500, error_type="api_error", code="webhook_processing_failed", message=message)
    return JsonResponse({"received": True, "id": event.id, "duplicate": not created, "status": status})
