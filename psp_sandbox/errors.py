"""Stripe's error shape: ``{"error": {type, code, message, param, doc_url, ...}}``.

``ApiError`` is raised anywhere in the sandbox and answered by ``server.py``; the
server adds ``request_log_url`` (it knows the request id).
"""

from __future__ import annotations

import time
from typing import Any

DOC_URL = "https://stripe.com/docs/error-codes/"


class ApiError(Exception):
    """An error response in Stripe's shape: ``{"error": {...}}``."""

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"type": type_, "message": message}
        if code:
            self.body["code"] = code
            self.body["doc_url"] = DOC_URL + code.replace("_", "-")
        if param:
            self.body["param"] = param
        self.body.update({k: v for k, v in extra.items() if v is not None})

    def payload(self) -> dict[str, Any]:
        """The JSON response body."""
        return {"error": self.body}


def invalid(message: str, param: str | None = None, code: str | None = None, status: int = 400) -> ApiError:
    """A 400 invalid_request_error."""
    return ApiError(status, "invalid_request_error", message, code=code, param=param)


def not_found(kind: str, obj_id: str, param: str = "id") -> ApiError:
    """A 404 resource_missing error (``GET /v1/<kind>/<id>``)."""
    return invalid(f"No such {kind}: '{obj_id}'", param=param, code="resource_missing", status=404)


def missing(kind: str, obj_id: str, param: str) -> ApiError:
    """A 400 resource_missing error: a parameter names an object that does not exist."""
    return invalid(f"No such {kind}: '{obj_id}'", param=param, code="resource_missing")


def required(param: str) -> ApiError:
    """A 400 parameter_missing error."""
    return invalid(f"Missing required param: {param}.", param=param, code="parameter_missing")


def server_error() -> ApiError:
    """Stripe's 500 api_error."""
    return ApiError(500, "api_error", "An unknown error occurred (sandbox fault injection).")


def rate_limited() -> ApiError:
    """Stripe's 429: too many requests (nothing executed; the SDK raises ``RateLimitError``)."""
    return ApiError(429, "invalid_request_error", "Request rate limit exceeded (sandbox fault injection). "
                    "Retry later with an exponential backoff.", code="rate_limit")


def request_log_url(request_id: str) -> str:
    """The Dashboard link Stripe puts in every error body."""
    return f"https://dashboard.stripe.com/test/logs/{request_id}?t={int(time.time())}"
