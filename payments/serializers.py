"""Input and output serializers of the payments API."""
import functools
import re
from datetime import UTC

from django.conf import settings
from django.core.validators import URLValidator
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import DateTimeField
from rest_framework.settings import ISO_8601, api_settings

from core.serializers import (
    CardNumberScreeningMixin,
    CurrencyField,
    FreeTextEmailField,
    FreeTextField,
    ObjectTypeField,
    OutputSerializer,
    StrictIntegerField,
    StrictSerializer,
)
from core.validators import contains_card_number
from payments.models import PaymentEventState, PaymentOrderState
from payments.services.checkout_write import NewCheckout

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
        if contains_card_number(value) or (sum(map(str.isdigit, value)) >= 12 and _DIGIT_RUN.search(value)):
            self.fail("card_number")
        if not _PM_TOKEN.match(value):
            self.fail("not_token")
        return value


class BuyerRedirectUrlField(CardNumberScreeningMixin, serializers.URLField):
    """Where we send the buyer's browser: an absolute http(s) URL of at most 2048 characters."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 2048)
        super().__init__(**kwargs)
        # DRF's URLField allows ftp(s) too: a browser is only ever sent to http(s).
        self.validators = [v for v in self.validators if not isinstance(v, URLValidator)]
        self.validators.append(URLValidator(schemes=["http", "https"], message="Enter an http or https URL."))


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
    return_url = BuyerRedirectUrlField(
        required=False, allow_blank=True, default="",
        help_text="The buyer is present: a card that asks for 3-D Secure leaves its order `requires_action` "
                  "with `next_action.redirect_to_url.url`; send the buyer there. Once back, they are sent to "
                  "this URL with `?payment_event=pe_...`. Without it, orders are paid off-session and such a "
                  "card fails with `authentication_required`.")

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


class SellerOutput(OutputSerializer):
    id = serializers.CharField()
    object = ObjectTypeField("seller")
    name = serializers.CharField()
    external_reference = serializers.CharField()
    status = serializers.CharField()
    created = serializers.DateTimeField(source="created_at")


class RedirectToUrlOutput(OutputSerializer):
    url = serializers.CharField(help_text="The PSP's 3-D Secure page to send the buyer to.")


class NextActionOutput(OutputSerializer):
    type = serializers.ChoiceField(choices=["redirect_to_url"])
    redirect_to_url = RedirectToUrlOutput()


class PaymentOrderOutput(OutputSerializer):
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
    next_action = serializers.SerializerMethodField(
        help_text="`requires_action` only: where the buyer authenticates (3-D Secure); null otherwise.")
    created = serializers.DateTimeField(source="created_at")
    updated = serializers.DateTimeField(source="updated_at")

    @extend_schema_field(NextActionOutput(allow_null=True))
    def get_next_action(self, order) -> dict | None:
        if order.state != PaymentOrderState.REQUIRES_ACTION or not order.next_action_url:
            return None
        return {"type": "redirect_to_url", "redirect_to_url": {"url": order.next_action_url}}


class BuyerOutput(OutputSerializer):
    reference = serializers.CharField(source="buyer_reference")
    email = serializers.CharField(source="buyer_email")


class PaymentEventOutput(OutputSerializer):
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
    return_url = serializers.CharField(help_text="Where the buyer goes back from 3-D Secure; empty: off-session.")
    created = serializers.DateTimeField(source="created_at")


def checkout_output(checkout: NewCheckout) -> dict:
    """``PaymentEventOutput(event).data`` for the checkout just written, from its values (without building the
    event's model instances: ``payments.services.checkout_write``); ``test_checkout_write`` holds the two equal."""
    event_id = checkout.id
    as_text = _datetime_text()
    return {
        "id": event_id,
        "object": "payment_event",
        "buyer": {"reference": checkout.buyer_reference, "email": checkout.buyer_email},
        "payment_method": checkout.payment_method,
        "orders": [{"id": o.id, "object": "payment_order", "payment_event": event_id, "seller": o.seller_id,
                    "amount": o.amount, "currency": o.currency, "state": PaymentOrderState.NOT_STARTED.value,
                    "psp_reference": "", "failure_code": "", "failure_message": "", "amount_refunded": 0,
                    "next_action": None, "created": as_text(o.created_at), "updated": as_text(o.updated_at)}
                   for o in checkout.orders],
        "state": PaymentEventState.PROCESSING.value,
        "completed_at": None,
        "failure_reason": "",
        "return_url": checkout.return_url,
        "created": as_text(checkout.created_at),
    }


def _datetime_text():
    """How DRF's ``DateTimeField`` renders a time now (ISO 8601 in the current time zone, ``Z`` for UTC): a UTC
    time rendered in UTC at once, anything else by DRF's field."""
    drf = _drf_datetime().to_representation
    if api_settings.DATETIME_FORMAT != ISO_8601 or timezone.get_current_timezone_name() != "UTC":
        return drf
    return lambda value: value.isoformat()[:-6] + "Z" if value.tzinfo is UTC else drf(value)


@functools.cache
def _drf_datetime() -> DateTimeField:
    return DateTimeField()  # keeps no state between calls: its time zone is looked up on each


class RefundInput(StrictSerializer):
    amount = StrictIntegerField(min_value=1, max_value=settings.PAYMENT_ORDER_MAX_AMOUNT, required=False)
    reason = FreeTextField(max_length=200, required=False, allow_blank=True, default="")


class RefundOutput(OutputSerializer):
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


# --- Checkout sessions (the hosted payment page) --------------------------------------------------
class ItemInput(StrictSerializer):
    name = FreeTextField(max_length=200)
    quantity = StrictIntegerField(min_value=1, max_value=10_000)
    amount = StrictIntegerField(min_value=0, max_value=settings.PAYMENT_ORDER_MAX_AMOUNT,
                                help_text="Per unit, in minor units.")


class SessionOrderInput(OrderInput):
    items = ItemInput(many=True, required=False, max_length=100,
                      help_text="Shown to the buyer; when given, quantity × amount must add up to the order's amount.")


class CheckoutSessionInput(StrictSerializer):
    buyer = BuyerInput()
    orders = SessionOrderInput(many=True, allow_empty=False, max_length=settings.CHECKOUT_MAX_ORDERS)
    success_url = BuyerRedirectUrlField(help_text="Where the buyer lands once every seller is paid. "
                                                  "`{CHECKOUT_SESSION_ID}` is replaced by the session's id.")
    cancel_url = BuyerRedirectUrlField(help_text="Where the buyer goes back to without paying.")

    validate_orders = CheckoutInput.validate_orders


class CheckoutConfirmInput(StrictSerializer):
    """The hosted page's confirmation: the PSP's token for the card the buyer typed in its field."""

    payment_method = PaymentMethodTokenField(max_length=100)


class ItemOutput(serializers.Serializer):
    name = serializers.CharField()
    quantity = serializers.IntegerField()
    amount = serializers.IntegerField()


class SessionOrderOutput(serializers.Serializer):
    seller = serializers.CharField()
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    items = ItemOutput(many=True)


class CheckoutSessionOutput(serializers.Serializer):
    id = serializers.CharField()
    object = ObjectTypeField("checkout_session")
    url = serializers.SerializerMethodField(help_text="The hosted payment page, on our domain: send the buyer there.")
    status = serializers.SerializerMethodField(help_text="`open`, `complete` (the buyer paid: see `payment_status`) "
                                                         "or `expired` (never paid; nothing can be charged any more).")
    payment_status = serializers.SerializerMethodField(
        help_text="`unpaid`, then the payment event's state: `processing`, `succeeded`, `partially_succeeded`, "
                  "`failed`.")
    payment_event = serializers.CharField(source="payment_event_id", allow_null=True)
    buyer = BuyerOutput(source="*")
    orders = SessionOrderOutput(many=True)
    success_url = serializers.CharField()
    cancel_url = serializers.CharField()
    expires_at = serializers.DateTimeField()
    created = serializers.DateTimeField(source="created_at")

    def get_url(self, session) -> str:
        return self.context["request"].build_absolute_uri(reverse("pay:session", args=[session.id])) \
            if not settings.PAYMENTS_PUBLIC_URL else \
            settings.PAYMENTS_PUBLIC_URL.rstrip("/") + reverse("pay:session", args=[session.id])

    @extend_schema_field(serializers.ChoiceField(choices=["open", "complete", "expired"]))
    def get_status(self, session) -> str:
        if session.payment_event_id:
            return "complete"
        return "expired" if session.expires_at <= timezone.now() else "open"

    @extend_schema_field(serializers.ChoiceField(choices=["unpaid", *[s.value for s in PaymentEventState]]))
    def get_payment_status(self, session) -> str:
        return session.payment_event.state if session.payment_event_id else "unpaid"
