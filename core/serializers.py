"""Serializer building blocks shared by the API apps."""
import copy
from collections.abc import Mapping
from dataclasses import dataclass

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import MaxLengthValidator, MaxValueValidator, MinLengthValidator, MinValueValidator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import SkipField, empty
from rest_framework.relations import PKOnlyObject
from rest_framework.settings import api_settings
from rest_framework.validators import ProhibitSurrogateCharactersValidator

from core.money import is_known_currency, normalize_currency
from core.validators import contains_card_number

CARD_NUMBER_REFUSED = "card_number_refused"
CARD_NUMBER_MESSAGE = ("This looks like a payment card number, which is never accepted here. "
                       "Remove it: cards reach us only as the PSP's payment-method token (pm_...).")


class FieldsBoundOnce:
    """A serializer whose fields are built and bound once per class, not for every instance.

    DRF deep-copies each declared field (and nested serializer) whenever a serializer is made: most of the
    cost of rendering a small object or validating a small body, paid on every request. Here they are bound
    once to a context-less prototype instance and shared. That holds while neither rendering nor validating
    keeps state on a field (DRF's fields and ours don't: errors are raised, values returned), no field reads
    the context, the instance or ``partial`` (the prototype has none), and a nested list of serializers keeps
    DRF's ``run_child_validation`` (which sets nothing on the child). ``validate_<field>`` methods and
    ``to_internal_value`` still run on each instance."""

    @property
    def fields(self):
        cls = type(self)
        shared = cls.__dict__.get("_shared_fields")
        if shared is None:
            shared = serializers.Serializer.fields.func(cls())  # DRF's own build, on a context-less prototype
            for field in shared.values():
                field.validators = [_quick(validator) for validator in field.validators]
            cls._shared_fields = shared
        return shared


class _QuickSurrogates(ProhibitSurrogateCharactersValidator):
    """DRF's check, by one UTF-8 encoding (it fails exactly on a surrogate) instead of a generator over
    every character; DRF's own loop only to word the error."""

    def __call__(self, value):
        try:
            str(value).encode("utf-8")
        except UnicodeEncodeError:
            super().__call__(value)


class _QuickLimit:
    """Django's ``BaseValidator`` (max/min length, max/min value) answering a value within its limit at once;
    Django's own call, with its error's parameters, otherwise."""

    measure = staticmethod(lambda value: value)

    def __call__(self, value):
        if not self.compare(self.measure(value), self.limit_value):
            return
        super().__call__(value)


class _QuickMaxLength(_QuickLimit, MaxLengthValidator):
    measure = staticmethod(len)


class _QuickMinLength(_QuickLimit, MinLengthValidator):
    measure = staticmethod(len)


class _QuickMaxValue(_QuickLimit, MaxValueValidator):
    pass


class _QuickMinValue(_QuickLimit, MinValueValidator):
    pass


_QUICK = {ProhibitSurrogateCharactersValidator: _QuickSurrogates, MaxLengthValidator: _QuickMaxLength,
          MinLengthValidator: _QuickMinLength, MaxValueValidator: _QuickMaxValue, MinValueValidator: _QuickMinValue}


def _quick(validator):
    """The same validator (same limit, message and code), answering a valid value with less work; a
    callable limit, or any other validator, as it is."""
    quick = _QUICK.get(type(validator))
    if quick is None or callable(getattr(validator, "limit_value", None)):
        return validator
    validator = copy.copy(validator)
    validator.__class__ = quick
    return validator


