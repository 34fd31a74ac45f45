"""Input and output serializers of the payments API."""
import re

from django.conf import settings
from rest_framework import serializers

from core.serializers import (
    CurrencyField,
    FreeTextEmailField,
    FreeTextField,
    ObjectTypeField,
    StrictIntegerField,
    StrictSerializer,
)
from core.validators import contains_card_number
from payments.models import PaymentEventState

_PM_TOKEN = re.compile(r"^pm_[A-Za-z0-9_]{1,96}$")
_DIGIT_RUN = re.compile(r"\d[\d \-]{10,}\d")


class PaymentMethodTokenField(serializers.CharField):
    """A PSP payment-method token. Anything that looks like a card number is refused unread."""

    default_error_messages = {
        "card_number": "Card numbers are never accepted; send the PSP's payment-method token (pm_...).",
        "not_token": "Must be a PSP payment-method token (pm_...).",
    }

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        # The free-text detector (13-19 digits passing Luhn), and stricter here: no token holds
        # a 12+ digit run, so a mistyped card number (failing Luhn) is refused as one too.
        if contains_card_number(value) or (sum(ch.isdigit() for ch in value) >= 12 and _DIGIT_RUN.search(value)):
            self.fail("card_number")
        if not _PM_TOKEN.match(value):
            self.fail("not_token")
        return value


# Every free-text input is a FreeTextField / FreeTextEmailField: a card number in it is
# refused (400 card_number_refused, param the field, the value not echoed) and never stored.
class BuyerInput(StrictSerializer):
    reference = FreeTextField(max_length=100)
    email = FreeTextEmailField(max_length=254, required=False, allow_blank=True, default="")  # the column's length


class OrderInput(StrictSerializer):
    seller = FreeTextField(max_length=40, help_text="The seller's id (sel_...).")
    amount = StrictIntegerField(min_value=1, max_value=settings.PAYMENT_ORDER_MAX_AMOUNT)
    currency = CurrencyField()


class CheckoutInput(StrictSerializer):
    buyer = BuyerInput()
    payment_method = PaymentMethodTokenField(max_length=100)
    orders = OrderInput(many=True, allow_empty=False, max_length=settings.CHECKOUT_MAX_ORDERS)

    def validate_orders(self, orders):
        seen = set()
        for index, order in enumerate(orders):
            if order["seller"] in seen:
                raise serializers.ValidationError(
                    {index: {"seller": serializers.ErrorDetail("At most one order per seller.",
                                                               code="duplicate_seller")}}
                )
            seen.add(order["seller"])
        return orders


class SellerInput(StrictSerializer):
    name = FreeTextField(max_length=200)
    external_reference = FreeTextField(max_length=100, required=False, allow_blank=True, default="")


class SellerOutput(serializers.Serializer):
    id = serializers.CharField()
    object = ObjectTypeField("seller")
    name = serializers.CharField()
    external_reference = serializers.CharField()
    status = serializers.CharField()
    created = serializers.DateTimeField(source="created_at")


class PaymentOrderOutput(serializers.Serializer):
    id = serializers.CharField()
    object = ObjectTypeField("payment_order")
    payment_event = serializers.CharField(source="payment_event_id")
    seller = serializers.CharField(source="seller_id")
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    state = serializers.CharField()
    psp_reference = serializers.CharField()
    failure_code = serializers.CharField()
    failure_message = serializers.CharField()
    amount_refunded = serializers.IntegerField()
    created = serializers.DateTimeField(source="created_at")
    updated = serializers.DateTimeField(source="updated_at")


class BuyerOutput(serializers.Serializer):
    reference = serializers.CharField(source="buyer_reference")
    email = serializers.CharField(source="buyer_email")


class PaymentEventOutput(serializers.Serializer):
    id = serializers.CharField()
    object = ObjectTypeField("payment_event")
    buyer = BuyerOutput(source="*")
    payment_method = serializers.CharField()
    orders = PaymentOrderOutput(many=True, source="order_list")
    state = serializers.ChoiceField(
        choices=[s.value for s in PaymentEventState],
        help_text="The checkout's own outcome: `processing` until every order is succeeded or failed (an order "
                  "in `dead_letter` is not decided yet), then `succeeded` (every order), `partially_succeeded` "
                  "(some succeeded, some failed) or `failed` (none succeeded; or, under the refund_all policy, "
                  "some failed and the succeeded ones were refunded in full: see `failure_reason`).")
    completed_at = serializers.DateTimeField(allow_null=True, help_text="When the checkout was decided; null "
                                                                         "while `processing`.")
    failure_reason = serializers.CharField(help_text="Why the checkout failed; empty otherwise.")
    created = serializers.DateTimeField(source="created_at")


class RefundInput(StrictSerializer):
    amount = StrictIntegerField(min_value=1, max_value=settings.PAYMENT_ORDER_MAX_AMOUNT, required=False)
    reason = FreeTextField(max_length=200, required=False, allow_blank=True, default="")


class RefundOutput(serializers.Serializer):
    id = serializers.CharField()
    object = ObjectTypeField("refund")
    payment_order = serializers.CharField(source="payment_order_id")
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    reason = serializers.CharField()
    state = serializers.CharField()
    psp_reference = serializers.CharField()
    failure_code = serializers.CharField()
    created = serializers.DateTimeField(source="created_at")


class PaymentOrderDetailOutput(PaymentOrderOutput):
    """A payment order with its refunds, as ``GET /payment-orders/{id}`` answers."""

    refunds = RefundOutput(many=True, read_only=True)
