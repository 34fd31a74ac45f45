"""Input and output serializers of the payouts API."""
import re

from django.utils import timezone
from rest_framework import serializers

from core.serializers import FreeTextEmailField, ObjectTypeField, StrictSerializer

_BANK_TOKEN = re.compile(r"^btok_[A-Za-z0-9_]{1,96}$")
_DIGITS = re.compile(r"\d[\d \-]{4,}\d")
BANK_NUMBER_REFUSED = "bank_account_number_refused"
BANK_NUMBER_MESSAGE = ("Bank account numbers are never accepted here: send the PSP's bank account token "
                       "(btok_...), made by the PSP's own form.")
# Names a client might send a bank account's details under: refused unread.
BANK_DETAIL_NAMES = frozenset({"account_number", "routing_number", "iban", "bic", "swift", "sort_code",
                               "bank_account", "bank_account_number"})


class BankAccountTokenField(serializers.CharField):
    """A PSP bank account token. Anything that looks like an account number is refused unread."""

    default_error_messages = {
        BANK_NUMBER_REFUSED: BANK_NUMBER_MESSAGE,
        "not_token": "Must be a PSP bank account token (btok_...).",
    }

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if _DIGITS.search(value) or (not value.startswith("btok_") and sum(ch.isdigit() for ch in value) >= 6):
            self.fail(BANK_NUMBER_REFUSED)
        if not _BANK_TOKEN.match(value):
            self.fail("not_token")
        return value


class CountryField(serializers.CharField):
    default_error_messages = {"country_invalid": "Not an ISO 3166-1 alpha-2 country code."}

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 2)
        kwargs.setdefault("min_length", 2)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not (value.isascii() and value.isalpha()):
            self.fail("country_invalid")
        return value.upper()


class PayoutAccountInput(StrictSerializer):
    external_account = BankAccountTokenField(
        max_length=100, help_text="The PSP's bank account token (btok_...): the account number never reaches us.")
    country = CountryField(help_text="The seller's country, ISO 3166-1 alpha-2 (US, GB, DE...).")
    email = FreeTextEmailField(max_length=254, required=False, allow_blank=True, default="")

    def to_internal_value(self, data):
        if isinstance(data, dict) and BANK_DETAIL_NAMES & set(data):
            raise serializers.ValidationError(  # the field's name is not echoed: the body holds no param
                {"non_field_errors": [serializers.ErrorDetail(BANK_NUMBER_MESSAGE, code=BANK_NUMBER_REFUSED)]})
        return super().to_internal_value(data)


class BankAccountOutput(serializers.Serializer):
    id = serializers.CharField(source="psp_bank_account_id", help_text="The PSP's bank account id (ba_...).")
    last4 = serializers.CharField(source="bank_last4")
    bank_name = serializers.CharField()
    country = serializers.CharField(source="bank_country")
    currency = serializers.CharField()


class PayoutAccountOutput(serializers.Serializer):
    id = serializers.CharField()
    object = ObjectTypeField("payout_account")
    seller = serializers.CharField(source="seller_id")
    psp_account = serializers.CharField(source="psp_account_id", help_text="The connected account (acct_...).")
    bank_account = BankAccountOutput(source="*")
    unusable_reason = serializers.CharField(help_text="Why no payout is made to this bank account (a payout to it "
                                                      "failed for good: give another); empty when usable.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class BalanceQuery(StrictSerializer):
    as_of = serializers.DateTimeField(
        required=False, help_text="A past moment (ISO 8601; without an offset, UTC): the balance as it was then.")

    def validate_as_of(self, value):
        if value > timezone.now():
            raise serializers.ValidationError("Must not be in the future.", code="parameter_invalid")
        return value


class AmountOutput(serializers.Serializer):
    amount = serializers.IntegerField(help_text="Minor units; available may be negative (owed by the seller).")
    currency = serializers.CharField()


class BalanceOutput(serializers.Serializer):
    """Stripe's balance shape, per currency: available to pay out, pending (in its hold), reserved."""

    object = ObjectTypeField("balance")
    seller = serializers.CharField()
    as_of = serializers.DateTimeField(allow_null=True)
    available = AmountOutput(many=True)
    pending = AmountOutput(many=True)
    reserved = AmountOutput(many=True)

    @staticmethod
    def of(*, seller_id: str, as_of, buckets) -> dict:
        def amounts(name):
            return [{"amount": getattr(b, name), "currency": b.currency} for b in buckets]

        return BalanceOutput({"seller": seller_id, "as_of": as_of, "available": amounts("available"),
                              "pending": amounts("pending"), "reserved": amounts("reserved")}).data


class PayoutOutput(serializers.Serializer):
    id = serializers.CharField()
    object = ObjectTypeField("payout")
    seller = serializers.CharField(source="seller_id")
    amount = serializers.IntegerField(help_text="Minor units.")
    currency = serializers.CharField()
    state = serializers.CharField(help_text="pending, in_transit, paid, failed or dead_letter.")
    payout_date = serializers.DateField(help_text="The run it belongs to.")
    bank_account = serializers.CharField(source="psp_bank_account_id", help_text="The PSP's bank account (ba_...).")
    psp_payout = serializers.CharField(source="psp_payout_id", help_text="The PSP's payout (po_...), once sent.")
    arrival_date = serializers.DateField(allow_null=True, help_text="When the PSP expects it at the bank.")
    failure_code = serializers.CharField()
    failure_message = serializers.CharField()
    created = serializers.DateTimeField(source="created_at")
    completed = serializers.DateTimeField(source="completed_at", allow_null=True)


class MovementSourceOutput(serializers.Serializer):
    type = serializers.ChoiceField(
        source="source_type", choices=["order", "refund", "dispute", "payout", "write_off", "adjustment"],
        help_text="What moved the money: a payment order captured, a refund, a dispute, a payout (created, or "
                  "failed and given back), a negative balance written off by the platform; adjustment: none of "
                  "these.")
    id = serializers.CharField(source="source_id", allow_null=True,
                               help_text="Its id (po_..., re_..., pyt_..., wo_...); null for an adjustment.")


class MovementOutput(serializers.Serializer):
    """One change of the seller's balance in one currency, and what is behind it."""

    id = serializers.IntegerField(source="movement.id")
    object = ObjectTypeField("balance_movement")
    created = serializers.DateTimeField(source="movement.created_at")
    amount = serializers.IntegerField(source="movement.amount",
                                      help_text="Minor units: positive credits the seller, negative debits.")
    currency = serializers.CharField(source="movement.wallet.currency")
    description = serializers.CharField(source="movement.reason")
    source = MovementSourceOutput(source="*")
    pending_until = serializers.DateTimeField(
        source="movement.hold_until", allow_null=True,
        help_text="A capture's credit: pending (less its reserve) until then, available after.")
    reserve_amount = serializers.IntegerField(source="movement.reserve_amount",
                                              help_text="Minor units of the credit held as the rolling reserve.")
    reserved_until = serializers.DateTimeField(source="movement.reserve_until", allow_null=True,
                                               help_text="When the reserve is available too.")