class StrictSerializer(FieldsBoundOnce, serializers.Serializer):
    """Refuses parameters it does not know, as Stripe does (a typo is an error, not ignored).

    An input: its fields are bound once per class (``FieldsBoundOnce``): never give one a context, an
    instance or ``partial``."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            shape = _shape(self)
            unknown = sorted(set(data) - shape.names)
            if unknown:
                if any(len(name) <= 255 and contains_card_number(name) for name in unknown):
                    # the name is not echoed as ``param`` either
                    raise serializers.ValidationError({api_settings.NON_FIELD_ERRORS_KEY: [
                        serializers.ErrorDetail(CARD_NUMBER_MESSAGE, code=CARD_NUMBER_REFUSED)]})
                raise serializers.ValidationError(
                    {unknown[0]: serializers.ErrorDetail("Unknown parameter.", code="parameter_unknown")}
                )
            # A string is a JSON string: DRF's CharField would take 0 or 1.5 as "0" and "1.5".
            for name in shape.strings:
                if data.get(name) is not None and not isinstance(data[name], str):
                    raise serializers.ValidationError(
                        {name: serializers.ErrorDetail("Must be a string.", code="invalid")})
        return super().to_internal_value(data)

    def run_validation(self, data=empty):
        """DRF's, after a quick path for a body DRF accepts (``_accepted``): the same validated data; anything
        it is not sure of, every refusal included, is left to DRF, so errors are DRF's own."""
        if type(data) is dict and not self.partial and not self.validators:
            value = _accepted(self, data)
            if value is not None:
                return value
        return super().run_validation(data)

    # DRF's own two, answered from the fields' shape (known once per class, as the fields are).
    @property
    def _writable_fields(self):
        return _shape(self).writable

    def _read_only_defaults(self):
        return super()._read_only_defaults() if _shape(self).read_only else {}


#: What ``_accepted`` stands in for: a serializer that changes one of them takes DRF's path.
_DRF_STEPS = ("to_internal_value", "run_validators", "validate_empty_values", "set_value")
#: ``get_value``s that read ``data.get(name, empty)`` from a dict (an HTML form, never JSON, aside).
_PLAIN_GET_VALUE = (serializers.Field.get_value, serializers.Serializer.get_value, serializers.ListSerializer.get_value)


def _accepted(serializer: "StrictSerializer", data: dict) -> dict | None:
    """What DRF's ``Serializer.run_validation`` returns for ``data`` when it accepts it, or None (refused, or not
    sure): each field's own ``run_validation`` and ``validate_<field>`` in DRF's order, without DRF's per-field
    lookups, collection of errors and empty validator runs. Only for a serializer with no read-only field, no
    validators, none of DRF's steps (``_DRF_STEPS``) changed, and fields of one plain source each, read from the
    body as DRF reads a dict (else None, always)."""
    shape = _shape(serializer)
    if not shape.quick or not shape.names.issuperset(data):
        return None
    for name in shape.strings:
        if data.get(name) is not None and type(data[name]) is not str:
            return None
    ret = {}
    try:
        for field, name, attr, checked in shape.steps:
            try:
                value = field.run_validation(data.get(name, empty))
                if checked:
                    value = getattr(serializer, "validate_" + name)(value)
            except SkipField:
                continue
            ret[attr] = value
        return serializer.validate(ret)
    except (serializers.ValidationError, DjangoValidationError):
        return None


@dataclass(frozen=True)
class _Shape:
    names: frozenset[str]  # every field's name
    strings: tuple[str, ...]  # the CharFields' names
    writable: tuple[serializers.Field, ...]  # what DRF's ``_writable_fields`` yields, in order
    read_only: bool  # whether any field is read-only (DRF's ``_read_only_defaults`` only reads those)
    # ``_accepted``'s: per writable field, itself, its name, its attribute, whether a ``validate_<name>`` exists
    steps: tuple[tuple[serializers.Field, str, str, bool], ...]
    quick: bool  # whether ``_accepted`` applies


def _shape(serializer: StrictSerializer) -> _Shape:
    cls = type(serializer)
    shape = cls.__dict__.get("_shape_cache")
    if shape is None:
        fields = serializer.fields
        shape = cls._shape_cache = _Shape(
            names=frozenset(fields),
            strings=tuple(name for name, field in fields.items() if isinstance(field, serializers.CharField)),
            writable=tuple(field for field in fields.values() if not field.read_only),
            read_only=any(field.read_only for field in fields.values()),
            steps=tuple((field, field.field_name, field.source_attrs[-1] if field.source_attrs else "",
                         hasattr(cls, "validate_" + field.field_name))
                        for field in fields.values() if not field.read_only),
            quick=(not any(field.read_only for field in fields.values())
                   and all(getattr(cls, name) is getattr(StrictSerializer, name) for name in _DRF_STEPS)
                   and all(len(field.source_attrs) == 1 and type(field).get_value in _PLAIN_GET_VALUE
                           for field in fields.values())))
    return shape


