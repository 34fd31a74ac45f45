"""The edge of the API and the webhook endpoint: oversized bodies and NUL bytes refused before
anything is read, and every error page Django itself answers there turned into the error shape; the browser's
middleware (sessions, the user, messages) only for the browser's paths."""
from urllib.parse import unquote_plus

from django.conf import settings
from django.contrib.auth import middleware as auth_middleware
from django.contrib.messages import middleware as messages_middleware
from django.contrib.sessions import middleware as sessions_middleware

from core.errors import error_response_for_status, json_error_response
from core.throttling import webhook_refusal

JSON_PATH_PREFIXES = ("/api/", "/webhooks/")
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


def _body_limit(path: str) -> int | None:
    if path.startswith("/api/"):
        return settings.API_MAX_BODY_BYTES
    if path.startswith("/webhooks/"):
        return settings.DATA_UPLOAD_MAX_MEMORY_SIZE  # what Django would refuse, as an HTML 400, on reading
    return None


def _is_json(response) -> bool:
    return response.get("Content-Type", "").split(";")[0].strip().endswith("json")


class ApiBodySizeLimitMiddleware:
    """413 for a body over the limit (``API_MAX_BODY_BYTES`` for ``/api/``, ``DATA_UPLOAD_MAX_MEMORY_SIZE``
    for ``/webhooks/``); 404 for a path and 400 for a query string holding a NUL byte (no id has one,
    and PostgreSQL refuses them: that was a 500); Django's own HTML 4xx/5xx pages (its 405, the 400 of
    ``RequestDataTooBig`` or ``DisallowedHost``, CSRF's 403) answered as JSON in the error shape."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path
        if not path.startswith(JSON_PATH_PREFIXES):
            return self.get_response(request)
        refused = self._refuse(request, path)
        if refused is not None:
            return refused
        response = self.get_response(request)
        if response.status_code >= 400 and not _is_json(response) and not response.streaming:
            replacement = error_response_for_status(response.status_code)
            for header in _KEPT_HEADERS:
                if header in response:
                    replacement[header] = response[header]
            return replacement
        return response

    @staticmethod
    def _refuse(request, path: str):
        limit = _body_limit(path)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if limit is not None and length > limit:
            return json_error_response(413, error_type="invalid_request_error", code="body_too_large",
                                       message=f"Request body exceeds {limit} bytes.")
        if "\x00" in path:
            return json_error_response(404, error_type="invalid_request_error", code="resource_missing",
                                       message="No such resource.")
        if "\x00" in unquote_plus(request.META.get("QUERY_STRING", ""), errors="replace"):
            return json_error_response(400, error_type="invalid_request_error", code="parameter_invalid",
                                       message="Query parameters must not contain NUL bytes.")
        return None


class RateLimitMiddleware:
    """The PSP's webhook endpoint (``/webhooks/``), per client IP: ``RATE_LIMIT_WEBHOOK``, 429 ``rate_limited``
    with ``Retry-After`` before anything is read (core/throttling.py; the API's own limits are DRF's)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/webhooks/"):
            refused = webhook_refusal(request)
            if refused is not None:
                return refused
        return self.get_response(request)


class NotForMachinePaths:
    """Mixed into a browser middleware (sessions, the user, messages): passed by for ``/api/`` and
    ``/webhooks/``, whose requests carry an API key or a PSP signature and no cookie, and whose views read no
    session, user or message (DRF authenticates with the key and sets ``request.user`` itself). The admin,
    the storefront and the buyer's pages get it unchanged. CSRF's middleware stays as Django's own for every
    path (``check --deploy`` looks for it by name; for the API's CSRF-exempt views it costs little)."""

    def __call__(self, request):
        if request.path_info.startswith(JSON_PATH_PREFIXES):
            return self.get_response(request)
        return super().__call__(request)


class SessionMiddleware(NotForMachinePaths, sessions_middleware.SessionMiddleware):
    pass


class AuthenticationMiddleware(NotForMachinePaths, auth_middleware.AuthenticationMiddleware):
    pass


class MessageMiddleware(NotForMachinePaths, messages_middleware.MessageMiddleware):
    pass
