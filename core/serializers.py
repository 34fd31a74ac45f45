"""Serializer building blocks shared by the API apps."""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.money import is_known_currency, normalize_currency


class StrictSerializer(serializers.Serializer):
    """Refuses parameters it does not know, as Stripe does (a typo is an error, not ignored)."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {unknown[0]: serializers.ErrorDetail("Unknown parameter.", code="parameter_unknown")}
                )
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer, nothing else: no strings, floats or booleans."""

    default_error_messages = {"invalid": "Must be an integer in the currency's minor unit."}

    def to_internal_value(self, data):
        if type(data) is not int:
            self.fail("invalid")
        return super().to_internal_value(data)


class CurrencyField(serializers.CharField):
    default_error_messages = {"unknown": "Not an ISO 4217 currency code."}

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 3)
        kwargs.setdefault("min_length", 3)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not is_known_currency(value):
            self.fail("unknown")
        return normalize_currency(value)


@extend_schema_field(OpenApiTypes.STR)
class ObjectTypeField(serializers.Field):
    """The ``object`` member of an API object (``"payment_order"``), as Stripe has it."""

    def __init__(self, value: str, **kwargs):
        self.value = value
        kwargs.update(source="*", read_only=True)
        super().__init__(**kwargs)

    def to_representation(self, instance) -> str:
        return self.value
