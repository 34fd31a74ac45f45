"""What the OpenAPI schema says beyond what drf-spectacular infers: the error shape for every status
an operation can answer, the pagination envelope, the idempotency headers and the constraints the
serializers enforce in code (token pattern, currency codes, 1 to 50 orders, no blank strings).
``core/tests/test_schemathesis.py`` holds the server to it."""
from django.conf import settings
from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerExtension,
    OpenApiSerializerFieldExtension,
)
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers

from core.money import CURRENCY_EXPONENTS


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "core.authentication.ApiKeyAuthentication"
    match_subclasses = True  # core.throttling.RateLimitedApiKeyAuthentication
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <api key>"}


# --- Constraints the serializers enforce in code -------------------------------------------------

class PaymentMethodTokenFieldSchema(OpenApiSerializerFieldExtension):
    """``payments.serializers.PaymentMethodTokenField``: a ``pm_`` token, never a card number."""

    target_class = "payments.serializers.PaymentMethodTokenField"
    priority = 1  # over CharFieldSchema

    def map_serializer_field(self, auto_schema, direction):
        return {"type": "string", "pattern": r"^pm_[A-Za-z0-9_]{1,96}$", "maxLength": 99,
                "description": "A PSP payment-method token (pm_...). Card numbers are refused unread."}


class CurrencyFieldSchema(OpenApiSerializerFieldExtension):
    """``core.serializers.CurrencyField``: an ISO 4217 code, either case (answered lowercase)."""

    target_class = "core.serializers.CurrencyField"
    priority = 1  # over CharFieldSchema

    def map_serializer_field(self, auto_schema, direction):
        codes = sorted(CURRENCY_EXPONENTS)
        if direction == "response":
            return {"type": "string", "enum": codes}
        return {"type": "string", "enum": codes + [code.upper() for code in codes],
                "description": "ISO 4217 currency code, lowercase or uppercase."}


class ListSerializerSchema(OpenApiSerializerFieldExtension):
    """A nested ``many=True`` serializer's ``allow_empty``/``min_length``/``max_length`` (the 1 to
    ``CHECKOUT_MAX_ORDERS`` orders of a checkout): drf-spectacular leaves them out."""

    target_class = "rest_framework.serializers.ListSerializer"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        if direction == "request":
            min_items = self.target.min_length or (0 if self.target.allow_empty else 1)
            if min_items:
                schema["minItems"] = min_items
            if self.target.max_length is not None:
                schema["maxItems"] = self.target.max_length
        return schema


class CharFieldSchema(OpenApiSerializerFieldExtension):
    """A required-to-be-non-blank ``CharField`` is stripped before it is checked: a string of only whitespace is
    blank, and refused. The pattern says so: any non-whitespace character (for ``FreeTextField``, which trims
    only JSON's whitespace, any character but space, tab, CR and LF)."""

    target_class = "rest_framework.serializers.CharField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        if direction == "request" and not self.target.allow_blank:
            if self.target.trim_whitespace:
                schema.setdefault("pattern", r"\S")
            elif getattr(self.target, "_trim", False):  # FreeTextField: JSON's whitespace only is trimmed
                schema.setdefault("pattern", r"[^ \t\n\r]")
        return schema


class StrictSerializerSchema(OpenApiSerializerExtension):
    """``core.serializers.StrictSerializer`` refuses parameters it does not know: no additional properties."""

    target_class = "core.serializers.StrictSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction == "request":
            schema["additionalProperties"] = False
        return schema


# --- Errors ----------------------------------------------------------------------------------------

ErrorDetail = inline_serializer("ErrorDetail", {
    "type": serializers.CharField(help_text="invalid_request_error, authentication_error, permission_error, "
                                  "idempotency_error, rate_limit_error or api_error"),
    "code": serializers.CharField(help_text="A stable, machine-readable code (parameter_invalid, resource_missing…)."),
    "message": serializers.CharField(),
    "param": serializers.CharField(allow_null=True, help_text="The parameter at fault (orders[0].amount), or null."),
})
Error = inline_serializer("Error", {"error": ErrorDetail})

_ERROR_DESCRIPTIONS = {
    400: "Invalid request: a parameter, header or body the API refuses (error shape, `param` names it).",
    401: "Missing or invalid API key.",
    404: "No such resource (for this API key).",
    405: "Method not allowed on this path.",
    409: "Conflict: an `Idempotency-Key` twin still in flight, or a resource that already exists.",
    413: f"Request body over {settings.API_MAX_BODY_BYTES} bytes.",
    415: "Only application/json bodies are accepted.",
    422: "This `Idempotency-Key` was used with another request.",
    429: "Too many requests: retry after `Retry-After` seconds.",
    500: "Something went wrong on our side; nothing was half-written.",
}

