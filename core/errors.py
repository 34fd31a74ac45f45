"""One error shape for the whole API: ``{"error": {"type", "code", "message", "param"}}``."""
from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

from core.exceptions import Conflict, DomainError, IdempotencyMismatch, NotFound

logger = logging.getLogger(__name__)


class ApiError(exceptions.APIException):
    """An HTTP-layer error with a stable code, raised by views (services raise ``core.exceptions``)."""

    status_code = status.HTTP_400_BAD_REQUEST
    error_type = "invalid_request_error"
    default_code = "invalid_request"
    default_detail = "The request was not valid."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        param: str | None = None,
        status_code: int | None = None,
        error_type: str | None = None,
    ) -> None:
        super().__init__(detail=message or self.default_detail, code=code or self.default_code)
        self.code = code or self.default_code
        self.param = param
        if status_code is not None:
            self.status_code = status_code
        if error_type is not None:
            self.error_type = error_type


def error_body(*, error_type: str, code: str, message: str, param: str | None = None) -> dict:
    return {"error": {"type": error_type, "code": code, "message": message, "param": param}}


def _join(path: str, key) -> str:
    if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
        return f"{path}[{key}]"
    if key == "non_field_errors":
        return path
    return f"{path}.{key}" if path else str(key)


def _first_validation_error(detail, path: str = "") -> tuple[str | None, str, str]:
    """Walk DRF's nested ``ValidationError.detail`` to the first message and its path (``orders[0].amount``)."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            if value:
                return _first_validation_error(value, _join(path, key))
    if isinstance(detail, list):
        for index, value in enumerate(detail):
            if isinstance(value, dict):
                if value:
                    return _first_validation_error(value, _join(path, index))
            elif value:
                return _first_validation_error(value, path)
    code = getattr(detail, "code", None) or "invalid"
    return (path or None, str(code), str(detail))


_TYPES_BY_STATUS = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("authentication_error", "unauthenticated"),
    403: ("permission_error", "forbidden"),
    404: ("invalid_request_error", "resource_missing"),
    405: ("invalid_request_error", "method_not_allowed"),
    406: ("invalid_request_error", "not_acceptable"),
    413: ("invalid_request_error", "body_too_large"),
    414: ("invalid_request_error", "uri_too_long"),
    415: ("invalid_request_error", "unsupported_media_type"),
    429: ("rate_limit_error", "rate_limited"),
    431: ("invalid_request_error", "headers_too_large"),
}
_MESSAGES_BY_STATUS = {
    400: "The request could not be read.",
    401: "A valid API key is required.",
    403: "Not allowed.",
    404: "No such resource.",
    405: "Method not allowed on this endpoint.",
    406: "Only application/json is served.",
    413: "Request body too large.",
    414: "Request line too long.",
    415: "Only application/json bodies are accepted.",
    429: "Too many requests.",
    431: "Request headers too large.",
}


# Each group of domain errors, its HTTP status and error type; the first that matches applies.
_DOMAIN_ERRORS = (
    (NotFound, status.HTTP_404_NOT_FOUND, "invalid_request_error"),
    (Conflict, status.HTTP_409_CONFLICT, "invalid_request_error"),
    (IdempotencyMismatch, status.HTTP_422_UNPROCESSABLE_ENTITY, "idempotency_error"),
    (DomainError, status.HTTP_400_BAD_REQUEST, "invalid_request_error"),
)


def api_exception_handler(exc, context) -> Response | None:
    """DRF exception handler: every error leaves in the same shape."""
    if isinstance(exc, DomainError):
        http_status, error_type = next((s, t) for kind, s, t in _DOMAIN_ERRORS if isinstance(exc, kind))
        return Response(error_body(error_type=error_type, code=exc.code, message=exc.message, param=exc.param),
                        status=http_status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, ApiError):
        body = error_body(error_type=exc.error_type, code=exc.code, message=str(exc.detail), param=exc.param)
        return Response(body, status=exc.status_code)
    if isinstance(exc, exceptions.ValidationError):
        param, code, message = _first_validation_error(exc.detail)
        if code in ("invalid", "required", "null", "blank") and param:
            code = f"parameter_{code}"
        body = error_body(error_type="invalid_request_error", code=code, message=message, param=param)
        return Response(body, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, exceptions.ParseError):
        body = error_body(error_type="invalid_request_error", code="malformed_body", message=str(exc.detail))
        return Response(body, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, exceptions.APIException):
        error_type, code = _TYPES_BY_STATUS.get(exc.status_code, ("api_error", "api_error"))
        body = error_body(error_type=error_type, code=code, message=str(exc.detail))
        headers = {}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        return Response(body, status=exc.status_code, headers=headers)
    return None  # a real bug: Django's 500 handler (below) answers in the same shape


def json_error_response(status_code: int, *, error_type: str, code: str, message: str,
                        param: str | None = None) -> JsonResponse:
    return JsonResponse(error_body(error_type=error_type, code=code, message=message, param=param), status=status_code)


def error_response_for_status(status_code: int) -> JsonResponse:
    """The error shape for a bare status (Django's or a middleware's own error page, turned into JSON)."""
    if status_code >= 500:
        code = "internal_error" if status_code == 500 else "service_unavailable"
        return json_error_response(status_code, error_type="api_error", code=code,
                                   message="Something went wrong on our side.")
    error_type, code = _TYPES_BY_STATUS.get(status_code, ("invalid_request_error", "invalid_request"))
    return json_error_response(status_code, error_type=error_type, code=code,
                               message=_MESSAGES_BY_STATUS.get(status_code, "The request was not valid."))


def handler404(request, exception=None):
    return json_error_response(404, error_type="invalid_request_error", code="resource_missing",
                               message="No such resource.")


def handler500(request):
    return json_error_response(500, error_type="api_error", code="internal_error",
                               message="Something went wrong on our side; nothing was half-written.")
