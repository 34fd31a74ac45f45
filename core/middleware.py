"""Refuse oversized API bodies with 413 before any of them is read."""
from django.conf import settings

from core.errors import json_error_response


class ApiBodySizeLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > settings.API_MAX_BODY_BYTES:
                return json_error_response(
                    413, error_type="invalid_request_error", code="body_too_large",
                    message=f"Request body exceeds {settings.API_MAX_BODY_BYTES} bytes.",
                )
        return self.get_response(request)