# Every operation: bad query/header (400), no or bad key (401), rate limited (429), our bug (500).
_ALWAYS = (400, 401, 429, 500)


# Every operation, before the API runs: a request line or headers over the limits of the server in front of it
# (gunicorn here, with its own HTML page; nginx in production, in the error shape: README "Errors gunicorn answers
# itself"). Documented without a body, which the API does not write.
_FRONT_SERVER = {
    414: "Request line (path and query) over the front server's limit (4094 bytes with gunicorn's settings).",
    431: "Request headers over the front server's limits.",
}


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    responses = {code: OpenApiResponse(Error, description=_ERROR_DESCRIPTIONS[code]) for code in {*_ALWAYS, *statuses}}
    responses.update({code: OpenApiResponse(description=text) for code, text in _FRONT_SERVER.items()})
    return dict(sorted(responses.items()))


RETRY_AFTER_HEADER = OpenApiParameter(
    name="Retry-After", location=OpenApiParameter.HEADER, type=int, response=[429],
    description="Seconds to wait before retrying.",
)
# What every write operation can answer besides its success: 413 (body too large), 415 (not JSON).
WRITE_ERRORS = (413, 415)


# --- Idempotency -------------------------------------------------------------------------------------

def idempotency_key_header(required: bool) -> OpenApiParameter:
    return OpenApiParameter(
        name="Idempotency-Key",
        location=OpenApiParameter.HEADER,
        required=required,
        # 1 to 255 printable characters (core.services._validate_key); HTTP strips surrounding spaces.
        type={"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[!-~]([ -~]{0,253}[!-~])?$"},
        description="Same key and body replay the first response; another body is a 422; "
        "a twin still in flight gets a 409. Kept for 24 hours per API key. 1 to 255 printable characters.",
    )


IDEMPOTENT_REPLAYED_HEADER = OpenApiParameter(
    name="Idempotent-Replayed", location=OpenApiParameter.HEADER, response=[201],
    type={"type": "string", "enum": ["true"]},
    description="Present (`true`) when this is the stored response of an earlier request with the same key.",
)


def idempotent_write(required: bool) -> list[OpenApiParameter]:
    return [idempotency_key_header(required), IDEMPOTENT_REPLAYED_HEADER, RETRY_AFTER_HEADER]


# --- Pagination -----------------------------------------------------------------------------------------

PAGINATION_PARAMETERS = [
    OpenApiParameter(name="limit", type={"type": "integer", "minimum": 1, "maximum": 100},
                     description="Page size, 1 to 100 (default 20)."),
    OpenApiParameter(name="cursor", type=str,
                     description="Opaque: the `next` or `previous` link's cursor, passed back unchanged."),
    RETRY_AFTER_HEADER,
]


def paginated(name: str, item_serializer) -> serializers.Serializer:
    """The cursor pagination envelope (``core.pagination.CreatedCursorPagination``) around a list."""
    return inline_serializer(f"Paginated{name}List", {
        "next": serializers.URLField(allow_null=True, help_text="The next page's URL, or null."),
        "previous": serializers.URLField(allow_null=True, help_text="The previous page's URL, or null."),
        "results": item_serializer(many=True),
    })


# --- The usual operations' schemas ---------------------------------------------------------------------

def retrieve_schema(output, operation_id: str):
    """A GET of one object: ``output``, or a 404."""
    return extend_schema(responses={200: output, **error_responses(404)}, parameters=[RETRY_AFTER_HEADER],
                         operation_id=operation_id)


def list_schema(name: str, output, operation_id: str, *statuses: int):
    """A GET of a cursor-paginated list of ``output`` (``paginated``), with the errors ``statuses`` besides."""
    return extend_schema(responses={200: paginated(name, output), **error_responses(*statuses)},
                         parameters=PAGINATION_PARAMETERS, operation_id=operation_id)


def create_schema(request, output, operation_id: str, *statuses: int, key_required: bool):
    """An idempotent POST that creates ``output`` (201), with the errors ``statuses`` besides a write's."""
    return extend_schema(request=request, responses={201: output, **error_responses(*statuses, *WRITE_ERRORS)},
                         parameters=idempotent_write(required=key_required), operation_id=operation_id)
