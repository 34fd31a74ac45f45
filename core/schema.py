from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "core.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <api key>"}


def idempotency_key_header(required: bool) -> OpenApiParameter:
    return OpenApiParameter(
        name="Idempotency-Key",
        location=OpenApiParameter.HEADER,
        required=required,
        type=str,
        description="Same key and body replay the first response; another body is a 422; "
        "a twin still in flight gets a 409. Kept for 24 hours per API key.",
    )
