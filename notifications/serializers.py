"""Input and output serializers of the webhook-endpoints API."""
from django.core.validators import URLValidator
from rest_framework import serializers

from core.serializers import CardNumberScreeningMixin, FreeTextField, ObjectTypeField, StrictSerializer
from notifications.services import EVENT_TYPES


class EndpointUrlField(CardNumberScreeningMixin, serializers.URLField):
    """An absolute http(s) URL of at most 2048 characters."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 2048)
        super().__init__(**kwargs)
        self.validators = [v for v in self.validators if not isinstance(v, URLValidator)]
        self.validators.append(URLValidator(schemes=["http", "https"], message="Enter an http or https URL."))


class WebhookEndpointInput(StrictSerializer):
    url = EndpointUrlField(help_text="Where events are POSTed (http or https; https in production).")
    enabled_events = serializers.ListField(
        child=serializers.ChoiceField(choices=[*EVENT_TYPES, "*"]), allow_empty=False, max_length=20,
        help_text=f"Event types to receive: {', '.join(EVENT_TYPES)}, or `*` for all.")
    description = FreeTextField(max_length=200, required=False, allow_blank=True, default="")


class WebhookEndpointOutput(serializers.Serializer):
    id = serializers.CharField()
    object = ObjectTypeField("webhook_endpoint")
    url = serializers.CharField()
    enabled_events = serializers.ListField(child=serializers.CharField())
    description = serializers.CharField()
    status = serializers.CharField(help_text="`enabled`, `failing` (its recent deliveries failed; still tried) or "
                                             "`disabled`.")
    created = serializers.DateTimeField(source="created_at")


class WebhookEndpointCreatedOutput(WebhookEndpointOutput):
    secret = serializers.CharField(help_text="whsec_…: verifies our `Marketplace-Signature` header "
                                             "(t=…,v1=HMAC-SHA256). Shown only in this response.")
