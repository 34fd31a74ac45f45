"""Helpers for API views that write: the idempotency wrapper around a service call."""
from collections.abc import Callable

from rest_framework.request import Request
from rest_framework.response import Response

from core.services import idempotent_call


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