class OutputSerializer(FieldsBoundOnce, serializers.Serializer):
    """A response body, its fields bound once per class (``FieldsBoundOnce``). Read-only: never validate
    input with one.

    Rendered as DRF's ``Serializer.to_representation`` renders, with a field of one plain ``source`` read by
    ``getattr`` (DRF's ``get_attribute`` walks a list of attributes under a ``try`` per field, asks whether the
    instance is a mapping and whether the value is callable: a third of rendering an order). Anything else
    (a mapping instance, a callable or missing attribute, a field that reads its attribute its own way) takes
    DRF's own path, field by field; ``core/tests/test_output_serializer.py`` holds every output serializer to
    DRF's rendering."""

    def to_representation(self, instance):
        plan = type(self).__dict__.get("_plan")
        if plan is None:
            plan = type(self)._plan = _rendering_plan(self.fields)
        if isinstance(instance, Mapping):
            return super().to_representation(instance)
        ret = {}
        for name, field, attr in plan:
            if attr is _OWN_WAY:
                try:
                    value = field.get_attribute(instance)
                except SkipField:
                    continue
            elif attr is None:  # source="*"
                value = instance
            else:
                try:
                    value = getattr(instance, attr)
                except (AttributeError, KeyError, ObjectDoesNotExist):  # what DRF's path answers its own way
                    value = _MISSING
                if value is _MISSING or callable(value):
                    try:
                        value = field.get_attribute(instance)
                    except SkipField:
                        continue
            if isinstance(value, PKOnlyObject):
                value = value if value.pk is not None else None
            ret[name] = None if value is None else field.to_representation(value)
        return ret


_OWN_WAY, _MISSING = object(), object()


def _rendering_plan(fields) -> list[tuple[str, serializers.Field, object]]:
    """Per readable field: its name, itself, and the attribute it reads (None: the instance itself;
    ``_OWN_WAY``: DRF's ``get_attribute``, for a source of several steps or a field that overrides it)."""
    plan = []
    for field in fields.values():
        if field.write_only:
            continue
        attrs = field.source_attrs
        if type(field).get_attribute is not serializers.Field.get_attribute or len(attrs) > 1:
            attr = _OWN_WAY
        else:
            attr = attrs[0] if attrs else None
        plan.append((field.field_name, field, attr))
    return plan


class CardNumberScreeningMixin:
    """Refuses a string holding a payment card number (see ``core.validators``), before any other
    check and without echoing it: ``400 card_number_refused`` with the field as ``param``.

    Use it (through ``FreeTextField`` / ``FreeTextEmailField``) for every free-text input of the API.
    """

    default_error_messages = {CARD_NUMBER_REFUSED: CARD_NUMBER_MESSAGE}

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", "Free text. Anything holding a payment card number (13-19 digits passing "
                                       "Luhn, with or without spaces or dashes) is refused: 400 card_number_refused.")
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        # A value over max_length is refused by that validator anyway (its message does not echo
        # the value either); not screening it bounds the work to max_length characters.
        if (self.max_length is None or len(value) <= self.max_length) and contains_card_number(value):
            self.fail(CARD_NUMBER_REFUSED)
        return value


class FreeTextField(CardNumberScreeningMixin, serializers.CharField):
    """A client's free text (names, references, reasons): a CharField that refuses card numbers.

    Trimmed of the whitespace JSON Schema knows (space, tab, CR, LF) only: Python's ``strip()`` also
    takes control characters such as U+001C, so a name the API's schema accepts came out blank (400)."""

    _TRIMMED = " \t\n\r"

    def __init__(self, **kwargs):
        self._trim = kwargs.pop("trim_whitespace", True)
        super().__init__(trim_whitespace=False, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if self._trim:
            value = value.strip(self._TRIMMED)
            if not value and not self.allow_blank:
                self.fail("blank")
        return value


class FreeTextEmailField(CardNumberScreeningMixin, serializers.EmailField):
    """An email address that refuses card numbers (``4242424242424242@example.com``)."""


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer, nothing else: no strings, floats or booleans."""

    default_error_messages = {"invalid": "Must be an integer in the currency's minor unit."}

    def to_internal_value(self, data):
        if type(data) is not int:
            self.fail("invalid")
        return super().to_internal_value(data)


class CurrencyField(serializers.CharField):
    # The error's ``code`` in the API's error shape: ``currency_invalid``, for every way a currency is wrong.
    default_error_messages = {"currency_invalid": "Not an ISO 4217 currency code."}

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 3)
        kwargs.setdefault("min_length", 3)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not is_known_currency(value):
            self.fail("currency_invalid")
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
